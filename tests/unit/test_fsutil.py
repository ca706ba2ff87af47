from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from replay import fsutil
from replay.errors import BadInput
from replay.fsutil import atomic_write_bytes, atomic_write_json, atomic_write_text, staged_dir


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- atomic writes -------------------------------------------------------------------------------------


def test_atomic_write_bytes_creates_parents_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "file.bin"
    atomic_write_bytes(target, b"\x00\x01data")
    assert target.read_bytes() == b"\x00\x01data"
    assert os.listdir(target.parent) == ["file.bin"]
    assert mode(target) == 0o644


def test_atomic_write_bytes_mode(tmp_path: Path) -> None:
    target = tmp_path / "run.sh"
    atomic_write_bytes(target, b"#!/bin/sh\n", mode=0o755)
    assert mode(target) == 0o755


def test_atomic_write_replaces_content_whole(tmp_path: Path) -> None:
    target = tmp_path / "f.txt"
    atomic_write_text(target, "long content " * 1000)
    inode = target.stat().st_ino
    atomic_write_text(target, "short")
    assert target.read_text() == "short"
    assert target.stat().st_ino != inode  # a new file renamed over the old one, not rewritten in place
    assert os.listdir(tmp_path) == ["f.txt"]


def test_atomic_write_text_is_utf8(tmp_path: Path) -> None:
    target = tmp_path / "t.txt"
    atomic_write_text(target, "Grüße ✓")
    assert target.read_bytes() == "Grüße ✓".encode()


def test_atomic_write_json_format(tmp_path: Path) -> None:
    target = tmp_path / "x.json"
    atomic_write_json(target, {"b": 1, "a": [1, 2], "é": None})
    assert target.read_text() == '{\n  "b": 1,\n  "a": [\n    1,\n    2\n  ],\n  "\\u00e9": null\n}\n'


def test_failed_write_keeps_old_file_and_removes_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "f.txt"
    atomic_write_text(target, "old")

    def fail(src: str, dst: str) -> None:
        raise OSError("no space left on device")

    monkeypatch.setattr(fsutil.os, "replace", fail)
    with pytest.raises(OSError, match="no space"):
        atomic_write_text(target, "new")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["f.txt"]


def test_interrupted_write_removes_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupt(fd: int) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(fsutil.os, "fsync", interrupt)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_bytes(tmp_path / "f.bin", b"data")
    assert os.listdir(tmp_path) == []


# --- staged_dir ----------------------------------------------------------------------------------------


def test_staged_dir_success(tmp_path: Path) -> None:
    final = tmp_path / "capsules" / "demo"
    with staged_dir(final) as stage:
        assert stage.parent == final.parent
        assert stage.name.startswith(".demo.staging-")
        assert not final.exists()
        (stage / "replay.json").write_text("{}")
        (stage / "reference").mkdir()
        (stage / "reference" / "m.pkl").write_bytes(b"m")
    assert sorted(p.relative_to(final).as_posix() for p in final.rglob("*")) == [
        "reference", "reference/m.pkl", "replay.json",
    ]
    assert (final / "replay.json").read_text() == "{}"
    assert mode(final) == 0o755
    assert os.listdir(final.parent) == ["demo"]


@pytest.mark.parametrize("error", [RuntimeError("boom"), KeyboardInterrupt()])
def test_staged_dir_failure_leaves_nothing(tmp_path: Path, error: BaseException) -> None:
    final = tmp_path / "demo"
    with pytest.raises(type(error)), staged_dir(final) as stage:
        (stage / "half.txt").write_text("half")
        raise error
    assert not final.exists()
    assert os.listdir(tmp_path) == []


def test_staged_dir_replace_swaps_only_at_the_end(tmp_path: Path) -> None:
    final = tmp_path / "demo"
    final.mkdir()
    (final / "old.txt").write_text("old")
    with staged_dir(final, replace=True) as stage:
        (stage / "new.txt").write_text("new")
        assert (final / "old.txt").read_text() == "old"
        assert not (final / "new.txt").exists()
    assert sorted(os.listdir(final)) == ["new.txt"]
    assert (final / "new.txt").read_text() == "new"
    assert os.listdir(tmp_path) == ["demo"]  # no staging or old-copy folder left behind


def test_staged_dir_replace_when_nothing_exists(tmp_path: Path) -> None:
    final = tmp_path / "demo"
    with staged_dir(final, replace=True) as stage:
        (stage / "a").write_text("a")
    assert os.listdir(final) == ["a"]
    assert os.listdir(tmp_path) == ["demo"]


def test_staged_dir_replace_failure_keeps_the_old_folder(tmp_path: Path) -> None:
    final = tmp_path / "demo"
    final.mkdir()
    (final / "old.txt").write_text("old")
    with pytest.raises(ValueError), staged_dir(final, replace=True) as stage:
        (stage / "new.txt").write_text("new")
        raise ValueError("capture failed")
    assert os.listdir(final) == ["old.txt"]
    assert (final / "old.txt").read_text() == "old"
    assert os.listdir(tmp_path) == ["demo"]


def test_staged_dir_without_replace_refuses_a_non_empty_folder(tmp_path: Path) -> None:
    final = tmp_path / "demo"
    final.mkdir()
    (final / "old.txt").write_text("old")
    with pytest.raises(OSError), staged_dir(final) as stage:
        (stage / "new.txt").write_text("new")
    assert os.listdir(final) == ["old.txt"]
    assert (final / "old.txt").read_text() == "old"
    assert os.listdir(tmp_path) == ["demo"]


# --- leftovers of a killed capture ---------------------------------------------------------------------


def _dead_pid() -> int:
    """A pid that no process has: a child that has exited and been reaped."""
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_staging_records_its_owner_and_leaves_no_owner_file_in_the_result(tmp_path: Path) -> None:
    final = tmp_path / "capsule"
    with staged_dir(final) as stage:
        owner = (stage / fsutil.OWNER_FILE).read_text().split()
        assert owner[0] == str(os.getpid()) and owner[1].isdigit()
        (stage / "x").write_text("x")
    assert sorted(p.name for p in final.iterdir()) == ["x"]


def test_stale_staging_folders_of_dead_owners_are_removed(tmp_path: Path) -> None:
    dead = tmp_path / ".old.staging-abc"
    dead.mkdir()
    (dead / "big.bin").write_bytes(b"x" * 1000)
    (dead / fsutil.OWNER_FILE).write_text(f"{_dead_pid()} 12345\n")
    reused = tmp_path / ".reused.staging-def"  # our own pid, but another start time: the pid was reused
    reused.mkdir()
    (reused / fsutil.OWNER_FILE).write_text(f"{os.getpid()} 1\n")
    alive = tmp_path / ".alive.staging-ghi"
    alive.mkdir()
    (alive / fsutil.OWNER_FILE).write_text(fsutil._owner_of(os.getpid()) + "\n")
    unowned = tmp_path / ".legacy.staging-jkl"  # no owner file: left alone
    unowned.mkdir()

    with staged_dir(tmp_path / "capsule"):
        pass

    assert not dead.exists() and not reused.exists()
    assert alive.exists() and unowned.exists()


# --- folders made beneath replay's own fresh folder ----------------------------------------------------


def test_mkdirs_beneath_makes_each_folder_and_gives_the_last_to_its_owner(tmp_path: Path) -> None:
    made = fsutil.mkdirs_beneath(tmp_path, "out/deep/er", owner=(os.getuid(), os.getgid()))
    assert made == (tmp_path / "out" / "deep" / "er").resolve() and made.is_dir()
    assert stat.S_IMODE(made.stat().st_mode) & 0o002 == 0  # never world-writable


@pytest.mark.parametrize("rel", ["../escape", "/etc", "out/../../x", ""])
def test_mkdirs_beneath_refuses_paths_that_leave(tmp_path: Path, rel: str) -> None:
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    with pytest.raises(BadInput):
        fsutil.mkdirs_beneath(fresh, rel)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fresh"]


def test_mkdirs_beneath_never_goes_through_a_link(tmp_path: Path) -> None:
    fresh, victim = tmp_path / "fresh", tmp_path / "victim"
    fresh.mkdir()
    victim.mkdir()
    (fresh / "out").symlink_to(victim)
    with pytest.raises(BadInput, match="not a folder"):
        fsutil.mkdirs_beneath(fresh, "out/sub")
    assert list(victim.iterdir()) == []


def test_chown_tree_does_not_follow_links(tmp_path: Path) -> None:
    tree, victim = tmp_path / "tree", tmp_path / "victim.txt"
    (tree / "a").mkdir(parents=True)
    (tree / "a" / "f").write_text("x")
    victim.write_text("mine")
    (tree / "link").symlink_to(victim)
    before = victim.stat()
    fsutil.chown_tree(tree, os.getuid(), os.getgid())
    after = victim.stat()
    assert (before.st_uid, before.st_gid, before.st_ctime_ns) == (after.st_uid, after.st_gid, after.st_ctime_ns)
