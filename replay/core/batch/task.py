"""One unit of batch work: a group of capsules that are the same experiment, verified with one replay.

Capsules with the same image, command, workdir, seed, carried environment and data (``experiment_key``)
would replay the same way, so the group is replayed once and that one replay is compared against each
capsule's own references. A backend runs a task in this process (the local backend) or on a cluster node
(``python -m replay task FILE``), so a task and its result are plain, versioned JSON: a ``replay.task``
payload in, a ``replay.task-result`` out, whose ``reports`` are ``replay.verify-report`` documents in the
task's capsule order.

The payload's versions: 1 as it always was; 2 adds ``engine`` (docker or podman), the engine the user chose
for the batch (``--engine``, ``engine`` under [tool.replay]), which the node then uses. A task without one
is still written as version 1 (a node picks the engine that answers), so older nodes read it as before,
and refuse a version-2 task rather than replay it on another engine than the one asked for.

A failure that belongs to one capsule (its manifest) gives that capsule an error report; one that belongs
to the group (the image, the data, the run) gives every capsule of the group the same error report.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from replay.core.batch.result import TaskResult
from replay.core.batch.settings import ENGINES
from replay.core.events import Reporter, Stopwatch
from replay.core.ports import Engine
from replay.core.verify.hostinfo import collect_host
from replay.core.verify.options import ReplayOptions
from replay.core.verify.pipeline import Prepared, Replayer, build_report, compare_replay, error_report, output_folder
from replay.core.verify.report import VerifyReport
from replay.errors import BadInput, Interrupted, ReplayError
from replay.manifest import Manifest

TASK_SCHEMA = "replay.task"
SCHEMA_VERSION = 2  # the newest this replay writes and reads
SCHEMA_VERSIONS = (1, 2)  # 2: ``engine``


def experiment_key(m: Manifest) -> tuple[Any, ...]:
    """What makes two captures replay identically: equal keys, one replay serves both.

    The image part is the ENVIRONMENT image (base, virtualenv, code): members' capsule images differ only by
    their replay.json layer (name, date), and everything else they set (seed, thread pins, command) is in the
    key. Capsules from before the split have no environment ID and fall back to their own image.
    """
    cmd = m.command
    return (
        m.image.environment_id or m.image.id,
        tuple(cmd.argv),
        cmd.workdir,
        cmd.seed,
        tuple(sorted((k, v) for k, v in cmd.env.items())),
        tuple(sorted(cmd.numerics_env.items())),
        m.data.digest,
        tuple(m.data.roots),
        tuple(m.outputs.roots),  # where the replay's outputs are mounted
    )


@dataclass
class GroupTask:
    id: str
    capsules: list[str]  # capsule folders, absolute, all of one experiment
    options: ReplayOptions
    # Check the image and the data before the replay. The local batch turns it off: its plan checked each
    # distinct image and data set once before handing out tasks. A cluster node keeps it on (its own engine).
    checks: bool = True
    # The engine the node replays on ("docker", "podman"); None: the node's own choice, the one that answers.
    engine: str | None = None

    def to_payload(self) -> dict[str, Any]:
        chosen = {"schema_version": SCHEMA_VERSION, "engine": self.engine} if self.engine else {"schema_version": 1}
        return {"schema": TASK_SCHEMA, **chosen, "id": self.id, "capsules": list(self.capsules),
                "options": {**self.options.to_payload(), "checks": self.checks}}

    @classmethod
    def from_payload(cls, raw: Any) -> GroupTask:
        """Read a task back, checking every field: a task file sits in a shared folder others can write."""
        if not isinstance(raw, dict) or raw.get("schema") != TASK_SCHEMA:
            raise BadInput("not a replay task", "pass a task file written by a replay batch")
        version = raw.get("schema_version")
        if isinstance(version, bool) or version not in SCHEMA_VERSIONS:
            raise BadInput(f"replay task version {version!r} is not one of {', '.join(map(str, SCHEMA_VERSIONS))}",
                           "run the task with the replay that wrote it")
        engine = raw.get("engine")
        if (version == 1 and "engine" in raw) or (version >= 2 and engine not in ENGINES):
            raise BadInput(f"replay task engine {str(engine)[:20]!r} is not one of {', '.join(ENGINES)}"
                           if version >= 2 else "replay task version 1 names no engine", "rerun the batch")
        opts = raw.get("options")
        capsules = raw.get("capsules")
        if (not isinstance(raw.get("id"), str) or not isinstance(capsules, list) or not capsules
                or not all(isinstance(c, str) and c.startswith("/") for c in capsules) or not isinstance(opts, dict)):
            raise BadInput("replay task is malformed (id, capsules, options)", "rerun the batch")
        checks = opts.get("checks", True)
        if not isinstance(checks, bool):
            raise BadInput("replay task options have the wrong types", "rerun the batch")
        options = ReplayOptions.from_payload({k: v for k, v in opts.items() if k != "checks"})
        return cls(id=raw["id"], capsules=list(capsules), options=options, checks=checks, engine=engine)


def task_result(task_id: str, engine: Engine, reports: list[VerifyReport], started: float) -> dict[str, Any]:
    """A ``replay.task-result`` document: the reports in the task's capsule order, and where they were made."""
    try:
        host = collect_host(engine.version(), engine.name(), engine.host_gpus())
    except ReplayError:
        host = collect_host("", gpus=engine.host_gpus())
    duration_s = round(time.time() - started, 3)
    return TaskResult(task_id, socket.gethostname(), host, started, duration_s, reports).to_dict()


def run_task(payload: dict[str, Any], engine: Engine, reporter: Reporter | None = None,
             cancel: threading.Event | None = None) -> dict[str, Any]:
    """Verify a task's group with one replay; a ``replay.task-result`` document (never raises ReplayError).

    ``cancel`` set while the replay runs kills its container (the engine honours it); the reports then say
    "interrupted" (exit 130).
    """
    task = GroupTask.from_payload(payload)
    started = time.time()
    reports = _verify_group(task, Replayer(engine, task.options, reporter), cancel)
    return task_result(task.id, engine, reports, started)


def _verify_group(task: GroupTask, replayer: Replayer, cancel: threading.Event | None = None) -> list[VerifyReport]:
    paths = [Path(c) for c in task.capsules]
    reports: dict[int, VerifyReport] = {}
    prepared: dict[int, Prepared] = {}
    for i, path in enumerate(paths):
        try:
            prepared[i] = replayer.open(path)
        except ReplayError as exc:
            reports[i] = error_report(path, exc)
    if prepared:
        key = experiment_key(prepared[min(prepared)].manifest)
        for i in [i for i, p in prepared.items() if experiment_key(p.manifest) != key]:
            reports[i] = error_report(paths[i], BadInput(
                f"capsule {prepared.pop(i).manifest.name} is not the same experiment as the rest of its task",
                "the batch plan groups only identical experiments; rerun the batch"))
        try:
            if cancel is not None and cancel.is_set():
                raise Interrupted()
            reports.update(_replay_once(replayer, prepared, task.checks, cancel))
        except ReplayError as exc:
            for i in prepared:
                reports[i] = error_report(paths[i], exc)
    return [reports[i] for i in range(len(paths))]


def _replay_once(replayer: Replayer, group: dict[int, Prepared], checks: bool = True,
                 cancel: threading.Event | None = None) -> dict[int, VerifyReport]:
    """The group's leader replayed once (after its image and data checks), compared against every member."""
    leader = group[min(group)]
    replayer.watch = Stopwatch()  # the task's timings start here, as a verify's would after its manifest
    verify_host = replayer.host()
    if checks:
        replayer.check_image(leader.manifest)
        replayer.check_data(leader.manifest)
    out: dict[int, VerifyReport] = {}
    with output_folder(None) as out_root:
        result = replayer.replay_once(leader, out_root, cancel=cancel)
        shared = dict(replayer.watch.timings)
        for i, member in group.items():
            t0 = time.perf_counter()
            comparison = compare_replay(member, out_root)
            timings = {**shared, "compare": round(time.perf_counter() - t0, 4)}
            out[i] = build_report(member, result, comparison, verify_host, timings)
    return out
