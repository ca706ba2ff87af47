"""Images in a bundle: the engine's save stream split into content-addressed blobs, and rebuilt for load.

The save stream (docker-archive: ``manifest.json``, the config, ``<id>/layer.tar`` or ``blobs/sha256/...``
depending on the engine) differs from one save to the next, so it is never hashed or stored as such. Each
layer tar is stored under its diff ID (the sha256 of the uncompressed tar, which the config lists), and the
config under its digest (the image ID). Both are checked against each other while splitting, and again by
the engine when it loads the rebuilt stream; the loaded image's ID is then checked against the recorded one.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import posixpath
import tarfile
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any

from replay.core.ports import Engine
from replay.core.share.bundle.format import BundleError, ImageEntry, tar_header, tar_padding
from replay.core.share.bundle.read import Bundle, iter_blob, read_blob
from replay.errors import EnvironmentProblem, ImageProblem

SMALL = 1 << 20  # save-stream members up to this size are kept in memory (json, VERSION); layers are spooled
MAX_CONFIG = 16 << 20
MAX_IMAGE_BYTES = 256 << 30  # the layers of one image, uncompressed: past this a bundle's image is refused

# Stores one blob given its content as a readable stream and its size; returns its sha256 (hex).
BlobSink = Callable[[IO[bytes], int], str]


class _ChunkReader(io.RawIOBase):
    """A file-like view of an iterable of byte chunks (the engine's streamed save), counting what passes.

    A thread keeps reading the engine's stream into a bounded queue while the caller hashes and compresses,
    so the engine never waits on the compressor (as it would not in `docker save | zstd`).
    """

    def __init__(self, chunks: Iterable[bytes], on_bytes: Callable[[int], None], depth: int = 16) -> None:
        import queue
        import threading

        self._queue: queue.Queue[bytes | BaseException | None] = queue.Queue(maxsize=depth)
        self._pending = memoryview(b"")
        self._on_bytes = on_bytes
        self._done = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._pump, args=(chunks,), daemon=True)
        self._thread.start()

    def _pump(self, chunks: Iterable[bytes]) -> None:
        try:
            for chunk in chunks:
                if self._stop.is_set():
                    return
                self._queue.put(chunk)
            self._queue.put(None)
        except BaseException as exc:  # handed to the reader, which raises it in the caller's thread
            self._queue.put(exc)

    def readable(self) -> bool:
        return True

    def readinto(self, buf: Any) -> int:
        while not self._pending:
            if self._done:
                return 0
            item = self._queue.get()
            if item is None:
                self._done = True
                return 0
            if isinstance(item, BaseException):
                self._done = True
                raise item
            self._pending = memoryview(item)
        n = min(len(buf), len(self._pending))
        buf[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        self._on_bytes(n)
        return n

    def close(self) -> None:
        self._stop.set()
        while self._thread.is_alive():  # unblock a pump waiting on a full queue
            with contextlib.suppress(Exception):
                self._queue.get(timeout=0.1)
        super().close()


def split_save(chunks: Iterable[bytes], image_id: str, store: BlobSink, on_bytes: Callable[[int], None]) -> ImageEntry:
    """Store the image of a save stream as blobs; its config digest must be ``image_id``."""
    small: dict[str, bytes] = {}
    spooled: dict[str, str] = {}  # save-stream path -> sha256 of the blob stored from it
    links: dict[str, str] = {}
    reader = _ChunkReader(chunks, on_bytes)
    raw = io.BufferedReader(reader, buffer_size=SMALL)
    with contextlib.closing(reader), tarfile.open(fileobj=raw, mode="r|", bufsize=SMALL) as tar:
        for info in tar:
            name = posixpath.normpath(info.name)
            if info.issym():  # a layer saved once and linked from its other places
                links[name] = posixpath.normpath(posixpath.join(posixpath.dirname(name), info.linkname))
            elif info.isreg():
                handle = tar.extractfile(info)
                assert handle is not None
                if info.size > SMALL or name.endswith("layer.tar"):
                    spooled[name] = store(handle, info.size)
                else:
                    small[name] = handle.read()
    try:
        (entry,) = json.loads(small["manifest.json"])
        config_path = posixpath.normpath(entry["Config"])
        layer_paths = [posixpath.normpath(p) for p in entry["Layers"]]
    except (KeyError, ValueError, TypeError) as exc:
        raise EnvironmentProblem(f"the engine's save of {image_id[:19]} has no usable manifest.json ({exc})",
                                 "see `docker save`") from None
    config = small.get(config_path)
    if config is None:
        raise EnvironmentProblem(f"the engine's save of {image_id[:19]} lacks its config", "see `docker save`")
    config_digest = "sha256:" + hashlib.sha256(config).hexdigest()
    if config_digest != image_id:
        raise ImageProblem(f"the engine saved image {config_digest[:19]} for {image_id[:19]}",
                           "the image under that ID is not the captured one")
    layers = []
    for path in layer_paths:
        path = links.get(path, path)
        if path in spooled:
            layers.append("sha256:" + spooled[path])
        elif path in small:  # a tiny layer (e.g. an empty one) in a format that does not name it layer.tar
            layers.append("sha256:" + store(io.BytesIO(small[path]), len(small[path])))
        else:
            raise EnvironmentProblem(f"the engine's save of {image_id[:19]} lacks layer {path}", "see `docker save`")
    diff_ids = json.loads(config).get("rootfs", {}).get("diff_ids", [])
    if diff_ids != layers:
        raise ImageProblem(f"the layers the engine saved for {image_id[:19]} are not those its config lists",
                           "the engine's store may be damaged: see `docker image inspect`")
    store(io.BytesIO(config), len(config))
    return ImageEntry(image_id, layers)


def archive_stream(bundle: Bundle, image: ImageEntry) -> Iterator[bytes]:
    """A docker-archive tar of ``image``, generated on the fly from the bundle's checked blobs."""
    config_hex = image.id[7:]
    config = read_blob(bundle, config_hex, MAX_CONFIG)
    paths: list[str] = []
    for hexdigest in _unique_layers(image, paths):
        size = bundle.index.by_blob[hexdigest].raw_size
        yield tar_header(f"{hexdigest}/layer.tar", size)
        yield from iter_blob(bundle, hexdigest)
        yield tar_padding(size)
    yield tar_header(f"{config_hex}.json", len(config)) + config + tar_padding(len(config))
    manifest = _archive_manifest(config_hex, paths)
    yield tar_header("manifest.json", len(manifest)) + manifest + tar_padding(len(manifest))
    yield b"\0" * 1024


def archive_size(bundle: Bundle, image: ImageEntry) -> int:
    """How many bytes ``archive_stream`` yields for ``image`` (the total a load's progress counts towards),
    from the index's declared sizes and the config (read, bounded), without reading a layer."""
    config_hex = image.id[7:]
    config = len(read_blob(bundle, config_hex, MAX_CONFIG))
    paths: list[str] = []
    size = 0
    for hexdigest in _unique_layers(image, paths):
        raw = bundle.index.by_blob[hexdigest].raw_size
        size += len(tar_header(f"{hexdigest}/layer.tar", raw)) + raw + len(tar_padding(raw))
    size += len(tar_header(f"{config_hex}.json", config)) + config + len(tar_padding(config))
    manifest = len(_archive_manifest(config_hex, paths))
    return size + len(tar_header("manifest.json", manifest)) + manifest + len(tar_padding(manifest)) + 1024


def _unique_layers(image: ImageEntry, paths: list[str]) -> Iterator[str]:
    """Each layer's diff ID (hex) once, in order; ``paths`` gets every layer's member name, repeats too."""
    written: set[str] = set()
    for diff_id in image.layers:
        hexdigest = diff_id[7:]
        paths.append(f"{hexdigest}/layer.tar")
        if hexdigest not in written:
            written.add(hexdigest)
            yield hexdigest


def _archive_manifest(config_hex: str, paths: list[str]) -> bytes:
    # No RepoTags: loading moves no tag on the reviewer's engine; the image is found by its ID.
    return json.dumps([{"Config": f"{config_hex}.json", "RepoTags": None, "Layers": paths}]).encode()


def load_image(bundle: Bundle, image_id: str, engine: Engine,
               on_bytes: Callable[[int, int], None] | None = None) -> None:
    """Load ``image_id`` from the bundle into ``engine``; refused unless the engine then holds that very ID.
    ``on_bytes(done, total)`` hears the bytes of the archive the engine has been fed, of its whole size."""
    entry = bundle.index.image(image_id)
    if entry is None:
        raise ImageProblem(f"the bundle holds no image {image_id[:19]}", "")
    check_room(bundle, entry, engine)
    total = archive_size(bundle, entry)
    fed = (lambda done: on_bytes(done, total)) if on_bytes is not None else None
    loaded = engine.load(archive_stream(bundle, entry), fed)
    drop_unexpected(engine, loaded, image_id)
    if image_id not in loaded or engine.image(image_id) is None:
        got = ", ".join(i[:19] for i in loaded) or "nothing"
        raise ImageProblem(f"loading the bundle's image gave {got}, not the recorded {image_id[:19]}",
                           "the bundle's image is not the captured one: do not trust it")


def check_room(bundle: Bundle, entry: ImageEntry, engine: Engine) -> None:
    """The image's declared size against MAX_IMAGE_BYTES and the engine's free space, before a byte is sent:
    a 51 KB bundle may declare (and decompress to) a 1 GiB layer."""
    need = sum(bundle.index.by_blob[d[7:]].raw_size for d in set(entry.layers))
    if need > MAX_IMAGE_BYTES:
        raise BundleError(f"the bundle's image {entry.id[:19]} declares {need} bytes of layers, over the "
                          f"{MAX_IMAGE_BYTES >> 30} GiB an image may have", "do not trust this bundle")
    free = engine.free_bytes()
    if free is not None and need > free:
        raise EnvironmentProblem(f"the bundle's image needs {need >> 20} MiB; the engine has {free >> 20} MiB free",
                                 "free space in the engine's storage (docker system df), then verify again")


def drop_unexpected(engine: Engine, loaded: list[str], image_id: str) -> None:
    """Remove every image a load reported that is not ``image_id``: an archive may hold others (never kept)."""
    for other in loaded:
        if other != image_id:
            engine.remove_image(other)
