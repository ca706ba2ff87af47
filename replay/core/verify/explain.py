"""Why a replayed output differs from its reference copy: an ``Explanation`` (``replay.core.verify.explanation``,
one dataclass per kind) that a report writes, and that renders its own one line and noise classes.

``explain`` always gives ``kind`` (npy, npz, json, csv, text, binary, or unreadable), both sizes and the
first differing byte; then what the kind allows: the first differing line, CSV cell, JSON keys, or
per-array statistics; text and CSV also get ``numeric`` (``replay.core.verify.numtext``: numbers compared as
numbers, how many moved and how far, and the noise class of each differing line). With a tolerance, numeric
kinds and text also say ``within_tolerance``: whether every value
is within it (non-numeric values must still be equal).

Reading is bounded: line, cell and key detail only look at the first ``TEXT_CAP`` bytes. Checking a
tolerance reads everything, because a verdict cannot rest on a sample: CSV streams, JSON up to
``JSON_TOLERANCE_CAP``, arrays in chunks (``.npy`` memory-mapped). numpy is optional; without it, arrays
are explained as bytes.
"""

from __future__ import annotations

import codecs
import csv
import difflib
import math
import re
import zipfile
from dataclasses import dataclass
from itertools import zip_longest
from pathlib import Path
from typing import Any

from replay.core.verify import budgets, numtext
from replay.core.verify.explanation import (
    ArrayDiff,
    ArrayExplanation,
    Cell,
    CsvExplanation,
    Explanation,
    JsonDifference,
    JsonExplanation,
    TextExplanation,
)
from replay.core.verify.tolerance import Tolerance, first_difference

TEXT_SUFFIXES = {".txt", ".log", ".md", ".csv", ".tsv", ".yaml", ".yml"}
TEXT_CAP = 16 << 20
JSON_TOLERANCE_CAP = 32 << 20
SNIFF_BYTES = 8192
LINE_CHARS = 200
DIFF_LINES = 20
MAX_KEYS = 10
ARRAY_CHUNK = 1 << 20  # elements per step, so a huge array never needs a full-size float64 copy

_MISSING = object()


def explain(reference: Path, replayed: Path, tolerance: Tolerance | None = None,
            suffix: str | None = None) -> Explanation:
    """``suffix`` names the kind where the paths do not (paths to opened descriptors, ``safefs.opened``)."""
    head = _Head()
    suffix = (reference.suffix if suffix is None else suffix).lower()
    try:
        head.reference_size = reference.stat().st_size
        head.replayed_size = replayed.stat().st_size
        kind = _kind(suffix, reference, replayed)
        head.first_byte_offset = offset = first_difference(reference, replayed)
        head.tolerance = tolerance.describe() if tolerance is not None else None
        if offset is None:
            return _KIND_TYPES[kind](kind=kind, **vars(head), within_tolerance=True if tolerance is not None else None)
        return _detail(kind, head, reference, replayed, offset, tolerance, suffix)
    except OSError as exc:
        head.first_byte_offset = None
        return Explanation(kind="unreadable", **vars(head), error=str(exc))


@dataclass
class _Head:
    """What every explanation has, filled in as far as the files could be read."""

    reference_size: int | None = None
    replayed_size: int | None = None
    first_byte_offset: int | None = None
    tolerance: str | None = None


_KIND_TYPES: dict[str, type[Explanation]] = {"npy": ArrayExplanation, "npz": ArrayExplanation,
                                              "json": JsonExplanation, "csv": CsvExplanation,
                                              "text": TextExplanation, "binary": Explanation}


def _kind(suffix: str, reference: Path, replayed: Path) -> str:
    if suffix in (".npy", ".npz", ".json"):
        return suffix[1:]
    if suffix in (".csv", ".tsv"):
        return "csv"
    if suffix in TEXT_SUFFIXES or (_looks_text(reference) and _looks_text(replayed)):
        return "text"
    return "binary"


def _looks_text(path: Path) -> bool:
    with open(path, "rb") as handle:
        head = handle.read(SNIFF_BYTES)
    if b"\0" in head:
        return False
    try:
        # Not final: the sniffed block may end inside a multi-byte character.
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return False
    return True


def _detail(kind: str, head: _Head, ref: Path, new: Path, offset: int, tol: Tolerance | None,
            suffix: str) -> Explanation:
    # A file that does not parse as its suffix claims is explained by what it does look like.
    if kind in ("npy", "npz"):
        try:
            return _explain_arrays(ref, new, kind, tol, head)
        except ImportError:
            return Explanation(kind="binary", **vars(head), note="numpy is not installed")
        except budgets.HeaderError as exc:
            return Explanation(kind="binary", **vars(head), note=f"not loaded: {exc} ({budgets.HOW_TO_RAISE})")
        except (ValueError, EOFError, KeyError, TypeError, OverflowError, MemoryError, zipfile.BadZipFile) as exc:
            return Explanation(kind="binary", **vars(head), note=f"not a readable {kind} file ({exc})")
    if kind == "json":
        try:
            return _explain_json(ref, new, tol, head)
        except (ValueError, RecursionError):
            if not (_looks_text(ref) and _looks_text(new)):
                return Explanation(kind="binary", **vars(head))
            text = TextExplanation(kind="text", **vars(head))
            _explain_text(text, ref, new, offset)
            return text
    if kind == "csv":
        table = CsvExplanation(kind="csv", **vars(head), numeric=numtext.explain_numeric(ref, new, None, TEXT_CAP))
        _explain_text(table, ref, new, offset)
        try:
            _explain_csv(table, ref, new, offset, tol, suffix)
        except csv.Error as exc:  # e.g. a field over csv's size limit: the line detail still helps
            table.cells_note = f"not parsed as CSV ({exc})"
        return table
    if kind == "text":
        numeric = numtext.explain_numeric(ref, new, tol, TEXT_CAP)
        text = TextExplanation(kind="text", **vars(head), numeric=numeric,
                               within_tolerance=numeric.within() if tol is not None else None)
        _explain_text(text, ref, new, offset)
        return text
    return Explanation(kind="binary", **vars(head))


# --- text ----------------------------------------------------------------------------------------------


def _explain_text(out: TextExplanation, ref: Path, new: Path, offset: int) -> None:
    """Fill in the first differing line, where it is, and a diff around it."""
    if offset > TEXT_CAP:
        out.note = f"first difference is past the first {TEXT_CAP >> 20} MiB; no line detail"
        return
    # Enough past the offset for the rest of the line and a few more for the diff.
    with open(ref, "rb") as fa, open(new, "rb") as fb:
        a, b = fa.read(offset + 65536), fb.read(offset + 65536)
    line_no = a.count(b"\n", 0, offset) + 1
    start = a.rfind(b"\n", 0, offset) + 1
    column = len(a[start:offset].decode("utf-8", "replace"))
    ctx = start
    for _ in range(3):  # three lines of context before
        ctx = a.rfind(b"\n", 0, ctx - 1) + 1 if ctx else 0
    first_ctx_line = line_no - a.count(b"\n", ctx, start)
    out.first_differing_line, out.first_differing_column = line_no, column + 1
    out.reference_line, out.replayed_line = _clip(_line_at(a, start), column), _clip(_line_at(b, start), column)
    out.diff = _window_diff(a[ctx:], b[ctx:], first_ctx_line)


def _line_at(data: bytes, start: int) -> str | None:
    if start >= len(data):
        return None  # the file ends before this line
    end = data.find(b"\n", start)
    return data[start : end if end >= 0 else len(data)].decode("utf-8", "replace").rstrip("\r")


def _clip(line: str | None, column: int = 0) -> str | None:
    """At most LINE_CHARS characters, keeping the differing column in view."""
    if line is None or len(line) <= LINE_CHARS:
        return line
    begin = max(0, min(column - 60, len(line) - LINE_CHARS))
    text = line[begin : begin + LINE_CHARS]
    return ("..." if begin else "") + text + ("..." if begin + LINE_CHARS < len(line) else "")


def _window_diff(a: bytes, b: bytes, first_line: int) -> list[str]:
    """A unified diff of the few lines around the first difference, numbered as in the whole files."""
    lines_a = a.decode("utf-8", "replace").splitlines()[:15]
    lines_b = b.decode("utf-8", "replace").splitlines()[:15]
    diff = list(difflib.unified_diff(lines_a, lines_b, "reference", "replayed", n=3, lineterm=""))

    def renumber(match: re.Match[str]) -> str:
        return f"{match.group(1)}{int(match.group(2)) + first_line - 1}"

    diff = [re.sub(r"([-+])(\d+)", renumber, d) if d.startswith("@@") else d for d in diff]
    clipped = [_clip(d) or "" for d in diff]
    return clipped if len(clipped) <= DIFF_LINES else clipped[: DIFF_LINES - 1] + ["..."]


# --- CSV -----------------------------------------------------------------------------------------------


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


def _explain_csv(out: CsvExplanation, ref: Path, new: Path, offset: int, tol: Tolerance | None,
                 suffix: str = "") -> None:
    """Fill in the first differing cell; with a tolerance, every cell is read and counted."""
    if tol is None and offset > TEXT_CAP:
        return
    delimiter = "\t" if (suffix or ref.suffix).lower() == ".tsv" else ","
    first: Cell | None = None
    beyond: Cell | None = None
    header: list[str] | None = None
    differing = beyond_count = 0
    with open(ref, encoding="utf-8", errors="replace", newline="") as fa, open(
        new, encoding="utf-8", errors="replace", newline=""
    ) as fb:
        rows = zip_longest(csv.reader(budgets.bounded_lines(fa, csv.Error), delimiter=delimiter),
                           csv.reader(budgets.bounded_lines(fb, csv.Error), delimiter=delimiter))
        for row_no, (row_a, row_b) in enumerate(rows, start=1):
            if row_no == 1 and row_a and all(c and _number(c) is None for c in row_a):
                header = row_a
            if row_a == row_b:
                continue
            for col, (cell_a, cell_b) in enumerate(zip_longest(row_a or [], row_b or []), start=1):
                if cell_a == cell_b:
                    continue
                x, y = _number(cell_a), _number(cell_b)
                name = header[col - 1] if header and col <= len(header) else None
                cell = Cell(row_no, col, name, cell_a, cell_b, abs(y - x) if x is not None and y is not None else None)
                differing += 1
                first = first or cell
                if tol is None or not (tol.allows(x, y) if x is not None and y is not None
                                       else numtext.cell_within(cell_a, cell_b, tol)):
                    beyond_count += 1
                    beyond = beyond or cell
            if first is not None and tol is None:
                break  # without a tolerance, the first difference is all that is asked
    out.has_header, out.first_differing_cell = header is not None, first
    if tol is not None:
        out.differing_cells, out.cells_beyond_tolerance = differing, beyond_count
        out.first_cell_beyond_tolerance, out.within_tolerance = beyond, beyond_count == 0


# --- JSON ----------------------------------------------------------------------------------------------


def _explain_json(ref: Path, new: Path, tol: Tolerance | None, head: _Head) -> JsonExplanation:
    import json

    limit = JSON_TOLERANCE_CAP if tol is not None else TEXT_CAP
    if max(ref.stat().st_size, new.stat().st_size) > limit:
        return JsonExplanation(kind="json", **vars(head),
                               note=f"larger than {limit >> 20} MiB, the verifier's read budget; no key detail")
    texts = []
    for path in (ref, new):
        with open(path, "rb") as handle:  # read with a cap: the size above may change under us
            data = handle.read(limit + 1)
        over = budgets.json_over_budget(data, limit)
        if over is not None:
            return JsonExplanation(kind="json", **vars(head), note=f"{over} ({budgets.HOW_TO_RAISE})")
        texts.append(data)
    a, b = json.loads(texts[0]), json.loads(texts[1])
    del texts
    found: list[JsonDifference] = []
    counts = {"differing": 0, "beyond": 0}
    _walk(a, b, "", found, counts, tol)
    return JsonExplanation(
        kind="json", **vars(head), differing_values=counts["differing"], differences=found,
        note=None if counts["differing"] else "same values; only formatting or key order differs",
        within_tolerance=counts["beyond"] == 0 if tol is not None else None,
    )


def _is_num(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _walk(
    a: Any, b: Any, path: str, found: list[JsonDifference], counts: dict[str, int], tol: Tolerance | None
) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in list(a) + [k for k in b if k not in a]:
            child = f"{path}.{key}" if path else str(key)
            _walk(a.get(key, _MISSING), b.get(key, _MISSING), child, found, counts, tol)
        return
    if isinstance(a, list) and isinstance(b, list):
        for i, (x, y) in enumerate(zip_longest(a, b, fillvalue=_MISSING)):
            _walk(x, y, f"{path}[{i}]", found, counts, tol)
        return
    change = "missing" if b is _MISSING else "added" if a is _MISSING else "changed"
    entry = JsonDifference(path or "(root)", change, _show(a), _show(b))
    if _is_num(a) and _is_num(b):
        x, y = float(a), float(b)
        if x == y or (math.isnan(x) and math.isnan(y)):
            return
        entry.abs_diff = abs(y - x)
        entry.rel_diff = abs(y - x) / abs(x) if x != 0 and math.isfinite(x) else None
        allowed = tol is not None and tol.allows(x, y)
    elif a == b and type(a) is type(b):
        return
    else:
        allowed = False
    counts["differing"] += 1
    counts["beyond"] += 0 if allowed else 1
    if len(found) < MAX_KEYS:
        found.append(entry)


def _show(value: Any) -> Any:
    """A JSON value small enough for a report: containers are summarised, strings clipped."""
    if value is _MISSING:
        return None  # absent on this side: ``change`` says so
    if isinstance(value, dict):
        return f"<object with {len(value)} keys>"
    if isinstance(value, list):
        return f"<list of {len(value)}>"
    return _clip(value) if isinstance(value, str) else value


# --- arrays --------------------------------------------------------------------------------------------


def _explain_arrays(ref: Path, new: Path, kind: str, tol: Tolerance | None, head: _Head) -> ArrayExplanation:
    import numpy as np

    if kind == "npy":
        for path in (ref, new):  # the header's claims, checked against the file before numpy maps it
            with open(path, "rb") as handle:
                header = budgets.read_npy_header(handle)
            budgets.check_fits(header, np.dtype(header.descr).itemsize, path.stat().st_size)
        a = np.load(ref, mmap_mode="r", allow_pickle=False)
        b = np.load(new, mmap_mode="r", allow_pickle=False)
        if not (isinstance(a, np.ndarray) and isinstance(b, np.ndarray)):
            raise ValueError("an .npz archive where an .npy array was expected")
        arrays = [_array_diff(np, None, a, b, tol)]
        out = ArrayExplanation(kind=kind, **vars(head), arrays=arrays)
    else:
        budgets.check_npz(np, ref)
        budgets.check_npz(np, new)
        with np.load(ref, allow_pickle=False) as za, np.load(new, allow_pickle=False) as zb:
            if not (hasattr(za, "files") and hasattr(zb, "files")):
                raise ValueError("an .npy array where an .npz archive was expected")
            names_a, names_b = list(za.files), list(zb.files)
            common = [n for n in names_a if n in names_b]
            diffs = [_array_diff(np, n, za[n], zb[n], tol) for n in common]
        arrays = [d for d in diffs if d.differing != 0]
        out = ArrayExplanation(
            kind=kind, **vars(head), arrays=arrays, identical_arrays=len(diffs) - len(arrays),
            missing_arrays=[n for n in names_a if n not in names_b],
            extra_arrays=[n for n in names_b if n not in names_a],
        )
    if tol is not None:
        whole = kind == "npy" or not (out.missing_arrays or out.extra_arrays)
        out.within_tolerance = whole and all(d.within_tolerance for d in arrays)
    return out


def _array_diff(np: Any, name: str | None, a: Any, b: Any, tol: Tolerance | None) -> ArrayDiff:
    out = ArrayDiff(name, list(a.shape), list(b.shape), str(a.dtype), str(b.dtype), int(a.size))
    if a.shape != b.shape:
        out.within_tolerance = False if tol is not None else None
        return out
    numeric = a.dtype.kind in "iufc" and b.dtype.kind in "iufc"
    # Integers are widened before subtracting: uint8 0 - 1 would wrap to 255.
    work = np.result_type(a.dtype, b.dtype, np.float64) if numeric else None
    if not numeric and a.dtype != b.dtype:
        out.differing = int(a.size)
        out.within_tolerance = False if tol is not None else None
        return out
    flat_a, flat_b = a.reshape(-1), b.reshape(-1)
    differing = beyond = 0
    max_abs = max_rel = -math.inf
    for i in range(0, max(a.size, 1), ARRAY_CHUNK):
        x, y = np.asarray(flat_a[i : i + ARRAY_CHUNK]), np.asarray(flat_b[i : i + ARRAY_CHUNK])
        if work is None:
            neq = x != y
            differing += int(np.count_nonzero(neq))
            beyond += int(np.count_nonzero(neq))
            continue
        x, y = x.astype(work, copy=False), y.astype(work, copy=False)
        with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
            same = (x == y) | (np.isnan(x) & np.isnan(y))
            diff = np.abs(y - x)
            size = np.abs(x)
            if tol is not None:
                # Finite only: with rtol > 0 an infinite reference would otherwise allow anything.
                near = (diff <= tol.atol + tol.rtol * size) & np.isfinite(x) & np.isfinite(y)
                beyond += int(np.count_nonzero(~(same | near)))
            neq = ~same
            if neq.any():
                differing += int(np.count_nonzero(neq))
                d, s = diff[neq], size[neq]
                # fmax skips NaN (a NaN against a number), so the maximum stays a number when one exists.
                max_abs = max(max_abs, float(np.fmax.reduce(d)))
                rel = np.divide(d, s, out=np.full(d.shape, np.nan), where=s != 0)
                max_rel = max(max_rel, float(np.fmax.reduce(rel)))
    out.differing = differing
    if differing and work is not None:
        out.max_abs_diff = None if math.isnan(max_abs) or max_abs == -math.inf else max_abs
        out.max_rel_diff = None if math.isnan(max_rel) or max_rel == -math.inf else max_rel
    if tol is not None:
        out.within_tolerance = beyond == 0
    return out
