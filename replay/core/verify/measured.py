"""The noise measured at capture, as policy: an output or metric that `capture --runs N` saw vary between
runs, and whose difference now is only noise (timings, timestamps, the lines a timing brings, addresses,
temporary paths, float rounding: never another value), is accepted, and the verdict says EQUIVALENT "within
the noise measured at capture (N runs)". ``verify --strict`` accepts nothing of the kind. A real change (a
value of class ``other``) is never accepted, however much the output varied at capture.
"""

from __future__ import annotations

from typing import Any

from replay.core.verify.compare import MetricStatus, OutputStatus, verdict
from replay.core.verify.diagnose import Finding
from replay.core.verify.noise import NoiseClass, NoiseEvidence


def accept_measured_noise(comparison: Any, evidence: NoiseEvidence) -> list[str]:
    """Settle, in ``comparison`` (a pipeline Comparison), what diverged only by noise measured at capture;
    return what was accepted, one description each. Nothing is accepted unless everything that diverged is."""
    if not evidence.items or not all(i.varied_at_capture and i.explained for i in evidence.items):
        return []
    label = f"noise measured at capture ({evidence.capture_runs} runs)"
    items = {i.name: i for i in evidence.items}
    accepted = []
    for out in comparison.outputs:
        if out.path in items and not items[out.path].is_metric:
            out.status, out.tolerance = OutputStatus.WITHIN_TOLERANCE, label
            accepted.append(f"{out.path} ({_labels(items[out.path].classes)})")
    for met in comparison.metrics:
        if met.name in items and items[met.name].is_metric:
            met.status, met.tolerance = MetricStatus.WITHIN_TOLERANCE, label
            accepted.append(f"metric {met.name} ({_labels(items[met.name].classes)})")
    comparison.verdict = verdict(comparison.outputs, comparison.metrics)
    return accepted


def accepted_finding(accepted: list[str], runs: int) -> Finding:
    return Finding("noise", f"within the noise measured at capture ({runs} runs): accepted {'; '.join(accepted)} "
                            "(--strict does not accept it)", False)


def _labels(classes: dict[str, int]) -> str:
    return ", ".join(NoiseClass(c).label for c in sorted(classes))
