"""`replay list`: the capsules under some folders, with their image, sizes and the verdict of their last verify.

Capsules are found by their replay.json, walking the folders without following links (a capsule folder is
not descended into; ``.git``, ``__pycache__``, ``node_modules`` and virtualenvs are skipped). A replay.json that
cannot be read is listed with its error, never fatal. The last verify of a capsule folder on this machine is
recorded in replay's cache (``verdicts/``), keyed by the folder's real path and checked against the image ID,
so a recaptured capsule shows no stale verdict; the capsule folder itself is never written to.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from replay import jsonio
from replay.core.ports import Engine
from replay.core.verify.report import VerifyReport
from replay.errors import ReplayError
from replay.fsutil import atomic_write_json, cache_root
from replay.manifest import MANIFEST_NAME, Manifest, load
from replay.safefs import read_bytes

SKIPPED = {".git", "__pycache__", "node_modules", ".mypy_cache", ".pytest_cache", ".ruff_cache"}
MAX_DEPTH = 12
VERDICT_BYTES = 64 * 1024  # a verdict record is a few hundred bytes; anything larger is not ours


@dataclass
class LastVerify:
    verdict: str
    exit_code: int
    at: str  # ISO 8601, UTC


@dataclass
class CapsuleRow:
    path: Path
    manifest: Manifest | None
    error: str = ""  # why replay.json could not be read
    capsule_bytes: int = 0  # the capsule folder on disk (its files, no link followed)
    image_present: bool | None = None  # None: the engine was not asked or did not answer
    last: LastVerify | None = None

    def to_dict(self) -> dict[str, Any]:
        m = self.manifest
        return {
            "path": str(self.path),
            "name": m.name if m else None,
            "error": self.error or None,
            "image_id": m.image.id if m else None,
            "image_bytes": m.image.size if m else None,
            "image_present": self.image_present,
            "data_bytes": m.data.total_bytes if m else None,
            "capsule_bytes": self.capsule_bytes,
            "last_verify": None if self.last is None else {"verdict": self.last.verdict,
                                                          "exit_code": self.last.exit_code, "at": self.last.at},
        }


def find_capsules(folders: list[Path]) -> list[Path]:
    """Every capsule folder under ``folders`` (a folder that is itself a capsule counts), sorted, once each."""
    found: dict[str, Path] = {}
    for folder in folders:
        for capsule in _walk(folder, 0):
            found.setdefault(os.path.realpath(capsule), capsule)
    return sorted(found.values())


def _walk(folder: Path, depth: int) -> Iterator[Path]:
    if os.path.isfile(folder / MANIFEST_NAME) and not os.path.islink(folder / MANIFEST_NAME):
        yield folder
        return
    if depth >= MAX_DEPTH or (folder / "pyvenv.cfg").exists():
        return
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError:
        return
    for entry in entries:
        if entry.name not in SKIPPED and entry.is_dir(follow_symlinks=False):
            yield from _walk(Path(entry.path), depth + 1)


def list_capsules(folders: list[Path], engine: Engine | None) -> list[CapsuleRow]:
    """One row per capsule under ``folders``; ``engine`` (optional) says whether each image is present."""
    rows = []
    for path in find_capsules(folders):
        try:
            row = CapsuleRow(path, load(path))
        except ReplayError as exc:
            row = CapsuleRow(path, None, error=exc.message)
        row.capsule_bytes = _tree_bytes(path)
        if row.manifest is not None:
            row.last = last_verify(path, row.manifest.image.id)
            if engine is not None:
                row.image_present = engine.image(row.manifest.image.id) is not None
        rows.append(row)
    return rows


def _tree_bytes(root: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(root, followlinks=False):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                continue
    return total


# --- the last verify of a capsule folder, in replay's cache ------------------------------------------------


def _record_path(capsule: Path) -> Path:
    key = hashlib.sha256(os.path.realpath(capsule).encode()).hexdigest()[:32]
    return cache_root() / "verdicts" / f"{key}.json"


def record_report(capsule: Path, report: VerifyReport) -> None:
    """Remember ``report`` as the last verify of the capsule folder ``capsule``."""
    if report.image_id:
        record_verify(capsule, report.image_id, str(report.verdict), report.exit_code)


def record_verify(capsule: Path, image_id: str, verdict: str, exit_code: int) -> None:
    """Remember a verify of the capsule folder ``capsule`` (best effort: a cache that cannot be written is no
    reason to fail a verify that has its verdict)."""
    record = {"capsule": os.path.realpath(capsule), "image_id": image_id, "verdict": verdict,
              "exit_code": exit_code, "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    path = _record_path(capsule)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(path, record)
    except OSError:
        pass


def last_verify(capsule: Path, image_id: str) -> LastVerify | None:
    """The last recorded verify of this folder, when it was of the same image; None otherwise."""
    path = _record_path(capsule)
    try:
        raw = jsonio.loads(read_bytes(path.parent, path.name, limit=VERDICT_BYTES))
    except (OSError, ValueError, jsonio.JSONInputError):
        return None
    if not isinstance(raw, dict) or raw.get("image_id") != image_id or raw.get("capsule") != os.path.realpath(capsule):
        return None
    verdict, code, at = raw.get("verdict"), raw.get("exit_code"), raw.get("at")
    if not (isinstance(verdict, str) and isinstance(code, int) and isinstance(at, str)):
        return None
    return LastVerify(verdict[:40], code, at[:40])
