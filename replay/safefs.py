"""Opening files inside a folder someone else made (a capsule, a replayed output folder) without ever
following a link out of it.

``O_NOFOLLOW`` guards only the last component of a path, so a capsule whose ``reference/out`` folder is a
link to ``/etc`` would still lead out. Here every path is opened one component at a time from the folder,
each folder through a descriptor with ``O_NOFOLLOW | O_DIRECTORY``, and the last component is looked at
with ``lstat`` before it is opened (opening a device can have effects of its own) and with ``fstat`` after:
only a regular file comes back. Nothing here imports the rest of the package but ``errors``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator
from pathlib import Path

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | getattr(os, "O_NOCTTY", 0)


class NotRegular(OSError):
    """Where a regular file was expected: a link, a FIFO, a socket, a device, a folder, or a path that
    leaves its folder. ``what`` says which, in words."""

    def __init__(self, path: str, what: str) -> None:
        super().__init__(errno.EINVAL, what, path)
        self.path = path
        self.what = what

    def __str__(self) -> str:
        return f"{self.path} is {self.what}"


def describe(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def parts_of(rel: str) -> list[str]:
    """The components of a relative path; one that is absolute, empty, or climbs with ``..`` is refused."""
    parts = [p for p in rel.split("/") if p not in ("", ".")]
    if rel.startswith("/") or not parts or ".." in parts:
        raise NotRegular(rel, "a path that leaves its folder")
    return parts


def open_beneath(base: str | os.PathLike[str], rel: str) -> int:
    """A read-only descriptor of the regular file ``base/rel``, reached without following any link."""
    parts = parts_of(rel)
    dir_fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)  # the folder itself: the caller's
    try:
        for i, name in enumerate(parts[:-1]):
            try:
                next_fd = os.open(name, _DIR, dir_fd=dir_fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    where = "/".join(parts[: i + 1])
                    raise NotRegular(rel, f"under {where}, which is {_what(name, dir_fd)}") from None
                raise
            os.close(dir_fd)
            dir_fd = next_fd
        st = os.lstat(parts[-1], dir_fd=dir_fd)
        if not stat.S_ISREG(st.st_mode):
            raise NotRegular(rel, describe(st.st_mode))
        try:
            fd = os.open(parts[-1], _FILE, dir_fd=dir_fd)
        except OSError as exc:
            if exc.errno == errno.ELOOP:  # swapped for a link since the lstat
                raise NotRegular(rel, "a symbolic link") from None
            raise
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            os.close(fd)
            raise NotRegular(rel, describe(mode))
        return fd
    finally:
        os.close(dir_fd)


def fd_path(fd: int) -> Path:
    """A path that opens exactly the file behind ``fd`` (for readers that take paths: numpy, csv, zipfile)."""
    return Path(f"/proc/self/fd/{fd}") if os.path.isdir("/proc/self/fd") else Path(f"/dev/fd/{fd}")


@contextlib.contextmanager
def opened(base: str | os.PathLike[str], rel: str) -> Iterator[Path]:
    """``open_beneath`` as a path to its descriptor, closed when the block ends."""
    fd = open_beneath(base, rel)
    try:
        yield fd_path(fd)
    finally:
        os.close(fd)


def read_bytes(base: str | os.PathLike[str], rel: str, limit: int | None = None) -> bytes:
    """The content of the regular file ``base/rel`` (at most ``limit`` bytes), reached without a link."""
    fd = open_beneath(base, rel)
    with os.fdopen(fd, "rb") as handle:
        return handle.read() if limit is None else handle.read(limit)


def _what(name: str, dir_fd: int) -> str:
    try:
        st = os.lstat(name, dir_fd=dir_fd)
    except OSError:
        return "missing"
    return describe(st.st_mode)
