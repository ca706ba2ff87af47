from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from replay import fsutil
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
