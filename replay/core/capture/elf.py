"""What a compiled file links against, read from its ELF dynamic section as ``ldd`` and auditwheel read it.

Wheels are untrusted input: the reader seeks and reads a bounded number of bytes at each step (a header,
the program headers, the dynamic section, each string up to a bounded length), never the whole file, never
loads it, never follows offsets outside the file. Anything that is not a well-formed ELF file gives None.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import BinaryIO

_MAGIC = b"\x7fELF"
_MAX_PHDRS = 4096  # more program headers than any real linker writes
_MAX_DYNAMIC = 1 << 20  # bytes of dynamic section read at most (65536 entries)
_MAX_NAME = 4096  # bytes of one string (a library name or search path)
_MAX_NEEDED = 1024

_PT_LOAD, _PT_DYNAMIC = 1, 2
_DT_NULL, _DT_NEEDED, _DT_STRTAB, _DT_STRSZ, _DT_SONAME, _DT_RPATH, _DT_RUNPATH = 0, 1, 5, 10, 14, 15, 29


@dataclass(frozen=True)
class ElfLinks:
    """The dynamic linking facts of one ELF file: the libraries it needs, its own name, its search paths."""

    needed: list[str] = field(default_factory=list)
    soname: str | None = None
    rpath: list[str] = field(default_factory=list)  # DT_RUNPATH, else DT_RPATH, split on ':'


@dataclass(frozen=True)
class _Layout:
    wide: bool  # ELFCLASS64
    order: str  # struct byte order: "<" or ">"

    @property
    def word(self) -> str:
        return "Q" if self.wide else "I"


def read_links(handle: BinaryIO, size: int) -> ElfLinks | None:
    """The links of the ELF file open in ``handle`` (``size`` bytes long); None when it is not a readable ELF
    file or has no dynamic section (a static program, an object file)."""
    try:
        return _read(handle, size)
    except (struct.error, ValueError, OverflowError):
        return None


def _read(handle: BinaryIO, size: int) -> ElfLinks | None:
    ident = _at(handle, size, 0, 16)
    if ident is None or ident[:4] != _MAGIC or ident[4] not in (1, 2) or ident[5] not in (1, 2):
        return None
    lay = _Layout(wide=ident[4] == 2, order="<" if ident[5] == 1 else ">")
    header = _at(handle, size, 16, 48 if lay.wide else 36)
    if header is None:
        return None
    fmt = lay.order + ("HHIQQQIHHHHHH" if lay.wide else "HHIIIIIHHHHHH")
    _, _, _, _, phoff, _, _, _, phentsize, phnum, _, _, _ = struct.unpack(fmt, header)
    want = 56 if lay.wide else 32
    if phnum == 0 or phnum > _MAX_PHDRS or phentsize < want:
        return None
    table = _at(handle, size, phoff, phentsize * phnum)
    if table is None:
        return None
    loads, dynamic = _segments(lay, table, phentsize, phnum)
    if dynamic is None:
        return None
    entries = _dynamic_entries(lay, handle, size, dynamic)
    if entries is None:
        return None
    return _links(handle, size, loads, entries)


def _segments(lay: _Layout, table: bytes, entsize: int,
              count: int) -> tuple[list[tuple[int, int, int]], tuple[int, int] | None]:
    """(PT_LOAD segments as (vaddr, offset, filesz), the PT_DYNAMIC segment as (offset, filesz))."""
    loads: list[tuple[int, int, int]] = []
    dynamic = None
    for i in range(count):
        raw = table[i * entsize:i * entsize + (56 if lay.wide else 32)]
        if lay.wide:
            kind, _, offset, vaddr, _, filesz, _, _ = struct.unpack(lay.order + "IIQQQQQQ", raw)
        else:
            kind, offset, vaddr, _, filesz, _, _, _ = struct.unpack(lay.order + "IIIIIIII", raw)
        if kind == _PT_LOAD:
            loads.append((vaddr, offset, filesz))
        elif kind == _PT_DYNAMIC and dynamic is None:
            dynamic = (offset, filesz)
    return loads, dynamic


def _dynamic_entries(lay: _Layout, handle: BinaryIO, size: int,
                     dynamic: tuple[int, int]) -> list[tuple[int, int]] | None:
    offset, length = dynamic
    entry = 16 if lay.wide else 8
    raw = _at(handle, size, offset, min(length, _MAX_DYNAMIC) // entry * entry)
    if raw is None:
        return None
    fmt = lay.order + ("qQ" if lay.wide else "iI")
    out = []
    for tag, value in struct.iter_unpack(fmt, raw):
        if tag == _DT_NULL:
            break
        out.append((tag, value))
    return out


def _links(handle: BinaryIO, size: int, loads: list[tuple[int, int, int]],
           entries: list[tuple[int, int]]) -> ElfLinks | None:
    strtab = next((v for t, v in entries if t == _DT_STRTAB), None)
    strsz = next((v for t, v in entries if t == _DT_STRSZ), 0)
    if strtab is None:
        return None
    base = _file_offset(loads, strtab)
    if base is None:
        return None

    def name(offset: int) -> str | None:
        if offset >= strsz:
            return None
        return _string(handle, size, base + offset, min(_MAX_NAME, strsz - offset))

    needed = [n for t, v in entries if t == _DT_NEEDED for n in [name(v)] if n][:_MAX_NEEDED]
    soname = next((n for t, v in entries if t == _DT_SONAME for n in [name(v)] if n), None)
    runpath = next((n for t, v in entries if t == _DT_RUNPATH for n in [name(v)] if n), None)
    rpath = runpath or next((n for t, v in entries if t == _DT_RPATH for n in [name(v)] if n), None)
    return ElfLinks(needed=needed, soname=soname, rpath=[p for p in (rpath or "").split(":") if p])


def _file_offset(loads: list[tuple[int, int, int]], vaddr: int) -> int | None:
    """Where virtual address ``vaddr`` lies in the file (the PT_LOAD segment that maps it)."""
    for start, offset, filesz in loads:
        if start <= vaddr < start + filesz:
            return offset + (vaddr - start)
    return None


def _string(handle: BinaryIO, size: int, offset: int, limit: int) -> str | None:
    raw = _at(handle, size, offset, min(limit, size - offset)) if 0 <= offset < size else None
    if not raw:
        return None
    end = raw.find(b"\0")
    if end <= 0:
        return None  # empty, or longer than any library name replay reads
    try:
        return raw[:end].decode("utf-8")
    except UnicodeDecodeError:
        return None


def _at(handle: BinaryIO, size: int, offset: int, length: int) -> bytes | None:
    """Exactly ``length`` bytes at ``offset``, or None when they are not all in the file."""
    if offset < 0 or length < 0 or offset + length > size:
        return None
    handle.seek(offset)
    data = handle.read(length)
    return data if len(data) == length else None
