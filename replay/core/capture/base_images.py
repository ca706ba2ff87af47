"""Base images: build one offline from Debian packages, and resolve and pin the one a capture builds on."""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

from replay import __version__
from replay.core.events import PULLING, NullReporter, Reporter
from replay.core.ports import Engine, ImageRecord, RootfsBuilder
from replay.core.pyenv import Target
from replay.errors import BadInput, EnvironmentProblem, ImageProblem
from replay.fsutil import atomic_write_text, cache_root
from replay.manifest import BaseImage

# Debian release -> the Python 3 minor version it ships.
SUITE_PYTHON = {"bookworm": "3.11", "trixie": "3.13"}

_PROBE = [
    "python3", "-c",
    "import json,platform,sys;print(json.dumps({'version':platform.python_version(),"
    "'libc':platform.libc_ver()[1],'machine':platform.machine(),'abi':'cp%d%d'%sys.version_info[:2]}))",
]


def suite_for(python: str) -> str:
    for suite, version in SUITE_PYTHON.items():
        if version == python:
            return suite
    known = ", ".join(f"{v} ({s})" for s, v in SUITE_PYTHON.items())
    raise BadInput(
        f"no Debian release replay knows ships Python {python}",
        f"pick one of {known}, or pass --base with an image that has Python {python}",
    )


def default_base_tag(python: str) -> str:
    return f"replay-base/python:{python}-{suite_for(python)}"


@dataclass
class BuiltBase:
    tag: str
    image_id: str
    python_version: str
    size: int
    mirror: str


def build_base(engine: Engine, rootfs_builder: RootfsBuilder, python: str = "3.11", tag: str | None = None,
               reporter: Reporter | None = None) -> BuiltBase:
    reporter = reporter or NullReporter()
    suite = suite_for(python)
    tag = tag or default_base_tag(python)
    repository, _, version_tag = tag.rpartition(":") if ":" in tag.split("/")[-1] else (tag, "", "latest")
    rootfs_builder.check_tools()
    engine.version()  # fail on a missing engine before the minute of debootstrap
    mirror = rootfs_builder.apt_mirror()
    with tempfile.TemporaryDirectory(prefix="replay-base-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        reporter.stage(f"debootstrap {suite} from {mirror}")
        rootfs_builder.build_rootfs(rootfs, suite, mirror, reporter.log)
        reporter.stage("packing the root filesystem")
        tarball = Path(tmp) / "rootfs.tar"
        rootfs_builder.pack_rootfs(rootfs, tarball)
        reporter.stage(f"importing as {tag}")
        changes = [
            "ENV LANG=C.UTF-8",
            "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            'CMD ["python3"]',
            f"LABEL org.opencontainers.image.title=replay-base-python{python}",
            f"LABEL org.opencontainers.image.description=Debian-{suite}-minbase-with-Python-{python}",
            f"LABEL io.replay.base.mirror={mirror}",
            f"LABEL io.replay.version={__version__}",
        ]
        image_id = engine.import_rootfs(tarball, repository, version_tag, changes)
    probe = _probe(engine, image_id)
    record = engine.image(image_id)
    return BuiltBase(tag, image_id, probe["version"], record.size if record else 0, mirror)


def resolve_base(engine: Engine, ref: str | None, captured_python: str,
                 reporter: Reporter | None = None) -> tuple[BaseImage, Target]:
    """Find the base image, pin it (repo digest, else image ID) and check its Python against the capture's."""
    reporter = reporter or NullReporter()
    record = None
    if ref is None:  # the official image when this engine has it; else the offline base, when built here
        ref, record = _default_base(engine, captured_python, reporter)
    record = record or engine.image(ref)
    if record is None:
        try:
            record = engine.pull(ref, lambda done, total: reporter.progress(PULLING, done, total))
        except ImageProblem as exc:
            minor = ".".join(captured_python.split(".")[:2])
            raise ImageProblem(
                f"base image {ref} cannot be had ({exc.message.split('(', 1)[-1].rstrip(')')})",
                f"pass --base IMAGE with an image this engine has, or build one offline with "
                f"`replay base build --python {minor}` and pass --base {_default_or_guess(minor)}",
            ) from None
    probe = _probe(engine, record.id)
    base_minor = ".".join(probe["version"].split(".")[:2])
    captured_minor = ".".join(captured_python.split(".")[:2])
    if base_minor != captured_minor:
        raise BadInput(
            f"base image {ref} has Python {probe['version']} but training ran on Python {captured_python}",
            f"pass --base with a Python {captured_minor} image (`replay base build --python {captured_minor}`)",
        )
    if probe["version"] != captured_python:
        # Not a warning: an offline base carries Debian's own Python, whose patch release is Debian's choice;
        # one minor version installs the same wheels and runs the same bytecode.
        reporter.stage(
            f"base image has Python {probe['version']}, training ran on {captured_python}: the same minor "
            "version runs the same wheels; both are recorded in the manifest"
        )
    digest = next((d for d in record.repo_digests if "@sha256:" in d), None)
    base = BaseImage(ref=ref, id=record.id, digest=digest, python_version=probe["version"])
    libc = tuple(int(x) for x in (probe["libc"] or "2.17").split(".")[:2])
    target = Target(python=base_minor, abi=probe["abi"], machine=probe["machine"], glibc=(libc[0], libc[1]))
    return base, target


def _default_base(engine: Engine, captured_python: str, reporter: Reporter) -> tuple[str, ImageRecord | None]:
    """``python:X.Y.Z-slim`` when the engine has it or can pull it; else ``replay base build``'s offline base
    for the same minor version, when this engine has it (a machine that reaches no registry)."""
    official = f"python:{captured_python}-slim"
    record = engine.image(official)
    if record is not None:
        return official, record
    try:
        return official, engine.pull(official, lambda done, total: reporter.progress(PULLING, done, total))
    except ImageProblem:
        pass
    minor = ".".join(captured_python.split(".")[:2])
    offline = _default_or_guess(minor)
    record = engine.image(offline) if offline != "IMAGE" else None
    if record is None:
        return official, None  # the caller says it cannot be had, and how to build the offline one
    reporter.stage(f"base image {official} cannot be pulled here: using the offline base {offline}")
    return offline, record


def _default_or_guess(minor: str) -> str:
    try:
        return default_base_tag(minor)
    except BadInput:
        return "IMAGE"


def _probe(engine: Engine, image_id: str) -> dict[str, str]:
    """Python version, libc and machine of an image; cached by image ID, which never changes content."""
    cache = cache_root() / "bases" / f"{image_id.replace(':', '-')}.json"
    try:
        return dict(json.loads(cache.read_text()))
    except (FileNotFoundError, ValueError):
        pass
    try:
        out = engine.probe(image_id, _PROBE)
        facts = dict(json.loads(out.strip().splitlines()[-1]))
    except (ImageProblem, ValueError, IndexError) as exc:
        raise EnvironmentProblem(
            f"base image {image_id[:19]} cannot run python3 ({exc})",
            "use a base image with Python 3 on PATH, such as one from `replay base build`",
        ) from None
    atomic_write_text(cache, json.dumps(facts))
    return facts
