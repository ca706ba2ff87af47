"""Atomic file writes: a reader sees the old file or the new one, never half of either."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from replay import jsonio


def atomic_write_bytes(path: Path, data: bytes, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, obj: Any) -> None:
    """Strict JSON (non-finite floats as the strings "NaN", "Infinity", "-Infinity"; see ``replay.jsonio``)."""
    atomic_write_text(path, jsonio.dumps(obj) + "\n")


@contextlib.contextmanager
def staged_dir(final: Path, replace: bool = False) -> Iterator[Path]:
    """Yield a hidden sibling folder to fill; on success it becomes ``final`` in one rename.

    On any failure (or Ctrl-C) the staging folder is removed, so no half-written folder is ever left.
    With ``replace`` an existing ``final`` is swapped out only after the new one is complete.
    """
    import shutil

    final.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.staging-"))
    try:
        yield stage
        os.chmod(stage, 0o755)
        if final.exists() and replace:
            trash = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.old-"))
            os.replace(final, trash / "old")
            os.replace(stage, final)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.rename(stage, final)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
