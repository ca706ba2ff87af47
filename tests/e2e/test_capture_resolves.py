"""A capsule that says "captured" must replay: system libraries, the command, the interpreter (issue 17).

Real project folders, the real `replay` command, the real engine and the default offline base.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import BASE, SCENARIOS, Project, cached_venv, new_project


@pytest.fixture(scope="session")
def lightgbm_venv() -> Path:
    """lightgbm from PyPI: its wheel's lib_lightgbm.so links libgomp.so.1, which the offline base lacks."""
    return cached_venv("e2e-lightgbm-venv", SCENARIOS / "lightgbm" / "requirements.txt")


@pytest.fixture
def lightgbm_project(tmp_path: Path, engine: Any, lightgbm_venv: Path) -> Project:
    return new_project(tmp_path, "lightgbm", lightgbm_venv)


def test_a_lightgbm_training_gets_libgomp_and_verifies_identical(lightgbm_project: Project) -> None:
    project = lightgbm_project
    captured = project.capture("--json")
    assert captured.code == 0, captured.stderr

    system = json.loads((project.capsule / "replay.json").read_text())["system"]["packages"]
    gomp = next(p for p in system if p["name"] == "libgomp1")
    assert {"library": "libgomp.so.1", "package": "lightgbm"} in gomp["needed_by"] and gomp["version"]
    verified = project.replay("verify", str(project.capsule), "--json")
    assert verified.code == 0, verified.stderr + verified.stdout
    assert verified.json()["verdict"] == "identical"
    shown = project.replay("show", str(project.capsule))
    assert shown.code == 0 and "libgomp1" in shown.stdout and "libgomp.so.1 (lightgbm)" in shown.stdout


@pytest.mark.parametrize(("command", "named"), [
    (["pyhton", "train.py"], "pyhton is not a program in the image"),
    (["python", "trian.py"], "trian.py is not a file of the code snapshot"),
    (["python", "-m", "lightgbm_trainer"], "module lightgbm_trainer is not in the code snapshot or the environment"),
])
def test_a_command_that_cannot_start_in_the_image_is_refused(lightgbm_project: Project, command: list[str],
                                                              named: str) -> None:
    project = lightgbm_project
    subprocess.run([str(project.venv / "bin" / "python"), "train.py"], cwd=project.root, check=True)

    refused = project.replay("capture", "--name", project.name, "--base", BASE, "--output", "out/model.txt",
                             "--", *command)

    assert refused.code == 2, refused.stderr
    assert named in refused.stderr.splitlines()[-1]
    assert not project.capsule.exists()


def test_no_virtualenv_active_is_said_before_locking_and_a_system_python_refused(lightgbm_project: Project,
                                                                                  tmp_path: Path) -> None:
    project = lightgbm_project
    system_bin = tmp_path / "system-bin"
    system_bin.mkdir()
    system_python = Path(sys.base_prefix) / "bin" / "python3"  # the interpreter replay's own venv was made from
    (system_bin / "python3").symlink_to(system_python)
    (project.root / "out").mkdir()
    (project.root / "out" / "model.txt").write_text("made earlier\n")

    refused = project.replay("capture", "--name", project.name, "--base", BASE, "--output", "out/model.txt",
                             "--", "python", "train.py", PATH=f"{system_bin}:/usr/bin:/bin")

    assert refused.code == 2, refused.stderr
    said = refused.stderr.index("no virtualenv is active: taking")
    assert "a system interpreter" in refused.stderr and "locking" not in refused.stderr[said:]
    assert f"--python {system_bin / 'python3'}" in refused.stderr
