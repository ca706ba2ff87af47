"""Leaf helpers that comparing and explaining both need: tolerances, and the first differing byte.

A module of its own so ``compare`` (verdicts) and ``explain`` (what differs, and where) both import it,
and neither imports the other at import time.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from replay.errors import BadInput

TOLERANCE_HINT = "use an absolute value like 1e-3 or a relative one like rel:1e-6"


# --- tolerances ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tolerance:
    """How far a replayed number may stray from the reference: ``|new - ref| <= atol + rtol * |ref|``."""

    atol: float = 0.0
    rtol: float = 0.0

    def allows(self, ref: float, new: float) -> bool:
        ref_nan, new_nan = math.isnan(ref), math.isnan(new)
        if ref_nan or new_nan:
            return ref_nan and new_nan
        if math.isinf(ref) or math.isinf(new):
            return ref == new
        return abs(new - ref) <= self.atol + self.rtol * abs(ref)

    @property
    def exact(self) -> bool:
        return self.atol == 0.0 and self.rtol == 0.0

    def describe(self) -> str:
        if self.exact:
            return "exact"
        parts = [f"abs {self.atol!r}" if self.atol else "", f"rel {self.rtol!r}" if self.rtol else ""]
        return " + ".join(p for p in parts if p)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_tolerance(spec: str) -> Tolerance:
    """``1e-3`` (absolute), ``abs:1e-3``, ``rel:1e-6``, ``0`` (exact), or ``abs:1e-3,rel:1e-6``."""
    values: dict[str, float] = {}
    for part in spec.split(","):
        kind, sep, number = part.strip().partition(":")
        if not sep:
            kind, number = "abs", kind
        kind = kind.strip().lower()
        try:
            value = float(number.strip())
        except ValueError:
            value = math.nan
        if kind not in ("abs", "rel") or kind in values or not math.isfinite(value) or value < 0:
            raise BadInput(f"tolerance '{spec}' is not valid", TOLERANCE_HINT)
        values[kind] = value
    return Tolerance(atol=values.get("abs", 0.0), rtol=values.get("rel", 0.0))


def tolerance_for(name: str, tolerances: dict[str, str]) -> tuple[str, Tolerance] | None:
    """The tolerance that applies to a metric or output path: an exact key first, then the longest glob."""
    if name in tolerances:
        return name, parse_tolerance(tolerances[name])
    # Longest pattern first: the most specific glob wins, and ties break by name, not by dict order.
    for key in sorted(tolerances, key=lambda k: (-len(k), k)):
        if fnmatchcase(name, key):
            return key, parse_tolerance(tolerances[key])
    return None


# --- output files -----------------------------------------------------------------------------------


def first_difference(a: Path, b: Path, chunk: int = 4 << 20) -> int | None:
    """Offset of the first byte where two files differ (the shorter size if one is a prefix), or None.

    Whole chunks are compared with ``==`` on bytearrays, a single memcmp, so the loop runs at memory speed
    and the file reads dominate; only a mismatching chunk is searched byte by byte.
    """
    buf_a, buf_b = bytearray(chunk), bytearray(chunk)
    offset = 0
    with open(a, "rb", buffering=0) as fa, open(b, "rb", buffering=0) as fb:
        while True:
            n_a, n_b = _fill(fa, buf_a), _fill(fb, buf_b)
            if n_a == n_b == chunk:
                if buf_a == buf_b:
                    offset += chunk
                    continue
                return offset + _mismatch(buf_a, buf_b, chunk)
            n = min(n_a, n_b)
            # The last, partial chunk: slices copy at most one chunk, once per file.
            if buf_a[:n] != buf_b[:n]:
                return offset + _mismatch(buf_a, buf_b, n)
            return None if n_a == n_b else offset + n


def _fill(handle: Any, buf: bytearray) -> int:
    """Read until ``buf`` is full or the file ends: raw reads may return short, which would misalign chunks."""
    view = memoryview(buf)
    got = 0
    while got < len(buf):
        n = handle.readinto(view[got:])
        if not n:
            break
        got += n
    return got


def _mismatch(a: bytearray, b: bytearray, n: int, step: int = 4096) -> int:
    """Index of the first differing byte among the first ``n``, known to exist."""
    start = 0
    while a[start : start + step] == b[start : start + step]:
        start += step
    end = min(start + step, n)
    return next(i for i in range(start, end) if a[i] != b[i])
