"""An image archive from elsewhere (``docker save`` output a task names), loaded without touching any tag.

A save stream names tags three ways: ``RepoTags`` in ``manifest.json``, the legacy ``repositories`` file, and
the ref-name annotations of an OCI ``index.json``. The engine applies all of them on load, moving a tag the
reviewer already has (``probe-victim/base:1``) to the archive's image. ``untagged`` passes the stream through
member by member (layers are streamed, never held whole), drops ``repositories``, rewrites the two JSON files
without their names, and ends the stream with an error when ``manifest.json`` lists an image other than the
one expected, so that the engine, whose load fails with the stream, keeps none of it.
"""

from __future__ import annotations

import io
import json
import posixpath
import tarfile
from collections.abc import Iterable, Iterator
from typing import Any

from replay import jsonio
from replay.errors import BadInput

CHUNK = 1 << 20
MAX_JSON = 16 << 20  # manifest.json and index.json of a save stream: a few KB each
_REF_ANNOTATIONS = ("io.containerd.image.name", "org.opencontainers.image.ref.name")


class ArchiveRefused(BadInput):
    """An image archive that holds something other than the one image expected (exit 2)."""


class _Chunks(io.RawIOBase):
    """A readable file over an iterable of byte chunks, for tarfile's streaming mode."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._it = iter(chunks)
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buf: Any) -> int:
        while not self._pending:
            self._pending = next(self._it, b"")
            if not self._pending:
                return 0
        n = min(len(buf), len(self._pending))
        buf[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n


def untagged(chunks: Iterable[bytes], image_id: str, where: str) -> Iterator[bytes]:
    """The save stream ``chunks`` with every tag and image name removed; ``image_id`` must be its only image."""
    try:
        with tarfile.open(fileobj=io.BufferedReader(_Chunks(chunks), CHUNK), mode="r|") as tar:
            for info in tar:
                yield from _member(tar, info, image_id, where)
    except tarfile.TarError as exc:
        raise ArchiveRefused(f"image archive {where} is not a tar archive ({exc})",
                             "pass the output of `docker save IMAGE_ID`") from None
    yield b"\0" * (2 * tarfile.BLOCKSIZE)


def _member(tar: tarfile.TarFile, info: tarfile.TarInfo, image_id: str, where: str) -> Iterator[bytes]:
    name = posixpath.normpath(info.name)
    if name == "repositories":
        return  # the legacy tag list: dropped whole
    if info.isreg() and name in ("manifest.json", "index.json"):
        if info.size > MAX_JSON:
            raise ArchiveRefused(f"image archive {where}: {name} is {info.size} bytes", "pass a `docker save` archive")
        handle = tar.extractfile(info)
        assert handle is not None
        data = _rewrite(name, handle.read(), image_id, where)
        yield from _entry(tarfile.TarInfo(info.name), data)
        return
    out = tarfile.TarInfo(info.name)
    out.type, out.mode, out.size, out.linkname, out.mtime = info.type, info.mode, 0, info.linkname, info.mtime
    if not info.isreg():
        yield out.tobuf(tarfile.PAX_FORMAT)
        return
    out.size = info.size
    yield out.tobuf(tarfile.PAX_FORMAT)
    handle = tar.extractfile(info)
    assert handle is not None
    while chunk := handle.read(CHUNK):
        yield chunk
    yield b"\0" * (-info.size % tarfile.BLOCKSIZE)


def _entry(template: tarfile.TarInfo, data: bytes) -> Iterator[bytes]:
    template.size, template.mode = len(data), 0o644
    yield template.tobuf(tarfile.PAX_FORMAT)
    yield data + b"\0" * (-len(data) % tarfile.BLOCKSIZE)


def _rewrite(name: str, raw: bytes, image_id: str, where: str) -> bytes:
    try:
        doc = jsonio.loads(raw)
    except jsonio.JSONInputError as exc:
        raise ArchiveRefused(f"image archive {where}: {name} is not JSON replay reads ({exc})",
                             "pass the output of `docker save IMAGE_ID`") from None
    if name == "manifest.json":
        return json.dumps(_manifest(doc, image_id, where)).encode()
    return json.dumps(_index(doc)).encode()


def _manifest(doc: Any, image_id: str, where: str) -> list[dict[str, Any]]:
    if not isinstance(doc, list) or not all(isinstance(e, dict) and isinstance(e.get("Config"), str) for e in doc):
        raise ArchiveRefused(f"image archive {where}: manifest.json is not a docker-archive manifest",
                             "pass the output of `docker save IMAGE_ID`")
    found = sorted({"sha256:" + posixpath.basename(e["Config"]).removesuffix(".json") for e in doc})
    if found != [image_id]:
        shown = ", ".join(i[:19] for i in found[:3]) or "no image"
        raise ArchiveRefused(f"image archive {where} holds {shown}, not only the recorded {image_id[:19]}",
                             "nothing was loaded; save the capsule's image alone (docker save IMAGE_ID)")
    return [{**e, "RepoTags": None} for e in doc]


def _index(doc: Any) -> Any:
    """An OCI index without the annotations that name its images."""
    if not isinstance(doc, dict) or not isinstance(doc.get("manifests"), list):
        return doc
    manifests = []
    for m in doc["manifests"]:
        if isinstance(m, dict) and isinstance(m.get("annotations"), dict):
            kept = {k: v for k, v in m["annotations"].items() if k not in _REF_ANNOTATIONS}
            m = {**m, "annotations": kept}
        manifests.append(m)
    return {**doc, "manifests": manifests}
