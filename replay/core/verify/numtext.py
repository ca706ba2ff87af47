"""Numeric-aware comparison of text: tokens that parse as numbers are compared as numbers, everything else
character for character.

A line is cut into tokens (``tokenize``) that join back to it exactly: numbers, dates and times, hex
addresses, temporary paths, and the text between them. Two lines are equivalent under a tolerance when
their token kinds line up, every non-number token is equal, and every number is within the tolerance.
Each number that moved is classified (``replay.core.verify.noise``), so a report can say "only timing-like
numbers differ".

The text comes from the replayed command: untrusted, any bytes. Decoding replaces what is not UTF-8, a line
is read at most ``LINE_CAP`` bytes at a time, and the tokenizer's patterns have no nested repetition.
"""

from __future__ import annotations

import difflib
import enum
import math
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from replay.core.verify.noise import NoiseClass, classify_number, describe, is_timing_context
from replay.core.verify.tolerance import Tolerance

LINE_CAP = 1 << 20
# Files this small whose line counts differ are aligned (difflib), so that a line that comes and goes is
# seen as one line, not as every line after it moved.
ALIGN_CAP = 1 << 20
ALIGN_LINES = 20000


class TokenKind(enum.StrEnum):
    NUMBER = "number"
    DATETIME = "datetime"
    HEX = "hex"
    TEMP_PATH = "temp_path"
    TEXT = "text"


_PATTERN = re.compile(
    r"(?P<datetime>\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2})?)?"
    r"|(?<!\d)\d{1,2}:\d{2}:\d{2}(?:[.,]\d{1,9})?)"
    r"|(?P<hex>(?<![0-9A-Za-z_])0x[0-9a-fA-F]{4,})"
    r"|(?P<temp_path>(?:/tmp|/var/tmp|/var/folders|/dev/shm)/[^\s'\"():,;]*|(?<![A-Za-z0-9_])tmp[a-z0-9_]{6,})"
    r"|(?P<number>(?<![A-Za-z_\d.])[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)"
)

_KIND_CLASS = {TokenKind.DATETIME: NoiseClass.TIMESTAMP, TokenKind.HEX: NoiseClass.ADDRESS,
               TokenKind.TEMP_PATH: NoiseClass.TEMP_PATH, TokenKind.TEXT: NoiseClass.OTHER}


@dataclass(frozen=True)
class Token:
    kind: TokenKind
    text: str

    @property
    def value(self) -> float:
        """The number a NUMBER token holds (huge exponents become inf, never an error)."""
        return float(self.text)


def tokenize(line: str) -> list[Token]:
    """Tokens that join back to ``line`` exactly (``"".join(t.text for t in tokenize(s)) == s``)."""
    out: list[Token] = []
    pos = 0
    for match in _PATTERN.finditer(line):
        if match.start() > pos:
            out.append(Token(TokenKind.TEXT, line[pos : match.start()]))
        kind = TokenKind(match.lastgroup or "text")
        out.append(Token(kind, match.group()))
        pos = match.end()
    if pos < len(line):
        out.append(Token(TokenKind.TEXT, line[pos:]))
    return out


@dataclass(frozen=True)
class Move:
    """A number that differs between the two lines."""

    reference: float
    replayed: float
    cls: NoiseClass
    allowed: bool

    @property
    def abs_diff(self) -> float:
        return abs(self.replayed - self.reference)

    @property
    def rel_diff(self) -> float | None:
        ref = self.reference
        return self.abs_diff / abs(ref) if ref != 0 and math.isfinite(ref) else None


@dataclass
class LineDiff:
    structural: bool  # a non-number token differs, or the tokens do not line up
    classes: set[NoiseClass] = field(default_factory=set)
    moves: list[Move] = field(default_factory=list)


def compare_line(a: str, b: str, tol: Tolerance | None = None) -> LineDiff | None:
    """None when the lines are equal; else what differs in them, each difference classified."""
    if a == b:
        return None
    if same_items(a, b):
        return LineDiff(structural=True, classes={NoiseClass.ORDER})
    ta, tb = tokenize(a), tokenize(b)
    if len(ta) != len(tb) or any(x.kind != y.kind for x, y in zip(ta, tb, strict=False)):
        return LineDiff(structural=True, classes={NoiseClass.OTHER})
    diff = LineDiff(structural=False)
    for i, (x, y) in enumerate(zip(ta, tb, strict=False)):
        if x.text == y.text:
            continue
        if x.kind is not TokenKind.NUMBER:
            diff.structural = True
            diff.classes.add(_KIND_CLASS[x.kind])
            continue
        ref, new = x.value, y.value
        if ref == new or (math.isnan(ref) and math.isnan(new)):
            continue  # the same number written another way (0.10 and 0.1)
        before = "".join(t.text for t in ta[max(0, i - 3) : i])
        after = "".join(t.text for t in ta[i + 1 : i + 3])
        cls = classify_number(ref, new, before, after)
        diff.classes.add(cls)
        diff.moves.append(Move(ref, new, cls, tol is not None and tol.allows(ref, new)))
    return diff if (diff.structural or diff.moves) else None


_ITEM = re.compile(r"[^\s,;:{}\[\]()'\"]+")


def same_items(a: str, b: str) -> bool:
    """The same words and numbers (two or more), in another order: a set or a dict printed in hash order."""
    wa, wb = _ITEM.findall(a), _ITEM.findall(b)
    return len(wa) > 1 and wa != wb and sorted(wa) == sorted(wb)


def has_timing(line: str) -> bool:
    """A number on this line reads as a timing (a time word before it or a unit after it)."""
    tokens = tokenize(line)
    return any(t.kind is TokenKind.NUMBER and is_timing_context("".join(x.text for x in tokens[max(0, i - 3):i]),
                                                                 "".join(x.text for x in tokens[i + 1:i + 3]))
               for i, t in enumerate(tokens))


@dataclass
class TextDiff:
    """Two text files compared line by line, numbers as numbers."""

    lines_compared: int = 0
    lines_differing: int = 0
    line_count_differs: bool = False
    structure_equal: bool = True  # same lines but for the numbers in them
    numbers_moved: int = 0
    numbers_beyond: int = 0  # moved beyond the tolerance (all moved numbers, without one)
    max_abs_move: float | None = None
    max_rel_move: float | None = None
    max_abs_from_zero: float | None = None  # the largest move of a number that was 0 (rel cannot allow it)
    class_lines: dict[str, int] = field(default_factory=dict)  # noise class -> lines with such a difference
    first_differing_line: int | None = None
    first_beyond_line: int | None = None
    complete: bool = True  # read to the end of both files

    def within(self) -> bool:
        return self.complete and self.structure_equal and self.numbers_beyond == 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "lines_compared": self.lines_compared, "lines_differing": self.lines_differing,
            "line_count_differs": self.line_count_differs, "structure_equal": self.structure_equal,
            "numbers_moved": self.numbers_moved, "numbers_beyond_tolerance": self.numbers_beyond,
            "max_abs_move": self.max_abs_move, "max_rel_move": self.max_rel_move,
            "max_abs_move_from_zero": self.max_abs_from_zero, "classes": dict(sorted(self.class_lines.items())),
            "first_differing_line": self.first_differing_line, "first_line_beyond_tolerance": self.first_beyond_line,
            "complete": self.complete,
        }


def compare_text(ref: Path, new: Path, tol: Tolerance | None = None, cap: int | None = None) -> TextDiff:
    """Stream both files line by line; ``cap`` bounds the bytes read from each (then ``complete`` is False).
    Small files whose line counts differ are aligned first: a line that appears or disappears next to a
    timing is ``timing_driven``; any other is ``other``."""
    out = TextDiff()
    classes: Counter[str] = Counter()
    for a, b, lone in _line_pairs(ref, new, cap, out):
        out.lines_compared += 1
        if a is None or b is None:
            out.line_count_differs = True
            out.structure_equal = False
            _differs(out, classes, {lone})
            out.first_beyond_line = out.first_beyond_line or out.lines_compared
            continue
        diff = compare_line(a, b, tol)
        if diff is None:
            continue
        _differs(out, classes, diff.classes)
        out.structure_equal = out.structure_equal and not diff.structural
        beyond = diff.structural
        for move in diff.moves:
            out.numbers_moved += 1
            if not move.allowed:
                out.numbers_beyond += 1
                beyond = True
            out.max_abs_move = _max(out.max_abs_move, move.abs_diff)
            rel = move.rel_diff
            if rel is not None:
                out.max_rel_move = _max(out.max_rel_move, rel)
            elif move.reference == 0:
                out.max_abs_from_zero = _max(out.max_abs_from_zero, move.abs_diff)
        if beyond:
            out.first_beyond_line = out.first_beyond_line or out.lines_compared
    out.class_lines = dict(classes)
    return out


Pair = tuple["str | None", "str | None", NoiseClass]


def _line_pairs(ref: Path, new: Path, cap: int | None, out: TextDiff) -> Iterator[Pair]:
    if max(ref.stat().st_size, new.stat().st_size) <= ALIGN_CAP:
        with open(ref, "rb") as fa, open(new, "rb") as fb:
            la, lb = _lines(fa), _lines(fb)
        if len(la) != len(lb) and max(len(la), len(lb)) <= ALIGN_LINES:
            yield from _aligned(la, lb)
            return
    with open(ref, "rb") as fa, open(new, "rb") as fb:
        read = 0
        while True:
            a, b = _line(fa), _line(fb)
            if a is None and b is None:
                return
            if cap is not None and read > cap:
                out.complete = False
                return
            read += max(len(a or ""), len(b or ""))
            yield a, b, NoiseClass.OTHER


def _aligned(la: list[str], lb: list[str]) -> Iterator[Pair]:
    """Lines matched on their words with the numbers masked and the order set aside; the lines of one side
    only are classed by what stands next to them."""
    masked_a, masked_b = [_key(line) for line in la], [_key(line) for line in lb]
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, masked_a, masked_b, autojunk=False).get_opcodes():
        paired = min(i2 - i1, j2 - j1) if op == "replace" else (i2 - i1 if op == "equal" else 0)
        for k in range(paired):
            yield la[i1 + k], lb[j1 + k], NoiseClass.OTHER
        near = [*la[max(0, i1 - 1):i2 + 1], *lb[max(0, j1 - 1):j2 + 1]]
        lone = NoiseClass.TIMING_DRIVEN if any(has_timing(line) for line in near) else NoiseClass.OTHER
        for line in la[i1 + paired:i2]:
            yield line, None, lone
        for line in lb[j1 + paired:j2]:
            yield None, line, lone


_NUMBER_MASK = re.compile(r"\d+(?:\.\d*)?(?:[eE][-+]?\d+)?")


def _key(line: str) -> str:
    return "\0".join(sorted(_ITEM.findall(_NUMBER_MASK.sub("#", line))))


def _lines(handle: IO[bytes]) -> list[str]:
    lines = []
    while (line := _line(handle)) is not None:
        lines.append(line)
    return lines


def _differs(out: TextDiff, classes: Counter[str], found: set[NoiseClass]) -> None:
    out.lines_differing += 1
    out.first_differing_line = out.first_differing_line or out.lines_compared
    for cls in found:
        classes[cls.value] += 1


def _line(handle: IO[bytes]) -> str | None:
    raw = handle.readline(LINE_CAP)
    if not raw:
        return None
    return raw.decode("utf-8", "replace").rstrip("\r\n")


def _max(current: float | None, value: float) -> float:
    if math.isnan(value):
        return current if current is not None else math.inf
    return value if current is None or value > current else current


def suggest_tolerance(max_rel: float | None, max_abs_from_zero: float | None) -> str | None:
    """A tolerance spec that allows the moves seen, with a little headroom, rounded up to one digit."""
    parts = []
    if max_abs_from_zero:
        parts.append(f"abs:{ceil_1(max_abs_from_zero)}")
    if max_rel:
        parts.append(f"rel:{ceil_1(max_rel)}")
    return ",".join(parts) or None


def ceil_1(value: float) -> str:
    """``value`` with 10% headroom, rounded up to one significant digit: 0.034 -> 4e-02."""
    if not math.isfinite(value) or value <= 0:
        return "0"
    x = value * 1.1
    exp = math.floor(math.log10(x))
    mantissa = math.ceil(round(x / 10**exp, 9))
    if mantissa >= 10:
        mantissa, exp = 1, exp + 1
    return f"{mantissa}e{exp:+03d}" if not -3 <= exp <= 3 else f"{mantissa * 10.0**exp:g}"


# --- for explain ---------------------------------------------------------------------------------------


def explain_numeric(ref: Path, new: Path, tol: Tolerance | None, cap: int) -> TextDiff:
    """``numeric`` for an explanation; the whole files are read only when a verdict rests on it (a tolerance)."""
    return compare_text(ref, new, tol, cap=None if tol is not None else cap)


def cell_within(a: str | None, b: str | None, tol: Tolerance) -> bool:
    """A CSV cell such as "0.17 sec": the same text, its numbers within the tolerance."""
    if a is None or b is None:
        return False
    diff = compare_line(a, b, tol)
    return diff is None or (not diff.structural and all(m.allowed for m in diff.moves))


def summary_part(numeric: TextDiff) -> str:
    """The numeric part of explain's one line: what kind of values differ, how many numbers moved, how far."""
    classes = numeric.class_lines
    parts = [] if set(classes) <= {"other"} else [describe(classes)]
    moved = numeric.numbers_moved
    if moved:
        text = f"{moved} number{'s' if moved != 1 else ''} moved"
        if isinstance(numeric.max_rel_move, float):
            text += f" (max rel {numeric.max_rel_move:.3g})"
        elif isinstance(numeric.max_abs_move, float):
            text += f" (max abs {numeric.max_abs_move:.3g})"
        parts.append(text)
    if not numeric.structure_equal and moved:
        parts.append("text other than numbers differs too")
    return "; ".join(parts)
