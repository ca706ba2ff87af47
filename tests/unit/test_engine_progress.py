"""The engine's progress streams, parsed: a pull's bytes summed over layers, a load's bytes fed, the build step.

What the engine sends (and, through it, a registry or a build log) is hostile: the parsers must never raise,
never believe an absurd figure, never track unbounded layers, and never hand on a control character.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from replay.adapters.docker_engine import _lines
from replay.adapters.engine_progress import (
    MAX_FIGURE,
    MAX_LAYERS,
    STEP_WIDTH,
    PullProgress,
    build_step,
    counted,
    figure,
    follow_pull,
    json_object,
)


def _downloading(layer: str, current: Any, total: Any) -> dict[str, Any]:
    return {"status": "Downloading", "id": layer, "progressDetail": {"current": current, "total": total}}


def test_a_pull_sums_the_layers_downloading_and_knows_its_total_once_every_layer_is_sized() -> None:
    p = PullProgress()
    p.feed({"status": "Pulling from team/digits", "id": "v1"})
    p.feed({"status": "Pulling fs layer", "id": "a"})
    p.feed({"status": "Pulling fs layer", "id": "b"})
    p.feed(_downloading("a", 100, 1000))

    assert (p.done, p.total) == (100, None)  # b's size is not known yet

    p.feed(_downloading("b", 50, 500))
    p.feed(_downloading("a", 900, 1000))
    assert (p.done, p.total) == (950, 1500)

    p.feed({"status": "Download complete", "id": "a"})
    p.feed({"status": "Extracting", "id": "b", "progressDetail": {"current": 10, "total": 500}})
    assert (p.done, p.total) == (1500, 1500)  # extracting counts as downloaded, never as more bytes


def test_a_layer_that_already_exists_is_not_counted() -> None:
    p = PullProgress()
    p.feed({"status": "Pulling fs layer", "id": "a"})
    p.feed({"status": "Already exists", "id": "b"})
    p.feed({"status": "Already exists", "id": "a"})

    assert (p.done, p.total) == (0, None)


def test_follow_pull_reports_each_change_and_passes_every_message_on() -> None:
    lines = [json.dumps(m) for m in (
        {"status": "Pulling fs layer", "id": "a"},
        _downloading("a", 10, 20),
        _downloading("a", 10, 20),  # no change: not reported again
        {"status": "Pull complete", "id": "a"},
        {"error": "manifest unknown"},
    )] + ["not json", "[1, 2]"]
    heard: list[tuple[int, int | None]] = []

    messages = list(follow_pull(lines, lambda done, total: heard.append((done, total))))

    assert heard == [(10, 20), (20, 20)]
    assert messages[-1] == {"error": "manifest unknown"}  # the caller sees the error; junk lines are dropped
    assert len(messages) == 5


def test_absurd_figures_are_not_believed() -> None:
    for bad in (-1, MAX_FIGURE + 1, 1.5, True, "12", None, 10**400):
        assert figure(bad) is None
    p = PullProgress()
    p.feed(_downloading("a", 10**30, 10**30))
    p.feed(_downloading("b", True, 5))

    assert (p.done, p.total) == (0, None)  # b is announced, its size unknown; a's figures are refused


def test_the_layers_tracked_are_bounded() -> None:
    p = PullProgress()
    for i in range(MAX_LAYERS + 50):
        p.feed(_downloading(f"l{i}", 1, 1))

    assert p.done == MAX_LAYERS


def test_a_line_of_megabytes_is_cut_before_it_is_parsed() -> None:
    huge = b'{"status": "Downloading", "id": "a", "progressDetail": {"current": 1, "total": 2}, "x": "' + b"y" * (
        1 << 20) + b'"}\n'
    heard: list[tuple[int, int | None]] = []

    messages = list(follow_pull(_lines([huge]), lambda d, t: heard.append((d, t))))

    assert messages == [] and heard == []  # cut to 64 KiB, it is not JSON any more: skipped


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)
statuses = st.sampled_from(["Pulling fs layer", "Waiting", "Downloading", "Download complete", "Verifying Checksum",
                            "Extracting", "Pull complete", "Already exists"]) | st.text(max_size=10)
messages = st.fixed_dictionaries(
    {"status": statuses | json_values, "id": st.sampled_from(["a", "b", "c", ""]) | json_values},
    optional={"progressDetail": st.fixed_dictionaries(
        {}, optional={"current": st.integers() | json_values, "total": st.integers() | json_values}) | json_values},
) | json_values


@given(st.lists(messages, max_size=40))
def test_hostile_pull_messages_never_raise_and_the_sums_stay_within_bounds(stream: list[Any]) -> None:
    p = PullProgress()
    for message in stream:
        p.feed(message)
        total = p.total
        assert 0 <= p.done <= MAX_FIGURE * MAX_LAYERS
        assert total is None or 0 <= p.done <= total


@given(st.lists(st.binary(max_size=200) | st.text(max_size=200).map(str.encode), max_size=20))
def test_hostile_pull_lines_never_raise(chunks: list[bytes]) -> None:
    heard: list[tuple[int, int | None]] = []
    for message in follow_pull(_lines(chunks), lambda d, t: heard.append((d, t))):
        assert isinstance(message, dict)
    assert all(isinstance(d, int) and d >= 0 for d, _ in heard)


@given(st.text(max_size=200))
def test_json_object_is_an_object_or_none(line: str) -> None:
    value = json_object(line)
    assert value is None or isinstance(value, dict)


def test_json_object_of_a_deeply_nested_line_is_none() -> None:
    assert json_object("[" * 100_000 + "]" * 100_000) is None


def test_counted_passes_the_chunks_on_and_tells_the_bytes_fed() -> None:
    heard: list[int] = []

    out = list(counted([b"abc", b"", b"de"], heard.append))

    assert out == [b"abc", b"", b"de"] and heard == [3, 3, 5]


def test_a_build_step_is_named_one_line_neutralized_and_cut() -> None:
    step = build_step("Step 4/9 : RUN pip install --no-index \x1b[2J\x1b]0;owned\x07 numpy")

    assert step is not None and (step.number, step.total) == (4, 9)
    assert "\x1b" not in step.instruction and "\x07" not in step.instruction
    assert step.instruction.startswith("RUN pip install --no-index \\x1b[2J")
    assert step.describe().startswith("step 4/9 RUN pip")
    podman = build_step("STEP 2/3: COPY wheels/ /wheels/")
    assert podman is not None and (podman.number, podman.instruction) == (2, "COPY wheels/ /wheels/")


def test_a_long_step_is_cut_to_the_width() -> None:
    step = build_step("Step 1/2 : RUN " + "x" * 10_000)

    assert step is not None and len(step.instruction) == STEP_WIDTH and step.instruction.endswith("…")


def test_lines_that_are_not_steps_are_none() -> None:
    for line in ("", " ---> Running in 1234", "Step 0/3 : FROM x", "Step 5/3 : RUN y", "Step 1234567/9999999 : RUN",
                 "Successfully built abc", "Step x/y"):
        assert build_step(line) is None


@given(st.text(max_size=300))
def test_any_build_line_gives_no_step_or_a_safe_one(line: str) -> None:
    step = build_step(line)
    if step is not None:
        assert len(step.instruction) <= STEP_WIDTH
        assert not any(ord(c) < 32 or 0x7F <= ord(c) <= 0x9F for c in step.instruction)
        assert 0 < step.number <= step.total
