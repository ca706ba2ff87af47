"""The code that goes into the image: what git would commit now, never .git or ignored files.

In a git work tree that is ``git ls-files --cached --others --exclude-standard`` as the files are on disk
(uncommitted edits included). Outside git, a walk that still skips the usual secret and bulk folders. In both,
build leftovers (``replay.core.capture.leftovers``: ``*.egg-info``, ``__pycache__``, ``build/`` beside a
pyproject.toml...) are left out even when git does not ignore them, and counted for the manifest.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from replay.core.capture import leftovers
from replay.core.capture.codefilter import DECLARED, LeaveOut
from replay.core.capture.secrets import secret_name
from replay.core.data.hashing import hash_paths
from replay.core.data.statcache import StatCache
from replay.core.events import Reporter
from replay.core.ports import GitInfo, SourceControl

# Outside git there is no .gitignore to trust: skip what is never code and may hold secrets.
_SKIP_DIRS = {".git", ".hg", ".svn", ".replay", "__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache",
              "node_modules", ".ipynb_checkpoints", ".tox", ".nox"}


@dataclass
class Snapshot:
    root: Path
    files: list[str]
    digest: str
    git: GitInfo | None = None
    excluded: list[str] = field(default_factory=list)
    left_out: dict[str, list[str]] = field(default_factory=dict)  # build leftovers, by the pattern they matched
    # Left out by codefilter (capsule folders, replay reports): how many files, by why.
    filtered: dict[str, int] = field(default_factory=dict)


@dataclass
class CodeFiles:
    files: list[str]  # what goes into the image
    excluded: list[str]  # left out because capture asked (data, outputs, the capsule)
    left_out: dict[str, list[str]]  # build leftovers, by pattern
    git: GitInfo | None  # git's view of the tree; None outside git
    filtered: dict[str, int] = field(default_factory=dict)  # capsule folders, reports: how many files, by why


def code_files(root: Path, exclude: list[str], vcs: SourceControl,
               include_untracked: list[str] | None = None) -> CodeFiles:
    """The files that would go into the image (cheap: no hashing), those left out by ``exclude`` and as build
    leftovers, and git's view of the tree. Refuses untracked files over 1 MiB or binary that
    ``include_untracked`` does not name (``replay.core.capture.codefilter``)."""
    rules = LeaveOut(root, exclude, list(include_untracked or []))
    info = vcs.inspect(root, rules)
    if info is None:
        walked = _walk(root)
        gone = set(rules(walked, []))
        listed = [f for f in walked if not any(f == g or f.startswith(g + "/") for g in gone)]
    else:
        listed = info.files
    files, left_out = leftovers.split(listed, root)
    skip = [PurePosixPath(e) for e in exclude if e and not e.startswith("/")]
    kept = [f for f in files if not any(PurePosixPath(f).is_relative_to(s) for s in skip)]
    excluded = sorted({*(set(files) - set(kept)), *rules.left_out.get(DECLARED, [])})
    return CodeFiles(kept, excluded, left_out, info, rules.counts())


def take_snapshot(root: Path, exclude: list[str], cache: StatCache | None, reporter: Reporter,
                  vcs: SourceControl, include_untracked: list[str] | None = None) -> Snapshot:
    found = code_files(root, exclude, vcs, include_untracked)
    manifest = hash_paths([root / f for f in found.files], root, cache=cache, reporter=reporter, what="code")
    return Snapshot(root=root, files=found.files, digest=manifest.digest, git=found.git, excluded=found.excluded,
                    left_out=found.left_out, filtered=found.filtered)


def _walk(root: Path) -> list[str]:
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        # Virtualenvs are environments, not code: they are rebuilt from the lock.
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS and not (here / d / "pyvenv.cfg").exists())
        for name in sorted(filenames):
            if name.endswith(".pyc") or secret_name((here / name).relative_to(root).as_posix()):
                continue
            path = here / name
            if path.is_file():
                found.append(path.relative_to(root).as_posix())
    return sorted(found)
