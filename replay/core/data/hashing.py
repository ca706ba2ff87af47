"""Streaming sha256 of files and trees into a ``DataManifest``, and checking local data against one.

How a tree is walked (capture and verify walk alike, so this is part of the manifest's contract):

- Each given path is a file or a folder. Folders are walked recursively and every regular file in them
  becomes one ``FileEntry``; nothing is skipped by name (hidden files and ``.git`` are data too).
- A symlinked file is hashed by its content and recorded under the link's own path.
- A symlinked folder is followed, so a ``data -> /mnt/datasets/x`` link is hashed like the folder it
  names, except a link back to a folder it sits in (a loop): that one is skipped with a warning, since its
  files are already recorded under their own path.
- Broken links, sockets, FIFOs and devices inside a folder are skipped with a warning.
- With ``record_links``, every symlink inside a folder is also kept as a ``LinkEntry`` (its target, and
  whether it stays inside its root on this host and in the container, where the root is mounted alone).

That is the contract for DATA, which the user names. What someone else made (replayed outputs, written by
the capsule's command; a capsule's reference copies) is hashed with ``hash_nofollow`` instead: no link is
followed, not even as a root, and links, FIFOs, sockets and devices are reported as odd entries, never
opened.

Paths are recorded POSIX-style, relative to ``base`` when inside it, else absolute.
"""

from __future__ import annotations

import errno
import hashlib
import itertools
import os
import stat
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from operator import attrgetter
from pathlib import Path

from replay.core.data.diff import ManifestDiff, diff_links, diff_manifests
from replay.core.data.statcache import StatCache
from replay.core.data.walk import READ_HINT as _READ_HINT
from replay.core.data.walk import Item, Link, Odd, describe, join, link_entry, locate, walk
from replay.core.events import NullReporter, Reporter
from replay.errors import BadInput
from replay.gcpause import paused_gc
from replay.manifest import DataManifest, FileEntry, LinkEntry
from replay.safefs import NotRegular

# Small enough to stay in any x86 core's L2 cache (AMD EPYC's is 512 KiB a core, older Intel's 256 KiB):
# a buffer larger than L2 is evicted between the read that fills it and the hash that reads it, which cost
# a 1 MiB buffer a third of OpenSSL's speed on EPYC (benchmarks/bench_hash.py prints every size side by
# side). Still far above the 2 KiB past which hashlib drops the GIL for the whole update.
CHUNK_SIZE = 64 << 10
# At most this often a progress update reaches the reporter (20 per second).
PROGRESS_INTERVAL_S = 0.05
# Small files go to the pool in batches: one task per 30 KiB file would cost more than the hashing.
BATCH_BYTES = 16 << 20
BATCH_FILES = 256
# tree_digest encodes and hashes this many lines at a time.
_DIGEST_LINES = 4096

_local = threading.local()


_NOFOLLOW_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | os.O_CLOEXEC


def hash_file(path: str | os.PathLike[str], on_bytes: Callable[[int], None] | None = None,
              nofollow: bool = False) -> tuple[int, str]:
    """Return ``(size, sha256 hex)`` of a file, read in chunks; ``on_bytes(n)`` after every chunk.

    With ``nofollow`` a link in the last component is refused (``NotRegular``), and so is anything the
    opened descriptor shows is not a regular file (a FIFO is opened non-blocking, so it cannot hang us).
    """
    buf, view = _buffer()
    digest = hashlib.sha256()
    size = 0
    # Plain os calls rather than open(): each system call hands the GIL over, so fewer of them lets small
    # files hash in parallel threads better (FileIO adds an fstat per file).
    try:
        fd = os.open(path, _NOFOLLOW_FLAGS if nofollow else os.O_RDONLY)
    except OSError as exc:
        if nofollow and exc.errno == errno.ELOOP:
            raise NotRegular(str(path), "a symbolic link") from None
        raise
    try:
        if nofollow:
            mode = os.fstat(fd).st_mode
            if not stat.S_ISREG(mode):
                raise NotRegular(str(path), describe(mode))
        while n := os.readv(fd, [buf]):
            digest.update(view[:n])
            if size == 0 and n == len(buf) and hasattr(os, "posix_fadvise"):
                # A big file: ask for aggressive read-ahead, which lets a cold read keep up with the hash.
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
            size += n
            if on_bytes is not None:
                on_bytes(n)
    finally:
        os.close(fd)
    return size, digest.hexdigest()


def tree_digest(files: Iterable[FileEntry]) -> str:
    """One digest over a set of files. The format is a contract: manifests on disk carry it.

    ``"sha256:" + sha256(b"".join(lines)).hexdigest()`` with one line per file::

        <path> NUL <size in decimal ASCII> NUL <sha256, 64 lowercase hex> LF

    each line UTF-8 encoded (undecodable bytes of a file name kept as they were, as ``os.fsencode`` does)
    and the lines sorted bytewise. Renaming, resizing or changing any file, or adding or removing one,
    changes the digest; the order the files are given in does not.
    """
    lines = sorted([f"{f.path}\0{f.size}\0{f.sha256}\n" for f in files])
    digest = hashlib.sha256()
    try:
        # UTF-8 keeps the order of text made of valid characters, so lines sorted as text are sorted as
        # bytes too, and can be encoded and hashed many at a time.
        for i in range(0, len(lines), _DIGEST_LINES):
            digest.update("".join(lines[i : i + _DIGEST_LINES]).encode("utf-8"))
    except UnicodeEncodeError:  # undecodable bytes kept in a name: those sort otherwise as bytes
        digest = hashlib.sha256()
        for line in sorted([_encode(line) for line in lines]):
            digest.update(line)
    return "sha256:" + digest.hexdigest()


def hash_paths(
    paths: Sequence[Path],
    base: Path,
    cache: StatCache | None = None,
    reporter: Reporter | None = None,
    workers: int | None = None,
    what: str = "data",
    record_links: bool = False,
) -> DataManifest:
    """Hash every file under ``paths`` into a manifest whose roots are ``paths`` in recorded form.

    Relative ``paths`` are taken from the current folder; ``what`` names them in errors ("data path x does
    not exist"). A file reached through two roots is recorded once. With ``record_links`` the manifest's
    ``links`` lists every symlink met inside the folders.
    """
    rep = reporter if reporter is not None else NullReporter()
    roots: list[Item] = []
    for path in paths:
        local, record = locate(path, base)
        try:
            st = os.stat(local)
        except (FileNotFoundError, NotADirectoryError):
            raise BadInput(
                f"{what} path {path} does not exist", "check the path; a relative one starts from the current folder"
            ) from None
        except OSError as exc:
            raise BadInput(f"cannot read {what} path {path} ({exc.strerror})", _READ_HINT) from None
        roots.append((local, record, st))
    links: list[LinkEntry] | None = [] if record_links else None
    files = _hash_roots(roots, cache, rep, workers, what, first_wins=True, links=links)
    return DataManifest(roots=sorted({record for _, record, _ in roots}), files=files, digest=tree_digest(files),
                        links=links)


def hash_nofollow(paths: Sequence[str], base: Path, cache: StatCache | None = None,
                  what: str = "output") -> tuple[DataManifest, list[Odd]]:
    """Hash what someone else made under ``base`` (``paths`` relative to it), following no link at all.

    Returns the regular files, and the odd entries (links, FIFOs, sockets, devices, and a path whose folder
    on the way is a link), each with what it is; an odd entry is never opened. Missing paths are left out.
    """
    roots: list[Item] = []
    odd: list[Odd] = []
    for rel in paths:
        st, why = lstat_beneath(base, rel)
        if why:
            odd.append((rel, why))
        elif st is not None:
            roots.append((os.path.join(base, rel), rel, st))
    files = _hash_roots(roots, cache, NullReporter(), None, what, first_wins=True, odd=odd)
    return DataManifest(roots=sorted(paths), files=files, digest=tree_digest(files)), sorted(set(odd))


def lstat_beneath(base: Path, rel: str) -> tuple[os.stat_result | None, str]:
    """The lstat of ``base/rel`` taken one component at a time, and "" ; or what is wrong on the way.

    None and "" when it does not exist. A folder on the way that is a link (or not a folder) is wrong: the
    path would lead out of ``base``.
    """
    parts = [p for p in rel.split("/") if p not in ("", ".")]
    if rel.startswith("/") or ".." in parts or not parts:
        return None, "a path that leaves its folder"
    here = str(base)
    for i, name in enumerate(parts):
        here = os.path.join(here, name)
        try:
            st = os.lstat(here)
        except (FileNotFoundError, NotADirectoryError):
            return None, ""
        if i == len(parts) - 1:
            return st, ""
        if not stat.S_ISDIR(st.st_mode):
            return None, f"under {'/'.join(parts[: i + 1])}, which is {describe(st.st_mode, here)}"
    return None, ""  # pragma: no cover - the loop returns


def check_data(
    expected: DataManifest,
    base: Path,
    mapping: dict[str, Path] | None = None,
    cache: StatCache | None = None,
    reporter: Reporter | None = None,
    workers: int | None = None,
) -> ManifestDiff:
    """Hash the local copy of each recorded root and diff it against ``expected``.

    A root is looked for under ``base`` (or at its absolute path), or at ``mapping[root]`` when given: the
    files recorded under that root are then looked up under the mapped file or folder. A root that is not
    there makes all its files missing; local files under a root that the manifest lacks are extra. Where
    roots overlap, a mapped root wins over an unmapped one.
    """
    rep = reporter if reporter is not None else NullReporter()
    given = {_normalise(k): Path(v) for k, v in (mapping or {}).items()}
    unknown = sorted(set(given) - set(expected.roots))
    if unknown:
        raise BadInput(
            f"{unknown[0]} is not a data root of this capsule",
            f"its data roots are: {', '.join(expected.roots) or '(none)'}",
        )
    roots: list[Item] = []
    for root in sorted(expected.roots, key=lambda r: (r in given, r)):
        local = os.path.abspath(given[root] if root in given else base / root)
        try:
            st = os.stat(local)
        except (FileNotFoundError, NotADirectoryError):
            continue  # every file recorded under it comes out missing
        except OSError as exc:
            raise BadInput(f"cannot read data path {local} ({exc.strerror})", _READ_HINT) from None
        roots.append((local, root, st))
    links: list[LinkEntry] = []
    files = _hash_roots(roots, cache, rep, workers, "data", first_wins=False, links=links)
    # No tree digest: the diff compares file by file, and the digest of 100,000 entries costs a quarter second.
    diff = diff_manifests(expected, DataManifest(roots=list(expected.roots), files=files))
    diff.links = diff_links(expected.links, links)
    return diff


# --- recorded paths (the walk itself lives in walk.py) ------------------------------------------------


def _encode(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def _normalise(record: str) -> str:
    return Path(os.path.normpath(record)).as_posix()


# --- hashing in a pool ---------------------------------------------------------------------------------


class _Stopped(Exception):
    """Raised inside workers once the caller has given up (an error elsewhere, or Ctrl-C)."""


class _Tally:
    """Bytes hashed by one batch. Only the worker running that batch writes it, so it needs no lock (a
    shared locked counter, taken once per file, made the threads queue on it)."""

    def __init__(self, stop: threading.Event) -> None:
        self.bytes = 0
        self._stop = stop

    def add(self, n: int) -> None:
        if self._stop.is_set():
            raise _Stopped
        self.bytes += n


def _buffer() -> tuple[bytearray, memoryview]:
    # One buffer per thread, reused: allocating a buffer per small file would cost more than hashing it.
    cached: tuple[bytearray, memoryview] | None = getattr(_local, "buffer", None)
    if cached is None:
        buf = bytearray(CHUNK_SIZE)
        cached = _local.buffer = (buf, memoryview(buf))
    return cached


def _workers(requested: int | None) -> int:
    if requested:
        return max(1, requested)
    # The CPUs this process may run on, which in a container or under taskset is fewer than cpu_count.
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _batches(items: list[Item]) -> list[list[Item]]:
    # Largest first, so that a big file starts at once and the small ones fill the other cores around it.
    items = sorted(items, key=lambda i: i[2].st_size, reverse=True)
    out: list[list[Item]] = []
    batch: list[Item] = []
    size = 0
    for item in items:
        batch.append(item)
        size += item[2].st_size
        if size >= BATCH_BYTES or len(batch) >= BATCH_FILES:
            out.append(batch)
            batch, size = [], 0
    if batch:
        out.append(batch)
    return out


def _hash_batch(batch: list[Item], tally: _Tally, nofollow: bool = False) -> list[tuple[Item, int, str, bool]]:
    out = []
    for item in batch:
        local, _, before = item
        try:
            size, sha = hash_file(local, tally.add, nofollow=nofollow)
            after = os.lstat(local) if nofollow else os.stat(local)
        except OSError as exc:
            raise BadInput(f"cannot read {local} ({exc.strerror or exc})", _READ_HINT) from None
        stable = size == before.st_size == after.st_size and before.st_mtime_ns == after.st_mtime_ns
        out.append((item, size, sha, stable and before.st_ino == after.st_ino))
    return out


def _hash_roots(
    roots: list[Item], cache: StatCache | None, reporter: Reporter, workers: int | None, what: str, first_wins: bool,
    links: list[LinkEntry] | None = None, odd: list[Odd] | None = None,
) -> list[FileEntry]:
    """The entries of every file under ``roots`` (each ``(local, record, stat)``), sorted by path.

    Where roots overlap, the first root to reach a file records it if ``first_wins``, else the last. With
    ``links``, the symlinks met are appended there; with ``odd``, nothing is followed (see ``walk``).
    """
    with paused_gc():
        entries, todo, total = _walk_and_look_up(roots, cache, what, reporter.warn, first_wins, links, odd)
    done = total - sum([item[2].st_size for item in todo])
    # Only this (the calling) thread talks to the reporter; workers just count bytes.
    reporter.progress("hashing", done, total)
    if todo:
        _hash_in_pool(todo, entries, cache, reporter, workers, what, done, total, nofollow=odd is not None)
        reporter.progress("hashing", total, total)
    if cache is not None:
        cache.flush()
    entries.sort(key=attrgetter("path"))
    return entries


def _walk_and_look_up(
    roots: list[Item], cache: StatCache | None, what: str, warn: Callable[[str], None], first_wins: bool,
    links: list[LinkEntry] | None = None, odd: list[Odd] | None = None,
) -> tuple[list[FileEntry], list[Item], int]:
    """Walk the roots and ask the cache: the entries of the files it knows, the files left to hash, and the
    bytes of all. With the cache warm, this is all the work a check does, and all of it is per file."""
    walks = []
    for local, record, st in roots:
        met: list[Link] | None = [] if links is not None else None
        walks.append(walk(local, record, st, what, warn, links=met, odd=odd))
        if links is not None and met:
            seen = {link.path for link in links}
            links.extend(link_entry(link, local, record) for link in met if link[0] not in seen)
    if links is not None:
        links.sort(key=attrgetter("path"))
    items: list[Item] = list(itertools.chain.from_iterable(walks))
    if _overlap([record for _, record, _ in roots]):  # a file may have been reached twice: keep one
        by_path: dict[str, Item] = {}
        for found in reversed(walks) if first_wins else walks:
            by_path.update({item[1]: item for item in found})
        items = list(by_path.values())
    stats = [item[2] for item in items]
    total = sum([st.st_size for st in stats])
    if cache is None:
        return [], items, total
    known = cache.get_many(stats)
    entries = [FileEntry(i[1], i[2].st_size, sha) for i, sha in zip(items, known, strict=True) if sha is not None]
    todo = [i for i, sha in zip(items, known, strict=True) if sha is None] if len(entries) < len(items) else []
    return entries, todo, total


def _overlap(records: list[str]) -> bool:
    """Whether two roots may hold the same file: one of them is, or is inside, the other."""
    prefixes = [join(record, "") for record in records]
    return any(
        i != j and (a == b or a.startswith(prefix))
        for i, a in enumerate(records)
        for j, (b, prefix) in enumerate(zip(records, prefixes, strict=True))
    )


def _hash_in_pool(
    todo: list[Item],
    entries: list[FileEntry],
    cache: StatCache | None,
    reporter: Reporter,
    workers: int | None,
    what: str,
    done: int,
    total: int,
    nofollow: bool = False,
) -> None:
    """Hash ``todo`` in a thread pool, appending to ``entries`` and filling ``cache`` as batches finish."""
    batches = _batches(todo)
    stop = threading.Event()
    tallies = [_Tally(stop) for _ in batches]
    pool = ThreadPoolExecutor(max_workers=min(_workers(workers), len(batches)), thread_name_prefix="hash")
    try:
        pending: set[Future[list[tuple[Item, int, str, bool]]]] = {
            pool.submit(_hash_batch, batch, tally, nofollow) for batch, tally in zip(batches, tallies, strict=True)
        }
        last = done
        while pending:
            finished, pending = wait(pending, timeout=PROGRESS_INTERVAL_S, return_when=FIRST_EXCEPTION)
            for future in finished:
                for (_, path, st), size, sha, stable in future.result():
                    entries.append(FileEntry(path, size, sha))
                    if not stable:
                        reporter.warn(f"{what} file {path} changed while it was being hashed")
                    elif cache is not None:
                        cache.put(st, sha)
            now = done + sum(t.bytes for t in tallies)
            if now != last and pending:
                last = now
                reporter.progress("hashing", now, total)
    finally:
        stop.set()  # a no-op once all is done; on an error it ends the running batches early
        pool.shutdown(wait=True, cancel_futures=True)
