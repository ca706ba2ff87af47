"""The Python environments researchers really have, captured and verified for real (issue 12): the project's
own code installed editable by setuptools (captured from its root and from a subfolder), a src/ layout,
hatchling and flit editables, a legacy `setup.py develop`, a two-package monorepo, and a package installed
non-editable from a local path.

Each kind is one git project made here and one virtualenv (made once per session; the build backends come
from PyPI through pip's build isolation). The training scripts use the standard library only, so nothing is
locked from the index and the tests stay fast. Each writes, for every package it imports, the version
``importlib.metadata`` reports, the ``__version__`` the package reads from it, and the file it was imported
from (relative to the project root): a replay that imported the package from another place, or without its
metadata, would not be `identical`.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import BASE, Project, Result

TRAIN = '''\
import json, os
from importlib import metadata

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), {up!r}))
lines, total = [], 0
for dist, module in {modules!r}:
    mod = __import__(module)
    where = "site-packages" if "site-packages" in mod.__file__ else os.path.relpath(mod.__file__, ROOT)
    lines.append(" ".join([dist, metadata.version(dist), mod.__version__, where, str(mod.answer())]))
    total += mod.answer()
os.makedirs("out", exist_ok=True)
with open("out/result.txt", "w") as handle:
    handle.write("\\n".join(lines) + "\\n")
with open("out/metrics.json", "w") as handle:
    json.dump({{"answer": total}}, handle)
print("\\n".join(lines))
'''


def package_init(dist: str, answer: str = "42", imports: str = "") -> str:
    return (f"from importlib import metadata\n{imports}\n__version__ = metadata.version({dist!r})\n\n\n"
            f"def answer():\n    return {answer}\n")


def pyproject(dist: str, version: str, backend: str, deps: tuple[str, ...] = (), extra: str = "") -> str:
    requires, build = {
        "setuptools": ('"setuptools>=64"', "setuptools.build_meta"),
        "hatchling": ('"hatchling"', "hatchling.build"),
        "flit": ('"flit_core>=3.4"', "flit_core.buildapi"),
    }[backend]
    return (f'[build-system]\nrequires = [{requires}]\nbuild-backend = "{build}"\n\n'
            f'[project]\nname = "{dist}"\nversion = "{version}"\ndescription = "a test package"\n'
            f"dependencies = {json.dumps(list(deps))}\n{extra}")


@dataclass
class Kind:
    """One kind of project: its files, how it is installed, and what the training imports."""

    files: dict[str, str]
    installs: list[list[str]]  # commands run in the project root once it is committed (`python` = the venv's)
    modules: list[tuple[str, str]]  # (distribution, module) the training imports
    setup: tuple[str, ...] = ()  # pip install arguments for the venv itself, before the project's install


def run(cmd: list[str], cwd: Path) -> None:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{cmd} failed:\n{proc.stdout}\n{proc.stderr}"


def make_kind(parent: Path, kind: Kind) -> tuple[Path, Path]:
    """The project (a git repository, committed before anything is installed) and its virtualenv."""
    root, venv = parent / "project", parent / "venv"
    for rel, text in kind.files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    for rel, up in (("train.py", "."), ("scripts/train.py", "..")):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(TRAIN.format(up=up, modules=kind.modules))
    # Only what e2e tests write is ignored: the build leftovers are NOT, as in many research repositories.
    (root / ".gitignore").write_text("out/\n.replay/\n")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    run([*git, "init", "-q"], root)
    run([*git, "add", "-A"], root)
    run([*git, "commit", "-q", "-m", "project"], root)
    run([sys.executable, "-m", "venv", str(venv)], parent)
    if kind.setup:
        run([str(venv / "bin" / "pip"), "install", "--quiet", *kind.setup], root)
    for cmd in kind.installs:
        exe = {"python": str(venv / "bin" / "python"), "pip": str(venv / "bin" / "pip")}[cmd[0]]
        run([exe, *cmd[1:]], root)
    return root, venv


SETUPTOOLS_FLAT = Kind(
    files={"pyproject.toml": pyproject("flat-trainer", "0.1.0", "setuptools"),
           "flat_trainer/__init__.py": package_init("flat-trainer")},
    installs=[["pip", "install", "--quiet", "-e", "."]],
    modules=[("flat-trainer", "flat_trainer")],
)
SRC_LAYOUT = Kind(
    files={"pyproject.toml": pyproject("src-trainer", "0.2.0", "setuptools"),
           "src/src_trainer/__init__.py": package_init("src-trainer", "7")},
    installs=[["pip", "install", "--quiet", "-e", "."]],
    modules=[("src-trainer", "src_trainer")],
)
HATCHLING = Kind(
    files={"pyproject.toml": pyproject("hatch-trainer", "0.3.0", "hatchling"),
           "hatch_trainer/__init__.py": package_init("hatch-trainer", "3")},
    installs=[["pip", "install", "--quiet", "-e", "."]],
    modules=[("hatch-trainer", "hatch_trainer")],
)
FLIT = Kind(
    files={"pyproject.toml": pyproject("flit-trainer", "0.4.0", "flit"),
           "flit_trainer/__init__.py": '"""flit wants a docstring."""\n' + package_init("flit-trainer", "4")},
    installs=[["pip", "install", "--quiet", "-e", "."]],
    modules=[("flit-trainer", "flit_trainer")],
)
# setuptools 80 and later run `setup.py develop` through pip as a PEP 660 install; the legacy egg-link
# install (an .egg-info in the project, easy-install.pth, no direct_url.json) needs an older one. The venv
# of Python 3.11 comes with 65.5, which this pin keeps without a download.
LEGACY_DEVELOP = Kind(
    files={"setup.py": 'from setuptools import setup\nsetup(name="legacy-trainer", version="0.5.0", '
                       'packages=["legacy_trainer"])\n',
           "legacy_trainer/__init__.py": package_init("legacy-trainer", "5")},
    setup=("setuptools<80",),
    installs=[["python", "setup.py", "--quiet", "develop"]],
    modules=[("legacy-trainer", "legacy_trainer")],
)
MONOREPO = Kind(
    files={"packages/core/pyproject.toml": pyproject("mono-core", "1.0.0", "setuptools"),
           "packages/core/src/mono_core/__init__.py": package_init("mono-core", "40"),
           "packages/models/pyproject.toml": pyproject("mono-models", "2.0.0", "hatchling", deps=("mono-core",)),
           "packages/models/mono_models/__init__.py": package_init("mono-models", "mono_core.answer() + 2",
                                                                   "import mono_core")},
    installs=[["pip", "install", "--quiet", "-e", "packages/core", "-e", "packages/models"]],
    modules=[("mono-core", "mono_core"), ("mono-models", "mono_models")],
)
# `pip install .` (not editable) of a src/ layout: the training imports the installed copy, which the
# image gets as a wheel built here from the path.
FROM_PATH = Kind(
    files={"pyproject.toml": pyproject("path-trainer", "0.6.0", "setuptools"),
           "src/path_trainer/__init__.py": package_init("path-trainer", "6")},
    installs=[["pip", "install", "--quiet", "."]],
    modules=[("path-trainer", "path_trainer")],
)
# The training runs as the project's own console script, and finds a plugin through its entry points.
SCRIPT_CLI = '''\
import json, os, sys
from importlib import metadata


def main():
    plugins = sorted(f"{ep.name}={ep.load()(21)}" for ep in metadata.entry_points(group="script_trainer.plugins"))
    os.makedirs("out", exist_ok=True)
    with open("out/result.txt", "w") as handle:
        handle.write(" ".join([metadata.version("script-trainer"), *plugins, *sys.argv[1:]]) + "\\n")
    with open("out/metrics.json", "w") as handle:
        json.dump({"answer": 42}, handle)
    return 0
'''
CONSOLE_SCRIPT = Kind(
    files={"pyproject.toml": pyproject("script-trainer", "0.7.0", "setuptools", extra=(
               '\n[project.scripts]\nscript-trainer-run = "script_trainer.cli:main"\n'
               '\n[project.entry-points."script_trainer.plugins"]\ndouble = "script_trainer.plugins:double"\n')),
           "script_trainer/__init__.py": package_init("script-trainer", "8"),
           "script_trainer/cli.py": SCRIPT_CLI,
           "script_trainer/plugins.py": "def double(x):\n    return 2 * x\n"},
    installs=[["pip", "install", "--quiet", "-e", "."]],
    modules=[("script-trainer", "script_trainer")],
)
KINDS = {"console-script": CONSOLE_SCRIPT,
         "setuptools": SETUPTOOLS_FLAT, "src-layout": SRC_LAYOUT, "hatchling": HATCHLING, "flit": FLIT,
         "legacy-develop": LEGACY_DEVELOP, "monorepo": MONOREPO, "from-path": FROM_PATH}


@pytest.fixture(scope="session")
def projects(tmp_path_factory: pytest.TempPathFactory, engine: Any) -> Any:
    """Each kind's project and virtualenv, made on first use and shared by the tests of this module."""
    made: dict[str, tuple[Path, Path]] = {}

    def get(name: str) -> tuple[Path, Path]:
        if name not in made:
            made[name] = make_kind(tmp_path_factory.mktemp(name), KINDS[name])
        return made[name]

    return get


def capture_and_verify(projects: Any, kind: str, where: str = ".") -> tuple[Project, dict[str, Any]]:
    """`replay capture --run` from ``where`` in the kind's project, then `replay verify`: it must be identical."""
    root, venv = projects(kind)
    project = Project(root, venv, f"e2e-{kind}-{uuid.uuid4().hex[:6]}", {})
    cwd = root / where
    captured = project.replay_in(cwd, "capture", "--name", project.name, "--base", BASE, "--run",
                                 "--output", "out/result.txt", "--metrics", "out/metrics.json", "--",
                                 "python", "train.py")
    assert captured.code == 0, captured.stderr
    verified: Result = project.replay_in(cwd, "verify", str(project.capsule), "--json")
    assert verified.code == 0, verified.stderr
    assert verified.json()["verdict"] == "identical"
    return project, json.loads((project.capsule / "replay.json").read_text())


def workspace_files(engine: Any, manifest: dict[str, Any]) -> list[str]:
    listing = engine.probe(manifest["image"]["id"], ["find", "/workspace", "-type", "f"])
    return sorted(line for line in listing.splitlines() if line)


def project_packages(manifest: dict[str, Any]) -> list[tuple[str, str, list[str], str]]:
    return [(p["name"], p["version"], p["paths"], p["kind"]) for p in manifest["python"]["project_packages"]]


def test_a_setuptools_editable_captured_from_its_own_root(projects: Any, engine: Any) -> None:
    """The reported bug: the leftover flat_trainer.egg-info in the working directory was taken for the package."""
    project, manifest = capture_and_verify(projects, "setuptools")

    assert (project.root / "flat_trainer.egg-info").is_dir()  # the leftover the bug tripped over is there
    assert project_packages(manifest) == [("flat-trainer", "0.1.0", ["."], "editable")]
    assert manifest["python"]["packages"] == [] and manifest["python"]["project_paths"] == ["."]
    result = (project.root / "out" / "result.txt").read_text()
    assert result == "flat-trainer 0.1.0 0.1.0 flat_trainer/__init__.py 42\n"
    # The snapshot holds no build leftover, and says what it left out.
    files = workspace_files(engine, manifest)
    assert "/workspace/flat_trainer/__init__.py" in files
    assert not [f for f in files if ".egg-info" in f or "__pycache__" in f]
    assert manifest["code"]["left_out"].get("*.egg-info/", 0) >= 3
    assert manifest["code"]["dirty"] is False  # an untracked egg-info is no uncommitted change
    shown = project.replay("show", str(project.capsule))
    assert shown.code == 0 and "build-leftover files" in shown.stdout


def test_a_setuptools_editable_captured_from_a_subfolder(projects: Any) -> None:
    project, manifest = capture_and_verify(projects, "setuptools", "scripts")

    assert manifest["command"]["workdir"] == "scripts"
    assert project_packages(manifest) == [("flat-trainer", "0.1.0", ["."], "editable")]
    assert (project.root / "scripts" / "out" / "result.txt").read_text() == (
        "flat-trainer 0.1.0 0.1.0 flat_trainer/__init__.py 42\n")


def test_a_src_layout(projects: Any) -> None:
    project, manifest = capture_and_verify(projects, "src-layout", "scripts")

    assert project_packages(manifest) == [("src-trainer", "0.2.0", ["src"], "editable")]
    assert "src/src_trainer/__init__.py 7" in (project.root / "scripts" / "out" / "result.txt").read_text()


@pytest.mark.parametrize(("kind", "name"), [("hatchling", "hatch-trainer"), ("flit", "flit-trainer")])
def test_hatchling_and_flit_editables(projects: Any, kind: str, name: str) -> None:
    project, manifest = capture_and_verify(projects, kind)

    assert [(p[0], p[2], p[3]) for p in project_packages(manifest)] == [(name, ["."], "editable")]
    assert manifest["python"]["packages"] == []


def test_a_legacy_setup_py_develop(projects: Any, engine: Any) -> None:
    project, manifest = capture_and_verify(projects, "legacy-develop")

    site = Path(project.venv / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}" / "site-packages")
    assert (site / "legacy-trainer.egg-link").is_file() or (site / "legacy_trainer.egg-link").is_file()
    assert project_packages(manifest) == [("legacy-trainer", "0.5.0", ["."], "develop")]
    assert not [f for f in workspace_files(engine, manifest) if ".egg-info" in f]


def test_a_monorepo_of_two_packages_one_depending_on_the_other(projects: Any) -> None:
    project, manifest = capture_and_verify(projects, "monorepo", "scripts")

    assert project_packages(manifest) == [("mono-core", "1.0.0", ["packages/core/src"], "editable"),
                                          ("mono-models", "2.0.0", ["packages/models"], "editable")]
    assert (project.root / "scripts" / "out" / "result.txt").read_text() == (
        "mono-core 1.0.0 1.0.0 packages/core/src/mono_core/__init__.py 40\n"
        "mono-models 2.0.0 2.0.0 packages/models/mono_models/__init__.py 42\n")


def test_a_package_installed_from_a_local_path_not_editable(projects: Any, engine: Any) -> None:
    project, manifest = capture_and_verify(projects, "from-path")

    assert manifest["python"]["project_packages"] == []
    assert [(p["name"], p["version"], p["source"]) for p in manifest["python"]["packages"]] == [
        ("path-trainer", "0.6.0", "local-wheel")]
    assert (project.root / "out" / "result.txt").read_text() == "path-trainer 0.6.0 0.6.0 site-packages 6\n"
    # `pip install .` left build/ and src/path_trainer.egg-info beside the code: neither is in the image.
    files = workspace_files(engine, manifest)
    assert not [f for f in files if f.startswith("/workspace/build/") or ".egg-info" in f]


def test_the_training_run_as_the_projects_own_console_script_with_its_entry_points(projects: Any) -> None:
    """`-- script-trainer-run` is a script the editable install put in the virtualenv's bin/; in the image it
    exists only because replay recreates it, and the plugin is found only through the entry points replay
    writes into the package's dist-info."""
    root, venv = projects("console-script")
    project = Project(root, venv, f"e2e-console-script-{uuid.uuid4().hex[:6]}", {})
    captured = project.replay("capture", "--name", project.name, "--base", BASE, "--run", "--output",
                              "out/result.txt", "--metrics", "out/metrics.json", "--", "script-trainer-run",
                              "--epochs", "2")
    assert captured.code == 0, captured.stderr
    assert (root / "out" / "result.txt").read_text() == "0.7.0 double=42 --epochs 2\n"
    manifest = json.loads((project.capsule / "replay.json").read_text())
    assert manifest["python"]["project_packages"][0]["entry_points"] == {
        "console_scripts": {"script-trainer-run": "script_trainer.cli:main"},
        "script_trainer.plugins": {"double": "script_trainer.plugins:double"},
    }

    verified = project.replay("verify", str(project.capsule), "--json")
    assert verified.code == 0, verified.stderr
    assert verified.json()["verdict"] == "identical"
