"""Existing lock files taken as the lock, with the real CLI, the real engine and real lock tools: a
requirements.txt with hashes, a uv.lock made by `uv lock`, a poetry.lock and a Pipfile.lock written from real
hashes; each captured and verified identical. A lock that does not match the interpreter stops capture before
anything is built; a failing lock names its package and reason."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import NUMPY_REQUIREMENTS, Project, cached_venv

TRAIN = """\
import json, os
import numpy as np
rng = np.random.default_rng(7)
x = rng.normal(size=(200, 3))
w = np.linalg.lstsq(x, x @ np.array([1.0, -2.0, 0.5]) + 0.01 * rng.normal(size=200), rcond=None)[0]
os.makedirs("out", exist_ok=True)
np.save("out/w.npy", w)
json.dump({"w0": float(w[0])}, open("out/metrics.json", "w"))
"""
NUMPY = "numpy==2.4.6"


@pytest.fixture(scope="session")
def numpy_venv() -> Path:
    return cached_venv("e2e-numpy-venv", NUMPY_REQUIREMENTS)


@pytest.fixture(scope="session")
def numpy_lock(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The real pip-compile lock of numpy with hashes: the source of the other formats' hashes."""
    work = tmp_path_factory.mktemp("pip-compile")
    (work / "requirements.in").write_text(NUMPY + "\n")
    subprocess.run([sys.executable, "-m", "piptools", "compile", "--quiet", "--generate-hashes", "--no-emit-index-url",
                    "--no-emit-find-links", "--output-file=requirements.txt", "requirements.in"], cwd=work, check=True)
    return (work / "requirements.txt").read_text()


def hashes_of(lock: str) -> list[str]:
    return [part.split("sha256:")[1][:64] for part in lock.split() if part.startswith("--hash=sha256:")]


@pytest.fixture
def project(tmp_path: Path, engine: Any, numpy_venv: Path) -> Project:
    root = tmp_path / "locked"
    root.mkdir()
    (root / "train.py").write_text(TRAIN)
    (root / ".gitignore").write_text("out/\n.replay/\n")
    name = f"e2e-locks-{uuid.uuid4().hex[:6]}"
    capture = ["--run", "--output", "out/w.npy", "--metrics", "out/metrics.json", "--", "python", "train.py"]
    return Project(root, numpy_venv, name, {"capture": capture})


def commit(root: Path) -> None:
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    subprocess.run([*git, "init", "-q"], cwd=root, check=True)
    subprocess.run([*git, "add", "-A"], cwd=root, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "project"], cwd=root, check=True)


def capture_and_verify(project: Project, *extra: str) -> dict[str, Any]:
    """Capture, verify (identical), return replay.json; pip-compile never saw the environment (no requirements.in)."""
    result = project.capture("--json", *extra)
    assert result.code == 0, result.stderr
    manifest = json.loads((project.capsule / "replay.json").read_text())
    assert [p["name"] for p in manifest["python"]["packages"]] == ["numpy"]
    assert not (project.capsule / "requirements.in").exists()  # nothing was handed to pip-compile
    verified = project.replay("verify", str(project.capsule), "--json")
    assert verified.code == 0, verified.stderr
    assert verified.json()["verdict"] == "identical"
    return manifest


def test_a_requirements_txt_with_hashes_is_the_lock_as_it_is(project: Project, numpy_lock: str) -> None:
    (project.root / "requirements.txt").write_text(numpy_lock)
    commit(project.root)

    manifest = capture_and_verify(project)

    python = manifest["python"]
    assert (python["lock_source"], python["lock_source_file"], python["lock_left_out"]) == (
        "requirements.txt", "requirements.txt", [])
    assert (project.capsule / "requirements.lock").read_text() == numpy_lock


def test_a_uv_lock_made_by_uv(project: Project) -> None:
    uv = shutil.which("uv") or str(Path(sys.executable).parent / "uv")
    if not Path(uv).exists():
        pytest.skip("uv is not installed (it is a dev dependency: `make install` brings it)")
    (project.root / "pyproject.toml").write_text(
        '[project]\nname = "locked"\nversion = "0.1.0"\nrequires-python = ">=3.11"\n'
        f'dependencies = ["{NUMPY}", "colorama==0.4.6; sys_platform == \'win32\'"]\n'
        '[dependency-groups]\ndev = ["iniconfig==2.1.0"]\n')
    subprocess.run([uv, "lock", "--python", str(project.venv / "bin" / "python")], cwd=project.root, check=True,
                   capture_output=True)
    commit(project.root)

    manifest = capture_and_verify(project)

    python = manifest["python"]
    assert (python["lock_source"], python["lock_source_file"]) == ("uv.lock", "uv.lock")
    assert sorted(python["lock_left_out"]) == ["colorama (sys_platform == 'win32')", "iniconfig"]
    lock = (project.capsule / "requirements.lock").read_text()
    assert lock.startswith("# Taken by replay capture from uv.lock through `uv export") and "colorama==" not in lock


def test_a_poetry_lock(project: Project, numpy_lock: str) -> None:
    files = ",\n".join(f'    {{file = "numpy-{i}.whl", hash = "sha256:{h}"}}' for i, h in enumerate(hashes_of(numpy_lock)))
    (project.root / "poetry.lock").write_text(
        f'[[package]]\nname = "numpy"\nversion = "2.4.6"\noptional = false\npython-versions = ">=3.11"\n'
        f'groups = ["main"]\nfiles = [\n{files}\n]\n\n'
        '[[package]]\nname = "pytest"\nversion = "8.0.0"\ngroups = ["dev"]\n'
        f'files = [{{file = "pytest-8.0.0-py3-none-any.whl", hash = "sha256:{"0" * 64}"}}]\n\n'
        '[metadata]\nlock-version = "2.1"\npython-versions = ">=3.11"\ncontent-hash = "x"\n')
    commit(project.root)

    manifest = capture_and_verify(project)

    assert (manifest["python"]["lock_source"], manifest["python"]["lock_left_out"]) == ("poetry.lock", ["pytest"])


def test_a_pipfile_lock_given_with_requirements(project: Project, numpy_lock: str) -> None:
    locks = project.root / "locks"
    locks.mkdir()
    (locks / "Pipfile.lock").write_text(json.dumps({
        "_meta": {"pipfile-spec": 6},
        "default": {"numpy": {"version": "==2.4.6", "hashes": [f"sha256:{h}" for h in hashes_of(numpy_lock)]}},
        "develop": {},
    }))
    commit(project.root)

    manifest = capture_and_verify(project, "--requirements", "locks/Pipfile.lock")

    assert (manifest["python"]["lock_source"], manifest["python"]["lock_source_file"]) == (
        "Pipfile.lock", "locks/Pipfile.lock")


def test_a_lock_that_does_not_match_is_reported_before_anything_is_built(project: Project) -> None:
    (project.root / "requirements.txt").write_text(f"numpy==2.4.5 --hash=sha256:{'a' * 64}\n")
    commit(project.root)

    result = project.capture()

    assert result.code == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    # One error line (the notes before it say which interpreter capture took), then the table.
    assert len(errors) == 1, result.stderr
    first = errors[0]
    assert first.startswith("error: requirements.txt does not match the training interpreter: 1 of its 1")
    assert "--relock" in result.stderr
    table = result.stderr[result.stderr.index(first):]
    assert "numpy" in table and "2.4.5" in table and "2.4.6" in table
    assert "hashing" not in result.stderr and "building" not in result.stderr
    assert "Traceback" not in result.stderr
    assert not project.capsule.exists()


def test_relock_ignores_the_lock_file(project: Project) -> None:
    (project.root / "requirements.txt").write_text(f"numpy==2.4.5 --hash=sha256:{'a' * 64}\n")
    commit(project.root)

    result = project.capture("--relock", "--json")

    assert result.code == 0, result.stderr
    manifest = json.loads((project.capsule / "replay.json").read_text())
    assert manifest["python"]["lock_source"] == "pip-compile"
    assert "pip-compile" in (project.capsule / "requirements.lock").read_text()


def test_a_failing_lock_names_its_package_and_reason(project: Project) -> None:
    (project.root / "wanted.txt").write_text("numpy==0.0.1\n")
    commit(project.root)

    result = project.capture("--requirements", "wanted.txt")

    assert result.code == 2
    line = next(ln for ln in result.stderr.splitlines() if ln.startswith("error:"))
    assert line.startswith("error: cannot lock numpy: no version of numpy matches ==0.0.1 (the index has ")
    assert "reproduce with: cd " in result.stderr and "piptools compile" in result.stderr
    assert "raise error" not in result.stderr and "Traceback" not in result.stderr
    assert not project.capsule.exists()
