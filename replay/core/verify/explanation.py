"""What ``replay.core.verify.explain`` found, one dataclass per kind of file, each with its one line
(``summary``), its noise classes (``noise_classes``) and the dict the verify report writes (``to_dict``).

Every explanation has ``kind``, both sizes and the first differing byte (``first_byte_offset``, None where
the copies are identical); ``tolerance`` and ``within_tolerance`` when a tolerance applied. Then, by kind:

- ``Explanation``        binary, unreadable (``error``), or a file not read as its suffix says (``note``)
- ``NotAFile``           a link, FIFO or device where an output belongs: never read (``note`` only)
- ``ArrayExplanation``   npy and npz: per-array statistics (``ArrayDiff``), missing and extra arrays
- ``JsonExplanation``    json: the differing values (``JsonDifference``), how many
- ``TextExplanation``    text: the first differing line and a diff, ``numeric`` (``numtext.TextDiff``)
- ``CsvExplanation``     csv: as text, plus the first differing cell (``Cell``) and cell counts

A field that does not apply is None and is not written. ``from_dict`` reads back what ``to_dict`` wrote,
key for key, in the same order.
"""

from __future__ import annotations

import functools
import types
import typing
from dataclasses import dataclass, fields, is_dataclass
from typing import Any, ClassVar

from replay import jsonio
from replay.core.verify import numtext
from replay.core.verify.noise import FLOAT_NOISE_REL, NoiseClass, classify_number

_OTHER = {NoiseClass.OTHER.value: 1}


@dataclass(kw_only=True)
class Explanation:
    """Binary or unreadable; and every kind's explanation of two identical copies."""

    kind: str
    reference_size: int | None = None
    replayed_size: int | None = None
    first_byte_offset: int | None = None
    tolerance: str | None = None  # its description, when one applied
    note: str | None = None  # why a file was not read as its suffix says (binary)
    error: str | None = None  # why it could not be read (unreadable)
    within_tolerance: bool | None = None

    KINDS: ClassVar[tuple[str, ...]] = ("binary", "unreadable")

    def to_dict(self) -> dict[str, Any]:
        head = {"kind": self.kind, "reference_size": self.reference_size, "replayed_size": self.replayed_size,
                "first_byte_offset": self.first_byte_offset}
        head |= {"tolerance": self.tolerance} if self.tolerance is not None else {}
        tail = {"within_tolerance": self.within_tolerance} if self.within_tolerance is not None else {}
        return head | self._detail() | tail

    def _detail(self) -> dict[str, Any]:
        return _present(note=self.note, error=self.error)

    def summary(self) -> str:
        """One human line, e.g. "differs at byte 1234 (sizes 5000 vs 5000); line 12: '0.8512' vs '0.8519'"."""
        if self.kind == "unreadable":
            return f"could not be read ({self.error})"
        if self.first_byte_offset is None:
            return "identical"
        parts = [f"differs at byte {self.first_byte_offset} (sizes {self.reference_size} vs {self.replayed_size})"]
        parts += self._parts()
        if self.within_tolerance is not None:
            verb = "within" if self.within_tolerance else "beyond"
            parts.append(f"{verb} tolerance {self.tolerance or ''}".rstrip())
        return "; ".join(parts)

    def _parts(self) -> list[str]:
        return [self.note] if self.note else []

    def noise_classes(self) -> dict[str, int]:
        """What kind of noise the difference looks like: noise class -> lines (or values, or arrays)."""
        return dict(_OTHER)


@dataclass(kw_only=True)
class NotAFile(Explanation):
    """A link, FIFO or device where an output belongs: never read, so no sizes."""

    kind: str = "not a file"
    note: str | None = "not a regular file; not read"

    KINDS: ClassVar[tuple[str, ...]] = ("not a file",)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "first_byte_offset": None, "note": self.note}

    def summary(self) -> str:
        return str(self.note)


# --- arrays --------------------------------------------------------------------------------------------


@dataclass
class ArrayDiff:
    """One array of an .npy file or .npz archive, against its reference copy."""

    name: str | None  # None for an .npy file
    shape: list[int]
    replayed_shape: list[int]
    dtype: str
    replayed_dtype: str
    size: int
    differing: int | None = None  # elements that differ; None where the shapes differ
    max_abs_diff: float | None = None
    max_rel_diff: float | None = None
    within_tolerance: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        return out if self.within_tolerance is not None else {k: v for k, v in out.items() if k != "within_tolerance"}

    def summary(self) -> str:
        label = f"array '{self.name}'" if self.name else "array"
        if self.shape != self.replayed_shape:
            return f"{label}: shape {tuple(self.shape)} vs {tuple(self.replayed_shape)}"
        text = f"{label}: shape {tuple(self.shape)}"
        if self.max_abs_diff is not None:
            text += f", max abs diff {_g(self.max_abs_diff)}"
        return text + f", {self.differing} of {self.size} elements differ"


@dataclass(kw_only=True)
class ArrayExplanation(Explanation):
    arrays: list[ArrayDiff] | None = None  # an .npz archive's: only those that differ
    identical_arrays: int | None = None  # these three for an .npz archive only
    missing_arrays: list[str] | None = None
    extra_arrays: list[str] | None = None

    KINDS: ClassVar[tuple[str, ...]] = ("npy", "npz")

    def _detail(self) -> dict[str, Any]:
        out: dict[str, Any] = {"arrays": [a.to_dict() for a in self.arrays]} if self.arrays is not None else {}
        if self.identical_arrays is not None:
            out |= {"identical_arrays": self.identical_arrays, "missing_arrays": self.missing_arrays,
                    "extra_arrays": self.extra_arrays}
        return out

    def _parts(self) -> list[str]:
        parts = [a.summary() for a in (self.arrays or [])[:3]]
        for names, word in ((self.missing_arrays, "missing"), (self.extra_arrays, "extra")):
            if names:
                parts.append(f"{word} arrays " + ", ".join(f"'{n}'" for n in names))
        return parts

    def noise_classes(self) -> dict[str, int]:
        if not self.arrays or self.missing_arrays or self.extra_arrays:
            return dict(_OTHER)
        noise = all(a.max_rel_diff is not None and a.max_rel_diff <= FLOAT_NOISE_REL and a.shape == a.replayed_shape
                    for a in self.arrays)
        return {NoiseClass.FLOAT_NOISE.value: len(self.arrays)} if noise else dict(_OTHER)


# --- JSON ----------------------------------------------------------------------------------------------


@dataclass
class JsonDifference:
    """One value that differs; ``abs_diff`` and ``rel_diff`` only when both sides are numbers."""

    path: str  # e.g. "eval.acc" or "losses[3]"; "(root)" for the document itself
    change: str  # changed | missing | added
    reference: Any  # the JSON value, containers summarised, strings clipped; None when absent
    replayed: Any
    abs_diff: float | None = None
    rel_diff: float | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {"path": self.path, "change": self.change, "reference": self.reference, "replayed": self.replayed}
        return out if self.abs_diff is None else out | {"abs_diff": self.abs_diff, "rel_diff": self.rel_diff}

    def noise_class(self) -> NoiseClass:
        numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (self.reference, self.replayed))
        return classify_number(float(self.reference), float(self.replayed), name=self.path) if numbers else NoiseClass.OTHER


@dataclass(kw_only=True)
class JsonExplanation(Explanation):
    differing_values: int | None = None
    differences: list[JsonDifference] | None = None  # the first MAX_KEYS of them

    KINDS: ClassVar[tuple[str, ...]] = ("json",)

    def _detail(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.differences is not None:
            out = {"differing_values": self.differing_values, "differences": [d.to_dict() for d in self.differences]}
        return out | _present(note=self.note)

    def _parts(self) -> list[str]:
        if not self.differences:
            return super()._parts()
        first = self.differences[0]
        text = f"{first.path}: {_short(first.reference)} vs {_short(first.replayed)}"
        if first.abs_diff is not None:
            text += f" (abs diff {_g(first.abs_diff)})"
        more = (self.differing_values or 1) - 1
        return [text + (f" (+{more} more)" if more > 0 else "")]

    def noise_classes(self) -> dict[str, int]:
        if not self.differences or (self.differing_values or 0) > len(self.differences):
            return dict(_OTHER)
        counts: dict[str, int] = {}
        for d in self.differences:
            cls = d.noise_class().value
            counts[cls] = counts.get(cls, 0) + 1
        return counts


# --- text and CSV --------------------------------------------------------------------------------------


@dataclass(kw_only=True)
class TextExplanation(Explanation):
    """The first differing line (``note`` instead when it lies past what is read), a diff around it, and
    ``numeric``: the numbers compared as numbers."""

    first_differing_line: int | None = None
    first_differing_column: int | None = None
    reference_line: str | None = None  # None where that file ends before the line
    replayed_line: str | None = None
    diff: list[str] | None = None
    numeric: numtext.TextDiff | None = None

    KINDS: ClassVar[tuple[str, ...]] = ("text",)

    def _detail(self) -> dict[str, Any]:
        if self.first_differing_line is not None:
            out: dict[str, Any] = {
                "first_differing_line": self.first_differing_line, "first_differing_column": self.first_differing_column,
                "reference_line": self.reference_line, "replayed_line": self.replayed_line, "diff": self.diff}
        else:
            out = _present(note=self.note)
        return out | ({"numeric": self.numeric.to_dict()} if self.numeric is not None else {})

    def _parts(self) -> list[str]:
        return self._line_parts() + self._numeric_parts()

    def _line_parts(self) -> list[str]:
        if self.first_differing_line is not None:
            return [f"line {self.first_differing_line}: {_short(self.reference_line)} vs {_short(self.replayed_line)}"]
        return super()._parts()

    def _numeric_parts(self) -> list[str]:
        if self.numeric is not None and self.numeric.lines_differing and (extra := numtext.summary_part(self.numeric)):
            return [extra]
        return []

    def noise_classes(self) -> dict[str, int]:
        if self.numeric is not None and self.numeric.class_lines and self.numeric.complete:
            return dict(sorted(self.numeric.class_lines.items()))
        return dict(_OTHER)


@dataclass
class Cell:
    """One CSV cell that differs; ``row`` and ``column`` count from 1, the header row included."""

    row: int
    column: int
    column_name: str | None
    reference: str | None  # None where that file's row is shorter
    replayed: str | None
    abs_diff: float | None = None  # both cells numbers

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def summary(self) -> str:
        where = f"'{self.column_name}'" if self.column_name else str(self.column)
        return f"row {self.row}, column {where}: {_short(self.reference)} vs {_short(self.replayed)}"


@dataclass(kw_only=True)
class CsvExplanation(TextExplanation):
    """As text, and cell by cell; the counts and the first cell beyond the tolerance only with one."""

    has_header: bool | None = None  # None where the cells were not read (``cells_note`` says why)
    first_differing_cell: Cell | None = None
    differing_cells: int | None = None
    cells_beyond_tolerance: int | None = None
    first_cell_beyond_tolerance: Cell | None = None
    cells_note: str | None = None  # why the file was not read as CSV (written as ``note``)

    KINDS: ClassVar[tuple[str, ...]] = ("csv",)

    def _detail(self) -> dict[str, Any]:
        out = super()._detail()
        if self.has_header is not None:
            out |= {"has_header": self.has_header, "first_differing_cell": _plain(self.first_differing_cell)}
        if self.differing_cells is not None:
            out |= {"differing_cells": self.differing_cells, "cells_beyond_tolerance": self.cells_beyond_tolerance,
                    "first_cell_beyond_tolerance": _plain(self.first_cell_beyond_tolerance)}
        return out | _present(note=self.cells_note)

    def _parts(self) -> list[str]:
        cell = self.first_cell_beyond_tolerance or self.first_differing_cell
        if cell is not None:
            return [cell.summary()] + self._numeric_parts()
        if self.first_differing_line is None and self.cells_note:
            return [self.cells_note] + self._numeric_parts()
        return super()._parts()


# --- reading back --------------------------------------------------------------------------------------

_KINDS = {kind: cls for cls in (Explanation, NotAFile, ArrayExplanation, JsonExplanation, TextExplanation,
                                CsvExplanation) for kind in cls.KINDS}
# numtext.TextDiff's fields under the names the report writes
_NUMERIC_KEYS = {"numbers_beyond_tolerance": "numbers_beyond", "max_abs_move_from_zero": "max_abs_from_zero",
                 "classes": "class_lines", "first_line_beyond_tolerance": "first_beyond_line"}
_NOISE_CLASSES = {c.value for c in NoiseClass}


def from_dict(raw: Any) -> Explanation:
    """An explanation as a verify report wrote it (``to_dict``). It may come back from a node through a shared
    folder: a value of the wrong type, a missing field or an unknown noise class is a ``ValueError``."""
    if not isinstance(raw, dict):
        raise ValueError("an explanation is not an object")
    kind = raw.get("kind")
    cls = _KINDS.get(kind, Explanation) if isinstance(kind, str) else Explanation
    values = dict(raw)
    if cls is CsvExplanation and "note" in values and "first_differing_line" in values:
        values["cells_note"] = values.pop("note")  # after the line detail: the CSV reader's note
    if isinstance(values.get("numeric"), dict):
        values["numeric"] = {_NUMERIC_KEYS.get(k, k): v for k, v in values["numeric"].items()}
    out: Explanation = _read(cls, values, "explanation")
    numeric = getattr(out, "numeric", None)
    if numeric is not None and not set(numeric.class_lines) <= _NOISE_CLASSES:
        raise ValueError("explanation.numeric.classes: an unknown noise class")
    return out


@functools.cache
def _hints(cls: type) -> tuple[tuple[str, Any], ...]:
    hints = typing.get_type_hints(cls)
    return tuple((f.name, hints[f.name]) for f in fields(cls))


def _read(tp: Any, value: Any, where: str) -> Any:
    """``value`` as ``tp``: like ``replay.typedjson.build``, but text may hold any character (a replayed line
    may), and a float may come as "NaN", "Infinity" or "-Infinity" (as reports write them)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        options = [o for o in typing.get_args(tp) if o is not type(None)]
        if value is None and len(options) < len(typing.get_args(tp)):
            return None
        return _read(options[0], value, where)  # every union here is "X | None"
    if tp is Any:
        return value
    if is_dataclass(tp) and isinstance(tp, type):
        if not isinstance(value, dict):
            raise ValueError(f"{where}: expected an object")
        kwargs = {name: _read(hint, value[name], f"{where}.{name}") for name, hint in _hints(tp) if name in value}
        try:
            return tp(**kwargs)
        except TypeError:  # a required field missing
            raise ValueError(f"{where}: a field is missing") from None
    if origin is list and isinstance(value, list):
        (item,) = typing.get_args(tp)
        return [_read(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict and isinstance(value, dict):
        _, item = typing.get_args(tp)
        return {str(k): _read(item, v, f"{where}.{k}") for k, v in value.items()}
    if tp is float and (number := jsonio.number(value)) is not None:
        return number
    if tp in (int, str, bool) and isinstance(value, tp) and (tp is bool or not isinstance(value, bool)):
        return value
    raise ValueError(f"{where}: expected {getattr(tp, '__name__', tp)}, got {type(value).__name__}")


# --- helpers -------------------------------------------------------------------------------------------


def _present(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def _plain(cell: Cell | None) -> dict[str, Any] | None:
    return cell.to_dict() if cell is not None else None


def _g(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _short(value: Any, limit: int = 80) -> str:
    if value is None:
        return "(none)"
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
