"""`replay manifest PATH --check CAPSULE` of part of a capsule's data says what it checked and what it did not."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from replay.core.data.hashing import hash_paths
from replay.manifest import save
from tests.cli.test_bad_input import NO_ENGINE
from tests.unit.test_manifest import full_manifest


def replay(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "replay", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "DOCKER_HOST": NO_ENGINE})


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """data/X.npy and data/Y.npy recorded as one root (capsule ``whole``) and as two roots (``files``)."""
    monkeypatch.chdir(tmp_path)  # hash_paths takes relative paths from here
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "X.npy").write_bytes(b"x" * 10)
    (tmp_path / "data" / "Y.npy").write_bytes(b"y" * 20)
    for name, roots in (("whole", ["data"]), ("files", ["data/X.npy", "data/Y.npy"])):
        m = full_manifest()
        m.data = hash_paths([Path(r) for r in roots], tmp_path)
        (tmp_path / name).mkdir()
        save(m, tmp_path / name / "replay.json")
    return tmp_path


@pytest.mark.parametrize("capsule", ["whole", "files"])
def test_a_subset_that_matches_says_what_was_not_checked(project: Path, capsule: str) -> None:
    (project / "data" / "Y.npy").unlink()  # not asked for: the check cannot vouch for it

    result = replay(project, "manifest", "data/X.npy", "--check", capsule)

    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())
    assert "1 of 2 recorded files checked" in text and "not checked: data/Y.npy" in text
    assert "data matches the capsule" not in text and "not compared" in text
    doc = json.loads(replay(project, "manifest", "data/X.npy", "--check", capsule, "--json").stdout)
    assert doc["ok"] is True and doc["coverage"]["complete"] is False
    assert doc["coverage"]["not_checked"] == ["data/Y.npy"]


def test_a_subset_whose_digest_differs_is_changed_and_names_the_rest(project: Path) -> None:
    (project / "data" / "X.npy").write_bytes(b"z" * 10)

    result = replay(project, "manifest", "data/X.npy", "--check", "whole")

    assert result.returncode == 2
    assert "changed" in result.stdout and "data/X.npy" in result.stdout
    assert "not checked: data/Y.npy" in " ".join(result.stdout.split())


def test_every_recorded_path_asked_is_a_full_match(project: Path) -> None:
    result = replay(project, "manifest", "data", "--check", "whole")

    assert result.returncode == 0
    assert "data matches the capsule: 2 files" in result.stdout and "not checked" not in result.stdout
