"""The capsule's ``replay.json``: one typed, versioned schema, validated on load, written atomically.

Paths inside the manifest are POSIX and relative to the project root (the git top level, or the folder
capture ran in), except data recorded from outside the project, which keeps its absolute path. What every
value may be beyond its type (normalized paths inside their roots, variable names, seeds) is checked on
load and documented in ``replay.manifest_rules`` (``from_dict`` applies them); a manifest that breaks a rule
is refused (exit 2).

The file is strict JSON (RFC 8259). A float that JSON cannot hold (a diverged loss in ``outputs.metrics``)
is written as one of the strings "NaN", "Infinity", "-Infinity" where the number would be, and read back
as that float; bare ``NaN``/``Infinity`` tokens, which older replays wrote, are still read. Integers are
whole numbers from 0 to 2**63 - 1; unknown keys are ignored, so a newer replay's optional fields do not
stop an older one.
"""

from __future__ import annotations

import operator
import os
import re
import typing
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from replay import jsonio
from replay import manifest_rules as R
from replay.errors import ManifestError
from replay.fsutil import atomic_write_json
from replay.gcpause import paused_gc
from replay.typedjson import INT_MAX, build, list_reader

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


# Slots: a dataset may have a million of these; they build five times faster and take half the memory.
@dataclass(slots=True)
class FileEntry:
    path: str
    size: int
    sha256: str


@dataclass
class LinkEntry:
    """A symlink inside a data folder: its content is hashed as a file's, and the link itself is kept here."""

    path: str  # the link's recorded path
    target: str  # what it points to, as written in the link
    inside: bool  # whether it resolves inside its data root both on the host and in the container


@dataclass
class DataManifest:
    """Every input file (path, size, sha256) and one digest over all of them."""

    roots: list[str] = field(default_factory=list)
    files: list[FileEntry] = field(default_factory=list)
    digest: str = ""
    # The symlinks met inside the data folders; None in capsules made before links were recorded.
    links: list[LinkEntry] | None = None

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
    # --auto-seed: the image's interpreter start-up hook seeds random, NumPy, PyTorch and TensorFlow from
    # `seed` before the training code runs (REPLAY_AUTO_SEED=1 turns it on).
    auto_seed: bool = False


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
    # Files in the snapshot that look like secrets, shipped anyway because capture had --allow-secret-files.
    allowed_secret_files: list[str] = field(default_factory=list)
    # Build leftovers found in the tree and left out of the snapshot (replay.core.capture.leftovers): how many files
    # each pattern matched, e.g. {"*.egg-info/": 6, "__pycache__/": 3}. Empty when there were none.
    left_out: dict[str, int] = field(default_factory=dict)
    # The snapshot's files (relative to the project root, sorted): what the image's code/ holds. Empty in
    # capsules made before it was recorded.
    snapshot_files: list[str] = field(default_factory=list)


@dataclass
class Package:
    name: str
    version: str
    source: str = "index"  # "index", "url" (a direct reference), "local-wheel" (built here from a local path)


@dataclass
class ProjectPackage:
    """A package of the project's own code (installed editable, or with a legacy ``setup.py develop``): the
    image imports it from the code snapshot, and gets a minimal ``NAME-VERSION.dist-info`` for it so that
    ``importlib.metadata.version(NAME)`` answers there as it did on the capturing machine."""

    name: str
    version: str
    # The folders its top-level names are imported from, relative to the project root ("." for the root).
    paths: list[str] = field(default_factory=list)
    kind: str = "editable"  # "editable" (PEP 660: setuptools, hatchling, flit...) or "develop" (legacy egg-link)
    # Its entry points as installed ({group: {name: "module:attr"}}): the image gets them in the dist-info, and
    # a script in the virtualenv's bin/ for each console script, so `-- train ...` runs there as here.
    entry_points: dict[str, dict[str, str]] = field(default_factory=dict)


@dataclass
class PythonEnv:
    version: str
    implementation: str
    executable: str
    packages: list[Package] = field(default_factory=list)
    lock_file: str = LOCK_NAME
    lock_sha256: str = ""
    # The import roots of the project's own packages (every ``project_packages[].paths``, sorted), put on the
    # image's sys.path after site-packages, as the editable installs' .pth files put them on the host.
    # Capsules from before ``project_packages`` had these on PYTHONPATH, each with its ``src/`` beside it.
    project_paths: list[str] = field(default_factory=list)
    project_packages: list[ProjectPackage] = field(default_factory=list)
    # The captured environment had replay-capsule installed (left out of the lock): the image gets replay's
    # seeding API, `from replay import seed_everything`, as a minimal `replay` package.
    replay_api: bool = False
    # Where the lock came from: "pip-compile" (replay locked the interpreter's packages, or a requirements file
    # without hashes), or the existing lock file taken as it is: "requirements.txt" (one with --hash lines),
    # "uv.lock", "poetry.lock", "Pipfile.lock", with its path in lock_source_file; "" in older capsules.
    lock_source: str = ""
    lock_source_file: str = ""
    lock_left_out: list[str] = field(default_factory=list)  # the lock file's entries not installed at capture


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
    # REPO@sha256:DIGEST after `replay push`: the registry manifest that pins this image's config (its ID).
    registry_digest: str | None = None
    # The environment image the capsule image (``id``) is one layer on: base + virtualenv + code, the same ID
    # for every capture of the same code and packages. Empty in capsules from before the split.
    environment_id: str = ""


@dataclass
class Stability:
    """What `capture --runs N` saw: the outputs and metrics that differed between the runs it compared
    (the captured run and N replays). Verify reads it to call a later difference in them noise."""

    runs: int
    unstable_outputs: list[str] = field(default_factory=list)
    unstable_metrics: list[str] = field(default_factory=list)


@dataclass
class StaleOutput:
    """A declared output older than a file it could come from (capture without --run): the reference may not
    be what the captured code and data make."""

    path: str
    newer: str  # the newest code or data file, recorded as the paths are
    kind: str  # "code" or "data"


@dataclass
class SelfCheck:
    """What `capture --verify` saw when it replayed the capsule once, just built: whether the capsule
    reproduces its own capture."""

    verdict: str  # identical | equivalent | diverged | error
    exit_code: int
    differed: list[str] = field(default_factory=list)  # outputs and metrics that did not match
    message: str = ""  # one line: why (the diagnosis's likely cause, or the error)


@dataclass
class Outputs:
    roots: list[str] = field(default_factory=list)
    files: list[FileEntry] = field(default_factory=list)
    metrics_files: list[str] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    # Copies of the reference outputs kept in the capsule, to explain where a replay differs.
    reference_dir: str | None = REFERENCE_DIR
    # Absent unless captured with --runs N (older readers ignore it; schema_version stays 1).
    stability: Stability | None = None
    # Absent unless capture without --run found outputs older than their code or data.
    stale: list[StaleOutput] | None = None
    # Absent unless captured with --verify.
    self_check: SelfCheck | None = None


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
    docker_version: str = ""  # the container engine's version, Docker's or Podman's
    engine: str = ""  # "docker", "podman", "podman (rootless)"; "" in capsules made before replay knew Podman


@dataclass
class LibraryNeed:
    library: str  # "libgomp.so.1"
    package: str  # the Python package whose compiled code needs it ("lightgbm"), or "--apt"


@dataclass
class SystemPackage:
    """A Debian package installed into the environment image, at the version apt resolved at capture."""

    name: str
    version: str
    needed_by: list[LibraryNeed] = field(default_factory=list)  # empty: a dependency apt pulled in


@dataclass
class SystemEnv:
    """The system packages beyond the base image. Absent in capsules that need none (and older ones)."""

    packages: list[SystemPackage] = field(default_factory=list)


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
    system: SystemEnv | None = None

    @property
    def system_packages(self) -> list[SystemPackage]:
        return self.system.packages if self.system else []

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for optional in ("stability", "stale", "self_check"):
            if out["outputs"].get(optional) is None:
                del out["outputs"][optional]  # written only when recorded: other manifests stay as they were
        if out.get("system") is None:
            out.pop("system", None)  # likewise the system packages: none, no section
        # schema_version first: the one field every reader looks at before anything else.
        return {"schema_version": out.pop("schema_version"), **out}


# --- loading -------------------------------------------------------------------------------------------

# Upgrades from version N to N+1, applied in order on load. Empty while only version 1 exists.
MIGRATIONS: dict[int, typing.Callable[[dict[str, Any]], dict[str, Any]]] = {}


def _migrate(raw: dict[str, Any], source: str) -> dict[str, Any]:
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
    """Build and check a manifest from parsed JSON; any problem is a ``ManifestError`` naming the field."""
    if not isinstance(raw, dict):
        raise ManifestError(f"{source} is not a JSON object", "recapture the run or restore the file")
    with paused_gc():
        manifest: Manifest = build(Manifest, _migrate(raw, source), source)
        check(manifest, source)
    return manifest


def load(path: Path) -> Manifest:
    """Load a manifest file, or the replay.json of a capsule folder."""
    from replay.safefs import NotRegular, read_bytes

    target = path / MANIFEST_NAME if path.is_dir() else path
    if not os.path.lexists(target):
        raise ManifestError(f"no capsule at {path} (no {MANIFEST_NAME})", "pass a folder made by `replay capture`")
    if target.is_dir():
        raise ManifestError(f"{target} is a folder, not a file", "pass a folder made by `replay capture`")
    try:
        # Opened without following a link: a replay.json -> /etc/shadow must not be read, nor shown.
        data = read_bytes(target.parent, target.name)
    except NotRegular as exc:
        raise ManifestError(f"{target} is {exc.what}, not a file", "a capsule holds only plain files: recapture") from None
    except OSError as exc:
        raise ManifestError(f"cannot read {target} ({exc.strerror or exc})",
                            "check its permissions, or restore the file") from None
    try:
        with paused_gc():
            raw = jsonio.loads(data)
    except jsonio.JSONInputError as exc:
        raise ManifestError(f"{target} is not valid JSON ({exc})", "recapture the run or restore the file") from None
    return from_dict(raw, str(target))


def check(m: Manifest, source: str) -> None:
    """Every rule of ``replay.manifest_rules``'s docstring; the first broken one is a ``ManifestError`` naming its field."""
    if not R.CAPSULE_NAME.fullmatch(m.name):
        R.fail(source, "name", m.name, "is not a capsule name ([a-z0-9._-], as capture makes them)")
    _check_command(m, source)
    R.check_fixed(source, "python.lock_file", m.python.lock_file, (LOCK_NAME,))
    R.check_fixed(source, "code.patch", m.code.patch, (None, PATCH_NAME))
    R.check_fixed(source, "outputs.reference_dir", m.outputs.reference_dir, (None, REFERENCE_DIR))
    R.check_paths(source, "python.project_paths", m.python.project_paths)
    for i, pkg in enumerate(m.python.project_packages):
        R.check_paths(source, f"python.project_packages[{i}].paths", pkg.paths)
        if not R.DIST_NAME.fullmatch(pkg.name):
            R.fail(source, f"python.project_packages[{i}].name", pkg.name, "is not a distribution name")
        if not R.DIST_VERSION.fullmatch(pkg.version):
            R.fail(source, f"python.project_packages[{i}].version", pkg.version, "is not a version")
        for group, entries in pkg.entry_points.items():
            where = f"python.project_packages[{i}].entry_points"
            if not R.ENTRY_GROUP.fullmatch(group):
                R.fail(source, where, group, "is not an entry point group")
            for name, ref in entries.items():
                if not R.ENTRY_NAME.fullmatch(name):
                    R.fail(source, f"{where}.{group}", name, "is not an entry point name")
                if not R.ENTRY_REF.fullmatch(ref):
                    R.fail(source, f"{where}.{group}.{name}", ref, "is not a module:attribute reference")

    for i, sp in enumerate(m.system_packages):
        if not R.DEB_NAME.fullmatch(sp.name):
            R.fail(source, f"system.packages[{i}].name", sp.name, "is not a Debian package name")
        if not R.DEB_VERSION.fullmatch(sp.version):
            R.fail(source, f"system.packages[{i}].version", sp.version, "is not a Debian version")

    R.check_paths(source, "data.roots", m.data.roots, absolute=True)
    R.check_under_roots(source, "data.files", [f.path for f in m.data.files], m.data.roots, absolute=True)
    if m.data.links:
        R.check_under_roots(source, "data.links", [link.path for link in m.data.links], m.data.roots, absolute=True)
        for i, link in enumerate(m.data.links):
            if not link.target or "\0" in link.target:
                R.fail(source, f"data.links[{i}].target", link.target, "is not a link target")
    R.check_paths(source, "outputs.roots", m.outputs.roots)
    R.check_under_roots(source, "outputs.files", [f.path for f in m.outputs.files], m.outputs.roots)
    R.check_paths(source, "outputs.metrics_files", m.outputs.metrics_files)
    outputs = {f.path for f in m.outputs.files}
    for i, path in enumerate(m.outputs.metrics_files):
        if path not in outputs:
            R.fail(source, f"outputs.metrics_files[{i}]", path, "is not one of the outputs")


def _check_command(m: Manifest, source: str) -> None:
    cmd = m.command
    if not cmd.argv or not cmd.argv[0]:
        R.fail(source, "command.argv", cmd.argv, "is empty: there is no command to replay")
    for i, arg in enumerate(cmd.argv):
        if "\0" in arg:
            R.fail(source, f"command.argv[{i}]", arg, "holds a NUL byte")
    if cmd.seed is not None and not 0 <= cmd.seed <= R.SEED_MAX:
        R.fail(source, "command.seed", cmd.seed, f"is out of range (0 to {R.SEED_MAX}, what PYTHONHASHSEED accepts)")
    problem = R.path_problem(cmd.workdir)
    if problem:
        R.fail(source, "command.workdir", cmd.workdir, problem)
    for name, value in cmd.numerics_env.items():
        if name not in R.NUMERICS_VARS:
            R.fail(source, f"command.numerics_env.{name}", value, "is not a numerics variable replay records")
        problem = R.numerics_value_problem(name, value)
        if problem:
            R.fail(source, f"command.numerics_env.{name}", value, problem)
    for name, carried in cmd.env.items():
        problem = R.refused_env_name(name)
        if problem:
            R.fail(source, f"command.env.{name}", carried, problem)


def save(manifest: Manifest, path: Path) -> None:
    target = path / MANIFEST_NAME if path.is_dir() else path
    atomic_write_json(target, manifest.to_dict())


_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_HINT = "recapture the run"


def _file_entries(value: list[Any], where: str) -> list[FileEntry]:
    """The fast path for the big lists (a dataset may have a million files). Each test runs over the whole
    list at C speed (``map``, ``set``, ``join``, which refuses anything but strings) instead of once per entry
    in Python; when any fails, the generic path builds entry by entry and names the first problem. Unknown
    keys are ignored, as the generic path does. The paths themselves are checked by ``manifest_rules``."""
    try:
        paths, sizes, shas = (list(map(operator.itemgetter(key), value)) for key in ("path", "size", "sha256"))
        joined_paths, joined_shas = "".join(paths), "".join(shas)
    except (KeyError, TypeError):  # an entry that is not an object, lacks a field, or a path or digest not a string
        pass
    else:
        if (set(map(type, sizes)) <= {int} and (not sizes or (min(sizes) >= 0 and max(sizes) <= INT_MAX))
                and set(map(len, shas)) <= {64} and _all_hex(joined_shas, len(shas)) and "\0" not in joined_paths):
            return list(map(FileEntry, paths, sizes, shas))
    out: list[FileEntry] = []
    for i, item in enumerate(value):
        entry: FileEntry = build(FileEntry, item, f"{where}[{i}]")
        if not _SHA256_HEX.fullmatch(entry.sha256):
            raise ManifestError(f"{where}[{i}].sha256: is not 64 lowercase hex digits", _HINT)
        out.append(entry)
    return out


def _all_hex(joined: str, count: int) -> bool:
    """Whether ``joined`` is ``count`` sha256 digests in lowercase hex (fromhex skips spaces, hence the length)."""
    try:
        return len(bytes.fromhex(joined)) == 32 * count and joined == joined.lower()
    except ValueError:
        return False


list_reader(FileEntry, _file_entries)
