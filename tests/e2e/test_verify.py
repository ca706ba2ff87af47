"""`replay verify` against the real engine: its failure paths, its reports, and what it leaves behind."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

import pytest

from tests.e2e.conftest import new_project

CAPSULE_LABEL = "io.replay.capsule"


@pytest.fixture(scope="module")
def seeded(tmp_path_factory, engine, train_venv):
    """One seeded capture shared by the verify tests of this module that leave it as they found it."""
    project = new_project(tmp_path_factory.mktemp("verify"), "seeded", train_venv)
    result = project.capture()
    assert result.code == 0, result.stderr
    return project


def test_reports_are_written_as_json_junit_and_markdown(seeded, tmp_path) -> None:
    report, junit, markdown, keep = (tmp_path / n for n in ("r.json", "r.xml", "r.md", "kept"))

    result = seeded.replay("verify", str(seeded.capsule), "--report", str(report), "--junit", str(junit),
                           "--markdown", str(markdown), "--keep", str(keep))

    assert result.code == 0, result.stderr
    assert "IDENTICAL" in result.stdout
    doc = json.loads(report.read_text())
    assert doc["verdict"] == "identical" and doc["data"]["status"] == "verified"
    assert {"manifest", "image", "data", "run", "compare"} <= set(doc["timings"])
    suite = ET.parse(junit).getroot()
    cases = suite.findall(".//testcase")
    assert len(cases) >= 5 and not suite.findall(".//failure")  # 3 outputs + 2 metrics (+ the run)
    assert "identical" in markdown.read_text()
    assert (keep / "out" / "model.pkl").exists()  # --keep keeps the replayed outputs


def test_one_changed_data_byte_is_caught_before_the_command_runs(make_project) -> None:
    project = make_project("seeded")
    assert project.capture().code == 0
    data = project.root / "data" / "digits.npz"
    raw = bytearray(data.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    data.write_bytes(bytes(raw))

    result = project.replay("verify", str(project.capsule), "--json")

    assert result.code == 2
    assert "data/digits.npz" in result.stderr and "not run" in result.stderr
    report = result.json()
    assert report["verdict"] == "error" and report["data"]["status"] == "mismatch"
    assert [p["path"] for p in report["data"]["problems"]] == ["data/digits.npz"]
    assert "accuracy" not in result.stdout + result.stderr  # the training never printed: it never ran


def test_data_can_live_elsewhere_with_a_mapping(seeded, tmp_path) -> None:
    elsewhere = tmp_path / "copy-of-data"
    shutil.copytree(seeded.root / "data", elsewhere)
    moved = tmp_path / "moved-data"
    (seeded.root / "data").rename(moved)
    try:
        missing = seeded.replay("verify", str(seeded.capsule))
        assert missing.code == 2 and "missing" in missing.stderr
        mapped = seeded.replay("verify", str(seeded.capsule), "--data", f"data={elsewhere}")
        assert mapped.code == 0, mapped.stderr
    finally:
        moved.rename(seeded.root / "data")


def test_missing_image_is_an_environment_problem(seeded, tmp_path) -> None:
    capsule = tmp_path / "capsule"
    shutil.copytree(seeded.capsule, capsule)
    manifest = json.loads((capsule / "replay.json").read_text())
    manifest["image"]["id"] = "sha256:" + "0" * 64
    (capsule / "replay.json").write_text(json.dumps(manifest))

    result = seeded.replay("verify", str(capsule))

    assert result.code == 3
    assert "is not in this Docker engine" in result.stderr and "Traceback" not in result.stderr


def test_a_tag_moved_to_another_image_is_refused(seeded, engine, tmp_path) -> None:
    capsule = tmp_path / "capsule"
    shutil.copytree(seeded.capsule, capsule)
    manifest = json.loads((capsule / "replay.json").read_text())
    base_id = engine.image(manifest["image"]["base"]["ref"]).id
    manifest["image"]["tag"] = f"replay/{seeded.name}:moved"
    (capsule / "replay.json").write_text(json.dumps(manifest))
    engine.tag(base_id, f"replay/{seeded.name}", "moved")
    try:
        result = seeded.replay("verify", str(capsule))
    finally:
        engine.api.remove_image(f"replay/{seeded.name}:moved", noprune=True)

    assert result.code == 3 and "not the recorded" in result.stderr


def test_unknown_schema_version_is_bad_input(seeded, tmp_path) -> None:
    capsule = tmp_path / "capsule"
    shutil.copytree(seeded.capsule, capsule)
    manifest = json.loads((capsule / "replay.json").read_text())
    manifest["schema_version"] = 99
    (capsule / "replay.json").write_text(json.dumps(manifest))

    result = seeded.replay("verify", str(capsule))

    assert result.code == 2 and "upgrade replay" in result.stderr


def test_failing_command_exits_4_with_its_log_tail(make_project) -> None:
    project = make_project("failing")
    assert project.capture().code == 0

    result = project.replay("verify", str(project.capsule))

    assert result.code == 4
    assert "exited with status 3" in result.stderr
    assert "CUDA device not found" in result.stderr  # the tail of the command's own log


def test_timeout_stops_the_command_and_exits_4(make_project, engine) -> None:
    project = make_project("sleeper")
    assert project.capture().code == 0

    started = time.monotonic()
    result = project.replay("verify", str(project.capsule), "--timeout", "2")

    assert result.code == 4 and "timed out" in result.stderr
    assert time.monotonic() - started < 60
    assert not engine.api.containers(all=True, filters={"label": f"{CAPSULE_LABEL}={project.name}"})


def test_ctrl_c_stops_and_removes_the_container(make_project, engine) -> None:
    project = make_project("sleeper")
    assert project.capture().code == 0
    label = {"label": f"{CAPSULE_LABEL}={project.name}"}

    proc = subprocess.Popen([sys.executable, "-m", "replay", "verify", str(project.capsule)], cwd=project.root,
                            env=project.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not engine.api.containers(filters=label) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert engine.api.containers(filters=label), "the replay container never started"
    time.sleep(1)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)

    assert proc.returncode == 130 and "interrupted" in stderr
    assert not engine.api.containers(all=True, filters=label)
    assert "Traceback" not in stderr


def test_replayed_container_is_isolated(make_project, engine) -> None:
    """The recorded command runs with no network, a read-only root, no capabilities, as a non-root user."""
    project = make_project("failing")
    probe = project.root / "train.py"
    probe.write_text(
        "import os, socket, pathlib\n"
        "pathlib.Path('out').mkdir(exist_ok=True)\n"
        "facts = {'uid': os.getuid(), 'ifaces': sorted(n for _, n in socket.if_nameindex())}\n"
        "try:\n    open('/workspace/x', 'w')\n    facts['root_writable'] = True\n"
        "except OSError:\n    facts['root_writable'] = False\n"
        "status = dict(line.split(':\\t', 1) for line in open('/proc/self/status').read().splitlines() if ':\\t' in line)\n"
        "facts['cap_eff'] = status['CapEff'].strip(); facts['no_new_privs'] = status['NoNewPrivs'].strip()\n"
        "open('out/result.txt', 'w').write(repr(sorted(facts.items())))\n"
    )
    assert project.capture().code == 0
    keep = project.root / "kept"

    result = project.replay("verify", str(project.capsule), "--keep", str(keep))

    assert result.code == 1  # the probe's output differs from the captured one, of course
    facts = dict(eval((keep / "out" / "result.txt").read_text()))  # noqa: S307 - our own repr
    assert facts["uid"] != 0
    assert facts["ifaces"] == ["lo"]
    assert facts["root_writable"] is False
    assert facts["cap_eff"] == "0000000000000000"
    assert facts["no_new_privs"] == "1"
    assert os.stat(keep / "out" / "result.txt").st_size > 0


def test_memory_limit_kill_is_reported(make_project) -> None:
    project = make_project("hog")
    assert project.capture().code == 0

    result = project.replay("verify", str(project.capsule), "--memory", "128m", "--json")

    assert result.code == 4
    report = result.json()
    assert report["verdict"] == "error" and "killed for memory" in report["error"]


def test_manifest_check_against_a_capsule(seeded, tmp_path) -> None:
    ok = seeded.replay("manifest", "data", "--check", str(seeded.capsule))
    assert ok.code == 0 and "data matches" in ok.stdout

    copy = tmp_path / "data"
    shutil.copytree(seeded.root / "data", copy)
    (copy / "digits.npz").write_bytes(b"not the data")
    (copy / "extra.txt").write_text("new\n")
    # Checked from the copy's parent, the recorded root "data" names the copy.
    proc = subprocess.run([sys.executable, "-m", "replay", "manifest", "data", "--check", str(seeded.capsule),
                           "--json"], cwd=tmp_path, env=seeded.env(), capture_output=True, text=True)
    assert proc.returncode == 2
    doc = json.loads(proc.stdout)
    assert doc["ok"] is False
    assert [c["path"] for c in doc["changed"]] == ["data/digits.npz"]
    assert [e["path"] for e in doc["extra"]] == ["data/extra.txt"]


def test_show_summarises_a_capsule(seeded) -> None:
    human = seeded.replay("show", str(seeded.capsule))
    assert human.code == 0
    for needle in ("python train.py", "seed", "numpy", "data/digits.npz", "out/predictions.npy", "accuracy"):
        assert needle in human.stdout, needle

    as_json = seeded.replay("show", str(seeded.capsule), "--json")
    assert as_json.json() == json.loads((seeded.capsule / "replay.json").read_text())
