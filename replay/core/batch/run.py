"""Run a batch plan: check each distinct image and data set once, then replay each experiment once.

The one batch path for every backend. Order: capsules that could not be read get their error report; each
image group is checked (a bundle's image loaded first), then each data set (through one stat cache); then
every experiment still standing is a ``run_task`` payload handed to the backend. The loop polls the handles
and tells the caller what changed (``observe``); one capsule's failure never stops the others, ``fail_fast``
stops at the first divergence, and Ctrl-C (KeyboardInterrupt in this, the main thread) cancels every task,
waits until none is left (each removes its container) and raises ``BatchCancelled`` (exit 130).

A remote backend (``Backend.remote``: Slurm) runs each task on a node with its own engine, and that engine
is the one that matters: the submitter checks no image (it needs no engine at all), each payload names where
the node may get the image (``ImageSources``: the bundle TARGET, the REF@sha256), and the node runs with
``checks`` on (image and data, on the node), on the engine the user chose when they chose one
(``BatchOptions.engine``), else on the one that answers there. The submitter still checks each data set once first: the data
must be at the same path on every node (a shared filesystem, as for the capsules), so a mismatch seen here is
one there, and is reported without using the cluster. Locally ``checks`` is off: just done here.

A task the backend did not run to its end (Slurm FAILED, CANCELLED, PREEMPTED, TIMEOUT...) is no verdict: each
of its capsules gets an error report that carries the backend's state and node in ``run`` and its message
("slurm task 12_3 TIMEOUT on node gpu7"); only a task this batch cancelled itself (``fail_fast``, Ctrl-C) is
"not run".
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from replay.core.batch.node import ImageSources
from replay.core.batch.plan import Plan, PlannedCapsule
from replay.core.batch.report import Outcome, outcome_of
from replay.core.batch.result import TaskResult
from replay.core.batch.task import GroupTask
from replay.core.data.statcache import StatCache
from replay.core.events import NullReporter, Reporter
from replay.core.ports import Backend, Engine, JobHandle, JobState, JobStatus, TaskSpec
from replay.core.verify.options import ReplayOptions
from replay.core.verify.pipeline import check_image, check_inputs, error_report
from replay.core.verify.report import RunOutcome, VerifyReport
from replay.errors import CommandFailed, EnvironmentProblem, Interrupted, ReplayError


class BatchCancelled(Interrupted):
    """Ctrl-C while the batch ran: every task still queued or running was cancelled, and none is left."""

    def __init__(self, what: str) -> None:
        ReplayError.__init__(self, f"interrupted: cancelled {what or 'the batch'}",
                             "nothing of it is left running; rerun to verify")


@dataclass
class BatchOptions:
    replay: ReplayOptions  # every capsule's (each capsule's own --data comes from its plan entry)
    fail_fast: bool = False
    poll_s: float = 0.2
    engine: str | None = None  # the engine the user chose; a remote backend's tasks carry it to their nodes


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
    verdicts: list[Outcome] = field(default_factory=list)  # one per capsule done
    node: str = ""  # where it runs or ran, as the backend says (a Slurm node, this host)
    backend_state: str = ""  # the backend's end for a task that did not run to its end ("timeout")
    detail: str = ""  # and its words for it ("slurm task 41_3 TIMEOUT on node gpu7 (TimeLimit)")

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
    backend: str = "local"  # the backend's name
    timings: dict[str, float] = field(default_factory=dict)


Observer = Callable[[list[ExperimentRow]], None]


def run_batch(plan: Plan, options: BatchOptions, engine: Engine | None, backend: Backend,
              observe: Observer | None = None, reporter: Reporter | None = None) -> BatchResult:
    """``engine`` checks the images here; None with a remote backend, whose nodes check them. ``reporter``
    hears the bytes of an image brought in (a bundle's, loaded)."""
    if engine is None and not backend.remote:
        raise ValueError("a local batch needs the engine that checks its images")
    observe = observe or (lambda rows: None)
    rows = [ExperimentRow(e.id, e.label, [plan.capsules[i].name for i in e.members]) for e in plan.experiments]
    result = BatchResult(plan, {}, rows, backend=backend.name)
    for c in plan.unreadable:
        assert c.error is not None
        result.reports[c.index] = error_report(c.path, c.error)
    t0 = time.perf_counter()
    try:
        for row in rows:
            row.phase = Phase.CHECKING
        observe(rows)
        if engine is not None and not backend.remote:
            _check_images(plan, engine, result, reporter or NullReporter())
        t1 = time.perf_counter()
        _check_data(plan, options, result)
        t2 = time.perf_counter()
        _replay(plan, options, backend, result, observe)
        t3 = time.perf_counter()
    except KeyboardInterrupt:
        what = backend.describe()
        try:
            backend.close()  # cancels every task and waits until none is left: each removes its container
        except KeyboardInterrupt:
            backend.close()  # a second Ctrl-C while cancelling must not leave the tasks behind
        raise BatchCancelled(what) from None
    finally:
        backend.close()
    result.timings = _timings(plan, result.timings, t0, t1, t2, t3)
    observe(rows)
    return result


def _timings(plan: Plan, fetched: dict[str, float], t0: float, t1: float, t2: float, t3: float) -> dict[str, float]:
    """Seconds per phase; images pulled while resolving ("pull") and loaded while checking ("load", out of
    "images") are steps of their own, and count in the total."""
    pulled = sum(c.timings.get("pull", 0.0) for c in plan.capsules)
    steps = {"pull": pulled} if pulled else {}
    steps.update(fetched)
    fetching = sum(fetched.values())
    return {**{k: round(v, 4) for k, v in steps.items()}, "images": round(t1 - t0 - fetching, 4),
            "data": round(t2 - t1, 4), "replays": round(t3 - t2, 4), "total": round(t3 - t0 + pulled, 4)}


def _check_images(plan: Plan, engine: Engine, result: BatchResult, reporter: Reporter) -> None:
    """Each environment image once; each member's capsule image by ID (an inspect) and its tag."""
    checked: dict[str, ReplayError | None] = {}
    for group in plan.images:
        for index in group.members:
            capsule = plan.capsules[index]
            m = capsule.manifest
            assert m is not None
            if m.image.id not in checked:
                checked[m.image.id] = _check_one_image(engine, capsule, result.timings, reporter)
            problem = checked[m.image.id]
            if problem is not None:
                result.reports[index] = error_report(capsule.path, problem)
        result.images_checked += 1


def _check_one_image(engine: Engine, capsule: PlannedCapsule, fetched: dict[str, float],
                     reporter: Reporter) -> ReplayError | None:
    """``fetched`` adds up the seconds spent bringing images in, by step ("load")."""
    assert capsule.manifest is not None
    try:
        source = capsule.ensure_image
        if source is not None and engine.image(capsule.manifest.image.id) is None:
            t0 = time.perf_counter()
            try:
                source.fetch(engine, reporter)
            finally:
                fetched[source.step] = fetched.get(source.step, 0.0) + time.perf_counter() - t0
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
            try:
                check_inputs(leader.manifest, options.replay.with_data(leader.data_map), cache, NullReporter())
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
        tasks.append(_task(plan, options, backend, experiment.id, standing))
        members[experiment.id] = standing
        row.phase = Phase.QUEUED
    if backend.remote:  # each task checks its image on its node: one check per image group sent there
        result.images_checked = len({plan.capsules[m[0]].image_group for m in members.values()})
    observe(result.rows)
    # Under fail-fast on this machine, a task is handed over only when a slot is free and every result before
    # it has been judged: the pool never starts one after a divergence it has not yet been told about.
    gated = options.fail_fast and not backend.remote
    held = tasks[plan.jobs:] if gated else []
    first = tasks[:plan.jobs] if gated else tasks
    handles = backend.submit(first, plan.jobs) if first else []
    pending: dict[str, JobHandle] = {t.id: h for t, h in zip(first, handles, strict=True)}  # by experiment
    cancelled: set[str] = set()  # the ones this batch cancelled (fail-fast): not run, not an error
    while pending:
        changed = False
        for task_id, handle in list(pending.items()):
            row = by_id[task_id]
            status = handle.status()
            if status.state is JobState.RUNNING and (row.phase is not Phase.RUNNING or row.node != status.node):
                if row.phase is not Phase.RUNNING:
                    row.started = time.monotonic()
                row.phase, row.node, changed = Phase.RUNNING, status.node, True
            if not status.state.final:
                continue
            del pending[task_id]
            changed = True
            row.finished = time.monotonic()
            row.node = status.node or row.node
            ours = task_id in cancelled and status.state is JobState.CANCELLED
            diverged = _collect(handle, status, ours, members[task_id], plan, result, row)
            if diverged and options.fail_fast:
                result.stopped_early = True
                for other_id, other in pending.items():
                    cancelled.add(other_id)
                    other.cancel()
                for task in held:  # never handed to the backend: not run
                    by_id[task.id].phase = Phase.NOT_RUN
                held = []
            elif held:
                task, held = held[0], held[1:]
                pending[task.id] = backend.submit([task], plan.jobs)[0]
        observe(result.rows)
        if pending and not changed:
            time.sleep(options.poll_s)


def _task(plan: Plan, options: BatchOptions, backend: Backend, task_id: str, standing: list[int]) -> TaskSpec:
    """One experiment's payload: its standing capsules, the options, and (remote) where the image may come from."""
    leader = plan.capsules[standing[0]]
    opts = options.replay.with_data(leader.data_map)
    payload = GroupTask(task_id, [str(plan.capsules[i].path) for i in standing], opts, checks=backend.remote,
                        engine=options.engine if backend.remote else None).to_payload()
    if backend.remote:
        bundle = next((plan.capsules[i].bundle for i in standing if plan.capsules[i].bundle), None)
        pull = next((plan.capsules[i].pull for i in standing if plan.capsules[i].pull), None)
        payload.update(ImageSources(bundle=str(bundle) if bundle else None, pull=pull).to_payload())
    return TaskSpec(task_id, payload)


def _collect(handle: JobHandle, status: JobStatus, ours: bool, indices: list[int], plan: Plan,
             result: BatchResult, row: ExperimentRow) -> bool:
    """File a finished task's reports under its capsules; True when one of them diverged."""
    raw = handle.result() if status.state is JobState.DONE else None
    if ours:
        row.phase = Phase.NOT_RUN
        return False
    parsed = _result(raw, len(indices), handle.id)
    if parsed is None:
        row.backend_state, row.detail = status.state.value, status.detail
        problem = _task_problem(handle, status)
        for i in indices:
            report = error_report(plan.capsules[i].path, problem)
            report.run = RunOutcome(backend_state=status.state.value, node=status.node, detail=problem.message)
            result.reports[i] = report
    else:
        if any(r.run for r in parsed.reports):
            result.replays_run += 1
        node = status.node or parsed.node
        for i, report in zip(indices, parsed.reports, strict=True):
            if report.exit_code == Interrupted.exit_code:
                continue  # cancelled mid-run: not run
            if report.run:
                report.run.node = node  # where it ran; the node's host facts are in hosts["verify"]
            result.reports[i] = report
    done = [result.reports[i] for i in indices if i in result.reports]
    row.verdicts = [_verdict(r) for r in done]
    row.phase = Phase.DONE if len(done) == len(indices) else Phase.NOT_RUN
    return any(r.verdict == "diverged" for r in done)


def _result(raw: object, count: int, task_id: str) -> TaskResult | None:
    """The task result, with one report per capsule of the task, or None when it is no such thing."""
    if raw is None:
        return None
    try:
        parsed = TaskResult.from_dict(raw, f"task {task_id}")
    except ReplayError:
        return None
    return parsed if len(parsed.reports) == count else None


_HINTS = {
    JobState.CANCELLED: "the task was cancelled outside this batch (scancel, an administrator): rerun the batch",
    JobState.PREEMPTED: "a higher-priority job took its node: rerun, or pick another partition",
}


def _task_problem(handle: JobHandle, status: JobStatus) -> ReplayError:
    """Why a task has no verdicts, with the backend's state and node: a time limit is the command's (exit 4)."""
    detail = status.detail or f"the batch task {handle.id} ended {status.state.value}"
    if status.node and status.node not in detail:
        detail += f" on node {status.node}"
    if status.state is JobState.DONE:
        return EnvironmentProblem(f"{detail}: its result does not match its task", "rerun the batch")
    if status.state is JobState.TIMEOUT:
        return CommandFailed(detail, "raise --time (the batch's time limit per task), or --timeout per replay")
    return EnvironmentProblem(detail, _HINTS.get(status.state, "see the task's log in the batch work folder; "
                                                               "rerun the batch (--verbose shows more)"))


def _verdict(report: VerifyReport) -> Outcome:
    return outcome_of(report)
