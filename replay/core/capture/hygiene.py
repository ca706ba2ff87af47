"""What capture notices about the run's files beyond the ones it was told about: files the command wrote
outside its declared outputs (``capture --run``), and declared outputs older than the code or data they
could come from (capture without ``--run``). Pure functions over the disk; the pipeline warns and records.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from replay.manifest import StaleOutput

# Never part of what a run writes that matters: source control, capsules, caches, virtualenvs (by pyvenv.cfg).
_SKIP_DIRS = {".git", ".hg", ".svn", ".replay", "__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache",
              "node_modules", ".ipynb_checkpoints", ".tox", ".nox"}
WATCH_MAX_FILES = 200_000  # past this many files the tree is not watched (a data folder nobody declared)
SHOWN = 5


@dataclass
class TreeState:
    files: dict[str, tuple[int, int]]  # relative POSIX path -> (mtime_ns, size)
    complete: bool = True


@dataclass
class Written:
    created: list[str]
    changed: list[str]

    @property
    def all(self) -> list[str]:
        return sorted({*self.created, *self.changed})

    def warning(self) -> str | None:
        names = self.all
        if not names:
            return None
        more = f" (and {len(names) - SHOWN} more)" if len(names) > SHOWN else ""
        files = "file" if len(names) == 1 else "files"
        return (f"the command wrote {len(names)} {files} outside the declared outputs: {', '.join(names[:SHOWN])}"
                f"{more}; they are left out of the code, and the replay writes them again and throws them away: "
                "to compare one, declare it with --output (with --ignore GLOB to keep it but not byte-compare it)")


def tree_state(root: Path, skip: Iterable[str]) -> TreeState:
    """Every file under ``root`` (links not followed) with its mtime and size, outside ``skip`` (relative
    paths: data, outputs, the capsule) and the folders that are never the run's (.git, virtualenvs...)."""
    skipped = [PurePosixPath(s) for s in skip if s and not s.startswith("/")]
    files: dict[str, tuple[int, int]] = {}
    stack = [root]
    while stack:
        here = stack.pop()
        try:
            entries = list(os.scandir(here))
        except OSError:
            continue
        for entry in entries:
            rel = PurePosixPath(Path(entry.path).relative_to(root).as_posix())
            if any(rel == s or rel.is_relative_to(s) for s in skipped):
                continue
            try:
                if entry.is_dir(follow_symlinks=False):
                    if entry.name not in _SKIP_DIRS and not os.path.exists(os.path.join(entry.path, "pyvenv.cfg")):
                        stack.append(Path(entry.path))
                    continue
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            files[rel.as_posix()] = (st.st_mtime_ns, st.st_size)
            if len(files) > WATCH_MAX_FILES:
                return TreeState({}, complete=False)
    return TreeState(files)


def written_between(before: TreeState, after: TreeState) -> Written:
    """The files created and changed from ``before`` to ``after`` (none when either was not complete)."""
    if not (before.complete and after.complete):
        return Written([], [])
    created = sorted(set(after.files) - set(before.files))
    changed = sorted(p for p, st in after.files.items() if p in before.files and before.files[p] != st)
    return Written(created, changed)


def stale_outputs(root: Path, outputs: Iterable[str], code: Iterable[str], data: Iterable[str]) -> list[StaleOutput]:
    """Each declared output (its oldest file) older than the newest file of the code snapshot or of the data."""
    newest = {kind: _newest(root, files) for kind, files in (("code", code), ("data", data))}
    found = []
    for path in sorted(outputs):
        oldest = _mtime(root / path)
        if oldest is None:
            continue
        for kind, (mtime, newer) in newest.items():
            if newer and mtime > oldest:
                found.append(StaleOutput(path=path, newer=newer, kind=kind))
                break
    return found


def stale_warning(stale: list[StaleOutput]) -> str | None:
    if not stale:
        return None
    first = stale[0]
    more = f" (and {len(stale) - 1} more)" if len(stale) > 1 else ""
    return (f"output {first.path} is older than the {first.kind} it could come from ({first.newer}){more}: the "
            "reference may not be what this code and data make, and verify would then blame nondeterminism; "
            "pass --run to make the outputs again as part of the capture")


def _newest(root: Path, files: Iterable[str]) -> tuple[int, str]:
    best = (0, "")
    for rel in files:
        mtime = _mtime(root / rel)  # an absolute recorded path stays itself
        if mtime is not None and mtime > best[0]:
            best = (mtime, rel)
    return best


def _mtime(path: Path) -> int | None:
    """The file's mtime, or for a folder its oldest file's."""
    try:
        st = path.lstat()
    except OSError:
        return None
    if not path.is_dir() or path.is_symlink():
        return st.st_mtime_ns
    times = []
    for dirpath, _, names in os.walk(path):
        for name in names:
            try:
                times.append(os.lstat(os.path.join(dirpath, name)).st_mtime_ns)
            except OSError:
                continue
    return min(times) if times else None
