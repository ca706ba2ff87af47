"""Build leftovers are not code: the snapshot and the uncommitted-changes patch leave them out, even when git
does not ignore them, and the manifest counts them. ``dist/`` and ``build/`` only where build tools write them."""

from __future__ import annotations

from pathlib import Path

import pytest

from replay.adapters.git import GitCli, inspect
from replay.core.capture import leftovers
from replay.core.capture.snapshot import take_snapshot
from replay.core.events import NullReporter
from tests.unit.test_git_and_snapshot import hermetic_git, run_git, write  # noqa: F401 - the autouse fixture

BUILT = {"", "libs/helper"}  # the folders holding a pyproject.toml in the cases below


@pytest.mark.parametrize(("rel", "expected"), [
    ("mypkg.egg-info/PKG-INFO", ("mypkg.egg-info", "*.egg-info/")),
    ("src/mypkg.egg-info/SOURCES.txt", ("src/mypkg.egg-info", "*.egg-info/")),
    ("old.egg-info", ("old.egg-info", "*.egg-info/")),  # distutils' single-file metadata
    ("pkg/__pycache__/m.cpython-311.pyc", ("pkg/__pycache__", "__pycache__/")),
    ("tests/.pytest_cache/v/cache/nodeids", ("tests/.pytest_cache", ".pytest_cache/")),
    (".eggs/x.egg/EGG-INFO/PKG-INFO", (".eggs", ".eggs/")),
    ("build/lib/mypkg/__init__.py", ("build", "build/ (in a package folder)")),
    ("dist/mypkg-0.1.tar.gz", ("dist", "dist/ (in a package folder)")),
    ("libs/helper/dist/helper-1.0-py3-none-any.whl", ("libs/helper/dist", "dist/ (in a package folder)")),
    # Code: dist/ and build/ away from build files (distributed-training code is often called dist/).
    ("src/dist/launch.py", None),
    ("trainer/build/graph.py", None),
    ("distributed/ddp.py", None),
    ("mypkg/egg_info.py", None),
    ("train.py", None),
])
def test_the_rules(rel: str, expected: tuple[str, str] | None) -> None:
    assert leftovers.leftover_folder(rel, lambda folder: folder in BUILT) == expected


def test_the_build_file_rule_reads_the_disk(tmp_path: Path) -> None:
    write(tmp_path / "pkg" / "setup.cfg", "")
    found = leftovers.split(["pkg/build/x.py", "build/x.py", "other/dist/y.py"], tmp_path)
    assert found == (["build/x.py", "other/dist/y.py"], {"build/ (in a package folder)":
                                                         ["pkg/build/x.py"]})


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A committed setuptools project whose .gitignore knows none of the leftovers."""
    root = tmp_path / "project"
    write(root / ".gitignore", "out/\n")
    write(root / "pyproject.toml", "[project]\nname = 'mypkg'\nversion = '0.1'\n")
    write(root / "mypkg" / "__init__.py", "")
    write(root / "dist" / "README.md", "tracked by mistake\n")
    write(root / "mypkg.egg-info" / "SOURCES.txt", "committed by mistake\n")
    run_git(root, "init", "-q", "-b", "main")
    run_git(root, "add", "-A")
    run_git(root, "commit", "-q", "-m", "init")
    return root


def leave_leftovers(root: Path) -> None:
    """What `pip install -e .`, `python -m build` and a test run leave behind."""
    write(root / "mypkg.egg-info" / "SOURCES.txt", "rewritten by pip install -e .\n")
    write(root / "mypkg.egg-info" / "PKG-INFO", "Name: mypkg\n")
    write(root / "mypkg" / "__pycache__" / "__init__.cpython-311.pyc", b"\0bytecode")
    write(root / ".pytest_cache" / "v" / "cache" / "lastfailed", "{}")
    write(root / "build" / "lib" / "mypkg" / "__init__.py", "")
    write(root / "dist" / "mypkg-0.1-py3-none-any.whl", b"PK")


def test_leftovers_stay_out_of_the_snapshot_and_its_digest(project: Path) -> None:
    before = take_snapshot(project, [], None, NullReporter(), GitCli())
    leave_leftovers(project)
    write(project / "trainer" / "dist" / "launch.py", "# distributed training, not a leftover\n")

    after = take_snapshot(project, [], None, NullReporter(), GitCli())

    assert after.files == [".gitignore", "mypkg/__init__.py", "pyproject.toml", "trainer/dist/launch.py"]
    assert {pattern: len(files) for pattern, files in after.left_out.items()} == {
        "*.egg-info/": 2, "__pycache__/": 1, ".pytest_cache/": 1,
        "build/ (in a package folder)": 1, "dist/ (in a package folder)": 2}
    (project / "trainer" / "dist" / "launch.py").unlink()
    assert take_snapshot(project, [], None, NullReporter(), GitCli()).digest == before.digest


def test_leftovers_stay_out_of_the_patch_tracked_or_not(project: Path) -> None:
    leave_leftovers(project)
    info = inspect(project)
    assert info is not None
    assert info.patch == b"" and info.dirty is False

    write(project / "mypkg" / "__init__.py", "X = 1\n")
    write(project / "notes.md", "new\n")
    info = inspect(project)
    assert info is not None and info.dirty
    touched = {line.split(" b/")[-1] for line in info.patch.decode().splitlines() if line.startswith("diff --git")}
    assert touched == {"mypkg/__init__.py", "notes.md"}


def test_outside_git_the_walk_leaves_them_out_too(tmp_path: Path) -> None:
    root = tmp_path / "plain"
    write(root / "setup.py", "")
    write(root / "train.py", "")
    leave_leftovers(root)

    snap = take_snapshot(root, [], None, NullReporter(), GitCli())

    assert snap.git is None and snap.files == ["setup.py", "train.py"]
    assert "*.egg-info/" in snap.left_out
