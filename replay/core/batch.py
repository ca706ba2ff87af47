"""Run a batch plan: check each distinct image and data set once, then replay each experiment once.

Order: capsules that could not be read get their error report; each image group is checked (a bundle's
image loaded first), then each data set (through one stat cache); then every experiment still standing is a
``run_task`` payload handed to the backend, with ``checks`` off since they were just done here. The loop
polls the handles and tells the caller what changed (``observe``); one capsule's failure never stops the
others, ``fail_fast`` stops at the first divergence, and Ctrl-C (KeyboardInterrupt in this, the main thread)
cancels every task, waits for the workers (each removes its container) and raises ``Interrupted``.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from replay.core.batch_task import GroupTask, VerifyOptions
from replay.core.events import NullReporter
from replay.core.plan import Plan, PlannedCapsule
from replay.core.ports import Backend, Engine, JobHandle, JobState, TaskSpec
from replay.core.report import VerifyReport
from replay.core.statcache import StatCache
from replay.core.verify import VerifyRequest, check_image, check_inputs, error_report
from replay.errors import EnvironmentProblem, Interrupted, ReplayError


@dataclass
class BatchOptions:
    cwd: Path
    tolerances: dict[str, str] = field(default_factory=dict)
    ignore: list[str] = field(default_factory=list)
    timeout_s: float | None = None
    cpus: float | None = None
    memory_bytes: int | None = None
    fail_fast: bool = False
    poll_s: float = 0.2


class Phase(enum.StrEnum):
    QUEUED = "queued"
    CHECKING = "checking"
    RUNNING = "running"
    DONE = "done"
    NOT_RUN = "not run"  # stopped by --fail-fast or Ctrl-C before its replay


@dataclass
class ExperimentRow:
    """One experiment's live state, for the progress table."""

    id: str
    label: str
    capsules: list[str]
    phase: Phase = Phase.QUEUED
    started: float | None = None
    finished: float | None = None
    verdicts: list[str] = field(default_factory=list)

    @property
    def elapsed_s(self) -> float:
        if self.started is None:
            return 0.0
        return (self.finished or time.monotonic()) - self.started


@dataclass
class BatchResult:
    plan: Plan
    reports: dict[int, VerifyReport]  # by capsule index; missing: not run (fail-fast)
    rows: list[ExperimentRow]
    images_checked: int = 0
    data_sets_checked: int = 0
    replays_run: int = 0
    stopped_early: bool = False  # --fail-fast cut it short
    timings: dict[str, float] = field(default_factory=dict)


Observer = Callable[[list[ExperimentRow]], None]


def run_batch(plan: Plan, options: BatchOptions, engine: Engine, backend: Backend,
              observe: Observer | None = None) -> BatchResult:
    observe = observe or (lambda rows: None)
    rows = [ExperimentRow(e.id, e.label, [plan.capsules[i].name for i in e.members]) for e in plan.experiments]
    result = BatchResult(plan, {}, rows)
    for c in plan.unreadable:
        assert c.error is not None
        result.reports[c.index] = error_report(c.path, c.error)
    t0 = time.perf_counter()
    try:
        for row in rows:
            row.phase = Phase.CHECKING
        observe(rows)
        _check_images(plan, engine, result)
        t1 = time.perf_counter()
        _check_data(plan, options, result)
        t2 = time.perf_counter()
        _replay(plan, options, backend, result, observe)
        t3 = time.perf_counter()
    except KeyboardInterrupt:
        backend.close()  # cancels every task and waits: each worker removes its container
        raise Interrupted() from None
    finally:
        backend.close()
    result.timings = {"images": round(t1 - t0, 4), "data": round(t2 - t1, 4), "replays": round(t3 - t2, 4),
                      "total": round(t3 - t0, 4)}
    observe(rows)
    return result


def _check_images(plan: Plan, engine: Engine, result: BatchResult) -> None:
    """Each environment image once; each member's capsule image by ID (an inspect) and its tag."""
    checked: dict[str, ReplayError | None] = {}
    for group in plan.images:
        for index in group.members:
            capsule = plan.capsules[index]
            m = capsule.manifest
            assert m is not None
            if m.image.id not in checked:
                checked[m.image.id] = _check_one_image(engine, capsule)
            problem = checked[m.image.id]
            if problem is not None:
                result.reports[index] = error_report(capsule.path, problem)
        result.images_checked += 1


def _check_one_image(engine: Engine, capsule: PlannedCapsule) -> ReplayError | None:
    assert capsule.manifest is not None
    try:
        if capsule.ensure_image is not None and engine.image(capsule.manifest.image.id) is None:
            capsule.ensure_image(engine)
        check_image(engine, capsule.manifest)
    except ReplayError as exc:
        return exc
    return None


def _check_data(plan: Plan, options: BatchOptions, result: BatchResult) -> None:
    """Each data set once, from its first member still standing; a mismatch is every member's."""
    with StatCache() as cache:
        for group in plan.data_sets:
            standing = [i for i in group.members if i not in result.reports]
            if not standing:
                continue
            leader = plan.capsules[standing[0]]
            assert leader.manifest is not None
            req = VerifyRequest(target=leader.path, cwd=options.cwd, data_map=dict(leader.data_map))
            try:
                check_inputs(leader.manifest, req, cache, NullReporter())
            except ReplayError as exc:
                for i in standing:
                    result.reports[i] = error_report(plan.capsules[i].path, exc)
            result.data_sets_checked += 1


def _replay(plan: Plan, options: BatchOptions, backend: Backend, result: BatchResult, observe: Observer) -> None:
    tasks: list[TaskSpec] = []
    members: dict[str, list[int]] = {}
    by_id = {row.id: row for row in result.rows}
    for experiment in plan.experiments:
        standing = [i for i in experiment.members if i not in result.reports]
        row = by_id[experiment.id]
        if not standing:
            row.phase = Phase.DONE
            row.verdicts = [_verdict(result.reports[i]) for i in experiment.members]
            continue
        leader = plan.capsules[standing[0]]
        opts = VerifyOptions(
            cwd=str(options.cwd), data_map={k: str(v) for k, v in leader.data_map.items()},
            tolerances=dict(options.tolerances), ignore=list(options.ignore), timeout_s=options.timeout_s,
            cpus=options.cpus, memory_bytes=options.memory_bytes, checks=False,
        )
        task = GroupTask(experiment.id, [str(plan.capsules[i].path) for i in standing], opts)
        tasks.append(TaskSpec(experiment.id, task.to_payload()))
        members[experiment.id] = standing
        row.phase = Phase.QUEUED
    observe(result.rows)
    handles = backend.submit(tasks, plan.jobs) if tasks else []
    pending: dict[str, JobHandle] = {h.id: h for h in handles}
    while pending:
        changed = False
        for task_id, handle in list(pending.items()):
            row = by_id[task_id]
            status = handle.status()
            if status.state is JobState.RUNNING and row.phase is not Phase.RUNNING:
                row.phase, row.started, changed = Phase.RUNNING, time.monotonic(), True
            if not status.state.final:
                continue
            del pending[task_id]
            changed = True
            row.finished = time.monotonic()
            diverged = _collect(handle, status.state, status.detail, members[task_id], plan, result, row)
            if diverged and options.fail_fast:
                result.stopped_early = True
                for other in pending.values():
                    other.cancel()
        observe(result.rows)
        if pending and not changed:
            time.sleep(options.poll_s)


def _collect(handle: JobHandle, state: JobState, detail: str, indices: list[int], plan: Plan,
             result: BatchResult, row: ExperimentRow) -> bool:
    """File a finished task's reports under its capsules; True when one of them diverged."""
    raw = handle.result() if state is JobState.DONE else None
    if raw is None:
        if state is JobState.CANCELLED:
            row.phase = Phase.NOT_RUN
            return False
        problem = EnvironmentProblem(f"the batch task {handle.id} ended {state.value}" + (f" ({detail})" if detail
                                     else ""), "rerun the batch (--verbose shows more)")
        for i in indices:
            result.reports[i] = error_report(plan.capsules[i].path, problem)
    else:
        reports = [VerifyReport.from_dict(r, f"task {handle.id}") for r in raw.get("reports", [])]
        if any(r.run for r in reports):
            result.replays_run += 1
        for i, report in zip(indices, reports, strict=False):
            if report.exit_code == Interrupted.exit_code:
                continue  # cancelled mid-run: not run
            result.reports[i] = report
    done = [result.reports[i] for i in indices if i in result.reports]
    row.verdicts = [_verdict(r) for r in done]
    row.phase = Phase.DONE if len(done) == len(indices) else Phase.NOT_RUN
    return any(r.verdict == "diverged" for r in done)


def _verdict(report: VerifyReport) -> str:
    from replay.core.batch_report import outcome_of

    return outcome_of(report).value
