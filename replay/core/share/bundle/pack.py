"""`replay pack`: capsules, their images (and with --with-data their data) into one bundle file.

Streams throughout: the engine's save is split while it arrives, each blob compressed (zstd, all cores) into
a spool folder next to the output while its sha256 is taken, and a blob seen before (a shared layer, a
shared data file) is dropped at once. The bundle is then written index first and renamed into place, so an
interrupted pack leaves nothing. Nothing is ever held in memory whole except small JSON files.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, cast

from replay import __version__
from replay.core import layout
from replay.core.events import NullReporter, Reporter
from replay.core.ports import Engine
from replay.core.share.bundle.format import (
    INDEX_NAME,
    RECORD,
    SIG_NAME,
    CapsuleEntry,
    CapsuleFile,
    ImageEntry,
    Index,
    Member,
    blob_name,
    check_capsule_name,
    tar_header,
    tar_padding,
)
from replay.core.share.bundle.image import split_save
from replay.errors import BadInput, DataMismatch, ImageProblem
from replay.manifest import MANIFEST_NAME, Manifest, load

CHUNK = 1 << 20
LEVEL = 3


@dataclass
class PackRequest:
    capsules: list[Path]
    out: Path
    cwd: Path
    with_data: bool = False
    # Signs the index bytes, returning the signature (``replay.core.share.signing.signer``); None: unsigned.
    sign: Callable[[bytes], bytes] | None = None


@dataclass
class PackResult:
    path: Path
    size: int
    capsules: list[str]
    images: int
    members: int
    raw_bytes: int  # what went in, uncompressed (each shared blob counted once)
    seconds: float
    signed: bool
    timings: dict[str, float] = field(default_factory=dict)


class _Spool:
    """Content-addressed, compressed blobs in a scratch folder: each distinct content stored once."""

    def __init__(self, folder: Path, on_bytes: Callable[[int], None]) -> None:
        import zstandard

        self.folder = folder
        self.members: dict[str, Member] = {}
        self._cctx = zstandard.ZstdCompressor(level=LEVEL, threads=-1, write_checksum=False)
        self._on_bytes = on_bytes
        self._n = 0

    def store(self, source: IO[bytes], size: int) -> str:
        self._n += 1
        tmp = self.folder / f"part-{self._n}"
        raw = hashlib.sha256()
        with open(tmp, "wb") as fh:
            hashed = _HashingWriter(fh)
            with self._cctx.stream_writer(cast(IO[bytes], hashed), size=size, closefd=False, write_size=CHUNK) as writer:
                left = size
                while left:
                    chunk = source.read(min(CHUNK, left))
                    if not chunk:
                        raise BadInput("a file being packed got shorter while it was read", "pack again")
                    raw.update(chunk)
                    writer.write(chunk)
                    left -= len(chunk)
                    self._on_bytes(len(chunk))
        hexdigest = raw.hexdigest()
        if hexdigest in self.members:
            tmp.unlink()
        else:
            os.replace(tmp, self.folder / hexdigest)
            self.members[hexdigest] = Member(blob_name(hexdigest), hashed.size, hashed.digest.hexdigest(), size,
                                             hexdigest)
        return hexdigest

    def store_file(self, path: Path) -> str:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd, "rb") as fh:
            return self.store(fh, os.fstat(fh.fileno()).st_size)


class _HashingWriter:
    def __init__(self, fh: IO[bytes]) -> None:
        self.fh, self.digest, self.size = fh, hashlib.sha256(), 0

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        self.size += len(data)
        return self.fh.write(data)

    def flush(self) -> None:
        self.fh.flush()


def pack(req: PackRequest, engine: Engine, reporter: Reporter | None = None) -> PackResult:
    rep = reporter or NullReporter()
    t0 = time.perf_counter()
    capsules = [(path, load(path)) for path in req.capsules]
    _check_names(capsules)
    images = {m.image.id: m for _, m in capsules}
    sizes = {}
    for image_id, m in images.items():
        record = engine.image(image_id)
        if record is None:
            raise ImageProblem(f"image {image_id[:19]} of capsule {m.name} is not in this engine",
                               "pack on the machine that captured it (or load its image first)")
        sizes[image_id] = record.size
    total = sum(sizes.values()) + sum(_capsule_bytes(p) for p, _ in capsules)
    if req.with_data:
        total += sum(m.data.total_bytes for _, m in capsules)
    done = [0]

    def count(n: int) -> None:
        done[0] += n
        rep.progress("packing", done[0], max(total, done[0]))

    req.out.parent.mkdir(parents=True, exist_ok=True)
    spool_dir = Path(tempfile.mkdtemp(dir=req.out.parent, prefix=f".{req.out.name}.spool-"))
    try:
        spool = _Spool(spool_dir, count)
        entries = []
        for path, m in capsules:
            rep.stage(f"packing {m.name}")
            files = [CapsuleFile(rel, spool.store_file(path / rel)) for rel in _capsule_files(path)]
            if req.with_data:
                _pack_data(m, req.cwd, spool)
            entries.append(CapsuleEntry(m.name, m.image.id, files, with_data=req.with_data))
        image_entries: list[ImageEntry] = []
        for image_id, m in images.items():
            rep.stage(f"packing image {image_id[7:19]} ({m.name})")
            image_entries.append(split_save(engine.save(image_id), image_id, spool.store, lambda n: None))
        index = Index(list(spool.members.values()), entries, image_entries, created_by=f"replay {__version__}")
        index_bytes = index.to_bytes()
        signature = req.sign(index_bytes) if req.sign else None
        rep.stage(f"writing {req.out}")
        size = _write(req.out, index_bytes, signature, index.members, spool_dir)
    finally:
        shutil.rmtree(spool_dir, ignore_errors=True)
    return PackResult(req.out, size, [m.name for _, m in capsules], len(images), len(index.members),
                      sum(mb.raw_size for mb in index.members), round(time.perf_counter() - t0, 3), signature is not None)


def _check_names(capsules: list[tuple[Path, Manifest]]) -> None:
    seen: dict[str, Path] = {}
    for path, m in capsules:
        check_capsule_name(m.name)
        if m.name in seen:
            raise BadInput(f"two capsules are named {m.name} ({seen[m.name]} and {path})",
                           "a bundle names its capsules: pack capsules with distinct names")
        seen[m.name] = path


def _capsule_files(folder: Path) -> list[str]:
    """Every regular file of a capsule folder (relative POSIX paths, sorted); a link in it is refused."""
    found = []
    for top, dirs, files in os.walk(folder):
        for name in sorted(dirs + files):
            full = Path(top) / name
            if full.is_symlink():
                raise BadInput(f"{full} is a symbolic link", "a capsule holds plain files only: replace the link")
        for name in files:
            full = Path(top) / name
            if not full.is_file():
                raise BadInput(f"{full} is not a regular file", "remove it from the capsule folder")
            found.append(full.relative_to(folder).as_posix())
    if MANIFEST_NAME not in found:
        raise BadInput(f"no capsule at {folder}", "pass a folder made by `replay capture`")
    return sorted(found)


def _capsule_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file() and not f.is_symlink())


def _pack_data(m: Manifest, cwd: Path, spool: _Spool) -> None:
    """Every data file of the manifest, which must still be the captured one (its blob name is its sha256)."""
    for entry in m.data.files:
        local = layout.local_path(entry.path, cwd)
        try:
            got = spool.store_file(local)
        except FileNotFoundError:
            raise DataMismatch(f"data file {entry.path} of capsule {m.name} is missing",
                               "run pack where the data is (or without --with-data)",
                               [{"path": entry.path, "problem": "missing"}]) from None
        if got != entry.sha256:
            raise DataMismatch(f"data file {entry.path} of capsule {m.name} differs from the capture",
                               "restore the captured data, or pack without --with-data",
                               [{"path": entry.path, "problem": "changed"}])


def _write(out: Path, index_bytes: bytes, signature: bytes | None, members: list[Member], spool: Path) -> int:
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    try:
        # Unbuffered: the kernel copies each member straight after its header (copy_file_range).
        with os.fdopen(fd, "wb", buffering=0) as fh:
            _put(fh, tar_header(INDEX_NAME, len(index_bytes)) + index_bytes + tar_padding(len(index_bytes)))
            if signature is not None:
                _put(fh, tar_header(SIG_NAME, len(signature)) + signature + tar_padding(len(signature)))
            for member in members:
                _put(fh, tar_header(member.name, member.size))
                with open(spool / member.raw_sha256, "rb") as src:
                    _copy(src, fh, member.size)
                _put(fh, tar_padding(member.size))
            end = fh.tell() + 2 * 512
            _put(fh, b"\0" * (2 * 512 + (-end % RECORD)))
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return out.stat().st_size


def _put(fh: IO[bytes], data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[fh.write(view) or 0:]


def _copy(src: IO[bytes], dst: IO[bytes], size: int) -> None:
    """Kernel-side copy where the filesystem allows it (copy_file_range), else plain reads and writes."""
    offset, left = 0, size
    try:
        while left:
            n = os.copy_file_range(src.fileno(), dst.fileno(), left, offset)
            if n == 0:
                break
            offset += n
            left -= n
    except OSError:
        pass
    if left:
        src.seek(offset)
        dst.seek(0, os.SEEK_END)
        shutil.copyfileobj(src, dst, CHUNK)
