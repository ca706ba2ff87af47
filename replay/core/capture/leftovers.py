"""Build leftovers: files that building, installing or testing a project writes into its tree, which are never
its code, so the code snapshot (and the uncommitted-changes patch) leaves them out even when git does not
ignore them. Pure rules over relative POSIX paths; the snapshot and the git adapter both apply them.

- ``*.egg-info/`` (what setuptools writes for an editable or legacy install), ``__pycache__/``,
  ``.pytest_cache/`` and ``.eggs/``: anywhere in the tree;
- ``build/`` and ``dist/``: only in a folder that holds a ``pyproject.toml``, ``setup.py`` or ``setup.cfg``,
  where build tools write them. Elsewhere they are kept: ``dist/`` is a common name for distributed-training
  code in ML repositories.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

ANYWHERE = ("__pycache__", ".pytest_cache", ".eggs")
BESIDE_BUILD_FILES = ("build", "dist")
BUILD_FILES = ("pyproject.toml", "setup.py", "setup.cfg")
# How the rules read in the manifest and in `replay show` (a package folder holds one of BUILD_FILES).
PATTERNS = ("*.egg-info/", "__pycache__/", ".pytest_cache/", ".eggs/", "build/ (in a package folder)",
            "dist/ (in a package folder)")


def leftover_folder(rel: str, has_build_files: Callable[[str], bool]) -> tuple[str, str] | None:
    """(the leftover folder holding ``rel``, the pattern it matched), or None when ``rel`` is code.

    ``has_build_files(folder)`` says whether a folder of the tree (relative, "" for the root) holds one of
    ``BUILD_FILES``.
    """
    parts = rel.split("/")
    for depth, part in enumerate(parts[:-1]):
        folder = "/".join(parts[: depth + 1])
        if part.endswith(".egg-info"):
            return folder, "*.egg-info/"
        if part in ANYWHERE:
            return folder, f"{part}/"
        if part in BESIDE_BUILD_FILES and has_build_files("/".join(parts[:depth])):
            return folder, next(p for p in PATTERNS if p.startswith(f"{part}/"))
    if parts[-1].endswith(".egg-info"):  # distutils wrote a single PKG-INFO file of that name
        return rel, "*.egg-info/"
    return None


def on_disk(root: Path) -> Callable[[str], bool]:
    """``has_build_files`` for the tree at ``root``, asking the disk once per folder."""
    seen: dict[str, bool] = {}

    def has_build_files(folder: str) -> bool:
        if folder not in seen:
            here = root / folder if folder else root
            seen[folder] = any((here / name).is_file() for name in BUILD_FILES)
        return seen[folder]

    return has_build_files


def split(files: Iterable[str], root: Path) -> tuple[list[str], dict[str, list[str]]]:
    """(the files that are code, {pattern: the leftover files it matched})."""
    has_build_files = on_disk(root)
    kept: list[str] = []
    left: dict[str, list[str]] = {}
    for rel in files:
        found = leftover_folder(rel, has_build_files)
        if found is None:
            kept.append(rel)
        else:
            left.setdefault(found[1], []).append(rel)
    return kept, left


def folders(files: Iterable[str], root: Path) -> list[str]:
    """The top-most leftover folders (or files) among ``files``: what a pathspec has to exclude."""
    has_build_files = on_disk(root)
    out = {found[0] for rel in files if (found := leftover_folder(rel, has_build_files)) is not None}
    return sorted(f for f in out if not any(f.startswith(other + "/") for other in out))
