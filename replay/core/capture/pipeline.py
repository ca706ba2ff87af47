"""Snapshot a finished training run into a capsule: a folder with replay.json, and a pinned image.

Order matters: every cheap check runs before anything slow (hashing, locking, building), and the capsule
folder appears in one rename at the very end, so a failed or interrupted capture leaves nothing behind.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from replay import __version__, jsonio
from replay.core import layout
from replay.core.capture import (
    autoseed,
    base_images,
    cmdcheck,
    hygiene,
    projectcode,
    selfcheck,
    syslibs,
    which_python,
)
from replay.core.capture.dockerfile import (
    CapsuleLayerContext,
    DockerfileContext,
    render_capsule_dockerfile,
    render_dockerfile,
    write_build_context,
    write_capsule_context,
)
from replay.core.capture.lock.environment import lock_environment
from replay.core.capture.lock.source import PIP_COMPILE, take_lock
from replay.core.capture.secrets import looks_secret, refuse_secrets
from replay.core.capture.snapshot import Snapshot, code_files, take_snapshot
from replay.core.data.hashing import hash_file, hash_paths
from replay.core.data.statcache import StatCache
from replay.core.data.walk import locate
from replay.core.events import NullReporter, Reporter, Stopwatch
from replay.core.ports import CommandRunner, Engine, Toolchain
from replay.core.verify.compare import load_metrics
from replay.core.verify.hostinfo import collect_host
from replay.core.verify.tolerance import parse_tolerance
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
    DataManifest,
    ImageInfo,
    Manifest,
    Outputs,
    Policy,
    PythonEnv,
    RunCommand,
    Stability,
    SystemEnv,
    save,
)
from replay.manifest import (
    check as manifest_check,
)
from replay.manifest_rules import NUMERICS_VARS, THREAD_VARS, numerics_value_problem, refused_env_name
from replay.seeding import DEFAULT_SEED


@dataclass
class CaptureRequest:
    command: list[str]
    cwd: Path
    data: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    metrics: list[str] = field(default_factory=list)
    seed: int | None = None
    python: str = "python3"
    python_named: bool = False  # --python (or python in [tool.replay]) named it: a system interpreter is taken
    requirements: Path | None = None
    relock: bool = False  # ignore lock files in the project root (and relock a --requirements lock with hashes)
    base: str | None = None
    env: list[str] = field(default_factory=list)
    allow_secret_env: bool = False
    allow_secret_files: bool = False  # ship snapshot files that look like secrets (listed in the manifest)
    include_untracked: list[str] = field(default_factory=list)  # untracked large/binary files to ship anyway
    tolerances: dict[str, str] = field(default_factory=dict)
    ignore: list[str] = field(default_factory=list)
    name: str | None = None
    into: Path | None = None
    force: bool = False
    run: bool = False
    no_cache: bool = False  # rebuild every layer and relock: a cold capture
    runs: int = 0  # replay this many times once built, and record what varied (Outputs.stability)
    auto_seed: bool = False  # seed at interpreter start-up, in the image and in the --run host run
    apt: list[str] = field(default_factory=list)  # system packages no scan can see (a program run by subprocess)
    # The system-library scan and the command check in the image; off only to measure what they cost
    # (benchmarks/bench_capture_resolves.py), never from the command line.
    resolve_checks: bool = True
    verify: bool = False  # replay once in the built image and record whether the capsule reproduces itself


@dataclass
class CaptureResult:
    capsule: Path
    manifest: Manifest
    timings: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def capture(req: CaptureRequest, engine: Engine, tools: Toolchain, reporter: Reporter | None = None) -> CaptureResult:
    reporter = reporter or NullReporter()
    watch = Stopwatch()
    lap = watch.lap

    # --- 1. every check that costs nothing ------------------------------------------------------------
    if not req.command:
        raise BadInput("no command after --", "write the training command after --, e.g. `-- python train.py`")
    root = layout.project_root(req.cwd, tools.vcs)
    name = layout.capsule_name(req.name or root.name)
    capsule = (req.into or root / ".replay" / name).resolve()
    if capsule.exists() and not req.force:
        raise BadInput(f"capsule folder {capsule} already exists", "pass --force to replace it, or --name/--into")
    for spec in req.tolerances.values():
        parse_tolerance(spec)
    if req.seed is not None:
        layout.check_seed(req.seed)
    if not 0 <= req.runs <= 100:
        raise BadInput(f"--runs {req.runs} is out of range", "pass 1 to 100 replays (or leave it out)")
    seed = _effective_seed(req, reporter)
    carried = _carried_env(req.env, req.allow_secret_env)
    numerics = _numerics_env()
    data_paths = [_existing(p, req.cwd, "data") for p in req.data]
    syslibs.check_names(req.apt)
    if not req.outputs and not req.metrics:
        raise BadInput("no outputs to capture", "name what the command produced with --output and --metrics")
    if not req.run:
        output_paths, metrics = _outputs_and_metrics(req)
    allowed_secrets = _check_code_for_secrets(req, root, capsule, tools)
    interp = tools.python.inspect(req.python)
    which_python.announce(interp, req.python_named, reporter)
    taken = take_lock(interp, root, _given(req.requirements, req.cwd), req.relock, tools.exporter, reporter)
    engine_version = engine.version()  # no engine: fail now, not after a minute of hashing
    lap("checks")

    # --- 2. optionally run the training here, as it will be replayed --------------------------------
    written = hygiene.Written([], [])
    if req.run:
        reporter.stage("running the command on this host")
        watched = [layout.record_path(req.cwd / p, root) for p in [*req.data, *req.outputs, *req.metrics]]
        watched.append(layout.record_path(capsule, root))
        before = hygiene.tree_state(root, watched)
        _run_on_host(req, seed, numerics, carried, tools.runner, reporter)
        written = hygiene.written_between(before, hygiene.tree_state(root, watched))
        _warn(reporter, written.warning())
        output_paths, metrics = _outputs_and_metrics(req)
        lap("run")

    # --- 3. hashes: data, outputs, code ---------------------------------------------------------------
    with StatCache() as cache:
        reporter.stage("hashing data")
        data = hash_paths(data_paths, root, cache=cache, reporter=reporter, what="data", record_links=True)
        _refuse_leaving_links(data)
        reporter.stage("hashing outputs")
        outs = hash_paths(output_paths, root, cache=cache, reporter=reporter, what="output")
        # Recorded as the outputs are (no symlink resolved), so that each is one of the output files.
        metrics_files = [locate(req.cwd / m, root)[1] for m in req.metrics]
        outputs = Outputs(roots=outs.roots, files=outs.files, metrics_files=metrics_files, metrics=metrics)
        layout.output_mount_dirs(outputs)  # refuse unreplayable output places before the slow part
        reporter.stage("snapshotting code")
        excluded = [*data.roots, *outputs.roots, layout.record_path(capsule, root), ".replay", *written.created]
        snap = take_snapshot(root, excluded, cache, reporter, tools.vcs, _untracked(req, root))
    if not req.run:
        outputs.stale = hygiene.stale_outputs(root, outputs.roots, snap.files, [f.path for f in data.files]) or None
        _warn(reporter, hygiene.stale_warning(outputs.stale or []))
    lap("hashing")
    if snap.git is None:
        reporter.warn(f"{root} is not a git repository: the code version is a digest of its files only")

    with staged_dir(capsule, replace=req.force) as stage:
        # --- 4. environment: lock, wheels, base ----------------------------------------------------------
        reporter.stage("resolving the base image")
        base, target = base_images.resolve_base(engine, req.base, interp.version, reporter)
        reporter.stage(f"taking {taken.file} as the lock" if taken else "locking packages (pip-tools)")
        env = lock_environment(interp, root, stage, target, tools.locker, _given(req.requirements, req.cwd),
                               use_cache=not req.no_cache, taken=taken, reporter=reporter)
        lap("lock")
        try:
            system = syslibs.SystemPlan()
            if req.resolve_checks:
                reporter.stage("scanning the system libraries the packages link")
                system = syslibs.plan(interp, base.id, req.apt, engine, tools.system, reporter)
            lap("system")
            code = _code_version(snap, stage)
            code.allowed_secret_files = [f for f in allowed_secrets if f in set(snap.files)]
            workdir = layout.record_path(req.cwd, root)
            manifest = Manifest(
                name=name,
                created=datetime.now(UTC).replace(microsecond=0).isoformat(),
                replay_version=__version__,
                command=RunCommand(argv=list(req.command), workdir=workdir, seed=seed, env=carried,
                                   numerics_env=numerics, auto_seed=req.auto_seed),
                code=code,
                python=PythonEnv(
                    version=interp.version, implementation=interp.implementation, executable=interp.executable,
                    packages=env.packages, lock_sha256=hash_file(stage / LOCK_NAME)[1],
                    project_paths=env.project_paths, project_packages=env.project_packages,
                    replay_api=interp.replay_installed,
                    lock_source=taken.kind.value if taken else PIP_COMPILE,
                    lock_source_file=taken.file if taken else "",
                    lock_left_out=taken.left_out if taken else [],
                ),
                image=ImageInfo(id="", tag="", size=0, base=base, platform=f"linux/{_docker_arch(target.machine)}"),
                data=data,
                outputs=outputs,
                policy=Policy(tolerances=dict(req.tolerances), ignore=list(req.ignore)),
                host=collect_host(engine_version, engine.name(), engine.host_gpus()),
                system=SystemEnv(system.packages) if system.packages else None,
            )
            manifest_check(manifest, "the new capsule")  # never write what verify would refuse to load
            _copy_references(outputs, root, stage)

            # --- 5. the images: the shared environment, then this run's thin capsule layer on it --------
            dockerfile = render_dockerfile(_dockerfile_context(manifest, base.digest or base.id, bool(system.debs)))
            (stage / DOCKERFILE_NAME).write_text(dockerfile)
            reporter.stage("building the environment image")
            environment_id = _build_environment(engine, stage, dockerfile, env.wheels + system.debs, root,
                                                snap.files, manifest, reporter, req.no_cache)
        finally:
            env.cleanup()
        lap("environment")
        if req.resolve_checks:
            reporter.stage("checking the command (and system packages) in the image")
            cmdcheck.check_image(engine, environment_id, manifest.command, manifest.system_packages)
        lap("command")
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
        manifest.image.dockerfile_sha256 = hash_file(stage / DOCKERFILE_NAME)[1]
        lap("build")
        if req.runs:
            manifest.outputs.stability = _stability(engine, stage, manifest, root, req.runs, reporter)
            lap("runs")
        save(manifest, stage)
        if req.verify:
            manifest.outputs.self_check = selfcheck.self_check(engine, stage, root, reporter)
            _warn(reporter, selfcheck.warning(manifest.outputs.self_check))
            save(manifest, stage)
            lap("verify")
    return CaptureResult(capsule, manifest, watch.timings)


def _warn(reporter: Reporter, message: str | None) -> None:
    if message:
        reporter.warn(message)


def _given(path: Path | None, cwd: Path) -> Path | None:
    """A path given on the command line, read from the folder capture runs in."""
    if path is None:
        return None
    return path if path.is_absolute() else cwd / path


def _check_code_for_secrets(req: CaptureRequest, root: Path, capsule: Path, tools: Toolchain) -> list[str]:
    """The snapshot's files that look like secrets: refused (exit 2) unless --allow-secret-files.

    Listed the cheap way (no hashing), with the data, outputs and capsule left out roughly as the real
    snapshot will leave them out (it may leave out a little more, never less).
    """
    named = [*req.data, *req.outputs, *req.metrics]
    exclude = [layout.record_path(req.cwd / p, root) for p in named] + [layout.record_path(capsule, root), ".replay"]
    return refuse_secrets(root, code_files(root, exclude, tools.vcs, _untracked(req, root)).files,
                          req.allow_secret_files)


def _untracked(req: CaptureRequest, root: Path) -> list[str]:
    return [layout.record_path(req.cwd / p, root) for p in req.include_untracked]


def _refuse_leaving_links(data: DataManifest) -> None:
    """A link that leaves its data root dangles in the container, where only the root is mounted."""
    leaving = [link for link in data.links or [] if not link.inside]
    if leaving:
        first = leaving[0]
        more = f" (and {len(leaving) - 1} more)" if len(leaving) > 1 else ""
        raise BadInput(
            f"data link {first.path} -> {first.target} leaves its data folder{more}: in the container only the "
            "data folder is mounted, so it would dangle",
            f"copy the data in, or pass the link's target as its own --data root (--data {first.target})",
        )


def _stability(engine: Engine, stage: Path, manifest: Manifest, root: Path, runs: int, reporter: Reporter) -> Stability:
    """`replay check` on the capsule being made: the captured run and ``runs`` replays, compared."""
    from replay.core.check.floor import CheckRequest, check
    from replay.core.verify.options import ReplayOptions
    from replay.core.verify.pipeline import Capsule

    # The data was hashed just now: not checked again.
    req = CheckRequest(target=stage, options=ReplayOptions(cwd=root), runs=runs, check_data=False)
    return check(req, engine, reporter, capsule=Capsule(stage, manifest)).stability()


def _dockerfile_context(manifest: Manifest, base_ref: str, has_debs: bool = False) -> DockerfileContext:
    """The environment image's context: only what the code and packages decide, never the run."""
    return DockerfileContext(
        base_ref=base_ref,
        replay_version=__version__,
        venv=IMAGE_VENV,
        workspace=IMAGE_WORKSPACE,
        has_packages=bool(manifest.python.packages),
        site_packages=_site_packages_dir(manifest),
        has_scripts=bool(projectcode.image_scripts(manifest.python, IMAGE_VENV)),
        has_debs=has_debs,
    )


def _capsule_context(manifest: Manifest, environment_id: str) -> CapsuleLayerContext:
    """The capsule layer's context: this run's environment (seed, thread pins), labels and command."""
    cmd = manifest.command
    run_env = dict(layout.seed_environment(cmd.seed, cmd.auto_seed))
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


def _site_files(manifest: Manifest) -> dict[str, bytes]:
    """replay's files for the image's site-packages: the seeding hook and API, the project's packages."""
    files = autoseed.image_site_files(manifest.command.auto_seed, manifest.python.replay_api)
    files.update(projectcode.image_site_files(manifest.python))
    return dict(sorted(files.items()))


def _site_packages_dir(manifest: Manifest) -> str:
    """Where those files go in the image; "" when the capture needs none."""
    if not _site_files(manifest):
        return ""
    return autoseed.image_site_dir(IMAGE_VENV, manifest.image.base.python_version or manifest.python.version)


def build_steps(reporter: Reporter) -> Callable[[int, int, str], None]:
    """A build's steps as they start: its bar, and the step named beside it ("step 4/9 RUN pip install ...";
    the engine adapter hands the instruction over neutralized and cut short)."""

    def on_step(number: int, total: int, instruction: str) -> None:
        reporter.progress("build", number, total)
        reporter.status("build", f"step {number}/{total} {instruction}".rstrip())

    return on_step


def _build_environment(engine: Engine, stage: Path, dockerfile: str, wheels: list[Path], root: Path,
                       files: list[str], manifest: Manifest, reporter: Reporter, no_cache: bool) -> str:
    """``wheels`` holds the .deb files of the system packages too (they go to the context's debs/)."""
    site_files = _site_files(manifest)
    debs = [w for w in wheels if w.suffix == ".deb"]
    wheels = [w for w in wheels if w.suffix != ".deb"]
    with tempfile.TemporaryFile(prefix="replay-context-") as context:
        write_build_context(context, dockerfile, (stage / LOCK_NAME).read_bytes(), wheels, root, files, site_files,
                            projectcode.image_scripts(manifest.python, IMAGE_VENV), debs)
        context.seek(0)
        return engine.build(
            context, tag=None, on_line=reporter.log,
            on_step=build_steps(reporter), no_cache=no_cache,
        )


def _build_capsule(engine: Engine, dockerfile: str, manifest: Manifest, reporter: Reporter) -> str:
    """The thin layer: the tiny context holds its Dockerfile and replay.json, never the wheels again."""
    manifest_json = (jsonio.dumps(manifest.to_dict()) + "\n").encode()
    with tempfile.TemporaryFile(prefix="replay-capsule-context-") as context:
        write_capsule_context(context, dockerfile, manifest_json)
        context.seek(0)
        return engine.build(context, tag=None, on_line=reporter.log, on_step=build_steps(reporter))


def _code_version(snap: Snapshot, stage: Path) -> CodeVersion:
    info = snap.git
    left_out = {pattern: len(files) for pattern, files in sorted(snap.left_out.items())}
    left_out.update(snap.filtered)
    if info is None:
        return CodeVersion(kind="tree", snapshot_digest=snap.digest, files=len(snap.files), left_out=left_out,
                           snapshot_files=list(snap.files))
    patch_name = patch_sha = None
    if info.patch:
        (stage / PATCH_NAME).write_bytes(info.patch)
        patch_name, patch_sha = PATCH_NAME, hash_file(stage / PATCH_NAME)[1]
    return CodeVersion(
        kind="git", snapshot_digest=snap.digest, files=len(snap.files), commit=info.commit, branch=info.branch,
        remote=info.remote, dirty=info.dirty, patch=patch_name, patch_sha256=patch_sha, left_out=left_out,
        snapshot_files=list(snap.files),
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
        problem = refused_env_name(name)
        if problem:
            raise BadInput(f"--env {name} {problem}",
                           "pass names of the training's own settings only, e.g. --env WANDB_MODE")
        if looks_secret(name):
            if not allow_secret:
                raise BadInput(
                    f"--env {name} looks like a secret",
                    "secrets are never stored; pass --allow-secret-env to have verify read it from its own environment",
                )
            carried[name] = None
            continue
        if name not in os.environ:
            raise BadInput(f"--env {name} is not set in this environment", "set it, or drop --env " + name)
        if "\0" in os.environ[name]:  # pragma: no cover - POSIX environments cannot hold NUL
            raise BadInput(f"--env {name} holds a NUL byte", "drop --env " + name)
        carried[name] = os.environ[name]
    return carried


def _numerics_env() -> dict[str, str]:
    """Recorded numerics variables; thread counts left unset are pinned to this host's usable cores."""
    found = {k: os.environ[k] for k in NUMERICS_VARS if k in os.environ}
    cores = str(len(os.sched_getaffinity(0)))
    for var in THREAD_VARS:
        found.setdefault(var, cores)
    for name, value in found.items():  # what verify would refuse to load is refused here, before any work
        problem = numerics_value_problem(name, value)
        if problem:
            raise BadInput(f"{name}={value!r} in this environment {problem}",
                           f"set {name} to a plain value (e.g. a thread count such as 4), or unset it")
    return dict(sorted(found.items()))


def _effective_seed(req: CaptureRequest, reporter: Reporter) -> int | None:
    """The seed recorded: --seed; with --auto-seed and no seed, the documented default (0)."""
    if not req.auto_seed:
        return req.seed
    if not req.run:
        reporter.warn("--auto-seed without --run: the reference outputs were made without the start-up hook, "
                      "so a replay matches them only if that run was seeded the same way; pass --run")
    return DEFAULT_SEED if req.seed is None else req.seed


def _run_on_host(req: CaptureRequest, seed: int | None, numerics: dict[str, str], carried: dict[str, str | None],
                 runner: CommandRunner, reporter: Reporter) -> None:
    env = {**os.environ, **numerics, **layout.seed_environment(seed, req.auto_seed)}
    if req.auto_seed:
        with autoseed.host_hook(env) as hooked:
            _run_command(req, hooked, runner, reporter)
    else:
        _run_command(req, env, runner, reporter)


def _run_command(req: CaptureRequest, env: dict[str, str], runner: CommandRunner, reporter: Reporter) -> None:
    tail: list[str] = []

    def take(line: str) -> None:
        tail.append(line.rstrip())
        del tail[:-40]
        reporter.log(line.rstrip(), "command")

    code = runner.run(list(req.command), req.cwd, env, take)  # never outlives us, even when interrupted
    if code != 0:
        raise CommandFailed(f"the command exited with status {code}", "fix the training run, then capture again",
                            log_tail="\n".join(tail), status=code)


def _docker_arch(machine: str) -> str:
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)

