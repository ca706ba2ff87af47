"""Each scenario folder, captured and verified through the real `replay` command against the real engine."""

from __future__ import annotations

import json

import pytest

from tests.e2e.conftest import SCENARIOS


@pytest.mark.parametrize("scenario", ["seeded", "unseeded", "noisy", "failing", "timestamped", "timings-only"])
def test_scenario_verdict(make_project, scenario: str) -> None:
    project = make_project(scenario)
    captured = project.capture("--json")
    assert captured.code == 0, captured.stderr
    spec = json.loads((SCENARIOS / scenario / "scenario.json").read_text())

    verified = project.replay("verify", str(project.capsule), "--json", *spec["verify"])

    assert verified.code == spec["exit"], verified.stderr
    report = verified.json()
    assert report["schema"] == "replay.verify-report" and report["schema_version"] == 1
    assert report["verdict"] == spec["verdict"]
    assert report["exit_code"] == spec["exit"]


def test_unseeded_divergence_names_the_file_and_byte_offset(make_project) -> None:
    project = make_project("unseeded")
    assert project.capture().code == 0

    verified = project.replay("verify", str(project.capsule), "--json")

    assert verified.code == 1
    report = verified.json()
    predictions = next(o for o in report["outputs"] if o["path"] == "out/predictions.npy")
    assert predictions["status"] == "differs"
    explanation = predictions["explanation"]
    assert explanation["kind"] == "npy"
    assert isinstance(explanation["first_byte_offset"], int) and explanation["first_byte_offset"] >= 128
    assert explanation["arrays"][0]["max_abs_diff"] > 0
    kinds = {d["kind"] for d in report["diagnosis"]}
    assert "seed" in kinds  # no --seed was recorded: the likely cause is named
    # The human report says the same in words.
    human = project.replay("verify", str(project.capsule))
    assert human.code == 1
    assert "DIVERGED" in human.stdout and "out/predictions.npy" in human.stdout and "byte" in human.stdout


def test_noisy_run_diverges_without_policy_and_is_equivalent_with_it(make_project) -> None:
    project = make_project("noisy")
    assert project.capture().code == 0

    strict = project.replay("verify", str(project.capsule), "--json")
    assert strict.code == 1
    statuses = {o["path"]: o["status"] for o in strict.json()["outputs"]}
    assert statuses["out/weights.npy"] == "identical"
    assert statuses["out/run.log"] == "differs"

    lenient = project.replay("verify", str(project.capsule), "--json", "--tolerance", "accuracy=1e-6",
                             "--ignore", "out/run.log")
    assert lenient.code == 0
    report = lenient.json()
    assert report["verdict"] == "equivalent"
    statuses = {o["path"]: o["status"] for o in report["outputs"]}
    assert statuses == {"out/metrics.json": "within_tolerance", "out/run.log": "ignored",
                        "out/weights.npy": "identical"}
    accuracy = next(m for m in report["metrics"] if m["name"] == "accuracy")
    assert accuracy["status"] in ("within_tolerance", "identical") and accuracy["tolerance"] == "abs 1e-06"


def test_policy_stored_at_capture_is_applied_by_verify(make_project) -> None:
    project = make_project("noisy")
    assert project.capture("--tolerance", "accuracy=1e-6", "--ignore", "out/run.log").code == 0
    manifest = json.loads((project.capsule / "replay.json").read_text())
    assert manifest["policy"] == {"tolerances": {"accuracy": "1e-6"}, "ignore": ["out/run.log"]}

    verified = project.replay("verify", str(project.capsule), "--json")

    assert verified.code == 0 and verified.json()["verdict"] == "equivalent"
