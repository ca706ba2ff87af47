"""What a `manifest --check` of some paths covers of a capsule's data: a subset's match is never a full match."""

from __future__ import annotations

from replay.core.data.check import coverage
from replay.manifest import DataManifest, FileEntry

RECORDED = DataManifest(roots=["data", "more"], files=[FileEntry("data/a", 1, "x"), FileEntry("data/b", 1, "y"),
                                                        FileEntry("more/c", 1, "z")], digest="sha256:" + "d" * 64)


def test_every_recorded_root_asked_is_complete() -> None:
    got = coverage(RECORDED, ["data", "more"])
    assert got.complete and (got.checked_files, got.recorded_files) == (3, 3)
    assert got.line("sha256:abc").startswith("data matches the capsule: 3 files")


def test_a_root_not_asked_is_named_whole_and_a_root_asked_in_part_by_file() -> None:
    got = coverage(RECORDED, ["data/a"])
    assert not got.complete and got.not_checked == ["data/b", "more"]
    line = got.line("sha256:abc")
    assert line.startswith("1 of 3 recorded files checked") and "not checked: data/b, more" in line
    assert "dddddddddddd covers all 3, so it was not compared" in line and "matches the capsule" not in line
    assert got.to_dict() == {"complete": False, "checked_files": 1, "recorded_files": 3,
                             "not_checked": ["data/b", "more"]}


def test_a_long_list_of_paths_not_checked_is_cut_in_the_line_not_in_the_data() -> None:
    many = DataManifest(roots=[f"r{i}" for i in range(6)], files=[FileEntry(f"r{i}", 1, "x") for i in range(6)])
    got = coverage(many, ["r0"])
    assert len(got.not_checked) == 5 and "r1, r2, r3 and 2 more" in got.line("")
