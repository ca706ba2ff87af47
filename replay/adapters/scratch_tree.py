"""A run's working tree as a throw-away, size-limited copy (``RunSpec.scratch_tree``), for any image.

The image's folder is read through the engine's archive of a created (never started) container, filtered
here (regular files and folders only, no name that climbs out, nothing where a mount will sit, at most the
tree's size) into one tar file that the container gets read-only. The folder itself becomes a tmpfs owned by
the user the command runs as, and so does every folder between it and a mount beneath it (the engine makes
those mount points as root, where the user could not write). A small ``sh`` step unpacks the tar, runs the
command from its working folder, and lists what the command created or changed there, outside the mounts,
on lines marked with a random word that the log reader takes out of the log. Needs ``sh``, ``tar``, GNU
``find`` and ``date`` in the image, as every Debian-based image has; images made before this existed work
the same (nothing is asked of the image beyond its folder).
"""

from __future__ import annotations

import contextlib
import io
import posixpath
import secrets
import shutil
import tarfile
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from replay.core.ports import Mount, RunSpec, Tmpfs

TREE_TAR = "/.replay-tree.tar"  # where the filtered copy of the image's tree is mounted, read-only
WRITTEN_LISTED = 1000  # names listed at most; the count is always whole
_OWNER_LABEL = "io.replay.owner"


@dataclass
class ScratchRun:
    """The spec as the engine runs it, and what to clean up and read back."""

    spec: RunSpec
    marker: str
    root: str
    folder: Path | None = None
    written: list[str] = field(default_factory=list)
    count: int | None = None

    def take(self, line: str) -> str | None:
        """A log line with any listing taken out: the rest of it, or None when nothing is left."""
        at = line.find(self.marker)
        if at < 0:
            return line
        item = line[at + len(self.marker):]
        if item.startswith(" count "):
            with contextlib.suppress(ValueError):
                self.count = int(item[7:].strip())
        elif item.startswith(" file ") and len(self.written) < WRITTEN_LISTED:
            path = item[6:]
            self.written.append(path[len(self.root) + 1:] if path.startswith(self.root + "/") else path)
        return line[:at] or None

    def cleanup(self) -> None:
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None


def prepare(api: Any, spec: RunSpec) -> ScratchRun | None:
    """``spec`` with its scratch tree in place, or None when the image's tree cannot be copied (larger
    than the tree's size, or unreadable): the run then goes as before, on the read-only root."""
    tree = spec.scratch_tree
    if tree is None:
        return None
    root = posixpath.normpath(tree.path)
    if any(posixpath.normpath(m.target) == root for m in spec.mounts):
        return None  # something is mounted over the whole tree: nothing of the image's copy would show
    beneath = [posixpath.normpath(m.target) for m in spec.mounts if _under(m.target, root)]
    folder = Path(tempfile.mkdtemp(prefix="replay-tree-"))
    try:
        if not _copy_tree(api, spec.image, root, beneath, tree.size_bytes, folder / "tree.tar"):
            shutil.rmtree(folder, ignore_errors=True)
            return None
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    owner = _owner(spec.user)
    tmpfs = [t for t in spec.tmpfs if not _under(t.target, root)]
    tmpfs += [Tmpfs(d, tree.size_bytes, owner=owner) for d in _tree_dirs(root, beneath)]
    marker = "@@replay-" + secrets.token_hex(8)
    run = ScratchRun(spec, marker, root, folder)
    run.spec = replace(
        spec, tmpfs=tmpfs, mounts=[*spec.mounts, Mount(str(folder / "tree.tar"), TREE_TAR)],
        argv=_wrap(spec.argv, root, spec.workdir, marker, beneath), workdir=root,
    )
    return run


def _wrap(argv: list[str], root: str, workdir: str, marker: str, beneath: list[str]) -> list[str]:
    prune = " -o ".join("-path " + _sh_quote(_glob_escape(p)) for p in beneath)
    prune_expr = f"\\( {prune} \\) -prune -o " if prune else ""
    # The exit status is always the command's: the EXIT trap gives it back even when the listing after it
    # cannot fork (a command that used up the process limit) and sh would otherwise end with its own 2.
    script = (
        'rc=126; trap \'exit "$rc"\' EXIT\n'
        'tar -x -f ' + TREE_TAR + ' -C "$1" --no-same-owner 2>/dev/null\n'
        'start=$(date +%s.%N 2>/dev/null)\n'
        'mkdir -p "$2" 2>/dev/null; cd "$2" || exit 126\n'
        'shift 2\n'
        '"$@"; rc=$?\n'
        'if [ -n "$start" ] && command -v find >/dev/null 2>&1; then\n'
        f'  find {_sh_quote(root)} {prune_expr}-newermt "@$start" ! -type d -print 2>/dev/null | {{\n'
        '    c=0\n'
        '    while IFS= read -r f; do\n'
        '      c=$((c+1))\n'
        f'      if [ "$c" -le {WRITTEN_LISTED} ]; then printf \'%s file %s\\n\' {marker} "$f"; fi\n'
        '    done\n'
        f'    printf \'%s count %d\\n\' {marker} "$c"\n'
        '  }\n'
        'fi\n'
        'exit "$rc"'
    )
    return ["/bin/sh", "-c", script, "replay-tree", root, workdir, *argv]


def _copy_tree(api: Any, image: str, root: str, beneath: list[str], limit: int, dest: Path) -> bool:
    """The image's ``root`` folder, filtered, as a tar at ``dest``; False when it is larger than ``limit``.
    Streamed: the engine's archive is never held whole, in memory or on disk."""
    from docker.errors import DockerException, NotFound

    container = api.create_container(image, command=["/nonexistent"], network_disabled=True,
                                     labels={_OWNER_LABEL: "read"}, use_config_proxy=False, entrypoint=[])
    try:
        try:
            stream, _ = api.get_archive(container, root)
        except NotFound:  # no such folder in the image: the tree starts empty
            return _empty(dest)
        source = _Capped(stream, limit + (1 << 20))
        return _filter(source, posixpath.basename(root), [posixpath.relpath(b, root) for b in beneath], limit, dest)
    finally:
        with contextlib.suppress(DockerException, OSError):
            api.remove_container(container, force=True)


class _Capped(io.RawIOBase):
    """A readable file over a stream of byte chunks that refuses (OSError) to give more than ``limit`` bytes."""

    def __init__(self, chunks: Iterable[bytes], limit: int) -> None:
        self._chunks = iter(chunks)
        self._pending = b""
        self._left = limit

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._pending = chunk
        size = min(len(buffer), len(self._pending))
        self._left -= size
        if self._left < 0:
            raise OSError("the image's tree is larger than the scratch tree may hold")
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


def _filter(raw: Any, top: str, skip: list[str], limit: int, dest: Path) -> bool:
    """Regular files and folders under ``top``/ only, renamed relative to it, none under ``skip``."""
    total = 0
    try:
        with tarfile.open(fileobj=raw, mode="r|") as src, tarfile.open(dest, "w", format=tarfile.GNU_FORMAT) as out:
            for member in src:
                name = posixpath.normpath(member.name)
                if name == top or not name.startswith(top + "/") or not (member.isreg() or member.isdir()):
                    continue
                rel = name[len(top) + 1:]
                if rel.startswith("../") or "/../" in rel or any(rel == s or rel.startswith(s + "/") for s in skip):
                    continue
                total += member.size
                if total > limit:
                    return False
                clean = tarfile.TarInfo(rel)
                clean.type, clean.mode, clean.size, clean.mtime = member.type, member.mode & 0o755, member.size, member.mtime
                out.addfile(clean, src.extractfile(member) if member.isreg() else None)
    except (tarfile.TarError, OSError):
        return False
    return True


def _empty(dest: Path) -> bool:
    with tarfile.open(dest, "w"):
        pass
    return True


def _tree_dirs(root: str, beneath: list[str]) -> list[str]:
    """The tree and every folder between it and a mount beneath it: each gets its own tmpfs."""
    dirs = {root}
    for target in beneath:
        parent = posixpath.dirname(target)
        while _under(parent, root) or parent == root:
            dirs.add(parent)
            if parent == root:
                break
            parent = posixpath.dirname(parent)
    return sorted(dirs - set(beneath), key=lambda d: (d.count("/"), d))


def _under(path: str, root: str) -> bool:
    return posixpath.normpath(path).startswith(root + "/")


def _owner(user: str) -> tuple[int, int] | None:
    uid, _, gid = user.partition(":")
    if not uid.isdigit() or not (gid or uid).isdigit():
        return None
    return int(uid), int(gid or uid)


def _glob_escape(path: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in path)


def _sh_quote(text: str) -> str:
    return "'" + text.replace("'", "'\"'\"'") + "'"


@contextlib.contextmanager
def prepared(api: Any, spec: RunSpec) -> Iterator[ScratchRun | None]:
    run = prepare(api, spec)
    try:
        yield run
    finally:
        if run is not None:
            run.cleanup()
