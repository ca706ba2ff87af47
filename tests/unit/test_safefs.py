"""Reading what someone else made without following links: safefs, hash_nofollow, and verify's checks."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from replay.core.data.hashing import hash_file, hash_nofollow, hash_paths, lstat_beneath
from replay.safefs import NotRegular, open_beneath, opened, read_bytes

SECRET = b"SENTINEL-PRIVATE-CONTENT-7f3a\n"


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    private = tmp_path / "outside" / "private.key"
    private.parent.mkdir()
    private.write_bytes(SECRET)
    return private


def test_a_regular_file_is_read(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "f.txt").write_bytes(b"ok")
    assert read_bytes(tmp_path, "a/b/f.txt") == b"ok"
    with opened(tmp_path, "a/b/f.txt") as path:
        assert path.read_bytes() == b"ok"


def test_a_link_as_the_last_component_is_refused(tmp_path: Path, outside: Path) -> None:
    (tmp_path / "copy").symlink_to(outside)
    with pytest.raises(NotRegular) as info:
        read_bytes(tmp_path, "copy")
    assert info.value.what == "a symbolic link"


def test_a_linked_folder_on_the_way_is_refused(tmp_path: Path, outside: Path) -> None:
    (tmp_path / "reference").mkdir()
    (tmp_path / "reference" / "out").symlink_to(outside.parent)
    with pytest.raises(NotRegular) as info:
        open_beneath(tmp_path, "reference/out/private.key")
    assert "under reference/out, which is a symbolic link" in str(info.value)


def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(NotRegular) as info:
        read_bytes(tmp_path, "pipe")
    assert info.value.what == "a FIFO"


@pytest.mark.parametrize("rel", ["../x", "/etc/passwd", "", "a/../../x"])
def test_paths_that_leave_the_folder_are_refused(tmp_path: Path, rel: str) -> None:
    with pytest.raises(NotRegular):
        open_beneath(tmp_path, rel)


def test_hash_file_nofollow_refuses_links_and_fifos(tmp_path: Path, outside: Path) -> None:
    (tmp_path / "link").symlink_to(outside)
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(NotRegular):
        hash_file(tmp_path / "link", nofollow=True)
    with pytest.raises(NotRegular):
        hash_file(tmp_path / "pipe", nofollow=True)
    assert hash_file(tmp_path / "link")[0] == len(SECRET)  # data semantics: links are followed


def test_hash_nofollow_reports_links_and_specials_and_never_reads_them(tmp_path: Path, outside: Path) -> None:
    out = tmp_path / "out"
    (out / "sub").mkdir(parents=True)
    (out / "model.bin").write_bytes(b"weights")
    (out / "metrics.json").symlink_to(outside)
    (out / "etc").symlink_to(outside.parent)
    os.mkfifo(out / "sub" / "pipe")

    found, odd = hash_nofollow(["out"], tmp_path)

    assert [f.path for f in found.files] == ["out/model.bin"]
    assert dict(odd) == {
        "out/metrics.json": f"a symbolic link to {outside}",
        "out/etc": f"a symbolic link to {outside.parent}",
        "out/sub/pipe": "a FIFO",
    }


def test_hash_nofollow_refuses_a_root_that_is_a_link_or_under_one(tmp_path: Path, outside: Path) -> None:
    (tmp_path / "out").symlink_to(outside.parent)
    found, odd = hash_nofollow(["out/private.key", "out"], tmp_path)
    assert found.files == []
    assert [path for path, _ in odd] == ["out", "out/private.key"]


def test_lstat_beneath(tmp_path: Path, outside: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f").write_text("x")
    (tmp_path / "l").symlink_to(outside.parent)
    st, why = lstat_beneath(tmp_path, "d/f")
    assert st is not None and stat.S_ISREG(st.st_mode) and why == ""
    assert lstat_beneath(tmp_path, "d/missing") == (None, "")
    assert "which is a symbolic link" in lstat_beneath(tmp_path, "l/private.key")[1]


def test_data_links_are_recorded_with_whether_they_stay_inside(tmp_path: Path, outside: Path) -> None:
    data = tmp_path / "data"
    (data / "raw").mkdir(parents=True)
    (data / "raw" / "a.csv").write_text("1\n")
    (data / "latest.csv").symlink_to("raw/a.csv")  # relative, inside: fine in the container
    (data / "abs.csv").symlink_to(data / "raw" / "a.csv")  # absolute: dangles where data is mounted elsewhere
    (data / "escape.key").symlink_to(outside)
    (data / "up").symlink_to("../outside/private.key")

    manifest = hash_paths([data], tmp_path, record_links=True)

    assert manifest.links is not None
    inside = {link.path: link.inside for link in manifest.links}
    assert inside == {"data/latest.csv": True, "data/abs.csv": False, "data/escape.key": False, "data/up": False}
    # Content is still hashed through the links (the data contract is unchanged).
    assert {f.path for f in manifest.files} >= {"data/latest.csv", "data/escape.key"}
    assert hash_paths([data], tmp_path).links is None
