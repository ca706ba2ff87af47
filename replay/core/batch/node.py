"""A batch task run where a backend put it (``replay task FILE --result OUT``, e.g. on a Slurm node).

The node checks everything on its own engine: it gets the group's image by ID from that engine, else loads
it from the replay bundle the capsule came from (a bundle TARGET, on the shared filesystem) or from an image
archive there, else pulls it by registry digest (a REF@sha256 TARGET); each source is named by the payload,
and anything else is a per-task error whose reports say why. Then
``run_task`` verifies the group there, so the host facts in its reports are the node's.

A task file sits in a shared folder: it is refused unless only this user can write it (owner, mode), read
with a size cap, never through a link; the node checks image and data always (a payload cannot turn that
off), takes data only under ``data_roots`` (the task's folder and the node's ``REPLAY_DATA_ROOTS``), and every
field is checked (``GroupTask.from_payload`` for the task, ``ImageSources.from_payload`` for where the
image may come from).

The engine: the one the task names (``engine``: the user chose it for the batch), else the node's own
choice (``REPLAY_ENGINE``, else the one that answers: ``engine_choice``).
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
from replay.core.limits import check_timeout
from replay.core.ports import Engine
from replay.core.verify.pipeline import error_report, open_capsule
from replay.errors import BadInput, ImageProblem, ReplayError

MAX_TASK_BYTES = 4 << 20  # a task names capsules and options; anything bigger is not one
DATA_ROOTS_ENV = "REPLAY_DATA_ROOTS"
ENGINE_ENV = "REPLAY_ENGINE"
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


def engine_choice(payload: dict[str, Any]) -> str | None:
    """The engine to replay a task on: the task's ``engine``, else this node's REPLAY_ENGINE; None: the one
    that answers here (``replay.factory.engine`` decides). A malformed task is ``BadInput``."""
    return GroupTask.from_payload(payload).engine or os.environ.get(ENGINE_ENV) or None


def read_task(path: Path) -> dict[str, Any]:
    """The task document at ``path``: a regular file (not a link), at most MAX_TASK_BYTES, strict JSON."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise BadInput(f"cannot read task file {path} ({exc.strerror})", "pass a task file a replay batch wrote") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise BadInput(f"task file {path} is not a regular file", "pass a task file a replay batch wrote")
    writable = _writable_by_others(st)
    if writable:
        os.close(fd)
        raise BadInput(f"task file {path} can be written by {writable}, not only by you",
                       "write tasks to a folder only you can write (replay verify --workdir), mode 600 or 644")
    with os.fdopen(fd, "rb") as f:
        data = f.read(MAX_TASK_BYTES + 1)
    if len(data) > MAX_TASK_BYTES:
        raise BadInput(f"task file {path} is larger than {MAX_TASK_BYTES} bytes", "pass a task file a replay batch wrote")
    try:
        raw = json.loads(data, parse_constant=_no_constant)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise BadInput(f"task file {path} is not JSON ({str(exc)[:200] or 'nested too deeply'})",
                       "pass a task file a replay batch wrote") from None
    if not isinstance(raw, dict):
        raise BadInput(f"task file {path} is not a replay task", "pass a task file a replay batch wrote")
    return raw


def _writable_by_others(st: os.stat_result) -> str:
    """Who other than this user can change a file with that stat ("" when nobody): its owner, if another
    user; its group or everyone, if the mode lets them."""
    if st.st_uid != os.getuid():
        return f"its owner (uid {st.st_uid})"
    if st.st_mode & stat.S_IWOTH:
        return "every user"
    if st.st_mode & stat.S_IWGRP:
        return f"group {st.st_gid}"
    return ""


def data_roots(cwd: str) -> list[Path]:
    """Where this node lets a task's data be: the task's own folder (``cwd``, which the task file, written
    by this user, names) and the folders of ``REPLAY_DATA_ROOTS`` (the node's configuration, separated by
    ``:``). A task cannot widen them."""
    extra = [Path(p) for p in os.environ.get(DATA_ROOTS_ENV, "").split(os.pathsep) if p.startswith("/")]
    return [Path(cwd), *extra]


def check_data_paths(task: GroupTask, manifests: list[Any]) -> None:
    """Every data folder the task's capsules would read (mapped, or recorded) under ``data_roots``."""
    from replay.core.layout import local_path

    allowed = [os.path.realpath(p) for p in data_roots(str(task.options.cwd))]
    for m in manifests:
        for root in m.data.roots:
            mapped = task.options.data_map.get(root)
            where = os.path.realpath(mapped if mapped is not None else local_path(root, Path(task.options.cwd)))
            if not any(where == a or where.startswith(a.rstrip("/") + "/") for a in allowed):
                raise BadInput(f"the task's data {root} is at {where}, outside the folders this node allows",
                               f"add its folder to {DATA_ROOTS_ENV} on the node (folders separated by ':'), or run "
                               "the batch from the folder that holds the data")


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
        had = engine.image(sources.pull) is not None
        record = engine.pull(sources.pull)
        if record.id == image_id or engine.image(image_id) is not None:
            return "pull"
        if not had:  # never keep an image that is not the recorded one
            engine.remove_image(record.id)
        tried.append(f"pulled {sources.pull}, which is another image ({record.id[:19]}; not kept)")
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
    # A node checks the image and the data always, whatever the payload says: no field of a task file
    # turns a check off (the local batch, which checked once per image and data set, never writes one).
    if isinstance(payload.get("options"), dict):
        payload = {**payload, "options": {**payload["options"], "checks": True}}
    task = GroupTask.from_payload(payload)
    try:
        if task.options.limits.timeout_s is not None:  # RunLimits.from_payload checks it is finite only
            check_timeout(task.options.limits.timeout_s)
        sources = ImageSources.from_payload(payload)
        manifests = _manifests(task)
        check_data_paths(task, manifests)
        if manifests:
            ensure_image(engine, manifests[0].image.id, sources)
    except ReplayError as exc:
        return _failed(task, exc, engine)
    return run_task(payload, engine)


def _manifests(task: GroupTask) -> list[Any]:
    found = []
    for capsule in task.capsules:
        try:
            found.append(open_capsule(Path(capsule)).manifest)
        except ReplayError:
            continue  # run_task gives that capsule its error report
    return found


def _failed(task: GroupTask, exc: ReplayError, engine: Engine) -> dict[str, Any]:
    return task_result(task.id, engine, [error_report(Path(c), exc) for c in task.capsules], time.time())
