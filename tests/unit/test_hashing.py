from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest

from replay.core.data import hashing
from replay.core.data.hashing import check_data, diff_manifests, hash_file, hash_paths, tree_digest
from replay.core.data.statcache import StatCache
from replay.core.events import RecordingReporter
from replay.errors import BadInput
from replay.manifest import DataManifest, FileEntry

EMPTY = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
ABC = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
OLD_NS = 1_600_000_000 * 10**9


def write(path: Path, data: bytes | str, old: bool = True) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    if old:  # outside the stat cache's racy window, so that it stores the hash
        os.utime(path, ns=(OLD_NS, OLD_NS))
    return path


class ProgressReporter(RecordingReporter):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, float, float | None]] = []

    def progress(self, task: str, completed: float, total: float | None = None) -> None:
        self.calls.append((task, completed, total))


# --- hash_file and tree_digest ----------------------------------------------------------------------


def test_hash_file_known_values(tmp_path: Path) -> None:
    assert hash_file(write(tmp_path / "empty", b"")) == (0, EMPTY)
    assert hash_file(write(tmp_path / "abc", b"abc")) == (3, ABC)


def test_hash_file_across_chunks(tmp_path: Path) -> None:
    data = os.urandom(hashing.CHUNK_SIZE * 2 + 12345)
    seen: list[int] = []
    assert hash_file(write(tmp_path / "big", data), seen.append) == (len(data), hashlib.sha256(data).hexdigest())
    assert sum(seen) == len(data) and len(seen) == 3


def test_tree_digest_format() -> None:
    files = [FileEntry("b", 3, ABC), FileEntry("a/x", 0, EMPTY)]
    text = f"a/x\x000\x00{EMPTY}\nb\x003\x00{ABC}\n".encode()
    assert tree_digest(files) == "sha256:" + hashlib.sha256(text).hexdigest()
    assert tree_digest(reversed(files)) == tree_digest(files)
    assert tree_digest([]) == "sha256:" + EMPTY


@pytest.mark.parametrize(
    "changed",
    [
        [FileEntry("a", 3, ABC), FileEntry("c", 0, EMPTY)],  # renamed
        [FileEntry("a", 4, ABC), FileEntry("b", 0, EMPTY)],  # resized
        [FileEntry("a", 3, EMPTY), FileEntry("b", 0, EMPTY)],  # new content
        [FileEntry("a", 3, ABC)],  # removed
        [FileEntry("a", 3, ABC), FileEntry("b", 0, EMPTY), FileEntry("d", 0, EMPTY)],  # added
    ],
)
def test_tree_digest_changes(changed: list[FileEntry]) -> None:
    assert tree_digest(changed) != tree_digest([FileEntry("a", 3, ABC), FileEntry("b", 0, EMPTY)])


# --- hash_paths ------------------------------------------------------------------------------------


def test_relative_inside_base_absolute_outside(tmp_path: Path) -> None:
    base, outside = tmp_path / "proj", tmp_path / "elsewhere"
    write(base / "data" / "a.txt", "abc")
    write(outside / "b.bin", "")
    m = hash_paths([base / "data", outside / "b.bin"], base)
    assert m.roots == [(outside / "b.bin").as_posix(), "data"]  # sorted: "/" before "d"
    assert m.files == [FileEntry((outside / "b.bin").as_posix(), 0, EMPTY), FileEntry("data/a.txt", 3, ABC)]
    assert m.digest == tree_digest(m.files)


def test_relative_paths_start_from_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "proj" / "data" / "a.txt", "abc")
    monkeypatch.chdir(tmp_path / "proj" / "data")
    m = hash_paths([Path("a.txt")], tmp_path / "proj")
    assert (m.roots, m.files) == (["data/a.txt"], [FileEntry("data/a.txt", 3, ABC)])


def test_base_itself_as_root(tmp_path: Path) -> None:
    write(tmp_path / "x" / "y", "abc")
    m = hash_paths([tmp_path], tmp_path)
    assert m.roots == ["."]
    assert [f.path for f in m.files] == ["x/y"]


def test_walk_is_recursive_and_sorted(tmp_path: Path) -> None:
    for name in ["b", "a/z", "a/b/c", "a-b", "A", ".hidden/x", "é", "a/b/a"]:
        write(tmp_path / "d" / name, name)
    m = hash_paths([tmp_path / "d"], tmp_path)
    names = ["A", "a-b", "a/b/a", "a/b/c", "a/z", "b", ".hidden/x", "é"]
    assert [f.path for f in m.files] == sorted(f"d/{n}" for n in names)
    assert {f.path: f.sha256 for f in m.files}["d/a/b/c"] == hashlib.sha256(b"a/b/c").hexdigest()


def test_digest_is_stable_and_follows_any_change(tmp_path: Path) -> None:
    for i in range(20):
        write(tmp_path / "d" / f"f{i}", f"content {i}")
    first = hash_paths([tmp_path / "d"], tmp_path).digest
    assert hash_paths([tmp_path / "d"], tmp_path).digest == first
    write(tmp_path / "d" / "f7", "content 8")  # same size, one byte differs
    second = hash_paths([tmp_path / "d"], tmp_path).digest
    assert second != first
    (tmp_path / "d" / "f7").rename(tmp_path / "d" / "g7")
    assert hash_paths([tmp_path / "d"], tmp_path).digest not in (first, second)


def test_many_files_same_result_with_any_pool_size(tmp_path: Path) -> None:
    for i in range(600):
        write(tmp_path / "d" / f"{i % 7}" / f"{i}.bin", os.urandom(i * 37))
    one = hash_paths([tmp_path / "d"], tmp_path, workers=1)
    four = hash_paths([tmp_path / "d"], tmp_path, workers=4)
    assert one == four and len(one.files) == 600
    assert one.total_bytes == sum(i * 37 for i in range(600))


def test_overlapping_roots_record_each_file_once(tmp_path: Path) -> None:
    write(tmp_path / "d" / "sub" / "x", "abc")
    m = hash_paths([tmp_path / "d", tmp_path / "d" / "sub"], tmp_path)
    assert m.roots == ["d", "d/sub"]
    assert m.files == [FileEntry("d/sub/x", 3, ABC)]


def test_symlinks(tmp_path: Path) -> None:
    write(tmp_path / "real" / "r.txt", "abc")
    write(tmp_path / "d" / "f", "")
    (tmp_path / "d" / "link.txt").symlink_to(tmp_path / "real" / "r.txt")
    (tmp_path / "d" / "linkdir").symlink_to(tmp_path / "real")
    (tmp_path / "d" / "loop").symlink_to(tmp_path / "d")
    (tmp_path / "d" / "broken").symlink_to(tmp_path / "nowhere")
    reporter = RecordingReporter()
    m = hash_paths([tmp_path / "d"], tmp_path, reporter=reporter)
    assert m.files == [
        FileEntry("d/f", 0, EMPTY),
        FileEntry("d/link.txt", 3, ABC),
        FileEntry("d/linkdir/r.txt", 3, ABC),
    ]
    assert any("d/loop" in w for w in reporter.warnings)
    assert any("d/broken" in w for w in reporter.warnings)


def test_symlinked_root_folder_is_followed(tmp_path: Path) -> None:
    write(tmp_path / "store" / "x", "abc")
    (tmp_path / "proj").mkdir()
    (tmp_path / "proj" / "data").symlink_to(tmp_path / "store")
    m = hash_paths([tmp_path / "proj" / "data"], tmp_path / "proj")
    assert (m.roots, m.files) == (["data"], [FileEntry("data/x", 3, ABC)])


@pytest.mark.parametrize("what", ["data", "output"])
def test_missing_path_is_bad_input(tmp_path: Path, what: str) -> None:
    with pytest.raises(BadInput, match=f"^{what} path .*nope does not exist$") as info:
        hash_paths([tmp_path / "nope"], tmp_path, what=what)
    assert info.value.hint


def test_unreadable_file_is_bad_input(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for i in range(10):
        write(tmp_path / "d" / f"f{i}", "abc")
    real = hashing.hash_file

    def flaky(path: str, on_bytes: object = None, nofollow: bool = False) -> tuple[int, str]:
        if str(path).endswith("f3"):
            raise PermissionError(13, "Permission denied")
        return real(path, on_bytes)  # type: ignore[arg-type]

    monkeypatch.setattr(hashing, "hash_file", flaky)
    with pytest.raises(BadInput, match="f3 .Permission denied"):
        hash_paths([tmp_path / "d"], tmp_path)


def test_progress_is_reported_and_throttled(tmp_path: Path) -> None:
    for i in range(50):
        write(tmp_path / "d" / f"f{i}", os.urandom(100_000))
    write(tmp_path / "d" / "big", os.urandom(hashing.CHUNK_SIZE * 8))
    total = 50 * 100_000 + hashing.CHUNK_SIZE * 8
    reporter = ProgressReporter()
    start = time.monotonic()
    hash_paths([tmp_path / "d"], tmp_path, reporter=reporter, workers=2)
    elapsed = time.monotonic() - start
    assert reporter.calls[0] == ("hashing", 0, total)
    assert reporter.calls[-1] == ("hashing", total, total)
    done = [c[1] for c in reporter.calls]
    assert done == sorted(done)
    # Far fewer updates than chunks (58): one per progress interval, plus the first and the last.
    assert len(reporter.calls) <= 3 + elapsed / hashing.PROGRESS_INTERVAL_S


# --- the stat cache in use ------------------------------------------------------------------------------


def test_cache_hit_skips_reading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "d" / "a", "abc")
    write(tmp_path / "d" / "b", "")
    with StatCache(tmp_path / "cache.sqlite") as cache:
        first = hash_paths([tmp_path / "d"], tmp_path, cache=cache)

        def no_reading(*args: object) -> tuple[int, str]:
            raise AssertionError("read a file the cache knows")

        monkeypatch.setattr(hashing, "hash_file", no_reading)
        assert hash_paths([tmp_path / "d"], tmp_path, cache=cache) == first


def test_cache_trusts_size_and_mtime(tmp_path: Path) -> None:
    f = write(tmp_path / "d" / "a", "abc")
    with StatCache(tmp_path / "cache.sqlite") as cache:
        assert hash_paths([f], tmp_path, cache=cache).files[0].sha256 == ABC
        write(f, "xyz")  # same size, and the mtime put back: by design the cache cannot tell
        assert hash_paths([f], tmp_path, cache=cache).files[0].sha256 == ABC
        write(f, "xyz", old=False)  # a new mtime: hashed again
        assert hash_paths([f], tmp_path, cache=cache).files[0].sha256 == hashlib.sha256(b"xyz").hexdigest()


def test_recent_files_are_not_cached(tmp_path: Path) -> None:
    f = write(tmp_path / "a", "abc", old=False)
    with StatCache(tmp_path / "cache.sqlite") as cache:
        hash_paths([f], tmp_path, cache=cache)
        assert cache.get(os.stat(f)) is None
        os.utime(f, ns=(OLD_NS, OLD_NS))
        hash_paths([f], tmp_path, cache=cache)
        assert cache.get(os.stat(f)) == ABC


# --- diff_manifests and check_data -----------------------------------------------------------------


def manifest(files: list[FileEntry], roots: list[str]) -> DataManifest:
    return DataManifest(roots=roots, files=files, digest=tree_digest(files))


def test_diff_manifests() -> None:
    a, b, c = FileEntry("d/a", 3, ABC), FileEntry("d/b", 0, EMPTY), FileEntry("d/c", 0, EMPTY)
    b2, d = FileEntry("d/b", 3, ABC), FileEntry("d/d", 0, EMPTY)
    diff = diff_manifests(manifest([a, b, c], ["d"]), manifest([b2, c, d], ["d"]))
    assert (diff.missing, diff.changed, diff.extra) == ([a], [(b, b2)], [d])
    assert not diff.ok
    assert diff.summary() == "1 missing, 1 changed, 1 extra"
    assert diff.to_dict() == {
        "ok": False,
        "missing": [{"path": "d/a", "expected_size": 3, "expected_sha256": ABC}],
        "changed": [{"path": "d/b", "expected_size": 0, "actual_size": 3, "expected_sha256": EMPTY, "actual_sha256": ABC}],
        "extra": [{"path": "d/d", "actual_size": 0, "actual_sha256": EMPTY}],
    }
    assert [p["problem"] for p in diff.problems()] == ["missing", "changed", "extra"]
    assert diff_manifests(manifest([a, b], ["d"]), manifest([b, a], ["d"])).ok


def capture(tmp_path: Path) -> tuple[Path, DataManifest]:
    base = tmp_path / "proj"
    write(base / "data" / "a", "abc")
    write(base / "data" / "sub" / "b", "")
    write(base / "conf.yaml", "abc")
    write(base / "unrelated", "not data")
    return base, hash_paths([base / "data", base / "conf.yaml"], base)


def test_check_data_unchanged(tmp_path: Path) -> None:
    base, m = capture(tmp_path)
    assert check_data(m, base).ok


def test_check_data_finds_each_difference(tmp_path: Path) -> None:
    base, m = capture(tmp_path)
    write(base / "data" / "a", "xyz")
    (base / "data" / "sub" / "b").unlink()
    write(base / "data" / "new", "")
    diff = check_data(m, base)
    assert [e.path for e, _ in diff.changed] == ["data/a"]
    assert [e.path for e in diff.missing] == ["data/sub/b"]
    assert [e.path for e in diff.extra] == ["data/new"]


def test_check_data_missing_root_makes_all_its_files_missing(tmp_path: Path) -> None:
    base, m = capture(tmp_path)
    (base / "conf.yaml").unlink()
    for f in (base / "data").rglob("*"):
        if f.is_file():
            f.unlink()
    (base / "data" / "sub").rmdir()
    (base / "data").rmdir()
    diff = check_data(m, base)
    assert [e.path for e in diff.missing] == ["conf.yaml", "data/a", "data/sub/b"]
    assert (diff.changed, diff.extra) == ([], [])


def test_check_data_mapping(tmp_path: Path) -> None:
    base, m = capture(tmp_path)
    elsewhere = tmp_path / "mounted"
    write(elsewhere / "a", "abc")
    write(elsewhere / "sub" / "b", "")
    (base / "data" / "a").unlink()  # the local copy under base is not looked at
    write(tmp_path / "other.yaml", "abc")
    assert check_data(m, base, mapping={"data/": elsewhere, "conf.yaml": tmp_path / "other.yaml"}).ok
    write(elsewhere / "sub" / "c", "")
    assert [e.path for e in check_data(m, base, mapping={"data": elsewhere}).extra] == ["data/sub/c"]


def test_check_data_mapping_of_unknown_root(tmp_path: Path) -> None:
    base, m = capture(tmp_path)
    with pytest.raises(BadInput, match="datta is not a data root"):
        check_data(m, base, mapping={"datta": tmp_path})


def test_check_data_absolute_root(tmp_path: Path) -> None:
    write(tmp_path / "ext" / "x", "abc")
    m = hash_paths([tmp_path / "ext"], tmp_path / "proj")
    assert m.roots == [(tmp_path / "ext").as_posix()]
    assert check_data(m, tmp_path / "somewhere-else").ok
    write(tmp_path / "ext" / "x", "abd")
    assert len(check_data(m, tmp_path / "proj").changed) == 1


def test_check_data_uses_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    base, m = capture(tmp_path)
    with StatCache(tmp_path / "cache.sqlite") as cache:
        assert check_data(m, base, cache=cache).ok
        monkeypatch.setattr(hashing, "hash_file", None)  # any read would fail
        assert check_data(m, base, cache=cache).ok


def test_file_changing_while_hashed_is_flagged_and_not_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = write(tmp_path / "a", "abc")
    real = hashing.hash_file

    def touching(path: str, on_bytes: object = None, nofollow: bool = False) -> tuple[int, str]:
        result = real(path, on_bytes)  # type: ignore[arg-type]
        os.utime(path, ns=(OLD_NS + 10**9, OLD_NS + 10**9))  # a writer got in while we read
        return result

    monkeypatch.setattr(hashing, "hash_file", touching)
    reporter = RecordingReporter()
    with StatCache(tmp_path / "cache.sqlite") as cache:
        hash_paths([f], tmp_path, cache=cache, reporter=reporter)
        assert reporter.warnings == ["data file a changed while it was being hashed"]
        assert cache.get(os.stat(f)) is None
        os.utime(f, ns=(OLD_NS, OLD_NS))
        assert cache.get(os.stat(f)) is None


def test_special_files(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(BadInput, match="neither a file nor a folder"):
        hash_paths([tmp_path / "fifo"], tmp_path)
    write(tmp_path / "d" / "x", "abc")
    os.mkfifo(tmp_path / "d" / "pipe")
    reporter = RecordingReporter()
    assert [f.path for f in hash_paths([tmp_path / "d"], tmp_path, reporter=reporter).files] == ["d/x"]
    assert reporter.warnings == ["skipped d/pipe: not a regular file or folder"]
