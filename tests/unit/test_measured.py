"""The noise measured at capture as policy: accepted only when everything that diverged varied at capture
and is noise now; never a value of another class; --strict off the table here (the pipeline skips it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from replay.core.verify.compare import MetricResult, OutputResult
from replay.core.verify.measured import accept_measured_noise, accepted_finding
from replay.core.verify.noise import collect_evidence
from replay.core.verify.options import ReplayOptions


@dataclass
class Comparison:
    outputs: list[OutputResult] = field(default_factory=list)
    metrics: list[MetricResult] = field(default_factory=list)
    verdict: str = "diverged"


def _timing_metric() -> MetricResult:
    return MetricResult("train_seconds", 3.0, 3.4, 0.4, 0.13, "exact", "diverged")  # type: ignore[arg-type]


def _other_metric() -> MetricResult:
    return MetricResult("accuracy", 0.9, 0.8, 0.1, 0.11, "exact", "diverged")  # type: ignore[arg-type]


def test_a_duration_that_varied_at_capture_is_accepted() -> None:
    comparison = Comparison(metrics=[_timing_metric()])
    evidence = collect_evidence([], comparison.metrics, unstable_metrics=["train_seconds"], capture_runs=4)

    accepted = accept_measured_noise(comparison, evidence)

    assert accepted == ["metric train_seconds (timing-like numbers)"] and comparison.verdict == "equivalent"
    assert comparison.metrics[0].status == "within_tolerance"
    assert comparison.metrics[0].tolerance == "noise measured at capture (4 runs)"
    assert "(4 runs): accepted metric train_seconds" in accepted_finding(accepted, 4).message


def test_nothing_is_accepted_beside_a_real_change_or_a_value_that_did_not_vary() -> None:
    comparison = Comparison(metrics=[_timing_metric(), _other_metric()])
    evidence = collect_evidence([], comparison.metrics, unstable_metrics=["train_seconds", "accuracy"], capture_runs=3)
    assert accept_measured_noise(comparison, evidence) == [] and comparison.verdict == "diverged"

    alone = Comparison(metrics=[_timing_metric()])
    assert accept_measured_noise(alone, collect_evidence([], alone.metrics, capture_runs=3)) == []


def test_strict_travels_in_a_task_payload_only_when_on() -> None:
    off = ReplayOptions(cwd=Path("/w"))
    assert "strict" not in off.to_payload()
    on = ReplayOptions(cwd=Path("/w"), strict=True)
    assert ReplayOptions.from_payload(on.to_payload()).strict is True
    assert ReplayOptions.from_payload(off.to_payload()).strict is False
