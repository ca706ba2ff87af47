"""The ELF reader: round trips of built shared objects, and any bytes at all (wheels are untrusted input)."""

from __future__ import annotations

import io
import os
import sys

from hypothesis import given, settings
from hypothesis import strategies as st

from replay.core.capture.elf import ElfLinks, read_links
from tests.unit.elfbuild import shared_object

names = st.text(st.characters(min_codepoint=33, max_codepoint=0x2FF, exclude_characters=":"), min_size=1,
                max_size=40)


def links(data: bytes) -> ElfLinks | None:
    return read_links(io.BytesIO(data), len(data))


@given(needed=st.lists(names, max_size=8), soname=st.none() | names, runpath=st.none() | st.lists(names, min_size=1,
       max_size=3), wide=st.booleans(), little=st.booleans())
def test_a_built_shared_object_reads_back(needed: list[str], soname: str | None, runpath: list[str] | None,
                                          wide: bool, little: bool) -> None:
    data = shared_object(needed, soname, ":".join(runpath) if runpath else None, wide=wide, little=little)

    assert links(data) == ElfLinks(needed=needed, soname=soname, rpath=runpath or [])


@settings(max_examples=300)
@given(st.binary(max_size=600))
def test_any_bytes_read_as_links_or_none(data: bytes) -> None:
    result = links(data)
    assert result is None or isinstance(result, ElfLinks)


@settings(max_examples=300)
@given(st.data())
def test_a_damaged_shared_object_never_raises(draw: st.DataObject) -> None:
    data = bytearray(shared_object(["libgomp.so.1", "libc.so.6"], "libx.so", "$ORIGIN/../x.libs"))
    for _ in range(draw.draw(st.integers(1, 8))):
        data[draw.draw(st.integers(0, len(data) - 1))] = draw.draw(st.integers(0, 255))
    cut = draw.draw(st.integers(0, len(data)))
    result = links(bytes(data[:cut]))
    assert result is None or isinstance(result, ElfLinks)


def test_what_is_not_elf_reads_as_none() -> None:
    assert links(b"#!/bin/sh\necho hi\n") is None
    assert links(b"") is None
    assert links(shared_object(["libc.so.6"])[:100]) is None  # cut inside the program headers


def test_the_real_interpreter_needs_libc() -> None:
    path = os.path.realpath(sys.executable)
    with open(path, "rb") as handle:
        found = read_links(handle, os.path.getsize(path))
    assert found is not None and "libc.so.6" in found.needed
