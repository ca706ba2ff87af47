"""The command check's probe, run here in this interpreter as the image's python3 runs it (no engine)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from replay.core.capture.cmdcheck import PROBE


def probe(workdir: Path, *argv: str, packages: dict[str, str] | None = None) -> dict[str, object]:
    """The probe with a PATH as the image's: its python and python3 first, then the system's folders."""
    bin_dir = workdir.parent / "image-bin"
    if not bin_dir.exists():
        bin_dir.mkdir()
        for name in ("python", "python3"):
            (bin_dir / name).symlink_to(sys.executable)
    out = subprocess.run([sys.executable, "-c", PROBE, json.dumps(packages or {}), str(workdir), *argv],
                         capture_output=True, text=True, check=True, env={"PATH": f"{bin_dir}:/usr/bin:/bin"}).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


@pytest.fixture
def project(tmp_path: Path) -> Path:
    tmp_path = tmp_path / "project"
    tmp_path.mkdir()
    (tmp_path / "train.py").write_text("print('never run by the probe')\nraise SystemExit(3)\n")
    (tmp_path / "pkg" / "sub").mkdir(parents=True)
    (tmp_path / "pkg" / "__init__.py").write_text("raise RuntimeError('imported')\n")
    (tmp_path / "pkg" / "sub" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "sub" / "run.py").write_text("")
    (tmp_path / "run.sh").write_text("#!/bin/sh\n")
    return tmp_path


@pytest.mark.parametrize("argv", [
    ["python", "train.py"], ["python3", "-u", "-W", "ignore", "train.py", "--epochs", "3"],
    ["python", "-m", "pkg.sub.run"], ["python", "-mpkg"], ["python", "-m", "json.tool"], ["python", "-m", "sys"],
    ["python", "-c", "print(1)"], ["./run.sh"], ["run.sh"], ["sh", "-c", "true"],
])
def test_a_command_that_can_start_passes(project: Path, argv: list[str]) -> None:
    assert probe(project, *argv) == {"command": None, "packages": []}


@pytest.mark.parametrize(("argv", "missing"), [
    (["pyhton", "train.py"], ["program", "pyhton"]),
    (["./nothere.sh"], ["program", "./nothere.sh"]),
    (["python", "trian.py"], ["script", "trian.py"]),
    (["python", "-m", "pkg.sub.nothere"], ["module", "pkg.sub.nothere"]),
    (["python", "-m", "nosuchmodule_x"], ["module", "nosuchmodule_x"]),
    (["python", "-m"], ["module", ""]),
])
def test_what_is_missing_is_named(project: Path, argv: list[str], missing: list[str]) -> None:
    assert probe(project, *argv)["command"] == missing


def test_a_missing_folder_is_named(tmp_path: Path) -> None:
    assert probe(tmp_path / "gone", "python", "x.py")["command"] == ["workdir", str(tmp_path / "gone")]


def test_system_packages_are_read_from_the_dpkg_database(project: Path) -> None:
    answer = probe(project, "python", "train.py", packages={"no-such-package-x": "1.0"})
    assert answer["packages"] == ["no-such-package-x=1.0"]
