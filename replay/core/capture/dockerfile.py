"""templates/*.j2 -> Dockerfiles, and their build contexts as deterministic tar streams.

A capsule's image is built in two steps: the ENVIRONMENT image (``Dockerfile.j2``: base, virtualenv, code;
nothing in it depends on the run, so captures of the same code share its ID) from the full context, then the
CAPSULE image (``capsule.Dockerfile.j2``: FROM the environment's ID, plus the run's manifest, environment,
labels and command) from a tiny context holding only its Dockerfile and replay.json.

Deterministic means: sorted entries, one fixed mtime, uid/gid 0 with no owner names, modes reduced to
0644/0755. Two captures of the same tree send the same bytes, so the engine's layer cache hits.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from replay.assets import templates_dir

FIXED_MTIME = 315532800  # 1980-01-01: what zip-based tools (and wheels) accept as the earliest date


@dataclass
class DockerfileContext:
    """The environment image's template (``Dockerfile.j2``): nothing about the run itself belongs here."""

    base_ref: str
    replay_version: str
    venv: str
    workspace: str
    uid: int = 10001
    has_packages: bool = True
    env: list[tuple[str, str]] = field(default_factory=list)  # the environment's own (PYTHONPATH of the code)
    fixed_mtime: int = 315532800  # FIXED_MTIME: every file of the virtualenv gets it
    site_packages: str = ""  # where the context's site-packages/ goes in the image, if anywhere (core/autoseed.py)
    has_scripts: bool = False  # the context's venv-bin/: the project's console scripts (core/projectcode.py)
    has_debs: bool = False  # the context's debs/: system packages the base lacks (core/capture/syslibs.py)


@dataclass
class CapsuleLayerContext:
    """The capsule image's template (``capsule.Dockerfile.j2``): the run, on top of an environment image."""

    environment_id: str
    replay_version: str
    manifest_path: str
    workdir: str
    argv: list[str]
    uid: int = 10001
    run_env: list[tuple[str, str]] = field(default_factory=list)
    labels: list[tuple[str, str]] = field(default_factory=list)


def docker_quote(value: str) -> str:
    """A double-quoted Dockerfile word that reads back as ``value``.

    Inside double quotes Docker interprets ``\\``, ``"`` and ``$`` (variable expansion), so exactly those are
    escaped; JSON quoting is wrong here (it writes ``\\u0026`` for ``&``, which Docker keeps verbatim). A
    newline would end the instruction, so it becomes a space.
    """
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$")
    return '"' + " ".join(escaped.splitlines()) + '"'


def template_environment() -> Any:
    """The jinja2 environment every template renders in: strict, no autoescape, replay's filters."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        undefined=jinja2.StrictUndefined,  # a missing value is an error, never an empty string
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters["docker_quote"] = docker_quote
    return env


def render_dockerfile(context: DockerfileContext, template: str = "Dockerfile.j2") -> str:
    return str(template_environment().get_template(template).render(**vars(context)))


def render_capsule_dockerfile(context: CapsuleLayerContext, template: str = "capsule.Dockerfile.j2") -> str:
    return str(template_environment().get_template(template).render(**vars(context)))


class ContextWriter:
    """Adds files to a build-context tar with normalized metadata, parents before children."""

    def __init__(self, tar: tarfile.TarFile) -> None:
        self._tar = tar
        self._dirs: set[str] = set()

    def _info(self, name: str, kind: bytes, mode: int, size: int = 0) -> tarfile.TarInfo:
        info = tarfile.TarInfo(name)
        info.type, info.mode, info.size, info.mtime = kind, mode, size, FIXED_MTIME
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        return info

    def add_dir(self, name: str) -> None:
        parts = name.strip("/").split("/")
        for depth in range(1, len(parts) + 1):
            path = "/".join(parts[:depth])
            if path and path not in self._dirs:
                self._dirs.add(path)
                self._tar.addfile(self._info(path, tarfile.DIRTYPE, 0o755))

    def add_bytes(self, name: str, data: bytes, executable: bool = False) -> None:
        self.add_dir(name.rpartition("/")[0])
        info = self._info(name, tarfile.REGTYPE, 0o755 if executable else 0o644, len(data))
        self._tar.addfile(info, io.BytesIO(data))

    def add_file(self, name: str, source: Path) -> None:
        self.add_dir(name.rpartition("/")[0])
        stat = source.stat()
        info = self._info(name, tarfile.REGTYPE, 0o755 if stat.st_mode & 0o111 else 0o644, stat.st_size)
        with source.open("rb") as handle:
            self._tar.addfile(info, handle)


def write_build_context(
    out: IO[bytes],
    dockerfile: str,
    lock: bytes,
    wheels: Iterable[Path],
    code_root: Path,
    code_files: Iterable[str],
    site_files: dict[str, bytes] | None = None,
    scripts: dict[str, bytes] | None = None,
    debs: Iterable[Path] = (),
) -> None:
    """The environment's build context: Dockerfile, lock, wheels/, site-packages/ (files for the virtualenv's
    site-packages, only when there are some), venv-bin/ (scripts for its bin/, likewise), debs/ (system
    packages, likewise) and code/ (the snapshot)."""
    with tarfile.open(fileobj=out, mode="w", format=tarfile.GNU_FORMAT) as tar:
        writer = ContextWriter(tar)
        writer.add_bytes("Dockerfile", dockerfile.encode())
        writer.add_bytes("requirements.lock", lock)
        writer.add_dir("wheels")
        for wheel in sorted(wheels, key=lambda p: p.name):
            writer.add_file(f"wheels/{wheel.name}", wheel)
        if site_files:
            writer.add_dir("site-packages")
            for rel in sorted(site_files):
                writer.add_bytes(f"site-packages/{rel}", site_files[rel])
        if scripts:
            writer.add_dir("venv-bin")
            for name in sorted(scripts):
                writer.add_bytes(f"venv-bin/{name}", scripts[name], executable=True)
        debs = sorted(debs, key=lambda p: p.name)
        if debs:
            writer.add_dir("debs")
            for deb in debs:
                writer.add_file(f"debs/{deb.name}", deb)
        writer.add_dir("code")
        for rel in sorted(code_files):
            writer.add_file(f"code/{rel}", code_root / rel)


def write_capsule_context(out: IO[bytes], dockerfile: str, manifest_json: bytes) -> None:
    """The capsule layer's build context: its Dockerfile and replay.json (the wheels are not sent twice)."""
    with tarfile.open(fileobj=out, mode="w", format=tarfile.GNU_FORMAT) as tar:
        writer = ContextWriter(tar)
        writer.add_bytes("Dockerfile", dockerfile.encode())
        writer.add_bytes("replay.json", manifest_json)
