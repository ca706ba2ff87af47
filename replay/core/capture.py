"""Snapshot a finished training run into a capsule: a folder with replay.json, and a pinned image.

Order matters: every cheap check runs before anything slow (hashing, locking, building), and the capsule
folder appears in one rename at the very end, so a failed or interrupted capture leaves nothing behind.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from replay import __version__
from replay.adapters import interpreter as interp_adapter
from replay.core import base as base_images
from replay.core import layout
from replay.core.compare import load_metrics, parse_tolerance
from replay.core.environment import lock_environment
from replay.core.events import NullReporter, Reporter, Stopwatch
from replay.core.hashing import hash_paths
from replay.core.hostinfo import collect_host
from replay.core.ports import Engine
from replay.core.render import (
    CapsuleLayerContext,
    DockerfileContext,
    render_capsule_dockerfile,
    render_dockerfile,
    write_build_context,
    write_capsule_context,
)
from replay.core.snapshot import Snapshot, take_snapshot
from replay.core.statcache import StatCache
from replay.errors import BadInput, CommandFailed
from replay.fsutil import staged_dir
from replay.manifest import (
    CAPSULE_DOCKERFILE_NAME,
    DOCKERFILE_NAME,
    IMAGE_MANIFEST_PATH,
    IMAGE_VENV,
    IMAGE_WORKSPACE,
    LOCK_NAME,
    PATCH_NAME,
    CodeVersion,
    ImageInfo,
    Manifest,
    Outputs,
    Policy,
    PythonEnv,
    RunCommand,
    save,
)

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass
class CaptureRequest:
    command: list[str]
    cwd: Path
    data: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    metrics: list[str] = field(default_factory=list)
    seed: int | None = None
    python: str = "python3"
    requirements: Path | None = None
    base: str | None = None
    env: list[str] = field(default_factory=list)
    allow_secret_env: bool = False
    tolerances: dict[str, str] = field(default_factory=dict)
    ignore: list[str] = field(default_factory=list)
    name: str | None = None
    into: Path | None = None
    force: bool = False
    run: bool = False
    no_cache: bool = False  # rebuild every layer and relock: a cold capture


@dataclass
class CaptureResult:
    capsule: Path
    manifest: Manifest
    timings: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def capture(req: CaptureRequest, engine: Engine, reporter: Reporter | None = None) -> CaptureResult:
    reporter = reporter or NullReporter()
    watch = Stopwatch()
    lap = watch.lap

    # --- 1. every check that costs nothing ------------------------------------------------------------
    if not req.command:
        raise BadInput("no command after --", "write the training command after --, e.g. `-- python train.py`")
    root = layout.project_root(req.cwd)
    name = layout.capsule_name(req.name or root.name)
    capsule = (req.into or root / ".replay" / name).resolve()
    if capsule.exists() and not req.force:
        raise BadInput(f"capsule folder {capsule} already exists", "pass --force to replace it, or --name/--into")
    for spec in req.tolerances.values():
        parse_tolerance(spec)
    if req.seed is not None:
        layout.check_seed(req.seed)
    carried = _carried_env(req.env, req.allow_secret_env)
    numerics = _numerics_env()
    data_paths = [_existing(p, req.cwd, "data") for p in req.data]
    if not req.outputs and not req.metrics:
        raise BadInput("no outputs to capture", "name what the command produced with --output and --metrics")
    if not req.run:
        output_paths, metrics = _outputs_and_metrics(req)
    interp = interp_adapter.inspect(req.python)
    engine_version = engine.version()  # no engine: fail now, not after a minute of hashing
    lap("checks")

    # --- 2. optionally run the training here, as it will be replayed --------------------------------
    if req.run:
        reporter.stage("running the command on this host")
        _run_on_host(req, numerics, carried, reporter)
        output_paths, metrics = _outputs_and_metrics(req)
        lap("run")

    # --- 3. hashes: data, outputs, code ---------------------------------------------------------------
    with StatCache() as cache:
        reporter.stage("hashing data")
        data = hash_paths(data_paths, root, cache=cache, reporter=reporter, what="data")
        reporter.stage("hashing outputs")
        outs = hash_paths(output_paths, root, cache=cache, reporter=reporter, what="output")
        metrics_files = [layout.record_path(req.cwd / m, root) for m in req.metrics]
        outputs = Outputs(roots=outs.roots, files=outs.files, metrics_files=metrics_files, metrics=metrics)
        layout.output_mount_dirs(outputs)  # refuse unreplayable output places before the slow part
        reporter.stage("snapshotting code")
        excluded = [*data.roots, *outputs.roots, layout.record_path(capsule, root), ".replay"]
        snap = take_snapshot(root, excluded, cache, reporter)
    lap("hashing")
    if snap.git is None:
        reporter.warn(f"{root} is not a git repository: the code version is a digest of its files only")

    with staged_dir(capsule, replace=req.force) as stage:
        # --- 4. environment: lock, wheels, base ----------------------------------------------------------
        reporter.stage("resolving the base image")
        base, target = base_images.resolve_base(engine, req.base, interp.version, reporter)
        reporter.stage("locking packages (pip-tools)")
        env = lock_environment(interp, root, stage, target, req.requirements, use_cache=not req.no_cache)
        lap("lock")
        try:
            code = _code_version(snap, stage)
            workdir = layout.record_path(req.cwd, root)
            manifest = Manifest(
                name=name,
                created=datetime.now(timezone.utc).replace(microsecond=0).isoformat(),
                replay_version=__version__,
                command=RunCommand(argv=list(req.command), workdir=workdir, seed=req.seed, env=carried,
                                   numerics_env=numerics),
                code=code,
                python=PythonEnv(
                    version=interp.version, implementation=interp.implementation, executable=interp.executable,
                    packages=env.packages, lock_sha256=_sha256_file(stage / LOCK_NAME),
                    project_paths=env.project_paths,
                ),
                image=ImageInfo(id="", tag="", size=0, base=base, platform=f"linux/{_docker_arch(target.machine)}"),
                data=data,
                outputs=outputs,
                policy=Policy(tolerances=dict(req.tolerances), ignore=list(req.ignore)),
                host=collect_host(engine_version),
            )
            _copy_references(outputs, root, stage)

            # --- 5. the images: the shared environment, then this run's thin capsule layer on it --------
            dockerfile = render_dockerfile(_dockerfile_context(manifest, base.digest or base.id))
            (stage / DOCKERFILE_NAME).write_text(dockerfile)
            reporter.stage("building the environment image")
            environment_id = _build_environment(engine, stage, dockerfile, env.wheels, root, snap.files, reporter,
                                                req.no_cache)
        finally:
            env.cleanup()
        manifest.image.environment_id = environment_id  # known to the image's own replay.json too
        capsule_dockerfile = render_capsule_dockerfile(_capsule_context(manifest, environment_id))
        (stage / CAPSULE_DOCKERFILE_NAME).write_text(capsule_dockerfile)
        reporter.stage("building the capsule image")
        image_id = _build_capsule(engine, capsule_dockerfile, manifest, reporter)
        tag = f"replay/{name}:{image_id.split(':')[-1][:12]}"
        engine.tag(image_id, tag.rsplit(":", 1)[0], tag.rsplit(":", 1)[1])
        record = engine.image(image_id)
        manifest.image.id, manifest.image.tag = image_id, tag
        manifest.image.size = record.size if record else 0
        manifest.image.dockerfile_sha256 = _sha256_file(stage / DOCKERFILE_NAME)
        lap("build")
        save(manifest, stage)
    return CaptureResult(capsule, manifest, watch.timings)


def _dockerfile_context(manifest: Manifest, base_ref: str) -> DockerfileContext:
    """The environment image's context: only what the code and packages decide, never the run."""
    env = {}
    if manifest.python.project_paths:
        env["PYTHONPATH"] = ":".join(_project_import_paths(manifest.python.project_paths))
    return DockerfileContext(
        base_ref=base_ref,
        replay_version=__version__,
        venv=IMAGE_VENV,
        workspace=IMAGE_WORKSPACE,
        has_packages=bool(manifest.python.packages),
        env=sorted(env.items()),
    )


def _capsule_context(manifest: Manifest, environment_id: str) -> CapsuleLayerContext:
    """The capsule layer's context: this run's environment (seed, thread pins), labels and command."""
    cmd = manifest.command
    run_env = dict(layout.seed_environment(cmd.seed))
    run_env.update(cmd.numerics_env)
    code = manifest.code
    labels = {
        "org.opencontainers.image.title": f"replay capsule {manifest.name}",
        "org.opencontainers.image.description": " ".join(cmd.argv)[:200],
        "org.opencontainers.image.created": manifest.created,
        "org.opencontainers.image.revision": code.commit or code.snapshot_digest,
        "org.opencontainers.image.source": code.remote or "",
        "org.opencontainers.image.base.name": manifest.image.base.ref,
        "org.opencontainers.image.base.digest": manifest.image.base.digest or manifest.image.base.id,
        "io.replay.name": manifest.name,
        "io.replay.schema-version": str(manifest.schema_version),
        "io.replay.manifest": IMAGE_MANIFEST_PATH,
        "io.replay.version": __version__,
    }
    return CapsuleLayerContext(
        environment_id=environment_id,
        replay_version=__version__,
        manifest_path=IMAGE_MANIFEST_PATH,
        workdir=layout.container_path(cmd.workdir),
        argv=cmd.argv,
        run_env=sorted(run_env.items()),
        labels=sorted(labels.items()),
    )


def _project_import_paths(paths: list[str]) -> list[str]:
    out = []
    for rel in paths:
        out.append(layout.container_path(rel))
        out.append(layout.container_path(f"{rel}/src"))  # src-layout projects import from src/
    return out


def _build_environment(engine: Engine, stage: Path, dockerfile: str, wheels: list[Path], root: Path,
                       files: list[str], reporter: Reporter, no_cache: bool) -> str:
    with tempfile.TemporaryFile(prefix="replay-context-") as context:
        write_build_context(context, dockerfile, (stage / LOCK_NAME).read_bytes(), wheels, root, files)
        context.seek(0)
        return engine.build(
            context, tag=None, on_line=reporter.log,
            on_step=lambda n, total: reporter.progress("build", n, total), no_cache=no_cache,
        )


def _build_capsule(engine: Engine, dockerfile: str, manifest: Manifest, reporter: Reporter) -> str:
    """The thin layer: the tiny context holds its Dockerfile and replay.json, never the wheels again."""
    import json

    manifest_json = (json.dumps(manifest.to_dict(), indent=2) + "\n").encode()
    with tempfile.TemporaryFile(prefix="replay-capsule-context-") as context:
        write_capsule_context(context, dockerfile, manifest_json)
        context.seek(0)
        return engine.build(context, tag=None, on_line=reporter.log,
                            on_step=lambda n, total: reporter.progress("build", n, total))


def _code_version(snap: Snapshot, stage: Path) -> CodeVersion:
    info = snap.git
    if info is None:
        return CodeVersion(kind="tree", snapshot_digest=snap.digest, files=len(snap.files))
    patch_name = patch_sha = None
    if info.patch:
        (stage / PATCH_NAME).write_bytes(info.patch)
        patch_name, patch_sha = PATCH_NAME, _sha256_file(stage / PATCH_NAME)
    return CodeVersion(
        kind="git", snapshot_digest=snap.digest, files=len(snap.files), commit=info.commit, branch=info.branch,
        remote=info.remote, dirty=info.dirty, patch=patch_name, patch_sha256=patch_sha,
    )


def _copy_references(outputs: Outputs, root: Path, stage: Path) -> None:
    for entry in outputs.files:
        dest = stage / layout.reference_copy(entry.path)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(layout.local_path(entry.path, root), dest)


def _outputs_and_metrics(req: CaptureRequest) -> tuple[list[Path], dict[str, float]]:
    paths = [_existing(p, req.cwd, "output") for p in [*req.outputs, *req.metrics]]
    metrics: dict[str, float] = {}
    for m in req.metrics:
        metrics.update(load_metrics(req.cwd / m))
    return paths, metrics


def _existing(path: str, cwd: Path, what: str) -> Path:
    full = (cwd / path) if not Path(path).is_absolute() else Path(path)
    if not full.exists():
        hint = ("run the training first, or pass --run to have replay run it" if what == "output"
                else "pass existing files or folders to --data")
        raise BadInput(f"{what} path {path} does not exist", hint)
    return full


def _carried_env(names: list[str], allow_secret: bool) -> dict[str, str | None]:
    carried: dict[str, str | None] = {}
    for name in names:
        if not _ENV_NAME.match(name):
            raise BadInput(f"--env {name} is not a variable name", "pass names only, e.g. --env WANDB_MODE")
        if layout.looks_secret(name):
            if not allow_secret:
                raise BadInput(
                    f"--env {name} looks like a secret",
                    "secrets are never stored; pass --allow-secret-env to have verify read it from its own environment",
                )
            carried[name] = None
            continue
        if name not in os.environ:
            raise BadInput(f"--env {name} is not set in this environment", "set it, or drop --env " + name)
        carried[name] = os.environ[name]
    return carried


def _numerics_env() -> dict[str, str]:
    """Recorded numerics variables; thread counts left unset are pinned to this host's usable cores."""
    found = {k: os.environ[k] for k in layout.NUMERICS_VARS if k in os.environ}
    cores = str(len(os.sched_getaffinity(0)))
    for var in layout.THREAD_VARS:
        found.setdefault(var, cores)
    return dict(sorted(found.items()))


def _run_on_host(req: CaptureRequest, numerics: dict[str, str], carried: dict[str, str | None],
                 reporter: Reporter) -> None:
    env = {**os.environ, **numerics, **layout.seed_environment(req.seed)}
    try:
        proc = subprocess.Popen(req.command, cwd=req.cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, errors="replace")
    except OSError as exc:
        raise CommandFailed(f"cannot start {req.command[0]} ({exc.strerror})", "check the command after --") from None
    assert proc.stdout is not None
    tail: list[str] = []
    try:
        for line in proc.stdout:
            tail = (tail + [line.rstrip()])[-40:]
            reporter.log(line.rstrip(), "command")
        code = proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
        proc.wait()
        raise
    if code != 0:
        raise CommandFailed(f"the command exited with status {code}", "fix the training run, then capture again",
                            log_tail="\n".join(tail), status=code)


def _docker_arch(machine: str) -> str:
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


def _sha256_file(path: Path) -> str:
    import hashlib

    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()
