"""The noise floor against the real engine: `replay check --runs/--vary`, `capture --runs`, numeric text
tolerances and the noise diagnosis, and `replay diff` of two captures."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.e2e.conftest import Project, new_project


@pytest.fixture(scope="module")
def timestamped(tmp_path_factory, engine, train_venv):
    project = new_project(tmp_path_factory.mktemp("noise"), "timestamped", train_venv)
    result = project.capture()
    assert result.code == 0, result.stderr
    return project


def test_check_runs_3_reports_the_timestamped_log_and_jitter_unstable_and_the_rest_stable(timestamped) -> None:
    result = timestamped.replay("check", str(timestamped.capsule), "--runs", "3", "--json")

    assert result.code == 1, result.stderr
    report = result.json()
    assert report["schema"] == "replay.check-report" and report["schema_version"] == 1
    assert report["compared"] == ["capture", "run 1", "run 2", "run 3"] and report["stable"] is False
    outputs = {o["path"]: o for o in report["outputs"]}
    statuses = {path: o["status"] for path, o in outputs.items()}
    assert statuses == {"out/metrics.json": "unstable", "out/train.log": "unstable", "out/tz.txt": "stable",
                        "out/weights.npy": "stable"}
    log = outputs["out/train.log"]
    assert log["classes"] == {"timestamp": 3}  # every line's timestamp moved, nothing else
    assert log["suggestion"]["argument"] == "--ignore out/train.log" and log["suggestion"]["suggestion"] is True
    metrics = {m["name"]: m for m in report["metrics"]}
    assert metrics["samples"]["status"] == "stable" and metrics["samples"]["suggestion"] is None
    accuracy = metrics["accuracy"]
    assert accuracy["status"] == "unstable"
    assert 0 < accuracy["largest_diff"] < 1e-9 and accuracy["min"] < accuracy["max"]
    assert accuracy["suggestion"]["option"] == "--tolerance"
    assert accuracy["suggestion"]["value"].startswith("accuracy=abs:")
    human = timestamped.replay("check", str(timestamped.capsule), "--runs", "1")
    assert human.code == 1 and "UNSTABLE" in human.stdout and "(suggested)" in human.stdout


def test_check_vary_names_the_variation_that_changed_an_output(timestamped) -> None:
    result = timestamped.replay("check", str(timestamped.capsule), "--runs", "1", "--vary", "timezone",
                                "--vary", "hostname", "--json")

    assert result.code == 1, result.stderr
    variations = {v["name"]: v for v in result.json()["variations"]}
    assert variations["timezone"]["caused"] == ["out/tz.txt"]
    assert "out/train.log" in variations["timezone"]["also_unstable"]  # changed, but it changes anyway
    assert variations["hostname"]["caused"] == [] and variations["hostname"]["sensitive"] is False


def test_timings_only_log_is_diagnosed_as_timings_and_equivalent_under_a_numeric_tolerance(make_project) -> None:
    project = make_project("timings-only")
    assert project.capture().code == 0

    strict = project.replay("verify", str(project.capsule), "--json")

    assert strict.code == 1, strict.stderr
    report = strict.json()
    log = next(o for o in report["outputs"] if o["path"] == "out/stdout.txt")
    # Which of the 5 timings differ is up to the clock (printed to the nanosecond, two equal ones are a
    # coincidence, not a rule): what matters is that every line that differs is a timing.
    classes = log["explanation"]["numeric"]["classes"]
    assert log["status"] == "differs" and set(classes) == {"timing"} and 1 <= classes["timing"] <= 5
    likely = [d for d in report["diagnosis"] if d["likely"]]
    lines = f"{classes['timing']} line{'s' * (classes['timing'] != 1)}"
    assert any(d["kind"] == "noise" and f"only timing-like numbers differ in out/stdout.txt ({lines})" in d["message"]
               for d in likely), likely
    assert not any(d["kind"] == "seed" for d in likely)  # no seed, but a seed would not change a timing

    # A 50 ms sleep timed on a loaded machine may take several times as long: the tolerance is wide enough that
    # only a timing, never the sums, can fall within it.
    lenient = project.replay("verify", str(project.capsule), "--json", "--tolerance", "out/stdout.txt=rel:1000")

    assert lenient.code == 0, lenient.stderr
    report = lenient.json()
    assert report["verdict"] == "equivalent"
    log = next(o for o in report["outputs"] if o["path"] == "out/stdout.txt")
    assert log["status"] == "within_tolerance"
    numeric = log["explanation"]["numeric"]
    assert 1 <= numeric["numbers_moved"] <= 5 and numeric["structure_equal"] is True
    assert 0 < numeric["max_rel_move"] < 1000


def test_capture_runs_records_what_varied_and_verify_calls_it_noise(make_project) -> None:
    project = make_project("timings-only")
    captured = project.capture("--runs", "1", "--json")
    assert captured.code == 0, captured.stderr
    assert captured.json()["stability"] == {"runs": 2, "unstable_outputs": ["out/stdout.txt"], "unstable_metrics": []}
    manifest = json.loads((project.capsule / "replay.json").read_text())
    assert manifest["outputs"]["stability"]["unstable_outputs"] == ["out/stdout.txt"]

    verified = project.replay("verify", str(project.capsule), "--json")

    assert verified.code == 0, verified.stderr  # only timings moved, in the output that varied at capture
    report = verified.json()
    assert report["verdict"] == "equivalent"
    log = next(o for o in report["outputs"] if o["path"] == "out/stdout.txt")
    assert log["status"] == "within_tolerance" and log["tolerance"] == "noise measured at capture (2 runs)"
    assert report["diagnosis"][0]["message"].startswith("within the noise measured at capture (2 runs): accepted ")

    strict = project.replay("verify", str(project.capsule), "--json", "--strict")

    assert strict.code == 1
    messages = [d["message"] for d in strict.json()["diagnosis"] if d["kind"] == "noise"]
    assert any("out/stdout.txt already varied between runs at capture (2 runs): noise, not a regression" in m
               for m in messages)


def test_a_duration_metric_measured_as_noise_at_capture_never_decides_the_verdict(make_project) -> None:
    project = make_project("duration-metric")
    captured = project.capture("--runs", "3", "--json")
    assert captured.code == 0, captured.stderr
    assert captured.json()["stability"]["unstable_metrics"] == ["train_seconds"]

    verified = project.replay("verify", str(project.capsule), "--json")

    assert verified.code == 0, verified.stderr
    report = verified.json()
    assert report["verdict"] == "equivalent"
    metrics = {m["name"]: m for m in report["metrics"]}
    assert metrics["loss"]["status"] == "identical"
    assert metrics["train_seconds"]["status"] == "within_tolerance"
    assert "metric train_seconds (timing-like numbers)" in report["diagnosis"][0]["message"]
    human = project.replay("verify", str(project.capsule))
    assert human.code == 0 and "EQUIVALENT" in human.stdout and "noise measured at capture (4 runs)" in human.stdout


def _venv_with(tmp_path, name: str, requirement: str):
    venv = tmp_path / name
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", requirement], check=True)
    return venv


def test_diff_of_two_captures_with_different_package_versions_lists_the_version_change(tmp_path, engine) -> None:
    old, new = _venv_with(tmp_path, "venv-old", "six==1.16.0"), _venv_with(tmp_path, "venv-new", "six==1.17.0")
    first = new_project(tmp_path / "a", "pinned-package", old)
    assert first.capture().code == 0
    second = Project(first.root, new, first.name + "-b", first.scenario)
    assert second.capture().code == 0

    result = first.replay("diff", str(first.capsule), str(second.capsule), "--json")

    assert result.code == 1, result.stderr
    doc = result.json()
    assert doc["schema"] == "replay.capsule-diff" and doc["schema_version"] == 1 and doc["same"] is False
    assert {"item": "six", "change": "changed", "a": "1.16.0", "b": "1.17.0"} in doc["sections"]["packages"]
    assert [c["item"] for c in doc["sections"]["outputs"]] == ["out/version.txt"]
    assert doc["sections"]["data"] == [] and doc["sections"]["seed"] == []
    human = first.replay("diff", str(first.capsule), str(second.capsule))
    assert human.code == 1 and "1.16.0" in human.stdout and "1.17.0" in human.stdout
    same = first.replay("diff", str(first.capsule), str(first.capsule))
    assert same.code == 0 and "same" in same.stdout
