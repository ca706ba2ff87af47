"""What capture keeps out of the code snapshot, what it warns about, and `capture --verify`: real projects
made by the tests, the real `replay` command, the real engine."""

from __future__ import annotations

import json
import os
import subprocess
import time

from tests.e2e.conftest import BASE

OPENSSH_KEY = ("-----BEGIN OPENSSH PRIVATE KEY-----\n"
               "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n"
               "-----END OPENSSH PRIVATE KEY-----\n")


def _commit(root, *paths: str) -> None:
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    subprocess.run([*git, "add", *paths], cwd=root, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "change"], cwd=root, check=True)


def test_data_outputs_capsules_and_reports_stay_out_of_the_code_patch(make_project) -> None:
    project = make_project("seeded")
    (project.root / ".gitignore").write_text(".venv/\n")  # data/, out/ and .replay/ are not ignored
    _commit(project.root, ".gitignore")
    old = project.root / "old-capsule"
    old.mkdir()
    (old / "replay.json").write_text('{"schema_version": 1, "name": "old", "replay_version": "0.1.0"}\n')
    (old / "notes.txt").write_text("an earlier capsule's file\n")
    (project.root / "verify.json").write_text('{"schema": "replay.verify-report", "schema_version": 1}\n')
    (project.root / "weights").mkdir()
    (project.root / "weights" / "pretrained.bin").write_bytes(os.urandom(2 << 20))

    refused = project.capture()

    assert refused.code == 2, refused.stderr
    assert "weights/pretrained.bin" in refused.stderr and "--include-untracked" in refused.stderr
    assert not project.capsule.exists()

    captured = project.capture("--include-untracked", "weights/pretrained.bin")

    assert captured.code == 0, captured.stderr
    patch = (project.capsule / "code.patch").read_bytes()
    assert b"digits.npz" not in patch and b"data/" not in patch  # the data, byte for byte, stays home
    assert b"out/model.pkl" not in patch and b"old-capsule" not in patch and b"verify.json" not in patch
    assert b"weights/pretrained.bin" in patch  # named by --include-untracked: shipped
    manifest = json.loads((project.capsule / "replay.json").read_text())
    files = manifest["code"]["snapshot_files"]
    assert "train.py" in files and "weights/pretrained.bin" in files
    assert not [f for f in files if f.startswith(("data/", "out/", ".replay/", "old-capsule/")) or f == "verify.json"]
    shown = project.replay("show", str(project.capsule))
    assert shown.code == 0 and "code snapshot" in shown.stdout and "train.py" in shown.stdout


def test_a_private_key_in_an_untracked_folder_is_refused(make_project) -> None:
    project = make_project("seeded")
    (project.root / "deploy").mkdir()
    (project.root / "deploy" / "ci_access").write_text(OPENSSH_KEY)  # no telltale name: found by its content

    result = project.capture()

    assert result.code == 2, result.stderr
    assert "deploy/ci_access" in result.stderr and "private key" in result.stderr
    assert not project.capsule.exists()


def test_an_output_older_than_its_code_is_warned_about_and_recorded(make_project) -> None:
    project = make_project("seeded")
    subprocess.run([str(project.venv / "bin" / "python"), "train.py"], cwd=project.root, check=True,
                   capture_output=True, env={**project.env(), "REPLAY_SEED": "7", "PYTHONHASHSEED": "7"})
    time.sleep(0.01)
    train = project.root / "train.py"
    train.write_text(train.read_text() + "\n# edited after training\n")

    result = project.replay("capture", "--name", project.name, "--base", BASE, "--data", "data",
                            "--output", "out/model.pkl", "--metrics", "out/metrics.json", "--seed", "7",
                            "--", "python", "train.py")

    assert result.code == 0, result.stderr
    assert "is older than the code it could come from (train.py)" in " ".join(result.stderr.split())
    assert "--run" in result.stderr
    stale = json.loads((project.capsule / "replay.json").read_text())["outputs"]["stale"]
    assert {"path": "out/model.pkl", "newer": "train.py", "kind": "code"} in stale


def test_capture_verify_of_an_unseeded_script_records_that_it_does_not_reproduce_itself(make_project) -> None:
    project = make_project("unseeded")

    result = project.capture("--verify", "--json")

    assert result.code == 0, result.stderr
    assert "does not reproduce its own capture" in " ".join(result.stderr.split())
    assert "out/predictions.npy" in result.stderr
    check = json.loads((project.capsule / "replay.json").read_text())["outputs"]["self_check"]
    assert check["verdict"] == "diverged" and check["exit_code"] == 1
    assert "out/predictions.npy" in check["differed"]
    assert result.json()["self_check"]["verdict"] == "diverged"
    shown = project.replay("show", str(project.capsule))
    assert "self-check" in shown.stdout and "diverged" in shown.stdout
