"""The batch report: a reproducibility rate over many capsules, as a versioned JSON contract.

Top-level keys of ``BatchReport.to_dict()``, always all present, in this order:

``schema``          "replay.batch-report".
``schema_version``  1. New optional keys inside nested objects do not bump it; renamed or removed keys do.
``exit_code``       what ``replay verify`` exits with: 0 every capsule reproduced (identical or equivalent);
                    1 any diverged; otherwise the highest-priority failure: 4 (a command failed), then 3
                    (environment: image missing), then 2 (could not verify: bad manifest, changed data).
``rate``            reproduced (identical + equivalent) / capsules, 0..1 (0 for an empty batch).
``counts``          {outcome: {"count": n, "percent": p}} for every outcome, in the order of ``OUTCOMES``:
                    identical, equivalent, diverged, command_failed, could_not_verify, not_run.
``groups``          {"image": [...], "data": [...], "commit": [...]}: per group {"id", "label", "capsules"
                    (count), "reproduced", "rate", "counts" ({outcome: n})}.
``plan``            {"capsules", "images", "images_checked", "data_sets", "data_sets_checked",
                    "experiments", "replays_run", "jobs", "stopped_early", "backend"}: the work the plan
                    saved, and where it ran ("local", "slurm"; with a remote backend the nodes check the
                    images, so "images_checked" counts the image groups sent to them).
``capsules``        one object per capsule in target order: "name", "path", "source", "experiment", "image",
                    "data", "commit", "outcome", "verdict", "exit_code", "explanation" (why it is not
                    reproduced, one paragraph; "" when it is), "error" (or null), "node" (where it was
                    replayed, or where the backend ended its task; "" when not run), "report" (its
                    ``replay.verify-report``, or null when not run).
``timings``         seconds: images, data, replays, total; and first, when images were brought in, "pull"
                    (registry references, while resolving) and "load" (bundles' images, out of "images").
``replay_version``  the replay that wrote it.
``created``         when the batch finished, ISO 8601 in UTC ("2026-12-04T22:31:07Z").
``project``         the folder the batch ran from: the project root (git top level), or "" when not known.

Each capsule object also has "image_id" (its own image, as ``replay verify`` prints it; "" when its manifest
could not be read) and "captured" (the manifest's "created": when capture ran; "" likewise).

Strings come from capsules (untrusted): renderers escape them (jinja2 autoescape for HTML, XML escaping for
JUnit, table-cell escaping for Markdown).
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from replay import __version__, jsonio
from replay.core.verify.compare import Verdict
from replay.core.verify.report import VerifyReport
from replay.errors import EXIT_BAD_INPUT, EXIT_COMMAND_FAILED, EXIT_DIVERGED, EXIT_ENVIRONMENT, EXIT_OK

SCHEMA = "replay.batch-report"
SCHEMA_VERSION = 1


class Outcome(enum.StrEnum):
    IDENTICAL = "identical"
    EQUIVALENT = "equivalent"
    DIVERGED = "diverged"
    COMMAND_FAILED = "command_failed"
    COULD_NOT_VERIFY = "could_not_verify"
    NOT_RUN = "not_run"

    @property
    def reproduced(self) -> bool:
        return self in (Outcome.IDENTICAL, Outcome.EQUIVALENT)

    @property
    def label(self) -> str:
        return self.value.replace("_", " ")


OUTCOMES = list(Outcome)
# The exit code a batch takes when nothing diverged: the first of these any capsule has.
FAILURE_PRIORITY = (EXIT_COMMAND_FAILED, EXIT_ENVIRONMENT, EXIT_BAD_INPUT)


def outcome_of(report: VerifyReport | None) -> Outcome:
    if report is None:
        return Outcome.NOT_RUN
    if report.verdict is not Verdict.ERROR:
        return Outcome(report.verdict)
    if report.exit_code == EXIT_COMMAND_FAILED:
        return Outcome.COMMAND_FAILED
    return Outcome.COULD_NOT_VERIFY


def batch_exit_code(reports: list[VerifyReport | None]) -> int:
    """0 all reproduced; 1 any diverged; else 4, 3, 2 in that order of priority (``FAILURE_PRIORITY``)."""
    outcomes = [outcome_of(r) for r in reports]
    if any(o is Outcome.DIVERGED for o in outcomes):
        return EXIT_DIVERGED
    codes = {r.exit_code for r in reports if r is not None and outcome_of(r) is not Outcome.DIVERGED}
    codes |= {EXIT_BAD_INPUT for r in reports if r is None}  # not run without a divergence: not verified
    for code in FAILURE_PRIORITY:
        if code in codes:
            return code
    return EXIT_OK if all(o.reproduced for o in outcomes) else EXIT_BAD_INPUT


def explanation(report: VerifyReport | None) -> str:
    """Why a capsule is not reproduced, in one paragraph ("" when it is)."""
    if report is None:
        return "not run: the batch stopped first (--fail-fast or interrupted)"
    if report.verdict.reproduced:
        return ""
    if report.verdict != "diverged":
        return report.error or "no verdict"
    parts = []
    for o in report.outputs:
        if not o.settled:
            parts.append(f"{o.path}: {o.explanation.summary() if o.explanation else o.status}")
    for m in report.metrics:
        if not m.status.settled:
            parts.append(f"metric {m.name}: {m.reference} -> {m.replayed} ({m.status}, tolerance {m.tolerance})")
    likely = [f.message for f in report.diagnosis if f.likely]
    if likely:
        parts.append("likely cause: " + "; ".join(likely))
    return "; ".join(parts) or "diverged"


@dataclass
class CapsuleLine:
    name: str
    path: str
    source: str
    experiment: str
    image: str
    data: str
    commit: str
    outcome: Outcome
    verdict: str
    exit_code: int | None
    explanation: str
    error: str | None
    report: VerifyReport | None
    node: str = ""
    image_id: str = ""  # the capsule's own image (the group in ``image`` is its environment image)
    captured: str = ""  # when capture ran (the manifest's "created")

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "path": self.path, "source": self.source, "experiment": self.experiment,
                "image": self.image, "data": self.data, "commit": self.commit, "outcome": self.outcome.value,
                "verdict": self.verdict, "exit_code": self.exit_code, "explanation": self.explanation,
                "error": self.error, "node": self.node, "image_id": self.image_id, "captured": self.captured,
                "report": self.report.to_dict() if self.report else None}


@dataclass
class GroupLine:
    id: str
    label: str
    counts: dict[Outcome, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def reproduced(self) -> int:
        return sum(n for o, n in self.counts.items() if o.reproduced)

    @property
    def rate(self) -> float:
        return self.reproduced / self.total if self.total else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "label": self.label, "capsules": self.total, "reproduced": self.reproduced,
                "rate": round(self.rate, 4), "counts": {o.value: self.counts.get(o, 0) for o in OUTCOMES}}


@dataclass
class PlanSummary:
    """How much work the plan saved: checks and replays run for how many capsules, on which backend."""

    capsules: int
    images: int
    images_checked: int
    data_sets: int
    data_sets_checked: int
    experiments: int
    replays_run: int
    jobs: int
    stopped_early: bool
    backend: str = "local"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class BatchReport:
    capsules: list[CapsuleLine]
    groups: dict[str, list[GroupLine]]
    plan: PlanSummary
    timings: dict[str, float] = field(default_factory=dict)
    replay_version: str = __version__
    created: str = ""
    project: str = ""

    @property
    def counts(self) -> dict[Outcome, int]:
        return {o: sum(1 for c in self.capsules if c.outcome is o) for o in OUTCOMES}

    @property
    def reproduced(self) -> int:
        return sum(1 for c in self.capsules if c.outcome.reproduced)

    @property
    def rate(self) -> float:
        return self.reproduced / len(self.capsules) if self.capsules else 0.0

    @property
    def exit_code(self) -> int:
        return batch_exit_code([c.report for c in self.capsules])

    def percent(self, outcome: Outcome) -> float:
        return round(100.0 * self.counts[outcome] / len(self.capsules), 1) if self.capsules else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "schema_version": SCHEMA_VERSION,
            "exit_code": self.exit_code,
            "rate": round(self.rate, 4),
            "counts": {o.value: {"count": n, "percent": self.percent(o)} for o, n in self.counts.items()},
            "groups": {kind: [g.to_dict() for g in lines] for kind, lines in self.groups.items()},
            "plan": self.plan.to_dict(),
            "capsules": [c.to_dict() for c in self.capsules],
            "timings": dict(self.timings),
            "replay_version": self.replay_version,
            "created": self.created,
            "project": self.project,
        }

    def to_json(self) -> str:
        return jsonio.dumps(self.to_dict())


def build_batch_report(result: Any, *, project: str = "", created: datetime | None = None) -> BatchReport:
    """The report of a ``replay.core.batch.run.BatchResult`` run from ``project``, finished at ``created``
    (default: now)."""
    plan = result.plan
    lines = []
    for c in plan.capsules:
        report = result.reports.get(c.index)
        outcome = outcome_of(report)
        m = c.manifest
        lines.append(CapsuleLine(
            name=c.name, path=str(c.path), source=c.source, experiment=c.experiment, image=c.image_group,
            data=c.data_group, commit=_short(c.commit), outcome=outcome,
            verdict=report.verdict if report else "not run", exit_code=report.exit_code if report else None,
            explanation=explanation(report), error=report.error if report else None, report=report,
            node=(report.run.node or "") if report and report.run else "",
            image_id=(report.image_id if report and report.image_id else m.image.id if m else ""),
            captured=m.created if m else "",
        ))
    labels = {g.id: g.label for g in [*plan.images, *plan.data_sets]}
    groups = {
        "image": _groups(lines, lambda line: line.image, labels),
        "data": _groups(lines, lambda line: line.data, labels),
        "commit": _groups(lines, lambda line: line.commit, {}),
    }
    counts = plan.counts()
    summary_plan = PlanSummary(
        capsules=counts["capsules"], images=counts["images"], images_checked=result.images_checked,
        data_sets=counts["data_sets"], data_sets_checked=result.data_sets_checked,
        experiments=counts["experiments"], replays_run=result.replays_run, jobs=plan.jobs,
        stopped_early=result.stopped_early, backend=getattr(result, "backend", "local"),
    )
    when = (created or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    return BatchReport(lines, groups, summary_plan, dict(result.timings), created=when.strftime("%Y-%m-%dT%H:%M:%SZ"),
                       project=project)


def _groups(lines: list[CapsuleLine], key: Any, labels: dict[str, str]) -> list[GroupLine]:
    out: dict[str, GroupLine] = {}
    for line in lines:
        gid = key(line) or "-"
        group = out.setdefault(gid, GroupLine(gid, labels.get(gid, gid), {o: 0 for o in OUTCOMES}))
        group.counts[line.outcome] += 1
    return list(out.values())


def _short(commit: str) -> str:
    return commit.split(":")[-1][:12] if commit else ""
