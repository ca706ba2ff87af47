"""Which files the data paths hold, and under which recorded paths (the rules are in ``hashing``'s docstring).

This runs once per file on every check, cache hit or not, so it builds nothing per file but one plain
tuple: a re-check of unchanged data is mostly this walk and its ``stat`` calls.
"""

from __future__ import annotations

import os
import posixpath
import stat
from collections.abc import Callable
from pathlib import Path

from replay import safefs
from replay.errors import BadInput
from replay.manifest import LinkEntry

# One file found: (where to read it on this machine, how the manifest records it, its stat). A plain
# tuple, not a NamedTuple: building tens of thousands of NamedTuples costs more than the rest of the walk.
Item = tuple[str, str, os.stat_result]
# A symlink met inside a folder: (recorded path, local path, its target as written in the link).
Link = tuple[str, str, str]
# An entry a no-follow walk refuses to read: (recorded path, what it is, e.g. "a symbolic link to /etc").
Odd = tuple[str, str]

READ_HINT = "check that it is readable and that nothing is changing it"

_BY_FD = os.scandir in os.supports_fd and os.stat in os.supports_dir_fd
_DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0)


def join(root: str, name: str) -> str:
    """``root/name`` in recorded form; ``join(root, "")`` is the prefix of everything under ``root``."""
    if root == ".":
        return name
    return root + name if root.endswith("/") else f"{root}/{name}"


def relative(path: str, base: str) -> str | None:
    if path == base:
        return "."
    prefix = base if base.endswith(os.sep) else base + os.sep
    return path[len(prefix) :] if path.startswith(prefix) else None


def locate(path: Path, base: Path) -> tuple[str, str]:
    """The absolute local path, and the recorded form: relative to ``base`` when inside it, else absolute."""
    local = os.path.abspath(path)
    base_abs = os.path.abspath(base)
    rel = relative(local, base_abs)
    if rel is None:  # maybe inside after all, reached through a symlinked parent of one or the other
        rel = relative(os.path.realpath(local), os.path.realpath(base_abs))
    return local, Path(rel if rel is not None else local).as_posix()


def walk(local: str, record: str, st: os.stat_result, what: str, warn: Callable[[str], None],
         links: list[Link] | None = None, odd: list[Odd] | None = None) -> list[Item]:
    """Every regular file at or under ``local`` (whose stat is ``st``), recorded under ``record``.

    With ``links``, every symlink met inside a folder is also appended there (data: it is still followed).
    With ``odd``, the walk follows no link at all (replayed outputs, capsule files: made by someone else):
    links, FIFOs, sockets and devices are appended to ``odd`` with what they are, and never opened.
    """
    follow = odd is None
    if stat.S_ISREG(st.st_mode):
        return [(local, record, st)]
    if not stat.S_ISDIR(st.st_mode):
        if odd is not None:
            odd.append((record, describe(st.st_mode, local)))
            return []
        raise BadInput(f"{what} path {local} is neither a file nor a folder", "pass a file or a folder")
    out: list[Item] = []
    skipped: list[str] = []
    # Each folder carries the (device, inode) of the folders above it, to tell a loop from a shortcut.
    stack: list[tuple[str, str, tuple[tuple[int, int], ...]]] = [(local, record, ((st.st_dev, st.st_ino),))]
    is_reg, is_dir = stat.S_ISREG, stat.S_ISDIR
    append = out.append
    while stack:
        folder, folder_record, above = stack.pop()
        prefix = join(folder_record, "")
        local_prefix = folder if folder.endswith(os.sep) else folder + os.sep
        fd, entries = _list(folder, what)
        try:
            for entry in entries:
                name = entry.name
                if (links is not None or not follow) and entry.is_symlink():  # d_type: no system call
                    target = _readlink(name, fd, local_prefix)
                    if links is not None:
                        links.append((prefix + name, local_prefix + name, target))
                    if odd is not None:
                        odd.append((prefix + name, f"a symbolic link to {target}"))
                        continue
                try:
                    # Follows symlinks (data) or not (no-follow walks); the only system call per file.
                    child_st = entry.stat() if follow else entry.stat(follow_symlinks=False)
                except OSError:
                    skipped.append(f"skipped {prefix}{name}: a broken symlink, or it vanished while being listed")
                    continue
                mode = child_st.st_mode
                if is_reg(mode):
                    append((local_prefix + name, prefix + name, child_st))
                elif is_dir(mode):
                    key = (child_st.st_dev, child_st.st_ino)
                    if key in above:
                        skipped.append(f"skipped {prefix}{name}: a symlink back to a folder that contains it")
                    else:
                        stack.append((local_prefix + name, prefix + name, (*above, key)))
                elif odd is not None:
                    odd.append((prefix + name, describe(mode)))
                else:
                    skipped.append(f"skipped {prefix}{name}: not a regular file or folder")
        finally:
            if fd >= 0:
                os.close(fd)
    for message in sorted(skipped):
        warn(message)
    return out


def link_entry(link: Link, root_local: str, root_record: str) -> LinkEntry:
    """Whether a link resolves inside its root twice over: on this host (every link on the way followed),
    and in the container, where the root alone is mounted (at the workspace, or at its absolute path)."""
    record, local, target = link
    real_root = os.path.realpath(root_local)
    on_host = _within(os.path.realpath(local), real_root)
    if target.startswith("/"):
        # An absolute target keeps its meaning in the container only where the root keeps its own path.
        in_container = root_record.startswith("/") and _within(posixpath.normpath(target), root_record)
    else:
        lexical = posixpath.normpath(posixpath.join(posixpath.dirname(record), target))
        in_container = _within(lexical, posixpath.normpath(root_record))
    return LinkEntry(path=record, target=target, inside=on_host and in_container)


def _within(path: str, root: str) -> bool:
    if root == ".":
        return not path.startswith("/") and path != ".." and not path.startswith("../")
    return path == root or path.startswith(root.rstrip("/") + "/")


def describe(mode: int, local: str | None = None) -> str:
    """What a non-regular entry is, in words (for reports: "a FIFO", "a symbolic link to /etc/shadow")."""
    if stat.S_ISLNK(mode):
        target = _readlink(local, -1, "") if local else "?"
        return f"a symbolic link to {target}"
    return safefs.describe(mode)


def _readlink(name: str, fd: int, local_prefix: str) -> str:
    try:
        return os.readlink(name, dir_fd=fd) if fd >= 0 else os.readlink(local_prefix + name)
    except OSError:
        return "?"


def _list(folder: str, what: str) -> tuple[int, list[os.DirEntry[str]]]:
    """The entries of a folder, in no order (the caller sorts), and the descriptor they were listed
    through, which the caller closes once done with them; -1 where descriptors are not used.

    Listed through a descriptor, each entry's ``stat`` is an ``fstatat`` relative to the folder, which
    spares the kernel a walk down the whole path for every file (5% of a re-check of unchanged data).
    """
    fd = -1
    try:
        if not _BY_FD:
            with os.scandir(folder) as it:
                return fd, list(it)
        fd = os.open(folder, _DIR_FLAGS)
        with os.scandir(fd) as it_fd:
            return fd, list(it_fd)
    except OSError as exc:
        if fd >= 0:
            os.close(fd)
        raise BadInput(f"cannot read {what} folder {folder} ({exc.strerror})", READ_HINT) from None
