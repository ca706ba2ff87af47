"""--max-output: the size option, its default, and the watcher that counts the output folders."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from replay.adapters.output_quota import QuotaWatch, tree_bytes
from replay.core.limits import (
    MAX_OUTPUT_CAP,
    RunLimits,
    default_max_output,
    format_size,
    parse_limits,
    parse_max_output,
)
from replay.errors import BadInput


def test_max_output_is_parsed_as_a_size() -> None:
    assert parse_max_output("20m") == 20 << 20
    assert parse_limits({"max_output_bytes": "2g"}).max_output_bytes == 2 << 30


@pytest.mark.parametrize("text", ["lots", "0", "10k", "1e400", "99999999999999t"])
def test_a_bad_max_output_is_one_bad_input(text: str) -> None:
    with pytest.raises(BadInput, match="--max-output"):
        parse_max_output(text)


def test_the_default_quota_is_at_most_half_the_free_space_and_20g(tmp_path: Path) -> None:
    st = os.statvfs(tmp_path)
    quota = default_max_output(tmp_path)
    assert quota <= MAX_OUTPUT_CAP and quota <= max(1 << 20, st.f_bavail * st.f_frsize // 2)
    assert RunLimits().effective(tmp_path).max_output_bytes == quota
    assert RunLimits(max_output_bytes=5 << 20).effective(tmp_path).max_output_bytes == 5 << 20


def test_format_size_writes_what_the_option_reads() -> None:
    assert format_size(20 << 20) == "20m" and format_size(3 << 30) == "3g" and format_size(1536) == "1536"


def test_max_output_survives_a_task_payload() -> None:
    limits = RunLimits(max_output_bytes=7 << 20)
    assert RunLimits.from_payload(limits.to_payload()) == limits
    with pytest.raises(BadInput):
        RunLimits.from_payload({"max_output_bytes": -1})


def test_tree_bytes_counts_without_following_links(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "f").write_bytes(b"x" * 1000)
    (tmp_path / "g").write_bytes(b"y" * 24)
    big = tmp_path.parent / f"{tmp_path.name}-outside"
    big.write_bytes(b"z" * 100_000)
    (tmp_path / "link").symlink_to(big)
    try:
        assert tree_bytes([str(tmp_path)], 1 << 30) == 1024 + len(str(big))
        assert tree_bytes([str(tmp_path)], 10) > 10  # stops early once past
    finally:
        big.unlink()


def test_the_watch_kills_once_the_folder_passes_the_quota(tmp_path: Path) -> None:
    killed = threading.Event()
    with QuotaWatch([str(tmp_path)], 4096, killed.set) as watch:
        (tmp_path / "small").write_bytes(b"x" * 100)
        assert not watch.check()
        (tmp_path / "big").write_bytes(b"x" * 8192)
        assert killed.wait(10)
    assert watch.exceeded.is_set()


def test_a_watch_with_no_folders_never_kills(tmp_path: Path) -> None:
    with QuotaWatch([], 0, lambda: pytest.fail("killed")) as watch:
        assert not watch.check()
