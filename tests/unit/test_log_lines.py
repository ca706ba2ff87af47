"""The replay's log, split into lines as it streams: one pass over each byte, each line bounded."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from replay.adapters.docker_engine import _lines


def expected(data: bytes, limit: int) -> list[str]:
    parts = data.split(b"\n")
    if parts and parts[-1] == b"":
        parts.pop()
    out = []
    for raw in parts:
        text = raw[:limit].decode("utf-8", "replace").rstrip("\r")
        extra = max(0, len(raw) - limit)
        out.append(f"{text}... [{extra} more bytes of this line not shown]" if extra else text)
    return out


@given(st.binary(max_size=400), st.lists(st.integers(0, 400), max_size=8), st.integers(1, 50))
def test_lines_are_the_same_however_the_stream_is_chunked(data: bytes, cuts: list[int], limit: int) -> None:
    points = sorted({min(c, len(data)) for c in cuts})
    chunks = [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]
    assert list(_lines(chunks, limit)) == expected(data, limit)


def test_a_huge_line_without_a_newline_keeps_only_its_head() -> None:
    chunks = (b"x" * (1 << 20) for _ in range(60))  # 60 MiB in 1 MiB chunks
    (line,) = list(_lines(chunks, limit=1000))
    assert line == "x" * 1000 + f"... [{60 * (1 << 20) - 1000} more bytes of this line not shown]"
