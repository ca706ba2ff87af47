"""Small ELF shared objects for tests: a header, a PT_LOAD over the whole file, a PT_DYNAMIC, a string table."""

from __future__ import annotations

import struct

VADDR = 0x400000


def shared_object(needed: list[str], soname: str | None = None, runpath: str | None = None, *, wide: bool = True,
                  little: bool = True) -> bytes:
    order = "<" if little else ">"
    strings = b"\0"
    offsets: dict[str, int] = {}
    for name in [*needed, *([soname] if soname else []), *([runpath] if runpath else [])]:
        if name not in offsets:
            offsets[name] = len(strings)
            strings += name.encode() + b"\0"
    ehsize, phentsize = (64, 56) if wide else (52, 32)
    strtab_off = ehsize + 2 * phentsize
    dyn_off = strtab_off + len(strings)
    entries = [(1, offsets[n]) for n in needed]
    if soname:
        entries.append((14, offsets[soname]))
    if runpath:
        entries.append((29, offsets[runpath]))
    entries += [(5, VADDR + strtab_off), (10, len(strings)), (0, 0)]
    dyn = b"".join(struct.pack(order + ("qQ" if wide else "iI"), t, v) for t, v in entries)
    total = dyn_off + len(dyn)
    ident = b"\x7fELF" + bytes([2 if wide else 1, 1 if little else 2, 1]) + bytes(9)
    if wide:
        header = struct.pack(order + "HHIQQQIHHHHHH", 3, 62, 1, 0, ehsize, 0, 0, ehsize, phentsize, 2, 64, 0, 0)
        load = struct.pack(order + "IIQQQQQQ", 1, 5, 0, VADDR, VADDR, total, total, 0x1000)
        dynamic = struct.pack(order + "IIQQQQQQ", 2, 6, dyn_off, VADDR + dyn_off, VADDR + dyn_off, len(dyn),
                              len(dyn), 8)
    else:
        header = struct.pack(order + "HHIIIIIHHHHHH", 3, 3, 1, 0, ehsize, 0, 0, ehsize, phentsize, 2, 40, 0, 0)
        load = struct.pack(order + "IIIIIIII", 1, 0, VADDR, VADDR, total, total, 5, 0x1000)
        dynamic = struct.pack(order + "IIIIIIII", 2, dyn_off, VADDR + dyn_off, VADDR + dyn_off, len(dyn), len(dyn),
                              6, 4)
    return ident + header + load + dynamic + strings + dyn
