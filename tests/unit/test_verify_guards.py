"""Verify's guards against a capsule someone else made: reference copies, replayed outputs, data links and
what the container user can read. The end-to-end proofs are in tests/e2e/hostile/."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from replay.core.data.access import can_read, check_data_access, closed_entries
from replay.core.data.hashing import check_data, hash_paths
from replay.core.verify.compare import compare_outputs
from replay.core.verify.pipeline import Capsule, check_references
from replay.errors import DataUnreadable, UnsafeCapsule
from replay.manifest import FileEntry, Outputs

SECRET = b"SENTINEL-PRIVATE-CONTENT-7f3a\n"


def entry(path: str, data: bytes) -> FileEntry:
    return FileEntry(path, len(data), hashlib.sha256(data).hexdigest())


def capsule_with(tmp_path: Path, files: dict[str, bytes]) -> Capsule:
    root = tmp_path / "capsule"
    (root / "reference").mkdir(parents=True)
    for rel, data in files.items():
        (root / "reference" / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / "reference" / rel).write_bytes(data)
    outputs = Outputs(roots=["out"], files=[entry(rel, data) for rel, data in files.items()])
    manifest: Any = SimpleNamespace(outputs=outputs)
    return Capsule(path=root, manifest=manifest)


@pytest.fixture
def private(tmp_path: Path) -> Path:
    path = tmp_path / "sentinel" / "private.key"
    path.parent.mkdir()
    path.write_bytes(SECRET)
    return path


def test_intact_reference_copies_pass(tmp_path: Path) -> None:
    check_references(capsule_with(tmp_path, {"out/a.txt": b"a\n", "out/m.json": b"{}"}))


def test_a_reference_copy_that_is_a_link_is_refused(tmp_path: Path, private: Path) -> None:
    capsule = capsule_with(tmp_path, {"out/a.txt": b"a\n"})
    copy = capsule.path / "reference" / "out" / "a.txt"
    copy.unlink()
    copy.symlink_to(private)
    with pytest.raises(UnsafeCapsule, match=r"reference/out/a.txt is a symbolic link to"):
        check_references(capsule)


def test_a_reference_folder_that_is_a_link_is_refused(tmp_path: Path, private: Path) -> None:
    capsule = capsule_with(tmp_path, {"out/a.txt": b"a\n"})
    (capsule.path / "reference" / "out" / "a.txt").unlink()
    (capsule.path / "reference" / "out").rmdir()
    (capsule.path / "reference" / "out").symlink_to(private.parent)
    with pytest.raises(UnsafeCapsule, match="reference/out is a symbolic link"):
        check_references(capsule)


def test_a_reference_fifo_is_refused(tmp_path: Path) -> None:
    capsule = capsule_with(tmp_path, {"out/a.txt": b"a\n"})
    os.mkfifo(capsule.path / "reference" / "out" / "pipe")
    with pytest.raises(UnsafeCapsule, match="a FIFO"):
        check_references(capsule)


def test_a_reference_copy_with_the_wrong_hash_is_refused(tmp_path: Path) -> None:
    capsule = capsule_with(tmp_path, {"out/a.txt": b"a\n"})
    (capsule.path / "reference" / "out" / "a.txt").write_bytes(b"b\n")
    with pytest.raises(UnsafeCapsule, match="not the file replay.json records"):
        check_references(capsule)


def test_a_replayed_link_is_never_read_when_explaining(tmp_path: Path, private: Path) -> None:
    reference, replayed = tmp_path / "ref", tmp_path / "new"
    (reference / "out").mkdir(parents=True)
    (replayed / "out").mkdir(parents=True)
    (reference / "out" / "notes.txt").write_bytes(b"line one\n")
    (replayed / "out" / "notes.txt").symlink_to(private)
    ref = entry("out/notes.txt", b"line one\n")
    new = FileEntry("out/notes.txt", 0, "(not a regular file)")

    [result] = compare_outputs([ref], [new], replayed, reference, [], {})

    assert result.status == "differs"
    assert result.explanation is not None and "not read" in str(result.explanation.note)
    assert "SENTINEL" not in repr(result.to_dict())


def test_data_link_problems_are_found_at_verify(tmp_path: Path, private: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.bin").write_bytes(SECRET)
    (data / "b.bin").symlink_to("a.bin")
    recorded = hash_paths([data], tmp_path, record_links=True)
    assert check_data(recorded, tmp_path).ok
    # Same content, through a link that leaves the data folder: the host check alone would pass.
    (data / "b.bin").unlink()
    (data / "b.bin").symlink_to(private)
    diff = check_data(recorded, tmp_path)
    assert not diff.ok and diff.changed == [] and diff.missing == []
    assert diff.links == [("data/b.bin", f"is a link to {private}, which leaves its data root "
                                         "(it would dangle in the container)")]


def test_a_link_recorded_at_capture_must_still_be_that_link(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.bin").write_bytes(b"x")
    (data / "b.bin").write_bytes(b"x")
    (data / "c.bin").symlink_to("a.bin")
    recorded = hash_paths([data], tmp_path, record_links=True)
    (data / "c.bin").unlink()
    (data / "c.bin").symlink_to("b.bin")  # same bytes, another file
    assert check_data(recorded, tmp_path).links == [
        ("data/c.bin", "was a link to a.bin at capture, and is a link to b.bin now")]


def test_can_read_uses_owner_group_other_bits() -> None:
    def st(mode: int, uid: int = 0, gid: int = 0) -> Any:
        return SimpleNamespace(st_mode=mode, st_uid=uid, st_gid=gid)

    assert can_read(st(0o100644), 10001, 10001)
    assert not can_read(st(0o100600), 10001, 10001)
    assert can_read(st(0o100600, uid=10001), 10001, 10001)
    assert can_read(st(0o100640, gid=10001), 10001, 10001)
    assert not can_read(st(0o040754), 10001, 10001)  # a folder needs search too
    assert can_read(st(0o040755), 10001, 10001)


def test_data_the_container_user_cannot_read_is_named_with_the_fix(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "closed").mkdir(parents=True)
    (data / "closed" / "hidden.bin").write_bytes(b"x")
    (data / "open.bin").write_bytes(b"x")
    (data / "secret.bin").write_bytes(b"x")
    os.chmod(data / "secret.bin", 0o600)
    os.chmod(data / "closed", 0o700)
    os.chmod(data / "open.bin", 0o644)
    uid = os.getuid() + 12345  # someone else
    assert sorted(closed_entries(data, uid, uid)) == [str(data / "closed"), str(data / "secret.bin")]
    with pytest.raises(DataUnreadable) as info:
        check_data_access([data], uid, uid)
    assert f"chmod -R o+rX {data}" in info.value.hint
    check_data_access([data], os.getuid(), os.getgid())  # the owner reads it all
