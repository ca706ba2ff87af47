"""`[tool.replay]` is the project's, whichever of its folders a command runs in: a bad value is refused the same
way (exit 2, one line naming the file and the key) from the root and from a subfolder, in a git work tree or not."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.cli.test_bad_input import one_error_line, replay

COMMANDS = [("capture", "--data", "data", "--output", "out/model.bin", "--", "python", "t.py"),
            ("verify", "nowhere")]


def project(root: Path, git: bool) -> Path:
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "pyproject.toml").write_text('[tool.replay]\nbackend = "nonsense"\n')
    if git:
        subprocess.run(["git", "init", "-q", str(root)], check=True)
    return root


@pytest.mark.parametrize("git", [False, True], ids=["plain", "git"])
@pytest.mark.parametrize("where", [".", "sub/deeper"])
@pytest.mark.parametrize("args", COMMANDS, ids=["capture", "verify"])
def test_a_bad_backend_is_refused_from_any_folder(tmp_path: Path, git: bool, where: str,
                                                  args: tuple[str, ...]) -> None:
    root = project(tmp_path, git)

    result = replay(root / where, *args)

    line = one_error_line(result)
    assert result.returncode == 2, result.stderr
    assert str((root / "pyproject.toml").resolve()) in line and "backend" in line and "nonsense" in line


def test_a_subfolder_without_a_project_above_reads_no_defaults(tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "pyproject.toml").write_text('[tool.replay]\nbackend = "nonsense"\n')
    (tmp_path / "here").mkdir()

    result = replay(tmp_path / "here", "verify", "nowhere")

    assert result.returncode == 2 and "no capsule at nowhere" in one_error_line(result)
