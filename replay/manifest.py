"""The capsule's ``replay.json``: one typed, versioned schema, validated on load, written atomically.

Paths inside the manifest are POSIX and relative to the project root (the git top level, or the folder
capture ran in), except data recorded from outside the project, which keeps its absolute path.
"""

from __future__ import annotations

import json
import types
import typing
from dataclasses import MISSING, asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

from replay.errors import ManifestError
from replay.fsutil import atomic_write_json

SCHEMA_VERSION = 1

# Capsule layout.
MANIFEST_NAME = "replay.json"
LOCK_NAME = "requirements.lock"
REQUIREMENTS_IN_NAME = "requirements.in"
DOCKERFILE_NAME = "Dockerfile"  # the environment image's (base, virtualenv, code)
CAPSULE_DOCKERFILE_NAME = "capsule.Dockerfile"  # the capsule layer's, FROM the environment image by ID
PATCH_NAME = "code.patch"
REFERENCE_DIR = "reference"

# Fixed paths inside every capsule image.
IMAGE_WORKSPACE = "/workspace"
IMAGE_MANIFEST_PATH = "/replay/replay.json"
IMAGE_VENV = "/opt/venv"


@dataclass
class FileEntry:
    path: str
    size: int
    sha256: str


@dataclass
class DataManifest:
    """Every input file (path, size, sha256) and one digest over all of them."""

    roots: list[str] = field(default_factory=list)
    files: list[FileEntry] = field(default_factory=list)
    digest: str = ""

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)


@dataclass
class RunCommand:
    argv: list[str]
    workdir: str = "."
    seed: int | None = None
    # Carried with --env. A value of None marks a secret: its value is never stored and is taken from
    # the verifying machine's environment at replay time.
    env: dict[str, str | None] = field(default_factory=dict)
    # Variables that change numerics (thread counts, TZ...), recorded with the values the run had.
    numerics_env: dict[str, str] = field(default_factory=dict)


@dataclass
class CodeVersion:
    kind: str  # "git" or "tree" (no git repository: a digest of the files only)
    snapshot_digest: str
    files: int
    commit: str | None = None
    branch: str | None = None
    remote: str | None = None
    dirty: bool = False
    patch: str | None = None
    patch_sha256: str | None = None


@dataclass
class Package:
    name: str
    version: str
    source: str = "index"  # "index", "url" (a direct reference), "local-wheel" (built here from a local path)


@dataclass
class PythonEnv:
    version: str
    implementation: str
    executable: str
    packages: list[Package] = field(default_factory=list)
    lock_file: str = LOCK_NAME
    lock_sha256: str = ""
    # Folders of the project's own editable packages, put on PYTHONPATH inside the image.
    project_paths: list[str] = field(default_factory=list)


@dataclass
class BaseImage:
    ref: str
    id: str
    digest: str | None = None
    python_version: str = ""


@dataclass
class ImageInfo:
    id: str
    tag: str
    size: int
    base: BaseImage
    platform: str = "linux/amd64"
    dockerfile_sha256: str = ""
    # The environment image the capsule image (``id``) is one layer on: base + virtualenv + code, the same ID
    # for every capture of the same code and packages. Empty in capsules from before the split.
    environment_id: str = ""


@dataclass
class Outputs:
    roots: list[str] = field(default_factory=list)
    files: list[FileEntry] = field(default_factory=list)
    metrics_files: list[str] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    # Copies of the reference outputs kept in the capsule, to explain where a replay differs.
    reference_dir: str | None = REFERENCE_DIR


@dataclass
class Policy:
    tolerances: dict[str, str] = field(default_factory=dict)
    ignore: list[str] = field(default_factory=list)


@dataclass
class GpuInfo:
    name: str
    driver: str = ""
    memory_mb: int = 0


@dataclass
class HostInfo:
    os: str = ""
    kernel: str = ""
    arch: str = ""
    cpu_model: str = ""
    cpu_flags: list[str] = field(default_factory=list)
    cores: int = 0
    memory_bytes: int = 0
    gpus: list[GpuInfo] = field(default_factory=list)
    docker_version: str = ""


@dataclass
class Manifest:
    name: str
    created: str
    replay_version: str
    command: RunCommand
    code: CodeVersion
    python: PythonEnv
    image: ImageInfo
    data: DataManifest
    outputs: Outputs
    policy: Policy
    host: HostInfo
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        # schema_version first: the one field every reader looks at before anything else.
        return {"schema_version": out.pop("schema_version"), **out}


# --- loading -------------------------------------------------------------------------------------------

# Upgrades from version N to N+1, applied in order on load. Empty while only version 1 exists.
MIGRATIONS: dict[int, typing.Callable[[dict[str, Any]], dict[str, Any]]] = {}


def migrate(raw: dict[str, Any], source: str) -> dict[str, Any]:
    version = raw.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise ManifestError(f"{source} has no schema_version", "is it a replay.json written by `replay capture`?")
    if version > SCHEMA_VERSION:
        raise ManifestError(
            f"{source} has schema version {version}; this replay reads up to {SCHEMA_VERSION}",
            "upgrade replay (pip install -U replay-capsule)",
        )
    while version < SCHEMA_VERSION:
        if version not in MIGRATIONS:
            raise ManifestError(f"{source} has unknown schema version {version}", "recapture the run")
        raw = MIGRATIONS[version](raw)
        version = raw["schema_version"]
    return raw


def from_dict(raw: Any, source: str = "replay.json") -> Manifest:
    if not isinstance(raw, dict):
        raise ManifestError(f"{source} is not a JSON object", "recapture the run or restore the file")
    return _build(Manifest, migrate(raw, source), source)


def load(path: Path) -> Manifest:
    """Load a manifest file, or the replay.json of a capsule folder."""
    target = path / MANIFEST_NAME if path.is_dir() else path
    if not target.exists():
        raise ManifestError(f"no capsule at {path} (no {MANIFEST_NAME})", "pass a folder made by `replay capture`")
    try:
        raw = json.loads(target.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestError(f"{target} is not valid JSON ({exc})", "recapture the run or restore the file") from None
    return from_dict(raw, str(target))


def save(manifest: Manifest, path: Path) -> None:
    target = path / MANIFEST_NAME if path.is_dir() else path
    atomic_write_json(target, manifest.to_dict())


def _build(tp: Any, value: Any, where: str) -> Any:
    """Turn parsed JSON into ``tp``, naming the exact field on any mismatch."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(tp)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _build(option, value, where)
            except ManifestError as exc:
                errors.append(exc.message)
        raise ManifestError(errors[0] if errors else f"{where}: unexpected null", "recapture the run")
    if is_dataclass(tp) and isinstance(tp, type):
        if not isinstance(value, dict):
            raise ManifestError(f"{where}: expected an object", "recapture the run")
        hints = typing.get_type_hints(tp)
        kwargs = {}
        for f in fields(tp):
            if f.name in value:
                kwargs[f.name] = _build(hints[f.name], value[f.name], f"{where}.{f.name}")
            elif f.default is MISSING and f.default_factory is MISSING:
                raise ManifestError(f"{where}: missing field '{f.name}'", "recapture the run")
        return tp(**kwargs)
    if origin is list:
        (item,) = typing.get_args(tp)
        if not isinstance(value, list):
            raise ManifestError(f"{where}: expected a list", "recapture the run")
        return [_build(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        _, item = typing.get_args(tp)
        if not isinstance(value, dict):
            raise ManifestError(f"{where}: expected an object", "recapture the run")
        return {str(k): _build(item, v, f"{where}.{k}") for k, v in value.items()}
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp in (str, bool):
        if isinstance(value, tp):
            return value
    else:  # pragma: no cover - a schema type this loader does not know is a programming error
        raise TypeError(f"unsupported schema type {tp!r}")
    raise ManifestError(f"{where}: expected {tp.__name__}, got {type(value).__name__}", "recapture the run")
