"""A batch task run where a backend put it (``replay task FILE --result OUT``, e.g. on a Slurm node).

The node checks everything on its own engine: it gets the group's image by ID from that engine, else loads
it from the replay bundle the capsule came from (a bundle TARGET, on the shared filesystem) or from an image
archive there, else pulls it by registry digest (a REF@sha256 TARGET); each source is named by the payload,
and anything else is a per-task error whose reports say why. Then
``run_task`` verifies the group there, so the host facts in its reports are the node's.

A task file sits in a shared folder others can write: it is read with a size cap, never through a link, and
every field is checked (``GroupTask.from_payload`` for the task, ``ImageSources.from_payload`` for where the
image may come from).
"""

from __future__ import annotations

import json
import os
import re
import socket
import stat
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from replay.core.batch.task import GroupTask, run_task, task_result
from replay.core.ports import Engine
from replay.core.verify.pipeline import error_report, open_capsule
from replay.errors import BadInput, ImageProblem, ReplayError

MAX_TASK_BYTES = 4 << 20  # a task names capsules and options; anything bigger is not one
_DIGEST_REF = re.compile(r"^[a-z0-9][a-z0-9._/:-]{0,254}@sha256:[0-9a-f]{64}$")


@dataclass(frozen=True)
class ImageSources:
    """Where a node may get a group's image when its engine lacks it (payload key ``image``)."""

    archive: str | None = None  # an image archive (``docker save`` format) on the shared filesystem
    pull: str | None = None  # REPO@sha256:DIGEST
    bundle: str | None = None  # a replay bundle (``replay pack``) on the shared filesystem that holds the image

    def to_payload(self) -> dict[str, Any]:
        return {"image": asdict(self)}

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> ImageSources:
        raw = payload.get("image") or {}
        if not isinstance(raw, dict) or set(raw) - {"archive", "pull", "bundle"}:
            raise BadInput("replay task image sources are malformed", "rerun the batch")
        archive, pull, bundle = raw.get("archive"), raw.get("pull"), raw.get("bundle")
        for what, value in (("archive", archive), ("bundle", bundle)):
            if value is not None and not (isinstance(value, str) and value.startswith("/") and "\0" not in value):
                raise BadInput(f"replay task image {what} must be an absolute path", "rerun the batch")
        if pull is not None and not (isinstance(pull, str) and _DIGEST_REF.match(pull)):
            raise BadInput("replay task image pull must be a reference pinned by digest (REPO@sha256:...)",
                           "rerun the batch")
        return cls(archive=archive, pull=pull, bundle=bundle)


def read_task(path: Path) -> dict[str, Any]:
    """The task document at ``path``: a regular file (not a link), at most MAX_TASK_BYTES, strict JSON."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise BadInput(f"cannot read task file {path} ({exc.strerror})", "pass a task file a replay batch wrote") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise BadInput(f"task file {path} is not a regular file", "pass a task file a replay batch wrote")
    with os.fdopen(fd, "rb") as f:
        data = f.read(MAX_TASK_BYTES + 1)
    if len(data) > MAX_TASK_BYTES:
        raise BadInput(f"task file {path} is larger than {MAX_TASK_BYTES} bytes", "pass a task file a replay batch wrote")
    try:
        raw = json.loads(data, parse_constant=_no_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadInput(f"task file {path} is not JSON ({exc})", "pass a task file a replay batch wrote") from None
    if not isinstance(raw, dict):
        raise BadInput(f"task file {path} is not a replay task", "pass a task file a replay batch wrote")
    return raw


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not strict JSON")


def ensure_image(engine: Engine, image_id: str, sources: ImageSources) -> str:
    """Make ``image_id`` present in ``engine``; how it got there ("engine", "bundle", "archive", "pull")."""
    if engine.image(image_id) is not None:
        return "engine"
    tried = []
    if sources.bundle:
        _load_bundle(engine, Path(sources.bundle), image_id)
        if engine.image(image_id) is not None:
            return "bundle"
        tried.append(f"loaded it from {sources.bundle}, and the engine still lacks it")
    if sources.archive:
        _load_archive(engine, Path(sources.archive), image_id)
        if engine.image(image_id) is not None:
            return "archive"
        tried.append(f"loaded {sources.archive}, which does not hold it")
    if sources.pull:
        record = engine.pull(sources.pull)
        if record.id == image_id or engine.image(image_id) is not None:
            return "pull"
        tried.append(f"pulled {sources.pull}, which is another image ({record.id[:19]})")
    where = "; ".join(tried) or "the task names no bundle or registry to get it from"
    raise ImageProblem(f"image {image_id[:19]} is not in this node's engine ({socket.gethostname()}): {where}",
                       "load the capsule's bundle on the node, or verify a bundle or REF@sha256 target")


def _load_archive(engine: Engine, path: Path, image_id: str) -> None:
    """A ``docker save`` archive into the engine with its tags taken out (``archive.untagged``): it may only
    add the image ``image_id``; any other image the engine reports loading is removed again."""
    from replay.core.share.archive import untagged
    from replay.core.share.bundle.image import drop_unexpected

    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise ImageProblem(f"cannot read image archive {path} ({exc.strerror})",
                           "put the bundle on a filesystem every node shares") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise ImageProblem(f"image archive {path} is not a regular file", "rerun the batch")
    with os.fdopen(fd, "rb") as f:
        chunks = iter(lambda: f.read(1 << 20), b"")  # streamed: an image archive can be gigabytes
        drop_unexpected(engine, engine.load(untagged(chunks, image_id, str(path))), image_id)


def _load_bundle(engine: Engine, path: Path, image_id: str) -> None:
    """The image from a bundle, every member checked first (the bundle sits where others may write; the
    engine's image ID, content-addressed, is checked after the load by the caller and by ``load_image``)."""
    from replay.core.share.bundle.image import load_image
    from replay.core.share.bundle.read import is_bundle, open_bundle

    if path.is_symlink() or not path.is_file() or not is_bundle(path):
        raise ImageProblem(f"{path} is not a replay bundle on this node",
                           "put the bundle on a filesystem every node shares, at the same path")
    load_image(open_bundle(path), image_id, engine)


def run_node_task(payload: dict[str, Any], engine: Engine) -> dict[str, Any]:
    """Get the group's image, then verify the group (a ``replay.task-result``; never raises ReplayError)."""
    task = GroupTask.from_payload(payload)
    try:
        sources = ImageSources.from_payload(payload)
        image_id = _group_image(task)
        if image_id:
            ensure_image(engine, image_id, sources)
    except ReplayError as exc:
        return _failed(task, exc, engine)
    return run_task(payload, engine)


def _group_image(task: GroupTask) -> str:
    for capsule in task.capsules:
        try:
            return open_capsule(Path(capsule)).manifest.image.id
        except ReplayError:
            continue  # run_task gives that capsule its error report
    return ""


def _failed(task: GroupTask, exc: ReplayError, engine: Engine) -> dict[str, Any]:
    return task_result(task.id, engine, [error_report(Path(c), exc) for c in task.capsules], time.time())
