from __future__ import annotations

import os
import sqlite3
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from replay.core.data import statcache
from replay.core.data.statcache import StatCache

SHA_A = "a" * 64
SHA_B = "b" * 64
OLD_NS = 1_600_000_000 * 10**9  # 2020: well outside the racy window


def fake_stat(ino: int = 1, dev: int = 2, size: int = 10, mtime_ns: int = OLD_NS) -> Any:
    return SimpleNamespace(st_ino=ino, st_dev=dev, st_size=size, st_mtime_ns=mtime_ns)


def rows(path: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT dev, ino, size, mtime_ns, sha256 FROM hashes ORDER BY ino").fetchall()


def test_default_path_follows_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("REPLAY_CACHE_DIR", str(tmp_path / "c"))
    assert statcache.default_path() == tmp_path / "c" / "statcache.sqlite"
    monkeypatch.delenv("REPLAY_CACHE_DIR")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert statcache.default_path() == tmp_path / "home" / ".cache" / "replay" / "statcache.sqlite"


def test_default_location_is_created(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("REPLAY_CACHE_DIR", str(tmp_path / "deep" / "cache"))
    with StatCache() as cache:
        cache.put(fake_stat(), SHA_A)
    assert rows(tmp_path / "deep" / "cache" / "statcache.sqlite") == [(2, 1, 10, OLD_NS, SHA_A)]


def test_uses_wal(tmp_path: Path) -> None:
    with StatCache(tmp_path / "s.sqlite"):
        pass
    with sqlite3.connect(tmp_path / "s.sqlite") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_hit_needs_same_size_and_mtime(tmp_path: Path) -> None:
    with StatCache(tmp_path / "s.sqlite") as cache:
        cache.put(fake_stat(), SHA_A)
        assert cache.get(fake_stat()) == SHA_A
        assert cache.get(fake_stat(size=11)) is None
        assert cache.get(fake_stat(mtime_ns=OLD_NS + 1)) is None
        assert cache.get(fake_stat(ino=3)) is None
        assert cache.get(fake_stat(dev=3)) is None


def test_put_replaces_the_entry_of_an_inode(tmp_path: Path) -> None:
    with StatCache(tmp_path / "s.sqlite") as cache:
        cache.put(fake_stat(), SHA_A)
        cache.flush()
        cache.put(fake_stat(size=20), SHA_B)
        assert cache.get(fake_stat()) is None
        assert cache.get(fake_stat(size=20)) == SHA_B
    assert rows(tmp_path / "s.sqlite") == [(2, 1, 20, OLD_NS, SHA_B)]


def test_writes_are_batched_until_flush(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    cache = StatCache(path)
    cache.put(fake_stat(), SHA_A)
    assert rows(path) == []  # queued, not committed
    cache.flush()
    assert rows(path) == [(2, 1, 10, OLD_NS, SHA_A)]
    cache.put(fake_stat(ino=5), SHA_B)
    cache.close()
    assert len(rows(path)) == 2
    cache.close()  # twice is fine
    assert cache.get(fake_stat()) is None  # and a closed cache just misses


def test_persists_across_instances(tmp_path: Path) -> None:
    with StatCache(tmp_path / "s.sqlite") as cache:
        cache.put(fake_stat(), SHA_A)
    with StatCache(tmp_path / "s.sqlite") as cache:
        assert cache.get(fake_stat()) == SHA_A


def test_inode_and_device_numbers_above_2_to_the_63(tmp_path: Path) -> None:
    big = fake_stat(ino=2**64 - 5, dev=2**63 + 7)
    with StatCache(tmp_path / "s.sqlite") as cache:
        cache.put(big, SHA_A)
    with StatCache(tmp_path / "s.sqlite") as cache:
        assert cache.get(big) == SHA_A
        assert cache.get(fake_stat(ino=2**63 - 5, dev=2**63 + 7)) is None


def test_racy_mtime_is_not_stored(tmp_path: Path) -> None:
    now = time.time_ns()
    with StatCache(tmp_path / "s.sqlite") as cache:
        cache.put(fake_stat(ino=1, mtime_ns=now), SHA_A)
        cache.put(fake_stat(ino=2, mtime_ns=now + 10**9), SHA_A)  # in the future: also untrusted
        cache.put(fake_stat(ino=3, mtime_ns=now - 3 * 10**9), SHA_A)
        assert cache.get(fake_stat(ino=1, mtime_ns=now)) is None
        assert cache.get(fake_stat(ino=3, mtime_ns=now - 3 * 10**9)) == SHA_A
    assert [r[1] for r in rows(tmp_path / "s.sqlite")] == [3]


def test_racy_guard_on_a_real_file(tmp_path: Path) -> None:
    data = tmp_path / "f"
    data.write_bytes(b"x")
    with StatCache(tmp_path / "s.sqlite") as cache:
        cache.put(os.stat(data), SHA_A)
        assert cache.get(os.stat(data)) is None
        os.utime(data, ns=(OLD_NS, OLD_NS))
        cache.put(os.stat(data), SHA_A)
        assert cache.get(os.stat(data)) == SHA_A


@pytest.mark.parametrize("junk", [b"this is not sqlite at all" * 100, b"SQLite format 3\x00" + b"\xff" * 4000, b""])
def test_corrupt_file_is_recreated(tmp_path: Path, junk: bytes) -> None:
    path = tmp_path / "s.sqlite"
    path.write_bytes(junk)
    with StatCache(path) as cache:
        assert cache.enabled
        cache.put(fake_stat(), SHA_A)
    assert rows(path) == [(2, 1, 10, OLD_NS, SHA_A)]


def test_file_of_another_schema_is_emptied(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE hashes (x TEXT)")
        conn.execute("INSERT INTO hashes VALUES ('old')")
    with StatCache(path) as cache:
        assert cache.enabled
        cache.put(fake_stat(), SHA_A)
    assert rows(path) == [(2, 1, 10, OLD_NS, SHA_A)]


def test_unusable_location_turns_caching_off(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file where a folder should be")
    cache = StatCache(blocker / "s.sqlite")
    assert not cache.enabled
    cache.put(fake_stat(), SHA_A)
    assert cache.get(fake_stat()) is None
    cache.flush()
    cache.close()


def test_damage_found_mid_run_does_not_raise(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    with StatCache(path) as cache:
        cache.put(fake_stat(), SHA_A)
        cache.flush()
        assert cache._conn is not None
        cache._conn.close()  # any sqlite3 error from here on
        assert cache.get(fake_stat()) is None
        cache.put(fake_stat(ino=9), SHA_B)
        cache.flush()
        assert not cache.enabled


def test_shared_between_threads(tmp_path: Path) -> None:
    errors: list[BaseException] = []
    with StatCache(tmp_path / "s.sqlite") as cache:

        def work(t: int) -> None:
            try:
                for i in range(300):
                    st = fake_stat(ino=t * 1000 + i)
                    cache.put(st, f"{t:032x}{i:032x}")
                    assert cache.get(st) == f"{t:032x}{i:032x}"
                    if i % 100 == 0:
                        cache.flush()
            except BaseException as exc:  # noqa: BLE001 - handed to the main thread
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert errors == []
    assert len(rows(tmp_path / "s.sqlite")) == 8 * 300


def test_file_damaged_while_open_is_recreated(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    with StatCache(path) as cache:
        cache.put(fake_stat(), SHA_A)
    with StatCache(path) as cache:
        assert cache.get(fake_stat()) == SHA_A
        path.write_bytes(b"junk" * 5000)
        for sidecar in (tmp_path / "s.sqlite-wal", tmp_path / "s.sqlite-shm"):
            if sidecar.exists():
                sidecar.write_bytes(b"\0" * 100)
        assert cache.get(fake_stat(ino=3)) is None
        assert cache.enabled
        cache.put(fake_stat(ino=4), SHA_B)
        cache.flush()
        assert cache.get(fake_stat(ino=4)) == SHA_B
    assert rows(path) == [(2, 4, 10, OLD_NS, SHA_B)]


def test_get_many_matches_get(tmp_path: Path) -> None:
    stats = [fake_stat(ino=i, size=i) for i in range(2000)]
    with StatCache(tmp_path / "s.sqlite") as cache:
        for st in stats[::2]:
            cache.put(st, f"{st.st_ino:064x}")
        cache.flush()
        cache.put(stats[1], SHA_B)  # still queued: seen too
        asked = [*stats, fake_stat(ino=4, size=5), fake_stat(ino=6, dev=9, size=6)]
        got = cache.get_many(asked)
        assert got == [cache.get(st) for st in asked]
        assert got[:4] == [f"{0:064x}", SHA_B, f"{2:064x}", None]
        assert got[-2:] == [None, None]  # other size; other device
        assert cache.get_many(stats) == got[:-2]  # one device: the path without a lookup per device
