"""`replay show` names the project's own packages and the build leftovers its snapshot left out."""

from __future__ import annotations

from pathlib import Path

from replay.manifest import save
from tests.cli.test_bad_input import replay
from tests.unit.test_manifest import full_manifest


def test_show_names_project_packages_and_left_out_leftovers(tmp_path: Path) -> None:
    capsule = tmp_path / "capsule"
    capsule.mkdir()
    save(full_manifest(), capsule)

    result = replay(tmp_path, "show", str(capsule), COLUMNS="200")

    assert result.returncode == 0, result.stderr
    assert "8 build-leftover files, never code (*.egg-info/ 6, __pycache__/ 2)" in result.stdout
    assert "trainer" in result.stdout and "project (develop: src)" in result.stdout
