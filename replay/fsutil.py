"""Writing safely: atomic files (a reader sees the old file or the new one, never half of either), staging
folders that leave nothing behind, and folders made only beneath a fresh folder of replay's own."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Iterator
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


STAGING_MARK = ".staging-"
OWNER_FILE = ".replay-owner"  # inside a staging folder: "PID START-TIME" of the process filling it


@contextlib.contextmanager
def staged_dir(final: Path, replace: bool = False) -> Iterator[Path]:
    """Yield a hidden sibling folder to fill; on success it becomes ``final`` in one rename.

    On any failure (or Ctrl-C) the staging folder is removed, so no half-written folder is ever left.
    With ``replace`` an existing ``final`` is swapped out only after the new one is complete. A process
    killed outright (SIGKILL, a power cut) cannot clean up: its staging folder records its owner, and the
    next staging in the same parent removes every staging folder whose owner is gone.
    """
    import shutil

    final.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_staging(final.parent)
    stage = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}{STAGING_MARK}"))
    try:
        (stage / OWNER_FILE).write_text(_owner_of(os.getpid()) + "\n")
        yield stage
        with contextlib.suppress(FileNotFoundError):
            (stage / OWNER_FILE).unlink()
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


def remove_stale_staging(parent: Path) -> list[Path]:
    """Remove the staging folders in ``parent`` whose recorded owner no longer runs; return them.

    The owner is a pid and that process's start time, so a pid the system has since given to another
    process is not mistaken for the owner. A folder without an owner file is left alone (it may belong
    to a replay that predates them, still running).
    """
    import shutil

    removed: list[Path] = []
    try:
        names = [n for n in os.listdir(parent) if n.startswith(".") and STAGING_MARK in n]
    except OSError:
        return removed
    for name in names:
        folder = parent / name
        try:
            if not folder.is_dir() or folder.is_symlink():
                continue
            owner = (folder / OWNER_FILE).read_text().split()
        except OSError:
            continue
        if len(owner) != 2 or not owner[0].isdigit() or _owner_of(int(owner[0])) == " ".join(owner):
            continue
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
    return removed


def _owner_of(pid: int) -> str:
    """"PID START-TIME" of a running process ("PID -" where the start time cannot be read; "" if it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return ""
    except OSError:
        return f"{pid} -"
    # Field 22 is the start time in clock ticks since boot; the command name (field 2) may hold spaces.
    fields = stat[stat.rfind(")") + 2 :].split()
    return f"{pid} {fields[19]}" if len(fields) > 19 else f"{pid} -"


def descend(dir_fd: int, parts: Iterable[str]) -> int:
    """Make and enter each folder of ``parts`` below the open folder ``dir_fd``, one at a time, never through
    a link. Takes ``dir_fd`` over: returns the innermost folder's descriptor, or closes what it holds and
    raises ``NotADirectoryError`` naming the part that is a link or a file."""
    try:
        for part in parts:
            with contextlib.suppress(FileExistsError):
                os.mkdir(part, 0o755, dir_fd=dir_fd)
            try:
                inner = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
            except OSError:
                raise NotADirectoryError(part) from None
            os.close(dir_fd)
            dir_fd = inner
    except BaseException:
        os.close(dir_fd)
        raise
    return dir_fd


def mkdirs_beneath(root: Path, rel: str, owner: tuple[int, int] | None = None) -> Path:
    """Make ``root/rel`` one folder at a time, never through a link, and give the last one to ``owner``.

    ``root`` is a fresh folder of replay's own; ``rel`` comes from someone else's manifest, so a
    component that is a link (or a file), ``..`` or an absolute path is refused, and the result must
    really lie inside ``root``. Returns its real path.
    """
    from replay.errors import BadInput

    parts = [p for p in rel.split("/") if p not in ("", ".")]
    if rel.startswith("/") or not parts or ".." in parts:
        raise BadInput(f"output folder {rel!r} is not a path inside the project", "the capsule was edited: recapture")
    top = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fd = descend(top, parts)
    except NotADirectoryError as exc:
        raise BadInput(f"output folder {rel} leads through {exc.args[0]}, which is not a folder",
                       "the capsule's outputs overlap: recapture") from None
    try:
        if owner is not None:
            os.fchown(fd, *owner)
    finally:
        os.close(fd)
    real = Path(os.path.realpath(root / rel))
    base = os.path.realpath(root)
    if not str(real).startswith(base.rstrip("/") + "/"):
        raise BadInput(f"output folder {rel} lies outside the fresh output folder", "recapture the run")
    return real


def chown_tree(root: Path, uid: int, gid: int) -> None:
    """Give everything under ``root`` (not ``root`` itself, which was never lent) to ``uid:gid``, following
    no link: what a container user wrote there comes back to the verifier. Errors on single entries are
    skipped (best effort: the rest still comes back)."""
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in (*dirnames, *filenames):
            with contextlib.suppress(OSError):
                os.chown(os.path.join(dirpath, name), uid, gid, follow_symlinks=False)


def cache_root() -> Path:
    """replay's cache (locks, wheels, base probes): $REPLAY_CACHE_DIR, else ~/.cache/replay."""
    env = os.environ.get("REPLAY_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "replay"
