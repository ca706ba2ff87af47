"""Whether the container's user will be able to read the data, judged before anything runs.

Verify mounts each data root read-only into a container that runs as the image's user (uid 10001) when
verify runs as root, else as the caller, with no supplementary groups and no capabilities: a file that
root, or the caller through one of its groups, reads on the host may be closed to it. This reads the mode
bits and owners (not ACLs) as the container user meets them: folders need read and search, files read.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from replay.errors import DataUnreadable

SHOWN = 3


def can_read(st: os.stat_result, uid: int, gid: int) -> bool:
    """Whether ``uid:gid`` (no other groups, no capabilities) may read this entry, and search it if a folder."""
    if uid == 0:
        return True
    want = 0o5 if stat.S_ISDIR(st.st_mode) else 0o4
    if st.st_uid == uid:
        bits = st.st_mode >> 6
    elif st.st_gid == gid:
        bits = st.st_mode >> 3
    else:
        bits = st.st_mode
    return bits & want == want


def closed_entries(source: Path, uid: int, gid: int) -> list[str]:
    """Every entry at or under ``source`` (links followed, as in the container) that ``uid:gid`` cannot use."""
    closed: list[str] = []
    try:
        st = os.stat(source)
    except OSError:
        return closed  # a missing root was reported by the data check
    if not can_read(st, uid, gid):
        closed.append(str(source))
        if stat.S_ISDIR(st.st_mode):
            return closed  # nothing beneath can be reached
    if not stat.S_ISDIR(st.st_mode):
        return closed
    for dirpath, dirnames, filenames in os.walk(source):
        open_dirs = []
        for name in dirnames:
            if _closed(os.path.join(dirpath, name), uid, gid, closed):
                continue  # a folder the container cannot enter hides what is beneath: reported once
            open_dirs.append(name)
        dirnames[:] = open_dirs
        for name in filenames:
            _closed(os.path.join(dirpath, name), uid, gid, closed)
    return closed


def _closed(path: str, uid: int, gid: int, closed: list[str]) -> bool:
    try:
        st = os.stat(path)
    except OSError:
        return False  # a broken link: the walk's rules already skip it
    if can_read(st, uid, gid):
        return False
    closed.append(path)
    return True


def check_data_access(sources: list[Path], uid: int, gid: int) -> None:
    """Refuse to run when the container user could not read some data (exit 2, the first few named)."""
    for source in sources:
        closed = closed_entries(source, uid, gid)
        if closed:
            named = ", ".join(closed[:SHOWN]) + (f" and {len(closed) - SHOWN} more" if len(closed) > SHOWN else "")
            raise DataUnreadable(
                f"the container's user (uid {uid}) cannot read data: {named}; the command was not run",
                f"make the data readable to it: chmod -R o+rX {source}",
            )
