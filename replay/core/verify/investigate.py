"""`replay verify --investigate`: when a replay diverges, replay again in fresh containers, each time
changing one thing, and name the cause from what changed the outcome.

The experiments, cheapest and most telling first, stopping as soon as the outcome is explained:

``again``      the same replay once more. The two replays agree: the command is deterministic here, and what
               differs from the capture lies outside it (environment, code, data, hardware, or a stale
               reference). They differ only in values that follow the clock: the clock. Else the
               nondeterminism is inside the command, and one of the next pins it down.
``hash_seed``  two replays with PYTHONHASHSEED fixed: now they agree -> set/dict order (hash randomization).
``seed``       two replays with a fixed seed (the ``--auto-seed`` start-up hook, mounted for the run) and a
               fixed PYTHONHASHSEED: now they agree -> an unseeded random number generator.
``threads``    two replays on one CPU with every thread count at 1: now they agree -> thread scheduling or
               parallel reductions.

A hypothesis needs two replays (agreeing once proves nothing), so within the default budget of 4 extra
replays ``again`` and one hypothesis fit: the order of the hypotheses follows the evidence (items in another
order -> hash seed first; no seed recorded -> seed first; else threads first). What was tested is
"confirmed", what was not is "suspected". Values that only the clock moves are set aside when replays are
compared under a hypothesis: a seed does not stop a timing from moving.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from replay import seeding
from replay.assets import templates_dir
from replay.core.ports import Engine, Mount, RunSpec
from replay.core.verify.compare import Verdict, compare_metrics, compare_outputs
from replay.core.verify.diagnose import THREAD_VARS, Finding, host_table
from replay.core.verify.noise import ItemNoise, NoiseEvidence, collect_evidence
from replay.core.verify.pipeline import Prepared, Replayer, VerifyRequest, hash_seed_fixed, open_capsule, verify
from replay.core.verify.report import VerifyReport
from replay.errors import BadInput, ReplayError
from replay.manifest import FileEntry

DEFAULT_BUDGET = 4
MAX_BUDGET = 20
FIXED_SEED = "0"
HOOK_TARGET = "/opt/replay-investigate"  # where the seeding hook's folder is mounted, first on PYTHONPATH
MOVED_SHOWN = 5

Adjust = Callable[[RunSpec], RunSpec]


@dataclass
class Run:
    """One replay's outputs: where they are, their hashes and sizes, and the metrics it wrote."""

    label: str
    root: Path
    files: dict[str, tuple[str | None, int | None]]
    metrics: dict[str, float]


@dataclass
class Moved:
    """One output or metric that differs between two replays, with what differs."""

    name: str
    between: str  # e.g. "replay 1 / replay 2"
    detail: str
    classes: dict[str, int] = field(default_factory=dict)


@dataclass
class Experiment:
    name: str  # again | hash_seed | seed | threads
    changed: str  # what these replays changed, in words
    runs: list[str] = field(default_factory=list)
    agree: bool | None = None  # the replays agreed (values only the clock moves set aside); None: failed
    moved: list[Moved] = field(default_factory=list)
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Investigation:
    budget: int
    extra_replays: int = 0
    seconds: float = 0.0
    cause: str = "unexplained"  # outside | clock | hash_order | seed | threads | inside | unexplained
    confirmed: bool = False
    finding: str = ""
    experiments: list[Experiment] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"budget": self.budget, "extra_replays": self.extra_replays, "seconds": round(self.seconds, 3),
                "cause": self.cause, "confirmed": self.confirmed, "finding": self.finding,
                "experiments": [e.to_dict() for e in self.experiments]}

    def conclude(self, cause: str, confirmed: bool, text: str) -> Investigation:
        self.cause, self.confirmed = cause, confirmed
        self.finding = ("confirmed: " if confirmed else "suspected: ") + text
        return self


def experiment_lines(found: dict[str, Any]) -> list[str]:
    """Each experiment of a written investigation (``Investigation.to_dict``) as one line: "runs: changed
    WHAT: agreed | differed in NAMES | failed: ERROR". The document may come from a node: read defensively."""
    lines = []
    for exp in found.get("experiments") or []:
        if not isinstance(exp, dict):
            continue
        if exp.get("agree") is None:
            outcome = f"failed: {exp.get('error')}"
        elif exp.get("agree"):
            outcome = "agreed"
        else:
            outcome = "differed in " + ", ".join(str(m.get("name")) for m in exp.get("moved") or []
                                                 if isinstance(m, dict))
        lines.append(f"{', '.join(str(x) for x in exp.get('runs') or [])}: changed {exp.get('changed')}: {outcome}")
    return lines


def check_budget(budget: int) -> int:
    if not 0 <= budget <= MAX_BUDGET:
        raise BadInput(f"--investigate-runs {budget} is out of range", f"pass 0 to {MAX_BUDGET} extra replays")
    return budget


def verify_investigated(req: VerifyRequest, engine: Engine, budget: int = DEFAULT_BUDGET,
                        reporter: Any = None) -> VerifyReport:
    """``verify``, and when it diverged, the investigation: its finding leads the diagnosis, its experiments
    are in ``report.investigation``."""
    check_budget(budget)
    with tempfile.TemporaryDirectory(prefix="replay-investigate-") as tmp:
        first_root = req.keep or Path(tmp) / "replay-1"
        report = verify(replace(req, keep=first_root), engine, reporter)
        if report.verdict != Verdict.DIVERGED or budget == 0:
            return report
        replayer = Replayer(engine, req.options, reporter)
        prepared = replayer.open(req.target, open_capsule(req.target))
        first = Run("replay 1", first_root.resolve(),
                    {o.path: (o.replayed_sha256, o.replayed_size) for o in report.outputs if o.replayed_sha256},
                    {m.name: m.replayed for m in report.metrics if m.replayed is not None})
        found = Investigator(replayer, prepared, Path(tmp), budget).run(first, report)
    report.investigation = found.to_dict()
    report.diagnosis = [Finding(_KIND[found.cause], found.finding, likely=True), *_settled(report.diagnosis, found)]
    return report


# Guesses about the cause that an experiment settles: a missing seed, nondeterminism inside the command.
_GUESSES = ("no seed was recorded and values differ", "nondeterminism inside the command")


def _settled(findings: list[Finding], found: Investigation) -> list[Finding]:
    """The diagnosis once the cause is confirmed: its guesses about the cause no longer read as likely."""
    if not found.confirmed:
        return findings
    out = []
    for f in findings:
        if f.likely and f.kind in ("seed", "command", "environment") and any(g in f.message for g in _GUESSES):
            f = Finding(f.kind, f"set aside by the investigation: {f.message}", likely=False)
        out.append(f)
    return sorted(out, key=lambda f: not f.likely)


_KIND: dict[str, Any] = {"outside": "environment", "clock": "noise", "hash_order": "seed", "seed": "seed",
                         "threads": "command", "inside": "command", "unexplained": "command"}


class Investigator:
    def __init__(self, replayer: Replayer, prepared: Prepared, scratch: Path, budget: int) -> None:
        self.replayer, self.prepared, self.scratch = replayer, prepared, scratch
        self.found = Investigation(budget)
        self.count = 1
        self.hash_fixed = hash_seed_fixed(prepared.manifest)

    @property
    def left(self) -> int:
        return self.found.budget - self.found.extra_replays

    def run(self, first: Run, report: VerifyReport) -> Investigation:
        started = time.monotonic()
        try:
            self._investigate(first, report)
        finally:
            self.found.seconds = time.monotonic() - started
        return self.found

    def _investigate(self, first: Run, report: VerifyReport) -> None:
        m = self.prepared.manifest
        against_capture = collect_evidence(report.outputs, report.metrics, hash_seed_fixed=self.hash_fixed)
        again = self._experiment("again", "nothing: the same replay once more", None, [first], 1)
        if again.agree is None:
            self.found.conclude("unexplained", False, f"the replay could not be repeated ({again.error})")
            return
        if not again.moved:
            self._outside(against_capture, report)
            return
        between = _evidence(again.moved)
        steady = [i.name for i in against_capture.items if i.name not in {x.name for x in again.moved}]
        if between.timing_only:
            text = (f"between two replays only values that follow the clock moved ({_shown(again.moved)}): "
                    "timings or timestamps, not a regression; --ignore or a tolerance on them settles it")
            if steady:
                text += (f"; {', '.join(steady[:3])} also differ from the capture, the same in both replays: "
                         "that part lies outside the command (environment, code, data, or a stale reference)")
            self.found.conclude("clock", True, text)
            return
        for name in self._hypotheses(between, m.command.seed is None):
            if self.left < 2:
                break
            exp = self._experiment(name, _CHANGES[name], _ADJUST[name], [], 2)
            if exp.agree:
                self.found.conclude(name if name != "hash_seed" else "hash_order", True, _CONFIRMED[name]
                                    .format(moved=_shown(again.moved)))
                return
        self._inside(again, self._hypotheses(between, m.command.seed is None))

    def _inside(self, again: Experiment, hypotheses: list[str]) -> None:
        """Replays differ among themselves, and no change tried made them agree (or none fitted the budget)."""
        tried = {e.name: e for e in self.found.experiments if e.name != "again"}
        text = (f"two replays of the same capsule differ among themselves ({_shown(again.moved)}): nondeterminism "
                "inside the command")
        for name, exp in tried.items():
            text += f"; {_CHANGES[name]}: " + (f"failed ({exp.error})" if exp.agree is None else "did not make them agree")
        if untried := [n for n in hypotheses if n not in tried]:
            text += (f"; not tested within {self.found.budget} extra replays: {', '.join(_CHANGES[n] for n in untried)}"
                     f" (--investigate-runs {self.found.budget + 2 * len(untried)})")
        self.found.conclude("inside", True, text)

    def _hypotheses(self, between: NoiseEvidence, unseeded: bool) -> list[str]:
        order = []
        if between.reordered and not self.hash_fixed:
            order.append("hash_seed")
        if unseeded:
            order.append("seed")
        elif not self.hash_fixed and "hash_seed" not in order:
            order.append("hash_seed")
        order.append("threads")
        return order

    def _outside(self, against_capture: NoiseEvidence, report: VerifyReport) -> None:
        names = ", ".join(i.name for i in against_capture.items[:3]) or "the outputs"
        if against_capture.timing_only:
            self.found.conclude("clock", False, f"two replays agreed this time, and only values that follow the "
                                f"clock differ from the capture ({names}): timings or timestamps")
            return
        hosts = report.hosts
        same_host = hosts.capture is not None and hosts.verify is not None and not any(
            differs for *_, differs in host_table(hosts.capture, hosts.verify))
        where = ("the hosts match field for field and the data and image are proven equal, so most likely the "
                 "capture's reference is stale (outputs of an older run or other code) or the code changed"
                 if same_host else "the environment, code, data or hardware of the capture, or a stale reference")
        self.found.conclude("outside", True, f"two replays were identical to each other but differ from the capture "
                            f"in {names}: the command is deterministic here; the cause lies outside it: {where}")

    def _experiment(self, name: str, changed: str, adjust: Callable[[Path], Adjust] | None, runs: list[Run],
                    count: int) -> Experiment:
        exp = Experiment(name, changed)
        self.found.experiments.append(exp)
        try:
            with _hook_folder(self.scratch) as hook:
                for _ in range(count):
                    runs.append(self._replay(None if adjust is None else adjust(hook)))
        except ReplayError as exc:
            if exc.exit_code in (129, 130, 143):
                raise
            exp.error = exc.one_line()
            return exp
        finally:
            exp.runs = [r.label for r in runs]
        exp.moved = _moved(runs[-2], runs[-1], self.prepared, self.hash_fixed)
        exp.agree = all(_evidence([x]).timing_only for x in exp.moved) if name != "again" else not exp.moved
        return exp

    def _replay(self, adjust: Adjust | None) -> Run:
        self.count += 1
        self.found.extra_replays += 1
        label = f"replay {self.count}"
        root = self.scratch / label.replace(" ", "-")
        root.mkdir()
        self.replayer.reporter.stage(f"investigating: {label}")
        self.replayer.replay_once(self.prepared, root, adjust)
        comparison = self.replayer.compare(self.prepared, root)
        return Run(label, root.resolve(),
                   {o.path: (o.replayed_sha256, o.replayed_size) for o in comparison.outputs if o.replayed_sha256},
                   {x.name: x.replayed for x in comparison.metrics if x.replayed is not None})


def _moved(a: Run, b: Run, prepared: Prepared, hash_fixed: bool) -> list[Moved]:
    """What differs between two replays, each output explained against the other replay's copy."""
    between = f"{a.label} / {b.label}"
    ref = [FileEntry(p, size or 0, sha or "") for p, (sha, size) in a.files.items()]
    new = [FileEntry(p, size or 0, sha or "") for p, (sha, size) in b.files.items()]
    outputs = [o for o in compare_outputs(ref, new, b.root, a.root, [], {}) if o.status != "identical"]
    metrics = [x for x in compare_metrics(a.metrics, b.metrics, {}) if x.status != "identical"]
    classes = {i.name: i.classes for i in collect_evidence(outputs, metrics, hash_seed_fixed=hash_fixed).items}
    moved = [Moved(o.path, between, o.explanation.summary() if o.explanation else str(o.status), classes.get(o.path, {}))
             for o in outputs]
    moved += [Moved(x.name, between, f"{x.reference!r} vs {x.replayed!r}", classes.get(x.name, {})) for x in metrics]
    return moved


def _evidence(moved: list[Moved]) -> NoiseEvidence:
    return NoiseEvidence([ItemNoise(x.name, dict(x.classes)) for x in moved])


def _shown(moved: list[Moved]) -> str:
    text = "; ".join(f"{x.name}: {x.detail}" for x in moved[:MOVED_SHOWN])
    return text + (f"; +{len(moved) - MOVED_SHOWN} more" if len(moved) > MOVED_SHOWN else "")


# --- the changes -----------------------------------------------------------------------------------------


def _env(**changes: str) -> Callable[[Path], Adjust]:
    return lambda hook: lambda spec: replace(spec, env={**spec.env, **changes})


def _seeded(hook: Path) -> Adjust:
    def adjust(spec: RunSpec) -> RunSpec:
        path = ":".join(p for p in (HOOK_TARGET, spec.env.get("PYTHONPATH", "")) if p)
        env = {**spec.env, seeding.AUTO_SEED_ENV: "1", "PYTHONHASHSEED": spec.env.get("PYTHONHASHSEED", FIXED_SEED),
               seeding.SEED_ENV: spec.env.get(seeding.SEED_ENV, FIXED_SEED), "PYTHONPATH": path}
        return replace(spec, env=env, mounts=[*spec.mounts, Mount(str(hook), HOOK_TARGET)])

    return adjust


def _one_cpu(hook: Path) -> Adjust:
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1

    def adjust(spec: RunSpec) -> RunSpec:
        env = {**spec.env, **{name: "1" for name in THREAD_VARS}}
        if usable > 1 and spec.cpuset is None:
            return replace(spec, env=env, cpuset="0", limits=replace(spec.limits, cpus=1.0))
        return replace(spec, env=env)

    return adjust


_ADJUST: dict[str, Callable[[Path], Adjust]] = {"hash_seed": _env(PYTHONHASHSEED=FIXED_SEED), "seed": _seeded,
                                                "threads": _one_cpu}
_CHANGES = {
    "hash_seed": f"PYTHONHASHSEED={FIXED_SEED} (the hash seed alone)",
    "seed": f"a fixed seed through the --auto-seed start-up hook (REPLAY_SEED={FIXED_SEED}) and PYTHONHASHSEED="
            f"{FIXED_SEED}",
    "threads": "one CPU and every thread count at 1 (" + ", ".join(THREAD_VARS[:2]) + ", ...)",
}
_CONFIRMED = {
    "hash_seed": "with PYTHONHASHSEED fixed, 2 replays were identical; without it they differed ({moved}): set/dict "
                 "order follows Python's hash randomization; capture with --seed (it sets PYTHONHASHSEED) or "
                 "--env PYTHONHASHSEED=0, or sort what is printed",
    "seed": "with a fixed seed (the --auto-seed start-up hook and PYTHONHASHSEED), 2 replays were identical; "
            "without it they differed ({moved}): a seed fixes it; capture with --seed N and read REPLAY_SEED in "
            "the script, or capture with --run --auto-seed",
    "threads": "on one CPU with every thread count at 1, 2 replays were identical; otherwise they differed "
               "({moved}): thread scheduling or parallel reductions (the order partial results are added in); "
               "pin the thread counts (--env OMP_NUM_THREADS=1) or make the reduction's order fixed",
}

@contextmanager
def _hook_folder(scratch: Path) -> Iterator[Path]:
    """A folder the container's user can read: the seeding module and a ``sitecustomize`` that calls it."""
    folder = Path(tempfile.mkdtemp(prefix="hook-", dir=scratch))
    folder.chmod(0o755)
    for name, data in (("sitecustomize.py", (templates_dir() / "seeding" / "sitecustomize.py").read_bytes()),
                       ("_replay_seeding.py", Path(seeding.__file__).read_bytes())):
        (folder / name).write_bytes(data)
        (folder / name).chmod(0o644)
    yield folder
