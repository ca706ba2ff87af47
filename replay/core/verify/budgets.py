"""What ``replay verify`` reads of a replay's outputs, at most: the one place for the verifier's read budgets.

A replay is someone else's command, and what it writes is read by the verifier's own process, whose memory
no container limits. Every reader of a replayed (or reference) file checks these budgets before it parses,
and past one it reports the file as differing or unreadable with a note naming the budget, never loads it.
With these budgets the verifier's peak memory stays under ``PEAK_MEMORY_MB`` (the hostile suite measures it).

``read_npy_header`` is the bounded reader of an ``.npy`` header: the header is checked (size, shape, element
count against the file's bytes) before numpy maps or reads a single element.
"""

from __future__ import annotations

import ast
import math
import struct
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

METRICS_BYTES = 32 << 20  # a metrics file larger than this is unreadable (its metrics are missing)
JSON_ELEMENTS = 200_000  # values in one JSON file the verifier parses (metrics, or a JSON output's detail)
ARRAY_ELEMENTS = 1 << 31  # elements of one array compared (memory-mapped, in chunks: time, not memory)
NPZ_ENTRY_BYTES = 128 << 20  # an .npz entry is decompressed into memory: at most this much, per side
CSV_LINE_CHARS = 1 << 20  # a CSV row is split into a list of cells: a longer line is not parsed as CSV
NPY_HEADER_BYTES = 64 << 10  # numpy's own limit is 10000; a header this large is refused
PEAK_MEMORY_MB = 500  # what these budgets keep the verifier under (tests/e2e/hostile: "max_rss_mb")
HOW_TO_RAISE = "the verifier's read budgets are in replay/core/verify/budgets.py"

_MAGIC = b"\x93NUMPY"


def json_elements_bound(data: bytes) -> int:
    """An upper bound on how many values parsing ``data`` as JSON makes, counted without parsing.

    Every value is the root, the first in its container, or follows a comma; bytes inside strings are
    counted too, so the bound only errs high.
    """
    return 1 + data.count(b",") + data.count(b"[") + data.count(b"{")


def json_over_budget(data: bytes, byte_limit: int) -> str | None:
    """Which budget parsing ``data`` would exceed, as a note; None when it is within both."""
    if len(data) > byte_limit:
        return f"larger than the verifier's read budget of {byte_limit >> 20} MiB; not parsed"
    if json_elements_bound(data) > JSON_ELEMENTS:
        return f"may hold more than {JSON_ELEMENTS} values, the verifier's element budget; not parsed"
    return None


def bounded_lines(handle: IO[str], what: type[Exception]) -> Iterator[str]:
    """The lines of ``handle`` for a CSV reader; ``what`` is raised at a line over ``CSV_LINE_CHARS`` (a single
    line of 100 million cells would otherwise become one list of 100 million strings)."""
    while line := handle.readline(CSV_LINE_CHARS + 1):
        if len(line) > CSV_LINE_CHARS:
            raise what(f"a line longer than {CSV_LINE_CHARS} characters, the verifier's read budget")
        yield line


class HeaderError(ValueError):
    """An .npy header that is malformed or claims more than its file or the budget allows."""


@dataclass(frozen=True)
class NpyHeader:
    descr: str
    fortran_order: bool
    shape: tuple[int, ...]
    data_offset: int  # where the elements begin

    @property
    def elements(self) -> int:
        return math.prod(self.shape)


def read_npy_header(handle: IO[bytes]) -> NpyHeader:
    """The header of the .npy stream ``handle`` (at its start), reading at most ``NPY_HEADER_BYTES`` + 12."""
    start = handle.read(8)
    if len(start) < 8 or start[:6] != _MAGIC:
        raise HeaderError("not an .npy array (no NUMPY magic)")
    major = start[6]
    if major not in (1, 2, 3):
        raise HeaderError(f"unknown .npy format version {major}")
    size_bytes = handle.read(2 if major == 1 else 4)
    if len(size_bytes) != (2 if major == 1 else 4):
        raise HeaderError("the .npy header is cut short")
    length = struct.unpack("<H" if major == 1 else "<I", size_bytes)[0]
    if length > NPY_HEADER_BYTES:
        raise HeaderError(f"the .npy header is {length} bytes, over the {NPY_HEADER_BYTES}-byte budget")
    raw = handle.read(length)
    if len(raw) != length:
        raise HeaderError("the .npy header is cut short")
    return _parse_header(raw, major, 8 + len(size_bytes) + length)


def _parse_header(raw: bytes, major: int, offset: int) -> NpyHeader:
    try:
        text = raw.decode("utf-8" if major == 3 else "latin1")
        value = ast.literal_eval(text.strip())
    except (ValueError, SyntaxError, MemoryError, RecursionError, UnicodeDecodeError, TypeError):
        raise HeaderError("the .npy header is not a Python literal") from None
    if not isinstance(value, dict) or set(value) != {"descr", "fortran_order", "shape"}:
        raise HeaderError("the .npy header lacks descr, fortran_order and shape")
    descr, fortran, shape = value["descr"], value["fortran_order"], value["shape"]
    if not isinstance(descr, str) or not isinstance(fortran, bool):
        raise HeaderError("the .npy header's descr is not a plain dtype")
    if not isinstance(shape, tuple) or len(shape) > 64 or not all(
            isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape):
        raise HeaderError("the .npy header's shape is not a tuple of sizes")
    header = NpyHeader(descr, fortran, shape, offset)
    if header.elements > ARRAY_ELEMENTS:
        raise HeaderError(f"the .npy header claims {header.elements} elements, over the verifier's element "
                          f"budget of {ARRAY_ELEMENTS}")
    return header


def check_fits(header: NpyHeader, itemsize: int, available: int, what: str = "the file") -> None:
    """Refuse a header whose elements need more bytes than ``available`` (the file's size, or a budget)."""
    needed = header.data_offset + header.elements * itemsize
    if needed > available:
        raise HeaderError(f"the .npy header claims {header.elements} elements ({needed} bytes), more than "
                          f"{what} holds ({available} bytes)")


def check_npz(np: Any, path: Path) -> None:
    """Every entry of an .npz archive within ``NPZ_ENTRY_BYTES``, by its declared size and by its header's
    claims, before numpy loads one (an entry is decompressed into memory; zipfile stops reading an entry at
    its declared size, so the declared size bounds what a lying entry can inflate to)."""
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            if info.file_size > NPZ_ENTRY_BYTES:
                raise HeaderError(f"entry {info.filename!r} inflates to {info.file_size} bytes, over the verifier's "
                                  f"budget of {NPZ_ENTRY_BYTES >> 20} MiB per entry")
            with archive.open(info) as entry:
                header = read_npy_header(entry)
            check_fits(header, np.dtype(header.descr).itemsize, info.file_size, f"entry {info.filename!r}")
