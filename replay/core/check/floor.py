"""`replay check`: the noise floor of a capsule. Replays it N times in fresh containers (one image check and
one data check first, through verify's own stages), and says per output and per metric whether the runs
agree; with ``--vary``, one extra run per variation, compared with the first run, names what each changed.

The capture's own outputs count as a run (labelled "capture") when the capsule keeps its references, so
``--runs 2`` compares three runs: the captured one and two replays.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from replay import __version__
from replay.core.check import vary
from replay.core.check.stability import (
    STABLE,
    MetricStability,
    OutputStability,
    RunOutputs,
    metric_stability,
    output_stability,
)
from replay.core.events import NullReporter, Reporter, Stopwatch
from replay.core.ports import Engine, RunResult, RunSpec
from replay.core.verify.options import ReplayOptions
from replay.core.verify.pipeline import Capsule, Comparison, EnsureImage, Prepared, Replayer, output_folder
from replay.errors import EXIT_DIVERGED, EXIT_OK, BadInput, ReplayError
from replay.manifest import REFERENCE_DIR, Stability

SCHEMA = "replay.check-report"
SCHEMA_VERSION = 1
MAX_RUNS = 100


@dataclass
class CheckRequest:
    target: Path
    options: ReplayOptions
    runs: int = 2
    vary: list[str] = field(default_factory=list)  # names from replay.core.check.vary.NAMES
    ensure_image: EnsureImage | None = None
    include_capture: bool = True  # the capture's own outputs count as a run
    check_data: bool = True


@dataclass
class RunInfo:
    label: str
    verdict: str  # against the capsule's references, under its policy
    duration_s: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class VariationResult:
    name: str
    applied: str
    note: str = ""
    changed_outputs: list[str] = field(default_factory=list)  # differ from the control run (run 1)
    changed_metrics: list[str] = field(default_factory=list)
    # Of those, the ones that also differ between ordinary runs: this variation is not shown to be the cause.
    also_unstable: list[str] = field(default_factory=list)
    error: str | None = None  # the command failed under this variation

    @property
    def caused(self) -> list[str]:
        """What this variation alone changed: stable over ordinary runs, different under it."""
        return [n for n in [*self.changed_outputs, *self.changed_metrics] if n not in self.also_unstable]

    @property
    def sensitive(self) -> bool:
        return bool(self.caused) or self.error is not None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"caused": self.caused, "sensitive": self.sensitive}


@dataclass(kw_only=True)
class CheckReport:
    schema: str = SCHEMA
    schema_version: int = SCHEMA_VERSION
    capsule: str
    capsule_path: str
    image_id: str
    replays: int  # container runs compared (not counting variations)
    compared: list[str]  # labels of every run compared, the capture's first when it counts
    stable: bool
    exit_code: int
    runs: list[RunInfo] = field(default_factory=list)
    outputs: list[OutputStability] = field(default_factory=list)
    metrics: list[MetricStability] = field(default_factory=list)
    variations: list[VariationResult] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    # Limits the engine could not enforce on some run (rootless Podman on cgroup v1): said, never hidden.
    unenforced: list[str] = field(default_factory=list)
    replay_version: str = __version__

    def to_dict(self) -> dict[str, Any]:
        plain = {k: getattr(self, k) for k in self.__dataclass_fields__}
        for key in ("runs", "outputs", "metrics", "variations"):
            plain[key] = [item.to_dict() for item in plain[key]]
        return _finite(plain)

    def stability(self) -> Stability:
        """What `capture --runs` records in the manifest."""
        return Stability(runs=len(self.compared),
                         unstable_outputs=[o.path for o in self.outputs if o.status != STABLE],
                         unstable_metrics=[m.name for m in self.metrics if m.status != STABLE])


def check(req: CheckRequest, engine: Engine, reporter: Reporter | None = None,
          capsule: Capsule | None = None) -> CheckReport:
    """Replay ``req.runs`` times (and once per variation) and report what is stable."""
    reporter = reporter or NullReporter()
    if not 1 <= req.runs <= MAX_RUNS:
        raise BadInput(f"--runs {req.runs} is out of range", f"pass 1 to {MAX_RUNS}")
    names = vary.parse(req.vary)
    watch = Stopwatch()
    replayer = Replayer(engine, req.options, reporter)
    prepared = replayer.open(req.target, capsule)
    m = prepared.manifest
    replayer.check_image(m, req.ensure_image)
    if req.check_data:
        replayer.check_data(m)
    watch.lap("checks")
    with ExitStack() as stack:
        runs: list[RunOutputs] = []
        infos: list[RunInfo] = []
        control: list[RunSpec] = []
        unenforced: list[str] = []
        reference = prepared.capsule.path / REFERENCE_DIR
        counted = req.include_capture and m.outputs.reference_dir is not None and reference.is_dir()
        if counted:
            runs.append(RunOutputs("capture", reference, {f.path: f.sha256 for f in m.outputs.files},
                                   dict(m.outputs.metrics)))
        for i in range(1, req.runs + 1):
            out_root = stack.enter_context(output_folder(None))
            keep = _recorder(control) if i == 1 else None
            comparison, result = _one_run(replayer, prepared, out_root, f"run {i} of {req.runs}", keep)
            runs.append(_outputs_of(f"run {i}", out_root, comparison))
            infos.append(RunInfo(f"run {i}", comparison.verdict, round(result.duration_s, 3)))
            unenforced.extend(n for n in result.unenforced if n not in unenforced)
        watch.lap("runs")
        outputs = output_stability(runs, m.outputs.metrics_files, reference_first=counted)
        metrics = metric_stability(runs)
        unstable = {o.path for o in outputs if o.status != STABLE} | {x.name for x in metrics if x.status != STABLE}
        variations = []
        if names:
            probe = _prober(engine, m.image.id)
            first = runs[1] if counted else runs[0]
            for variation in vary.plan(names, control[0], probe):
                out_root = stack.enter_context(output_folder(None))
                variations.append(_vary_run(replayer, prepared, out_root, variation, first, unstable, unenforced))
            watch.lap("variations")
    stable = not unstable and not any(v.sensitive for v in variations)
    return CheckReport(capsule=m.name, capsule_path=str(prepared.capsule.path), image_id=m.image.id,
                       replays=req.runs, compared=[r.label for r in runs], stable=stable,
                       exit_code=EXIT_OK if stable else EXIT_DIVERGED, runs=infos, outputs=outputs, metrics=metrics,
                       variations=variations, timings=watch.timings, unenforced=unenforced)


def _one_run(replayer: Replayer, prepared: Prepared, out_root: Path, label: str,
             adjust: Callable[[RunSpec], RunSpec] | None = None) -> tuple[Comparison, RunResult]:
    replayer.reporter.stage(f"replay {label}")
    result = replayer.replay_once(prepared, out_root, adjust)
    return replayer.compare(prepared, out_root), result


def _recorder(into: list[RunSpec]) -> Callable[[RunSpec], RunSpec]:
    """A spec adjuster that changes nothing and keeps the spec: the control run, for the variations."""
    def keep(spec: RunSpec) -> RunSpec:
        into.append(spec)
        return spec

    return keep


def _outputs_of(label: str, root: Path, comparison: Comparison) -> RunOutputs:
    files = {o.path: o.replayed_sha256 for o in comparison.outputs}
    metrics = {x.name: x.replayed for x in comparison.metrics}
    return RunOutputs(label, root, files, metrics)


def _vary_run(replayer: Replayer, prepared: Prepared, out_root: Path, variation: vary.Variation,
              control: RunOutputs, unstable: set[str], unenforced: list[str]) -> VariationResult:
    """One run under ``variation``, compared with the control run; what the engine could not enforce of it is
    added to its note and to ``unenforced``."""
    result = VariationResult(variation.name, variation.applied, variation.note)
    try:
        comparison, run = _one_run(replayer, prepared, out_root, f"with --vary {variation.name}", variation.adjust)
    except ReplayError as exc:
        if exc.exit_code == 130:
            raise
        result.error = exc.one_line()
        return result
    unenforced.extend(n for n in run.unenforced if n not in unenforced)
    result.note = "; ".join(n for n in (result.note, vary.shortfall(variation, run.unenforced)) if n)
    varied = _outputs_of(variation.name, out_root, comparison)
    result.changed_outputs = sorted(p for p in control.files.keys() | varied.files.keys()
                                    if control.files.get(p) != varied.files.get(p))
    result.changed_metrics = sorted(n for n in control.metrics.keys() | varied.metrics.keys()
                                    if not _same(control.metrics.get(n), varied.metrics.get(n)))
    result.also_unstable = [n for n in [*result.changed_outputs, *result.changed_metrics] if n in unstable]
    return result


def _prober(engine: Engine, image: str) -> vary.Probe:
    def probe(argv: list[str]) -> str | None:
        try:
            return engine.probe(image, argv)
        except ReplayError:
            return None

    return probe


def _same(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return a == b or (math.isnan(a) and math.isnan(b))


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value
