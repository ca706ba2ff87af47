"""A batch through a Backend: submit one task per experiment group, wait, merge the results per capsule.

The batch plan (``replay.core.plan``) decides the groups; this module turns each group into a ``replay.task``
payload (``GroupTask`` plus where a node may get the image: ``ImageSources``), hands them all to the backend
in one ``submit``, polls the handles until every one is final, telling ``on_status`` about each change (the
live table), and gives back one ``replay.verify-report`` dict per capsule, in the order the capsules came.

A task the backend did not run to its end (Slurm FAILED, CANCELLED, PREEMPTED, TIMEOUT...) is no verdict: each
of its capsules gets an error report that carries the backend's state and node ("slurm task 12_3 TIMEOUT on
node gpu7"). Ctrl-C cancels everything still pending or running (``Backend.close``) and says so.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from replay.core.batch_task import GroupTask, VerifyOptions, experiment_key
from replay.core.node_task import ImageSources
from replay.core.ports import Backend, JobHandle, JobState, JobStatus, TaskSpec
from replay.core.report import RunOutcome
from replay.core.verify import error_report, open_capsule
from replay.errors import EXIT_INTERRUPTED, CommandFailed, EnvironmentProblem, ReplayError

StatusCallback = Callable[[int, "RemoteGroup", JobStatus], None]


class BatchCancelled(ReplayError):
    """Ctrl-C while a backend held the batch: what was still queued or running was cancelled."""

    exit_code = EXIT_INTERRUPTED


@dataclass
class RemoteGroup:
    """One task's worth of capsules (one experiment), and where a node may get its image."""

    capsules: list[Path]
    sources: ImageSources = field(default_factory=ImageSources)
    options: VerifyOptions | None = None  # this group's own (its project's cwd and data), else the batch's


def default_workdir(capsules: Sequence[Path]) -> Path:
    """Beside the capsules (they are on the shared filesystem, so this is too); hidden, so no target reads it."""
    return Path(capsules[0]).resolve().parent / ".replay-work"


def group_by_experiment(capsules: Sequence[Path]) -> list[RemoteGroup]:
    """Capsules with equal ``experiment_key`` in one group, in first-seen order; an unreadable one alone
    (its task gives it its error report). The batch plan does this with more checks; this is its fallback."""
    groups: dict[Any, RemoteGroup] = {}
    for i, path in enumerate(capsules):
        try:
            key: Any = experiment_key(open_capsule(path).manifest)
        except ReplayError:
            key = ("unreadable", i)
        groups.setdefault(key, RemoteGroup([])).capsules.append(Path(path))
    return list(groups.values())


def payloads(groups: Sequence[RemoteGroup], options: VerifyOptions) -> list[TaskSpec]:
    out = []
    for i, group in enumerate(groups):
        task = GroupTask(id=f"task-{i}", capsules=[str(Path(c).resolve()) for c in group.capsules],
                         options=group.options or options)
        out.append(TaskSpec(id=task.id, payload={**task.to_payload(), **group.sources.to_payload()}))
    return out


def run_remote(backend: Backend, groups: Sequence[RemoteGroup], options: VerifyOptions, jobs: int,
               on_status: StatusCallback | None = None, poll_s: float = 1.0) -> list[dict[str, Any]]:
    """Every capsule's report dict (the groups' capsules, flattened, in order) after the backend ran them."""
    specs = payloads(groups, options)
    handles: list[JobHandle] = []
    try:
        handles = backend.submit(specs, jobs)
        statuses = _wait(handles, groups, on_status, poll_s)
    except KeyboardInterrupt:
        backend.close()
        where = f" ({backend.name} job {handles[0].id.split('_')[0]})" if handles else ""
        raise BatchCancelled(f"interrupted: cancelled the batch's {len(handles)} tasks{where}",
                             "nothing of it is left running; rerun to verify") from None
    finally:
        with _suppress_interrupt():
            backend.close()
    reports: list[dict[str, Any]] = []
    for group, handle, status in zip(groups, handles, statuses, strict=True):
        reports.extend(_group_reports(group, handle, status))
    return reports


def _wait(handles: list[JobHandle], groups: Sequence[RemoteGroup], on_status: StatusCallback | None,
          poll_s: float) -> list[JobStatus]:
    last: dict[int, JobStatus] = {}
    while True:
        for i, h in enumerate(handles):
            if i in last and last[i].state.final:
                continue
            status = h.status()
            prev = last.get(i)
            if prev is None or (prev.state, prev.node) != (status.state, status.node):
                last[i] = status
                if on_status is not None:
                    on_status(i, groups[i], status)
        if all(s.state.final for s in last.values()) and len(last) == len(handles):
            return [last[i] for i in range(len(handles))]
        time.sleep(poll_s)


def _group_reports(group: RemoteGroup, handle: JobHandle, status: JobStatus) -> list[dict[str, Any]]:
    result = handle.result() if status.state == JobState.DONE else None
    reports = result.get("reports") if isinstance(result, dict) else None
    if isinstance(reports, list) and len(reports) == len(group.capsules) and all(isinstance(r, dict) for r in reports):
        node = status.node or str(result.get("node", "")) if isinstance(result, dict) else status.node
        for r in reports:
            if isinstance(r.get("run"), dict):
                r["run"]["node"] = node  # where it ran; the node's host facts are in r["hosts"]["verify"]
        return reports
    detail = status.detail or f"task {handle.id} {status.state.value}"
    if status.state == JobState.DONE:
        detail += ": its result does not match its task"
    exc: ReplayError
    if status.state == JobState.TIMEOUT:
        exc = CommandFailed(detail, "raise --time (the batch's time limit per task), or --timeout per replay")
    else:
        exc = EnvironmentProblem(detail, _hint(status.state))
    out = []
    for capsule in group.capsules:
        report = error_report(capsule, exc)
        report.run = RunOutcome(backend_state=status.state.value, node=status.node, detail=detail)
        out.append(report.to_dict())
    return out


def _hint(state: JobState) -> str:
    return {
        JobState.CANCELLED: "the task was cancelled on the cluster: rerun the batch",
        JobState.PREEMPTED: "a higher-priority job took its node: rerun, or pick another partition",
    }.get(state, "see the task's log in the batch work folder; rerun the batch")


class _suppress_interrupt:
    """A second Ctrl-C while cancelling must not leave the array behind."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, exc: object, tb: object) -> bool:
        return kind is KeyboardInterrupt


@dataclass
class BackendSettings:
    """``--backend`` and its options, command line over ``[tool.replay]``, checked before anything runs."""

    name: str = "local"
    jobs: int = 4
    partition: str | None = None
    time_limit: str | None = None
    gpus: int | None = None
    workdir: Path | None = None

    @classmethod
    def merge(cls, defaults: Any, cwd: Path, backend: str | None = None, jobs: int | None = None,
              partition: str | None = None, time_limit: str | None = None, gpus: int | None = None,
              workdir: Path | None = None) -> BackendSettings:
        """``defaults`` is a ``replay.config.ProjectDefaults``; a relative workdir is under ``cwd``."""
        from replay.errors import BadInput

        name = backend or getattr(defaults, "backend", None) or "local"
        jobs = jobs if jobs is not None else getattr(defaults, "jobs", None) or 4
        if jobs < 1:
            raise BadInput(f"--jobs {jobs} is not positive", "e.g. --jobs 8")
        raw_workdir = workdir if workdir is not None else getattr(defaults, "workdir", None)
        settings = cls(
            name=name, jobs=jobs,
            partition=partition if partition is not None else getattr(defaults, "partition", None),
            time_limit=time_limit if time_limit is not None else getattr(defaults, "time", None),
            gpus=gpus if gpus is not None else getattr(defaults, "gpus", None),
            workdir=(cwd / raw_workdir).resolve() if raw_workdir is not None else None,
        )
        if name != "slurm" and (settings.partition or settings.time_limit or settings.gpus):
            raise BadInput(f"--partition, --time and --gpus are options of --backend slurm, not {name}",
                           "add --backend slurm, or drop them")
        return settings

    def options(self, capsules: Sequence[Path]) -> dict[str, Any]:
        """What ``replay.factory.backend(name, **options)`` takes for this backend."""
        if self.name != "slurm":
            return {}
        return {"workdir": self.workdir or default_workdir(capsules), "partition": self.partition,
                "time_limit": self.time_limit, "gpus": self.gpus}
