"""Where things live: the project root, recorded paths, and their places inside the capsule image."""

from __future__ import annotations

import posixpath
import re
from pathlib import Path, PurePosixPath

from replay.core.ports import SourceControl
from replay.errors import BadInput
from replay.manifest import IMAGE_WORKSPACE, REFERENCE_DIR, Outputs
from replay.manifest_rules import SEED_MAX


def check_seed(seed: int) -> int:
    if not 0 <= seed <= SEED_MAX:
        raise BadInput(f"seed {seed} is out of range", f"use a seed from 0 to {SEED_MAX} (what PYTHONHASHSEED accepts)")
    return seed


def seed_environment(seed: int | None, auto_seed: bool = False) -> dict[str, str]:
    """What a recorded seed becomes in the replayed command's environment (``auto_seed``: the hook's switch)."""
    env = {} if seed is None else {"REPLAY_SEED": str(seed), "PYTHONHASHSEED": str(seed)}
    if auto_seed:
        env["REPLAY_AUTO_SEED"] = "1"  # the start-up hook (replay/seeding.py start_hook) does nothing without it
    return env


def project_root(cwd: Path, vcs: SourceControl) -> Path:
    """The work tree's top level when ``cwd`` is in one, else ``cwd`` itself."""
    return vcs.toplevel(cwd) or cwd.resolve()


def record_path(path: Path, root: Path) -> str:
    """POSIX path relative to ``root`` when inside it, else absolute."""
    resolved = path.resolve() if path.is_absolute() else (Path.cwd() / path).resolve()
    try:
        return resolved.relative_to(root.resolve()).as_posix() or "."
    except ValueError:
        return resolved.as_posix()


def local_path(recorded: str, root: Path) -> Path:
    return Path(recorded) if recorded.startswith("/") else root / recorded


def container_path(recorded: str) -> str:
    """Where a recorded path lives in the container: under the workspace, or at its absolute path.

    A relative path never lands outside the workspace: one whose ``..`` would climb out is refused.
    """
    if recorded.startswith("/"):
        return recorded
    placed = posixpath.normpath(f"{IMAGE_WORKSPACE}/{recorded}")
    if "\0" in recorded or not (placed == IMAGE_WORKSPACE or placed.startswith(IMAGE_WORKSPACE + "/")):
        raise BadInput(f"path {recorded!r} leaves the container's workspace",
                       "recorded paths are relative to the project root and never go up with '..'")
    return placed


def reference_copy(recorded: str) -> str:
    """The capsule-relative path of an output's reference copy."""
    rel = f"_abs{recorded}" if recorded.startswith("/") else recorded
    return f"{REFERENCE_DIR}/{rel}"


def output_mount_dirs(outputs: Outputs) -> list[str]:
    """The folders that get a fresh, writable mount at replay: each output's folder, outermost only."""
    files = {f.path for f in outputs.files}
    dirs = set()
    for root in outputs.roots:
        dirs.add(posixpath.dirname(root) if root in files else root)
    for d in dirs:
        if d.startswith("/"):
            raise BadInput(f"output {d} is outside the project",
                           "replay replays outputs inside the project folder: write them under it, e.g. out/")
        if d in ("", ".", "/"):
            raise BadInput(
                "an output sits in the project's top folder",
                "replay gives outputs a fresh folder at verify: write them into a folder such as out/",
            )
    ordered = sorted(dirs, key=lambda d: (d.count("/"), d))
    kept: list[str] = []
    for d in ordered:
        if not any(PurePosixPath(d).is_relative_to(k) for k in kept):
            kept.append(d)
    return sorted(kept)


def capsule_name(text: str) -> str:
    """A name that is valid as a Docker repository component."""
    name = re.sub(r"[^a-z0-9._-]+", "-", text.lower()).strip("._-")
    return re.sub(r"[._-]{2,}", "-", name) or "capsule"

