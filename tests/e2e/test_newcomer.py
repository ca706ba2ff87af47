"""What a newcomer meets first, against the real engine: a closed pipe on verify, and the messages for a missing
image and missing data that say where to look."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from tests.e2e.conftest import new_project


@pytest.fixture(scope="module")
def seeded(tmp_path_factory, engine, train_venv):
    project = new_project(tmp_path_factory.mktemp("newcomer"), "seeded", train_venv)
    result = project.capture()
    assert result.code == 0, result.stderr
    return project


@pytest.mark.parametrize("extra", [[], ["--json"]])
def test_verify_into_a_closed_pipe_ends_quietly_with_the_verdicts_code(seeded, extra) -> None:
    read, write = os.pipe()
    os.close(read)  # `| head` that has gone: the first write meets EPIPE
    try:
        proc = subprocess.run([sys.executable, "-m", "replay", "verify", str(seeded.capsule), *extra], cwd=seeded.root,
                              env=seeded.env(), stdout=write, stderr=subprocess.PIPE, text=True, timeout=600)
    finally:
        os.close(write)
    assert proc.returncode == 0, proc.stderr  # IDENTICAL
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr and "error" not in proc.stderr


def test_a_missing_pushed_image_names_the_recorded_digest(seeded, tmp_path) -> None:
    capsule = tmp_path / "capsule"
    shutil.copytree(seeded.capsule, capsule)
    doc = json.loads((capsule / "replay.json").read_text())
    doc["image"]["id"] = "sha256:" + "0" * 64
    doc["image"]["registry_digest"] = ref = "127.0.0.1:5000/team/digits@sha256:" + "a" * 64
    (capsule / "replay.json").write_text(json.dumps(doc))

    result = seeded.replay("verify", str(capsule))

    assert result.code == 3
    assert f"replay pull {ref}" in result.stderr and "docker load" not in result.stderr


def test_missing_data_says_which_folder_was_searched(seeded, tmp_path) -> None:
    result = seeded.replay_in(tmp_path, "verify", str(seeded.capsule))

    assert result.code == 2
    text = " ".join(result.stderr.split())
    assert f"looked for in {tmp_path / 'data'}" in text and "the command was not run" in text
