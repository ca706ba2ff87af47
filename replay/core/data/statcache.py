"""A stat cache, like DVC's state database: remembers the sha256 of files whose stat has not changed.

A file is looked up by ``(st_dev, st_ino)`` and its hash is trusted only while ``st_size`` and ``st_mtime_ns``
are still the ones it was hashed with. The cache is an optimisation and nothing more: a corrupt file is
recreated, an unreadable or locked one turns caching off for the run, and no error from it ever reaches the
caller.

By design, content rewritten in place with the same size and then given back its old mtime (``os.utime``,
``touch -d``) is not noticed; this is the trade every stat cache (git's index, DVC, make) makes for speed.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

CACHE_DIR_ENV = "REPLAY_CACHE_DIR"
CACHE_FILE_NAME = "statcache.sqlite"
# Bump when the table layout changes: a file of another version is emptied, not migrated.
# 2: WITHOUT ROWID, so that a range of (dev, ino) is one sequential read (see get_many).
SCHEMA_VERSION = 2
# A file modified less than this long ago may still change within the same mtime tick (1 s on ext3, 2 s
# on FAT), so its hash is not stored: a later write would leave the same stat and a stale hash (git's
# "racy git" problem).
RACY_WINDOW_NS = 2_000_000_000
# Writes are kept in memory and committed in one transaction; past this many, commit early.
MAX_PENDING = 20_000
# How long to wait on another process's write lock before giving up on caching.
BUSY_TIMEOUT_S = 2.0
# Inodes per lookup query in get_many; SQLite before 3.32 allows at most 999 parameters.
QUERY_BATCH = 900
# get_many reads a range of rows, but no more than this many per file asked for (see get_many).
SCAN_ROWS_PER_FILE = 2

_TOP_BIT, _WRAP = 1 << 63, 1 << 64
_SELECT = "SELECT ino, size, mtime_ns, sha256 FROM hashes WHERE dev = ?"
_SCAN = f"{_SELECT} AND ino BETWEEN ? AND ? ORDER BY ino LIMIT ?"
_Row = tuple[int, int, int, str]  # ino (as stored), size, mtime_ns, sha256
_SQLITE_CORRUPT_CODES = {11, 26}  # SQLITE_CORRUPT, SQLITE_NOTADB


def default_path() -> Path:
    """``$REPLAY_CACHE_DIR/statcache.sqlite``, else ``~/.cache/replay/statcache.sqlite``."""
    root = os.environ.get(CACHE_DIR_ENV)
    base = Path(root).expanduser() if root else Path.home() / ".cache" / "replay"
    return base / CACHE_FILE_NAME


# SQLite integers are signed 64-bit; inode and device numbers may use the top bit.
def _signed(n: int) -> int:
    return n - _WRAP if n >= _TOP_BIT else n


def _unsigned(n: int) -> int:
    return n + _WRAP if n < 0 else n


def _key(st: os.stat_result) -> tuple[int, int]:
    return _signed(st.st_dev), _signed(st.st_ino)


def _read(conn: sqlite3.Connection, dev: int, inodes: list[int]) -> dict[int, _Row]:
    """The rows the cache holds for these inodes of ``dev`` (and maybe others), by inode (see get_many)."""
    table: dict[int, _Row] = {}
    rest = inodes
    if max(inodes) < _TOP_BIT:  # else (rare) the range is not one range once stored signed: no scan
        limit = SCAN_ROWS_PER_FILE * len(inodes)
        rows = conn.execute(_SCAN, (_signed(dev), min(inodes), max(inodes), limit)).fetchall()
        table = {row[0]: row for row in rows}
        if len(rows) < limit:
            return table
        rest = [ino for ino in inodes if ino > rows[-1][0]]
    for i in range(0, len(rest), QUERY_BATCH):
        chunk = [_signed(ino) for ino in rest[i : i + QUERY_BATCH]]
        query = f"{_SELECT} AND ino IN ({','.join('?' * len(chunk))})"
        for row in conn.execute(query, (_signed(dev), *chunk)):
            table[_unsigned(row[0])] = row
    return table


def _is_corrupt(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return (code & 0xFF) in _SQLITE_CORRUPT_CODES
    # Python < 3.11 has no error code: corruption is the only plain DatabaseError sqlite3 raises here.
    return type(exc) is sqlite3.DatabaseError


class StatCache:
    """``(device, inode, size, mtime_ns) -> sha256 hex``, in SQLite (WAL), safe to share between threads.

    One connection, guarded by a lock: lookups take microseconds, so the lock is never the bottleneck next
    to reading files. ``put`` only queues; ``flush`` (or ``close``, or leaving the ``with`` block) commits.
    """

    def __init__(self, path: Path | None = None) -> None:
        self.path = path if path is not None else default_path()
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._pending: dict[tuple[int, int], tuple[int, int, str]] = {}
        self._open()

    # --- public ------------------------------------------------------------------------------------

    @property
    def enabled(self) -> bool:
        """False when the cache file could not be opened or recreated: every ``get`` misses."""
        return self._conn is not None

    def get(self, st: os.stat_result) -> str | None:
        key = _key(st)
        with self._lock:
            row: tuple[int, int, str] | None = self._pending.get(key)
            if row is None and self._conn is not None:
                try:
                    row = self._conn.execute(
                        "SELECT size, mtime_ns, sha256 FROM hashes WHERE dev = ? AND ino = ?", key
                    ).fetchone()
                except sqlite3.Error as exc:
                    self._failed(exc)
                    return None
        if row is None or row[0] != st.st_size or row[1] != st.st_mtime_ns:
            return None
        return row[2]

    def get_many(self, stats: Sequence[os.stat_result]) -> list[str | None]:
        """``get`` for many files at once, in a few queries instead of one per file.

        The rows of each device are read as one range, from the lowest inode asked for to the highest:
        with the data and the cache as they usually are, that range holds little but the files asked for,
        and reading it costs half as much per file as looking inodes up a few hundred at a time. Should
        the range hold far more (a cache that knows many other files on that device), the read stops
        after ``SCAN_ROWS_PER_FILE`` rows per file asked for, and the inodes it did not reach are looked
        up a few hundred at a time.
        """
        devs = [st.st_dev for st in stats]
        inodes = [st.st_ino for st in stats]
        one_dev = len(devs) > 0 and devs.count(devs[0]) == len(devs)  # the usual case: no loop in Python
        by_dev: dict[int, list[int]] = {devs[0]: inodes} if one_dev else {}
        for dev, ino in [] if one_dev else zip(devs, inodes, strict=True):
            by_dev.setdefault(dev, []).append(ino)
        tables: dict[int, dict[int, _Row]] = {}
        with self._lock:
            if self._conn is not None:
                try:
                    tables = {dev: _read(self._conn, dev, asked) for dev, asked in by_dev.items()}
                except sqlite3.Error as exc:
                    self._failed(exc)
                    tables = {}
            tables = {dev: tables.get(dev, {}) for dev in by_dev}
            for (dev, ino), (size, mtime_ns, sha) in self._pending.items():
                if (table := tables.get(_unsigned(dev))) is not None:
                    table[_unsigned(ino)] = (ino, size, mtime_ns, sha)
        if one_dev:  # the same test as below, without a lookup of the device per file
            get = tables[devs[0]].get
            return [
                row[3] if (row := get(st.st_ino)) is not None and row[1] == st.st_size and row[2] == st.st_mtime_ns else None
                for st in stats
            ]
        return [
            row[3]
            if (row := tables[st.st_dev].get(st.st_ino)) is not None
            and row[1] == st.st_size
            and row[2] == st.st_mtime_ns
            else None
            for st in stats
        ]

    def put(self, st: os.stat_result, sha256: str) -> None:
        """Remember ``sha256`` for this stat, unless the file changed too recently to be trusted."""
        if time.time_ns() - st.st_mtime_ns < RACY_WINDOW_NS:
            return
        key = _key(st)
        with self._lock:
            if self._conn is None:
                return
            self._pending[key] = (st.st_size, st.st_mtime_ns, sha256)
            if len(self._pending) >= MAX_PENDING:
                self._commit()

    def flush(self) -> None:
        with self._lock:
            self._commit()

    def close(self) -> None:
        with self._lock:
            self._commit()
            if self._conn is not None:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.close()
                self._conn = None

    def __enter__(self) -> StatCache:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    # --- private (callers hold the lock, except during __init__) -----------------------------------

    def _open(self) -> None:
        try:
            self._conn = self._connect()
        except sqlite3.Error as exc:
            if _is_corrupt(exc):
                self._recreate()
        except OSError:
            pass  # no home, read-only file system...: run without a cache

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: transactions are begun and committed explicitly in _commit.
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, check_same_thread=False, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            # NORMAL is durable enough in WAL mode: a crash can lose the last commit, never corrupt.
            conn.execute("PRAGMA synchronous=NORMAL")
            if conn.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
                # Under the write lock, and checked again: two processes may be creating it at once.
                conn.execute("BEGIN IMMEDIATE")
                if conn.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
                    conn.execute("DROP TABLE IF EXISTS hashes")
                    conn.execute(
                        "CREATE TABLE hashes (dev INTEGER NOT NULL, ino INTEGER NOT NULL,"
                        " size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, sha256 TEXT NOT NULL,"
                        " PRIMARY KEY (dev, ino)) WITHOUT ROWID"
                    )
                    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                conn.execute("COMMIT")
            # Reading the table once finds a damaged file now rather than mid-run.
            conn.execute("SELECT 1 FROM hashes LIMIT 1").fetchone()
        except BaseException:
            conn.close()
            raise
        return conn

    def _recreate(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()
            self._conn = None
        try:
            for suffix in ("", "-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(f"{self.path}{suffix}")
            self._conn = self._connect()
        except (OSError, sqlite3.Error):
            self._conn = None

    def _failed(self, exc: sqlite3.Error) -> None:
        """A query failed mid-run: start afresh if the file is damaged, else stop caching for this run."""
        self._pending.clear()
        if _is_corrupt(exc):
            self._recreate()
        elif self._conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()
            self._conn = None

    def _commit(self) -> None:
        if self._conn is None or not self._pending:
            self._pending.clear()
            return
        rows = [(dev, ino, size, mtime, sha) for (dev, ino), (size, mtime, sha) in self._pending.items()]
        self._pending.clear()
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            self._conn.executemany("INSERT OR REPLACE INTO hashes VALUES (?, ?, ?, ?, ?)", rows)
            self._conn.execute("COMMIT")
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                self._conn.execute("ROLLBACK")
            self._failed(exc)
