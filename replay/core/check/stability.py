"""Whether outputs and metrics stay the same over repeated runs, and, where not, how far they spread and
what tolerance or ignore would settle them. Pure functions over what the runs produced.

A run here is a label, the folder its outputs are in, and each output's sha256 and each metric's value;
the capture's own outputs (the capsule's ``reference/``) can be one of them.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from replay.core.verify.explain import explain
from replay.core.verify.explanation import ArrayExplanation, TextExplanation
from replay.core.verify.numtext import ceil_1, suggest_tolerance

STABLE = "stable"
UNSTABLE = "unstable"  # the replays differ among themselves
DIFFERS_FROM_CAPTURE = "differs_from_capture"  # the replays agree, but not with the captured run


@dataclass
class RunOutputs:
    label: str  # "capture", "run 1", ...
    root: Path | None  # where its files are (None: hashes only)
    files: dict[str, str | None]  # path -> sha256, None where the run did not write it
    metrics: dict[str, float | None]


@dataclass
class Suggestion:
    """An option that would have made every run compared here verify; a suggestion, not a diagnosis."""

    option: str  # "--tolerance" or "--ignore"
    value: str  # e.g. "out/stdout.txt=rel:0.5" or "out/run.log"
    reason: str

    @property
    def argument(self) -> str:
        return f"{self.option} {self.value}"

    def to_dict(self) -> dict[str, Any]:
        return {"option": self.option, "value": self.value, "argument": self.argument, "reason": self.reason,
                "suggestion": True}


@dataclass
class OutputStability:
    path: str
    status: str  # stable | unstable | differs_from_capture
    distinct: int  # how many different contents the runs produced
    differing_runs: list[str] = field(default_factory=list)  # runs whose file differs from the first run's
    kind: str | None = None
    max_abs: float | None = None
    max_rel: float | None = None
    classes: dict[str, int] = field(default_factory=dict)  # noise class -> most lines seen in one pair
    suggestion: Suggestion | None = None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["suggestion"] = self.suggestion.to_dict() if self.suggestion else None
        return out


@dataclass
class MetricStability:
    name: str
    status: str
    values: dict[str, float | None]  # run label -> value
    min: float | None = None
    max: float | None = None
    largest_diff: float | None = None
    suggestion: Suggestion | None = None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["suggestion"] = self.suggestion.to_dict() if self.suggestion else None
        return out


def output_stability(runs: list[RunOutputs], metrics_files: list[str], reference_first: bool) -> list[OutputStability]:
    """Each output path across ``runs``; ``reference_first`` says that ``runs[0]`` is the captured run."""
    paths = sorted({p for r in runs for p in r.files})
    return [_one_output(path, runs, path in metrics_files, reference_first) for path in paths]


def _one_output(path: str, runs: list[RunOutputs], is_metrics: bool, reference_first: bool) -> OutputStability:
    shas = [r.files.get(path) for r in runs]
    distinct = len(set(shas))
    base = runs[0]
    result = OutputStability(path, STABLE, distinct, [r.label for r, s in zip(runs, shas, strict=False) if s != shas[0]])
    if distinct == 1:
        return result
    replays = shas[1:] if reference_first else shas
    result.status = DIFFERS_FROM_CAPTURE if reference_first and len(set(replays)) == 1 else UNSTABLE
    if is_metrics:
        result.kind = "metrics"
        return result  # settled by its metrics' tolerances, which the metric rows suggest
    pairs = [(base, r) for r, s in zip(runs, shas, strict=False) if s != shas[0]]
    structure_equal, arrays, numeric = True, True, False
    max_abs_zero: float | None = None
    for a, b in pairs:
        if a.root is None or b.root is None or shas[0] is None or b.files.get(path) is None:
            structure_equal = arrays = False
            continue
        expl = explain(a.root / path, b.root / path, None)
        result.kind = result.kind or expl.kind
        num = expl.numeric if isinstance(expl, TextExplanation) else None
        if num is not None:
            numeric = True
            structure_equal = structure_equal and num.structure_equal and num.complete
            result.max_abs = _max(result.max_abs, num.max_abs_move)
            result.max_rel = _max(result.max_rel, num.max_rel_move)
            max_abs_zero = _max(max_abs_zero, num.max_abs_from_zero)
            for cls, n in sorted(num.class_lines.items()):
                result.classes[cls] = max(result.classes.get(cls, 0), n)
            arrays = False
        elif (isinstance(expl, ArrayExplanation) and expl.arrays
              and all(x.shape == x.replayed_shape for x in expl.arrays)):
            for x in expl.arrays:
                result.max_abs = _max(result.max_abs, x.max_abs_diff)
                result.max_rel = _max(result.max_rel, x.max_rel_diff)
            structure_equal = False
        else:
            structure_equal = arrays = False
    result.suggestion = _suggest_output(path, result, numeric and structure_equal, arrays, max_abs_zero)
    return result


def _suggest_output(path: str, result: OutputStability, numbers_only: bool, arrays: bool,
                    max_abs_zero: float | None) -> Suggestion:
    if numbers_only and (spec := suggest_tolerance(result.max_rel, max_abs_zero)):
        return Suggestion("--tolerance", f"{path}={spec}",
                          "only numbers moved, every other character is the same: a numeric text tolerance")
    if arrays and result.max_abs is not None and math.isfinite(result.max_abs):
        return Suggestion("--tolerance", f"{path}=abs:{ceil_1(result.max_abs)}",
                          "the arrays keep their shapes; their values moved this far")
    return Suggestion("--ignore", path, "more than numbers differ between runs")


def metric_stability(runs: list[RunOutputs]) -> list[MetricStability]:
    names = sorted({n for r in runs for n in r.metrics})
    out = []
    for name in names:
        values = {r.label: r.metrics.get(name) for r in runs}
        present = [v for v in values.values() if v is not None]
        same = len(present) == len(values) and all(_same(v, present[0]) for v in present)
        row = MetricStability(name, STABLE if same else UNSTABLE, values)
        finite = [v for v in present if math.isfinite(v)]
        if finite:
            row.min, row.max = min(finite), max(finite)
            row.largest_diff = row.max - row.min
        # Missing or not finite in some run: no tolerance allows that, so nothing is suggested.
        if not same and len(finite) == len(values) and row.largest_diff:
            row.suggestion = Suggestion("--tolerance", f"{name}=abs:{ceil_1(row.largest_diff)}",
                                        f"its values spread over {row.largest_diff:.3g}")
        out.append(row)
    return out


def _same(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


def _max(current: float | None, value: Any) -> float | None:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or math.isnan(value):
        return current
    return float(value) if current is None or value > current else current
