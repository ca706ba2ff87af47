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


# --- RunLimits: one place, parsed once, carried as JSON, defaults on the machine that runs ----------------

from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from replay.core.limits import (  # noqa: E402
    DEFAULT_PIDS,
    LIMIT_OPTIONS,
    MAX_TIMEOUT_S,
    RunLimits,
    check_pids,
    default_memory_bytes,
    parse_limits,
)


def test_limits_are_parsed_once_from_their_option_rows() -> None:
    limits = parse_limits({"timeout_s": 30.0, "memory_bytes": "1g", "pids": 128}, gpus=1)
    assert limits == RunLimits(timeout_s=30.0, memory_bytes=1 << 30, pids=128, gpus=1)
    assert {o.flag for o in LIMIT_OPTIONS} == {"--timeout", "--cpus", "--memory", "--pids", "--max-output"}


def test_the_defaults_fill_what_was_not_given_on_the_machine_that_runs() -> None:
    effective = RunLimits(timeout_s=5.0).effective()
    assert effective.pids == DEFAULT_PIDS and effective.memory_bytes == default_memory_bytes() > MIN_MEMORY_BYTES
    given = RunLimits(memory_bytes=1 << 30, pids=99, max_output_bytes=5 << 20)
    assert given.effective() == given


@pytest.mark.parametrize("seconds", [MAX_TIMEOUT_S + 1, 1e10, 1e300])
def test_a_timeout_no_timer_can_hold_is_bad_input(seconds: float) -> None:
    with pytest.raises(BadInput, match="longer than"):
        check_timeout(seconds)


@pytest.mark.parametrize("count", [0, 15, (1 << 22) + 1])
def test_a_process_limit_out_of_range_is_bad_input(count: int) -> None:
    with pytest.raises(BadInput, match="--pids"):
        check_pids(count)


@given(st.builds(RunLimits, timeout_s=st.none() | st.floats(0.1, 1e6), cpus=st.none() | st.floats(0.01, 64),
                 memory_bytes=st.none() | st.integers(MIN_MEMORY_BYTES, 1 << 40),
                 pids=st.none() | st.integers(16, 1 << 22), gpus=st.none() | st.integers(0, 8)))
def test_limits_round_trip_through_a_task_payload(limits: RunLimits) -> None:
    assert RunLimits.from_payload(limits.to_payload()) == limits


@pytest.mark.parametrize("raw", [{"pids": -1}, {"pids": True}, {"timeout_s": "soon"}, {"cpus": math.inf},
                                 {"unknown": 1}, [], {"memory_bytes": 1.5}])
def test_malformed_payload_limits_are_bad_input(raw: object) -> None:
    with pytest.raises(BadInput):
        RunLimits.from_payload(raw)
