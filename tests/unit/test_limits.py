"""Resource limits for the replayed command (replay.core.limits): every bad one is BadInput (exit 2)."""

from __future__ import annotations

import math

import pytest

from replay.core.limits import MIN_MEMORY_BYTES, check_cpus, check_timeout, parse_memory, usable_cores
from replay.errors import EXIT_BAD_INPUT, BadInput


@pytest.mark.parametrize(
    ("text", "size"),
    [("2g", 2 << 30), ("512m", 512 << 20), ("512MiB", 512 << 20), ("1.5g", 3 << 29), ("6m", MIN_MEMORY_BYTES),
     (str(8 << 20), 8 << 20), (" 1T ", 1 << 40), ("64kb", None)],
)
def test_parse_memory(text: str, size: int | None) -> None:
    if size is None:
        with pytest.raises(BadInput, match="below the engine's minimum"):
            parse_memory(text)
    else:
        assert parse_memory(text) == size


@pytest.mark.parametrize(("text", "needle"), [
    ("lots", "is not a size"), ("", "is not a size"), ("-1g", "is not a size"), ("2x", "is not a size"),
    ("nan", "is not a size"), ("1e3", "is not a size"), ("1", "below the engine's minimum"),
    ("99999999999t", "is too large"),
])
def test_bad_memory_is_bad_input(text: str, needle: str) -> None:
    with pytest.raises(BadInput, match=needle) as info:
        parse_memory(text)
    assert info.value.exit_code == EXIT_BAD_INPUT


@pytest.mark.parametrize("cpus", [0.0, -1.0, math.nan, math.inf, 0.001, 999.0])
def test_bad_cpus_is_bad_input(cpus: float) -> None:
    with pytest.raises(BadInput, match="--cpus"):
        check_cpus(cpus)


def test_cpus_up_to_the_usable_cores_are_kept() -> None:
    assert check_cpus(0.5) == 0.5
    assert check_cpus(float(usable_cores())) == usable_cores()


@pytest.mark.parametrize("seconds", [0.0, -5.0, math.nan, math.inf])
def test_bad_timeout_is_bad_input(seconds: float) -> None:
    with pytest.raises(BadInput, match="--timeout"):
        check_timeout(seconds)


def test_timeout_is_kept() -> None:
    assert check_timeout(0.5) == 0.5
