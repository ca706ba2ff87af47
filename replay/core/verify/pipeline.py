"""Replay a capsule in a fresh, isolated container and turn the result into a verdict.

The replay's steps are written once, as the methods of a ``Replayer``: open (the manifest, with the
verifier's policy on top), check the references, check the image, check the data, replay once, compare,
report. ``verify`` composes them for one capsule; a batch task (``core.batch.task``) replays a group once and
compares each member; ``check`` (``core.check.floor``) replays N times; an investigation replays again with
one thing changed. Each fails fast, in that order: nothing runs before the image and the data are right.
"""

from __future__ import annotations

import os
import shlex
import shutil
import stat
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from replay.core import layout
from replay.core.data.access import check_data_access
from replay.core.data.hashing import check_data, hash_nofollow, lstat_beneath
from replay.core.data.statcache import StatCache
from replay.core.events import NullReporter, Reporter, Stopwatch
from replay.core.limits import SCRATCH_TREE_BYTES, RunLimits, format_size
from replay.core.ports import Engine, ImageSource, Mount, RunResult, RunSpec, ScratchTree
from replay.core.verify import budgets
from replay.core.verify.compare import (
    MetricResult,
    OutputResult,
    Verdict,
    compare_metrics,
    compare_outputs,
    load_metrics,
    settle_metrics_files,
    verdict,
)
from replay.core.verify.diagnose import diagnose
from replay.core.verify.explanation import NotAFile
from replay.core.verify.hostinfo import collect_host
from replay.core.verify.measured import accept_measured_noise, accepted_finding
from replay.core.verify.noise import collect_evidence
from replay.core.verify.options import ReplayOptions
from replay.core.verify.report import DataCheck, DataStatus, Hosts, RunOutcome, VerifyReport
from replay.core.verify.tolerance import parse_tolerance
from replay.errors import (
    EXIT_DIVERGED,
    EXIT_OK,
    BadInput,
    CommandFailed,
    DataMismatch,
    ImageProblem,
    ReplayError,
    UnsafeCapsule,
)
from replay.fsutil import chown_tree, mkdirs_beneath
from replay.manifest import IMAGE_WORKSPACE, REFERENCE_DIR, FileEntry, HostInfo, Manifest, load
from replay.safefs import read_bytes

# The image's own user (templates/Dockerfile.j2): a root verifier runs the replay as this user.
CONTAINER_UID = CONTAINER_GID = 10001
# What a file the replay left where an output belongs, but that is not a regular file, is recorded as.
NOT_A_FILE = "(not a regular file)"

VERDICT_EXIT = {"identical": EXIT_OK, "equivalent": EXIT_OK, "diverged": EXIT_DIVERGED}


# Brings a capsule's image into the engine when it lacks it (a bundle loads it): a step of its own in the timings.
EnsureImage = ImageSource


@dataclass
class VerifyRequest:
    target: Path
    options: ReplayOptions
    keep: Path | None = None
    ensure_image: EnsureImage | None = None
    # Steps taken for this capsule before verify began (a registry reference's "pull"), first in its timings.
    timings: dict[str, float] = field(default_factory=dict)


@dataclass
class Capsule:
    """A loaded capsule: where it is and what it says. Bundles and image references will resolve to this."""

    path: Path
    manifest: Manifest


@dataclass
class Prepared:
    """A capsule with the verifier's policy merged in and the replay's environment worked out."""

    capsule: Capsule
    tolerances: dict[str, str]
    ignore: list[str]
    env: dict[str, str]
    strict: bool = False  # the noise measured at capture is not accepted

    @property
    def manifest(self) -> Manifest:
        return self.capsule.manifest


@dataclass
class Comparison:
    outputs: list[OutputResult]
    metrics: list[MetricResult]
    verdict: str


def open_capsule(target: Path) -> Capsule:
    return Capsule(path=target if target.is_dir() else target.parent, manifest=load(target))


class Replayer:
    """The replay's steps against one engine, under one set of options; ``watch`` times each step."""

    def __init__(self, engine: Engine, options: ReplayOptions, reporter: Reporter | None = None) -> None:
        self.engine = engine
        self.options = options
        self.reporter = reporter or NullReporter()
        self.watch = Stopwatch()

    def open(self, target: Path, capsule: Capsule | None = None) -> Prepared:
        """The capsule's manifest with the verifier's policy on top; a bad tolerance or --data is refused here."""
        prepared = prepare(capsule or open_capsule(target), self.options)
        self.watch.lap("manifest")
        return prepared

    def check_references(self, prepared: Prepared) -> None:
        self.reporter.stage("checking the capsule's reference copies")
        with StatCache() as cache:
            check_references(prepared.capsule, cache)

    def check_image(self, m: Manifest, ensure_image: EnsureImage | None = None) -> None:
        """The image by ID; one the engine lacks is brought in first from ``ensure_image``, timed as its step."""
        self.reporter.stage("checking the image")
        if ensure_image is not None and self.engine.image(m.image.id) is None:
            ensure_image.fetch(self.engine, self.reporter)
            self.watch.lap(ensure_image.step)
            self.reporter.stage("checking the image")
        check_image(self.engine, m)
        self.watch.lap("image")

    def check_data(self, m: Manifest) -> None:
        self.reporter.stage("checking data")
        with StatCache() as cache:
            check_inputs(m, self.options, cache, self.reporter)
        self.watch.lap("data")

    def host(self) -> HostInfo:
        """This machine's facts, with the engine's version: the verify side of the host comparison."""
        return collect_host(self.engine.version(), self.engine.name(), self.engine.host_gpus())

    def replay_once(self, prepared: Prepared, out_root: Path, adjust: Callable[[RunSpec], RunSpec] | None = None,
                    cancel: threading.Event | None = None) -> RunResult:
        """The command once, in a fresh container; a command that failed, timed out or ran out of memory raises."""
        result = run_replay(self.engine, prepared, self.options, out_root, self.reporter, adjust, cancel)
        self.watch.lap("run")
        self.watch.timings["container_start"] = round(result.start_s, 4)
        raise_on_failure(result, self.options.limits.effective())
        return result

    def compare(self, prepared: Prepared, out_root: Path) -> Comparison:
        self.reporter.stage("comparing outputs")
        comparison = compare_replay(prepared, out_root)
        self.watch.lap("compare")
        return comparison


def verify(req: VerifyRequest, engine: Engine, reporter: Reporter | None = None) -> VerifyReport:
    """The whole replay of one capsule, failing fast: manifest, image, data, run, compare, diagnose."""
    replayer = Replayer(engine, req.options, reporter)
    replayer.watch.timings.update(req.timings)
    prepared = replayer.open(req.target)
    replayer.check_references(prepared)
    host = replayer.host()  # the engine asked first: none answering is one clear error before the image check
    replayer.check_image(prepared.manifest, req.ensure_image)
    replayer.check_data(prepared.manifest)
    with output_folder(req.keep) as out_root:
        result = replayer.replay_once(prepared, out_root)
        comparison = replayer.compare(prepared, out_root)
    return build_report(prepared, result, comparison, host, replayer.watch.timings)


def error_report(target: Path, exc: ReplayError) -> VerifyReport:
    """The report of a verify that reached no verdict: verdict "error", the error's code and line."""
    name, image = target.name, ""
    try:
        capsule = open_capsule(target)
        name, image = capsule.manifest.name, capsule.manifest.image.id
    except ReplayError:
        pass
    report = VerifyReport(capsule=name, capsule_path=str(target), image_id=image, verdict=Verdict.ERROR,
                          exit_code=exc.exit_code, error=exc.one_line())
    if isinstance(exc, DataMismatch):
        report.data = DataCheck(DataStatus.MISMATCH, problems=list(exc.problems))
    if isinstance(exc, CommandFailed):
        report.run = RunOutcome(exit_code=exc.status, log_tail=exc.log_tail)
    return report


def prepare(capsule: Capsule, options: ReplayOptions) -> Prepared:
    """The manifest's policy with the verifier's on top, and the replay's environment."""
    m = capsule.manifest
    tolerances = {**m.policy.tolerances, **options.tolerances}
    for tolerance in tolerances.values():  # the capsule's own too: a bad one must stop us before the run
        parse_tolerance(tolerance)
    ignore = [*m.policy.ignore, *[g for g in options.ignore if g not in m.policy.ignore]]
    unknown = sorted(set(options.data_map) - set(m.data.roots))
    if unknown:
        raise BadInput(f"--data {unknown[0]}=... names no recorded data path",
                       f"recorded data paths: {', '.join(m.data.roots) or 'none'}")
    return Prepared(capsule, tolerances, ignore, _replay_env(m), options.strict)


def check_image(engine: Engine, m: Manifest) -> None:
    """The image, by ID; a tag that now names another image is refused."""
    image = engine.image(m.image.id)
    if image is None:
        where = "Docker engine" if engine.name() == "docker" else f"engine ({engine.name()})"
        raise ImageProblem(f"image {m.image.id[:19]} ({m.image.tag}) is not in this {where}", _image_way_out(m))
    if image.volumes:  # an anonymous volume is writable host disk beside the read-only root, kept after the run
        raise BadInput(f"image {m.image.id[:19]} declares VOLUME {', '.join(image.volumes)[:200]}: a replay could "
                       "write outside its output folder there", "do not trust this capsule's image; `replay "
                       "capture` never declares volumes")
    tagged = engine.image(m.image.tag) if m.image.tag else None
    if tagged is not None and tagged.id != m.image.id:
        # Never advise naming the capsule's image after the tag: the tag may be a trusted base image's.
        raise ImageProblem(f"tag {m.image.tag} names image {tagged.id[:19]}, not the recorded {m.image.id[:19]}",
                           "verify uses the image by its ID, but the two disagree: check which is right (docker "
                           "image inspect); never tag an image you have not verified after a name you trust")


def _image_way_out(m: Manifest) -> str:
    """Where a missing image can come from: the registry digest the capsule recorded, else its bundle."""
    if m.image.registry_digest:
        ref = m.image.registry_digest
        return f"pull it by the digest this capsule recorded: replay pull {ref} -o FOLDER (or replay verify {ref})"
    return ("load it from the bundle the capsule came in: replay unpack BUNDLE -o FOLDER --load (or replay verify "
            "BUNDLE); or re-run `replay capture` where the data and code live")


def check_references(capsule: Capsule, cache: StatCache | None = None) -> None:
    """The capsule's reference copies, before anything runs: plain files only (no link, FIFO or device, and
    no folder on the way that is a link), each matching the size and sha256 that replay.json records.
    A copy that is missing is allowed (its differences are then only not explained)."""
    m = capsule.manifest
    if m.outputs.reference_dir is None:
        return
    st, why = lstat_beneath(capsule.path, REFERENCE_DIR)
    if why or (st is not None and not stat.S_ISDIR(st.st_mode)):
        raise UnsafeCapsule(REFERENCE_DIR, why or "not a folder")
    if st is None:
        return
    found, odd = hash_nofollow([REFERENCE_DIR], capsule.path, cache=cache, what="reference")
    if odd:
        raise UnsafeCapsule(*odd[0])
    want = {layout.reference_copy(f.path): f for f in m.outputs.files}
    for copy in found.files:
        entry = want.get(copy.path)
        if entry is not None and (entry.size, entry.sha256) != (copy.size, copy.sha256):
            raise UnsafeCapsule(copy.path, "not the file replay.json records (its size or sha256 differs)")


def check_inputs(m: Manifest, options: ReplayOptions, cache: StatCache | None, reporter: Reporter) -> None:
    """The data, before anything runs: every missing, changed or extra file is named, and the container's
    user must be able to read what is there."""
    diff = check_data(m.data, options.cwd, mapping=options.data_map, cache=cache, reporter=reporter)
    if not diff.ok:
        problems = diff.problems()
        named = ", ".join(f"{p['path']} {p['problem']}" for p in problems[:3])
        more = f" and {len(problems) - 3} more" if len(problems) > 3 else ""
        searched = _searched(m, options, [f.path for f in diff.missing])
        where = f" (looked for in {', '.join(searched)})" if searched else ""
        raise DataMismatch(f"data differs from the capture: {named}{more}{where}; the command was not run",
                           "restore the captured data there, or point --data RECORDED=LOCAL at a copy", problems)
    check_data_access([_data_source(root, options) for root in m.data.roots], *_container_ids())


def _searched(m: Manifest, options: ReplayOptions, missing: list[str]) -> list[str]:
    """Where the recorded roots holding a missing file were looked for on this machine (a --data mapping wins)."""
    roots = [r for r in m.data.roots if any(p == r or p.startswith(r.rstrip("/") + "/") for p in missing)]
    return [f"{root} -> {_data_source(root, options)}" if root in options.data_map
            else str(_data_source(root, options)) for root in roots]


def run_replay(engine: Engine, prepared: Prepared, options: ReplayOptions, out_root: Path,
               reporter: Reporter, adjust: Callable[[RunSpec], RunSpec] | None = None,
               cancel: threading.Event | None = None) -> RunResult:
    """The recorded command in a fresh container, its outputs written under ``out_root``; ``adjust`` changes
    the spec before it runs (``replay check --vary``: another clock, time zone, user...); ``cancel`` set
    kills the container (the engine raises Interrupted)."""
    m = prepared.manifest
    spec = RunSpec(
        image=m.image.id, argv=m.command.argv, workdir=layout.container_path(m.command.workdir), env=prepared.env,
        mounts=[Mount(str(_data_source(root, options)), layout.container_path(root)) for root in m.data.roots],
        user=_container_user(), limits=options.limits.effective(out_root), labels={"io.replay.capsule": m.name},
        scratch_tree=ScratchTree(IMAGE_WORKSPACE, SCRATCH_TREE_BYTES),  # writes outside the outputs: thrown away
    )
    if adjust is not None:
        spec = adjust(spec)
    root = os.geteuid() == 0
    try:
        for rel in layout.output_mount_dirs(m.outputs):
            # Root on the host: the fresh folder is lent to the user the container runs as (never made
            # world-writable), and everything under out_root is given back once the run ends.
            host = mkdirs_beneath(out_root, rel, owner=_uid_gid(spec.user) if root else None)
            spec.mounts.append(Mount(str(host), layout.container_path(rel), read_only=False))
        reporter.stage(f"replaying `{shlex.join(m.command.argv)}`")
        return engine.run(spec, lambda line: reporter.log(line, "command"), cancel=cancel)
    finally:
        if root:
            chown_tree(out_root, os.geteuid(), os.getegid())


def _uid_gid(user: str) -> tuple[int, int]:
    uid, _, gid = user.partition(":")
    return int(uid), int(gid or uid)


def compare_replay(prepared: Prepared, out_root: Path) -> Comparison:
    """Every output by hash (explained where it differs) and every metric, against this capsule's references."""
    m, capsule = prepared.manifest, prepared.capsule
    replayed, odd = _replayed_files(m, out_root)
    outputs = compare_outputs(m.outputs.files, replayed, out_root, capsule.path / REFERENCE_DIR, prepared.ignore,
                              prepared.tolerances)
    for result in outputs:
        if result.path in odd:  # never read: say what the replay left there instead
            result.replayed_sha256 = NOT_A_FILE
            result.explanation = NotAFile(note=f"the replay left {odd[result.path]} here; not followed, not read")
    new_metrics: dict[str, float] = {}
    per_file: dict[str, list[str]] = {}
    for metrics_file in m.outputs.metrics_files:
        found = _metrics_or_none(out_root, metrics_file)
        new_metrics.update(found)
        reference = _metrics_or_none(capsule.path, layout.reference_copy(metrics_file))
        per_file[metrics_file] = sorted({*found, *reference})
    metrics = compare_metrics(m.outputs.metrics, new_metrics, prepared.tolerances)
    outputs = settle_metrics_files(outputs, m.outputs.metrics_files, metrics, per_file)
    return Comparison(outputs, metrics, verdict(outputs, metrics))


def build_report(prepared: Prepared, result: RunResult, comparison: Comparison, verify_host: HostInfo,
                 timings: dict[str, float]) -> VerifyReport:
    """The verdict with its evidence, and a diagnosis of what changed underneath when it diverged."""
    m = prepared.manifest
    stability = m.outputs.stability
    evidence = collect_evidence(comparison.outputs, comparison.metrics,
                                stability.unstable_outputs if stability else (),
                                stability.unstable_metrics if stability else (), stability.runs if stability else 0,
                                hash_seed_fixed=hash_seed_fixed(m))
    accepted = [] if prepared.strict else accept_measured_noise(comparison, evidence)
    findings = diagnose(m.host, verify_host, seed=m.command.seed, diverged=comparison.verdict != "identical",
                        numerics_env=m.command.numerics_env, evidence=evidence, log_tail=result.log_tail)
    if accepted:
        findings.insert(0, accepted_finding(accepted, evidence.capture_runs))
    return VerifyReport(
        capsule=m.name,
        capsule_path=str(prepared.capsule.path),
        image_id=m.image.id,
        verdict=Verdict(comparison.verdict),
        exit_code=VERDICT_EXIT[comparison.verdict],
        outputs=comparison.outputs,
        metrics=comparison.metrics,
        data=DataCheck(DataStatus.VERIFIED, files=len(m.data.files), bytes=m.data.total_bytes, digest=m.data.digest),
        run=RunOutcome(exit_code=result.exit_code, duration_s=round(result.duration_s, 3), timed_out=result.timed_out,
                       oom_killed=result.oom_killed, log_tail=result.log_tail, unenforced=result.unenforced or None,
                       undeclared_writes=result.written if result.written_count is not None else None,
                       undeclared_count=result.written_count),
        diagnosis=findings,
        hosts=Hosts(capture=m.host, verify=verify_host),
        timings=dict(timings),
    )


def hash_seed_fixed(m: Manifest) -> bool:
    """PYTHONHASHSEED is fixed in the replay: by the recorded seed, or set among the recorded variables."""
    return m.command.seed is not None or "PYTHONHASHSEED" in {**m.command.numerics_env, **m.command.env}


def _replay_env(m: Manifest) -> dict[str, str]:
    env = {**m.command.numerics_env, **layout.seed_environment(m.command.seed)}
    for name, value in m.command.env.items():
        if value is None:  # a secret: never stored, read from this machine's environment
            if name not in os.environ:
                raise BadInput(f"the capsule needs secret {name} from the environment", f"export {name}, then retry")
            value = os.environ[name]
        env[name] = value
    env["HOME"] = "/tmp"  # the container user may have no home; /tmp is the writable tmpfs
    return env


def _data_source(root: str, options: ReplayOptions) -> Path:
    local = options.data_map.get(root) or layout.local_path(root, options.cwd)
    return local.resolve()


def _container_ids() -> tuple[int, int]:
    """The host user when it is not root (its files stay removable); the image's own user otherwise."""
    return (CONTAINER_UID, CONTAINER_GID) if os.geteuid() == 0 else (os.geteuid(), os.getegid())


def _container_user() -> str:
    uid, gid = _container_ids()
    return f"{uid}:{gid}"


@contextmanager
def output_folder(keep: Path | None) -> Iterator[Path]:
    if keep is not None:
        if keep.exists() and any(keep.iterdir()):
            raise BadInput(f"--keep folder {keep} is not empty", "pass a new or empty folder")
        keep.mkdir(parents=True, exist_ok=True)
        yield keep.resolve()
        return
    tmp = Path(tempfile.mkdtemp(prefix="replay-verify-"))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _metrics_or_none(base: Path, rel: str) -> dict[str, float]:
    """Metrics of a file under ``base`` (reached without following a link), or none when it is missing,
    not a regular file, or no longer a JSON object of numbers (all of which diverge)."""
    try:
        return load_metrics(base / rel, read_bytes(base, rel, budgets.METRICS_BYTES + 1))
    except (BadInput, OSError):
        return {}


def _replayed_files(m: Manifest, out_root: Path) -> tuple[list[FileEntry], dict[str, str]]:
    """Files the replay produced where the capture declared outputs (a declared file, or all under a
    folder), and what it left there that is not a regular file: the command is someone else's, so nothing
    it wrote is followed (a link to /etc/shadow is reported as a link, never read)."""
    found, odd = hash_nofollow(list(m.outputs.roots), out_root, what="output")
    strange = dict(odd)
    entries = found.files + [FileEntry(path, 0, NOT_A_FILE) for path in strange]
    return entries, strange


def raise_on_failure(result: RunResult, limits: RunLimits) -> None:
    if result.output_exceeded is not None:
        raise CommandFailed(f"the replay wrote more than --max-output {format_size(result.output_exceeded)}",
                            "raise --max-output if the outputs are meant to be this large",
                            log_tail=result.log_tail, status=result.exit_code)
    if result.timed_out:
        raise CommandFailed(f"the replayed command timed out after {limits.timeout_s or 0:g} s", "raise --timeout",
                            log_tail=result.log_tail, status=result.exit_code)
    if result.oom_killed:
        limit = f"{limits.memory_bytes / (1 << 20):g} MiB" if limits.memory_bytes else "none"
        raise CommandFailed(f"the replayed command was killed for memory (limit {limit})",
                            "raise --memory", log_tail=result.log_tail, status=result.exit_code)
    if result.exit_code != 0:
        raise CommandFailed(f"the replayed command exited with status {result.exit_code}",
                            "see the last lines of its log below", log_tail=result.log_tail, status=result.exit_code)
