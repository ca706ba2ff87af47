"""Reading a bundle: check every member against the index, then unpack or stream members, safely.

``open_bundle`` reads the whole file once before anything is used: the index first, then every member in
index order, each name, size and sha256 checked, and nothing after the end but the tar's zero padding. A
truncated, altered, padded or reordered bundle is refused naming the member. What is then written
(``extract``) goes only under a fresh folder, through folder descriptors opened with O_NOFOLLOW, into files
created with O_EXCL, decompressed with the declared size as a hard cap and checked against the declared
sha256 before the file is linked into place. No ``tarfile`` extraction is involved at any point.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, cast

from replay.core.events import NullReporter, Reporter
from replay.core.share.bundle.format import (
    BLOCK,
    INDEX_NAME,
    MAX_INDEX_BYTES,
    MAX_SIG_BYTES,
    RECORD,
    SIG_NAME,
    BundleError,
    Index,
    Member,
    parse_header,
    parse_index,
    safe_relpath,
)
from replay.fsutil import descend

CHUNK = 1 << 20
MAX_WINDOW = 1 << 27  # zstd window cap: a frame that asks for more memory than this is refused


@dataclass
class Bundle:
    path: Path
    index: Index
    index_bytes: bytes
    signature: bytes | None
    offsets: dict[str, int] = field(default_factory=dict)  # member name -> where its data starts
    signer: str | None = None  # the principal whose signature was checked, when one was

    def provenance(self, allowed_signers: Path | None) -> str:
        """The one line a report gives about where the bundle comes from."""
        if self.signer:
            return f"bundle signed by {self.signer} (signature checked against {allowed_signers})"
        if self.signature is not None:
            return "bundle signed, but the signature was NOT checked (pass --allowed-signers FILE)"
        return "bundle UNSIGNED: nothing proves who packed it"


def is_bundle(path: Path) -> bool:
    """Whether ``path`` is a file that starts as a bundle does (its first member is index.json)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(BLOCK)
    except OSError:
        return False
    return len(head) == BLOCK and head[:len(INDEX_NAME) + 1] == INDEX_NAME.encode() + b"\0"


# Checks index.json's raw bytes and index.sig (None when the bundle has none) before either is parsed;
# returns the signer's principal. ``target.checked`` passes one when --allowed-signers asks for a signature.
SignatureCheck = Callable[[bytes, "bytes | None"], str]


def open_bundle(path: Path, reporter: Reporter | None = None, signature_check: SignatureCheck | None = None) -> Bundle:
    """The bundle at ``path`` with every member checked; BundleError names the first that is not right.

    With ``signature_check`` the signature over the index's raw bytes is checked first, before the index is
    parsed or any member read: an unsigned or forged bundle costs nothing but reading its first two members.
    """
    rep = reporter or NullReporter()
    total = os.path.getsize(path)
    with open(path, "rb") as fh:
        index_bytes, signature, header = _head(fh)
        signer = signature_check(index_bytes, signature) if signature_check is not None else None
        index = parse_index(index_bytes)
        declared = sum(m.size for m in index.members)
        if declared > total:
            raise BundleError(f"the index declares {declared} bytes of members, more than the file's {total} "
                              "(truncated, or not the index packed with it)")
        bundle = Bundle(path, index, index_bytes, signature, signer=signer)
        for member in index.members:
            if header is None:
                raise BundleError(f"the bundle ends before member {member.name} (truncated)")
            if header[0] != member.name:
                raise BundleError(f"found member {header[0]!r} where the index has {member.name} "
                                  "(reordered, or not listed in the index)")
            if header[1] != member.size:
                raise BundleError(f"member {member.name} is {header[1]} bytes; the index says {member.size}")
            bundle.offsets[member.name] = fh.tell()
            _check_data(fh, member)
            rep.progress("checking the bundle", fh.tell(), total)
            header = _next_header(fh, f"after {member.name}")
        if header is not None:
            raise BundleError(f"member {header[0]!r} is not listed in the index (added after packing)")
        _check_end(fh)
    if total % RECORD:
        raise BundleError("the bundle's size is not a whole number of tar records (truncated or padded)")
    return bundle


def _head(fh: IO[bytes]) -> tuple[bytes, bytes | None, tuple[str, int] | None]:
    """index.json's bytes, index.sig's (or None), and the header of the member after them."""
    first = _next_header(fh, "the start")
    if first is None:
        raise BundleError("the file is an empty tar, not a bundle", "pass a file made by `replay pack`")
    name, size = first
    if name != INDEX_NAME:
        raise BundleError(f"the first member is {name!r}, not {INDEX_NAME}", "pass a file made by `replay pack`")
    if size > MAX_INDEX_BYTES:
        raise BundleError(f"{INDEX_NAME} declares {size} bytes, over the {MAX_INDEX_BYTES} cap")
    index_bytes = _read_data(fh, size, INDEX_NAME)
    signature = None
    header = _next_header(fh, f"after {INDEX_NAME}")
    if header is not None and header[0] == SIG_NAME:
        if header[1] > MAX_SIG_BYTES:
            raise BundleError(f"{SIG_NAME} declares {header[1]} bytes, over the {MAX_SIG_BYTES} cap")
        signature = _read_data(fh, header[1], SIG_NAME)
        header = _next_header(fh, f"after {SIG_NAME}")
    return index_bytes, signature, header


def _next_header(fh: IO[bytes], where: str) -> tuple[str, int] | None:
    return parse_header(fh.read(BLOCK), where)


def _read_data(fh: IO[bytes], size: int, name: str) -> bytes:
    data: bytes = fh.read(size)
    pad = fh.read(-size % BLOCK)
    if len(data) != size or len(pad) != -size % BLOCK:
        raise BundleError(f"the bundle is truncated in member {name}")
    return data


def _check_data(fh: io.BufferedReader, member: Member) -> None:
    digest = hashlib.sha256()
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    left = member.size
    while left:
        n = fh.readinto(view[:min(CHUNK, left)])
        if not n:
            raise BundleError(f"the bundle is truncated in member {member.name}")
        digest.update(view[:n])
        left -= n
    pad = fh.read(-member.size % BLOCK)
    if digest.hexdigest() != member.sha256:
        raise BundleError(f"member {member.name} does not match its sha256 in the index (altered)")
    if len(pad) != -member.size % BLOCK:
        raise BundleError(f"the bundle is truncated after member {member.name}")


def _check_end(fh: IO[bytes]) -> None:
    """The second end-of-archive block, then nothing but the zero padding of one tar record."""
    second = fh.read(BLOCK)
    if len(second) != BLOCK or second.strip(b"\0"):
        raise BundleError("the bundle does not end as a tar archive does (truncated or padded)")
    rest = fh.read(RECORD + 1)
    if len(rest) > RECORD or rest.strip(b"\0"):
        raise BundleError("the bundle has data after its last member (padded or appended to)")


# --- members, decompressed and checked ------------------------------------------------------------------


class _Slice:
    """A read-only window on the bundle file: exactly one member's compressed bytes."""

    def __init__(self, fd: int, offset: int, size: int) -> None:
        self._fd, self._pos, self._end = fd, offset, offset + size

    def read(self, n: int = -1) -> bytes:
        n = self._end - self._pos if n < 0 else min(n, self._end - self._pos)
        data = os.pread(self._fd, n, self._pos) if n > 0 else b""
        self._pos += len(data)
        return data


def iter_blob(bundle: Bundle, raw_sha256: str) -> Iterator[bytes]:
    """A member's content, decompressed in chunks, never beyond its declared size, checked at its end."""
    import zstandard

    member = bundle.index.by_blob.get(raw_sha256)
    if member is None:
        raise BundleError(f"the bundle holds no blob {raw_sha256[:12]}")
    digest, got = hashlib.sha256(), 0
    fd = os.open(bundle.path, os.O_RDONLY)
    try:
        reader = zstandard.ZstdDecompressor(max_window_size=MAX_WINDOW).stream_reader(
            cast(IO[bytes], _Slice(fd, bundle.offsets[member.name], member.size)), read_size=CHUNK, read_across_frames=True)
        while True:
            try:
                chunk = reader.read(min(CHUNK, member.raw_size - got + 1))
            except zstandard.ZstdError as exc:
                raise BundleError(f"member {member.name} does not decompress ({exc})") from None
            if not chunk:
                break
            got += len(chunk)
            if got > member.raw_size:
                raise BundleError(f"member {member.name} decompresses to more than the {member.raw_size} bytes "
                                  "the index declares (a decompression bomb?)")
            digest.update(chunk)
            yield chunk
    finally:
        os.close(fd)
    if got != member.raw_size or digest.hexdigest() != member.raw_sha256:
        raise BundleError(f"member {member.name} decompresses to other content than the index declares")


def extract(bundle: Bundle, raw_sha256: str, root: Path, relpath: str, reporter: Reporter | None = None) -> Path:
    """Write one member to ``root/relpath`` (``root`` a folder replay made); never outside, never over a file."""
    safe_relpath(relpath, "unpack")
    member = bundle.index.by_blob.get(raw_sha256)
    if member is not None:
        stat = os.statvfs(root)
        if member.raw_size > stat.f_bavail * stat.f_frsize:  # a declared size that would fill the disk
            raise BundleError(f"{relpath} declares {member.raw_size} bytes, more than the free space under {root}",
                              "free some space, or do not trust this bundle")
    *folders, name = relpath.split("/")
    top = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        dir_fd = descend(top, folders)
    except NotADirectoryError as exc:
        raise BundleError(f"cannot unpack {relpath}: {exc.args[0]} is not a plain folder") from None
    try:
        tmp = f".{name}.part-{secrets.token_hex(4)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644, dir_fd=dir_fd)
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in iter_blob(bundle, raw_sha256):
                    out.write(chunk)
            try:
                os.link(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd, follow_symlinks=False)
            except FileExistsError:
                raise BundleError(f"cannot unpack {relpath}: it is already there (a duplicate name)") from None
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp, dir_fd=dir_fd)
    finally:
        os.close(dir_fd)
    return root / relpath


def read_blob(bundle: Bundle, raw_sha256: str, cap: int) -> bytes:
    """A small member whole (a config), refused when it declares more than ``cap`` bytes."""
    member = bundle.index.by_blob[raw_sha256]
    if member.raw_size > cap:
        raise BundleError(f"member {member.name} declares {member.raw_size} bytes, over the {cap} cap")
    return b"".join(iter_blob(bundle, raw_sha256))
