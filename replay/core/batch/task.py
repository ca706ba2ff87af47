"""One unit of batch work: a group of capsules that are the same experiment, verified with one replay.

Capsules with the same image, command, workdir, seed, carried environment and data (``experiment_key``)
would replay the same way, so the group is replayed once and that one replay is compared against each
capsule's own references. A backend runs a task in this process (the local backend) or on a cluster node
(``python -m replay task FILE``), so a task and its result are plain, versioned JSON: a ``replay.task``
payload in, a ``replay.task-result`` out, whose ``reports`` are ``replay.verify-report`` documents in the
task's capsule order.

A failure that belongs to one capsule (its manifest) gives that capsule an error report; one that belongs
to the group (the image, the data, the run) gives every capsule of the group the same error report.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from replay.core.data.statcache import StatCache
from replay.core.events import NullReporter, Reporter, Stopwatch
from replay.core.ports import Engine
from replay.core.verify.hostinfo import collect_host
from replay.core.verify.pipeline import (
    Prepared,
    VerifyRequest,
    build_report,
    check_image,
    check_inputs,
    compare_replay,
    error_report,
    open_capsule,
    output_folder,
    prepare,
    raise_on_failure,
    run_replay,
)
from replay.core.verify.report import VerifyReport
from replay.errors import BadInput, Interrupted, ReplayError
from replay.manifest import Manifest

TASK_SCHEMA = "replay.task"
RESULT_SCHEMA = "replay.task-result"
SCHEMA_VERSION = 1


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
class VerifyOptions:
    """The verifier's options for every capsule of a task (JSON-friendly: paths are strings)."""

    cwd: str
    data_map: dict[str, str] = field(default_factory=dict)
    tolerances: dict[str, str] = field(default_factory=dict)
    ignore: list[str] = field(default_factory=list)
    timeout_s: float | None = None
    cpus: float | None = None
    memory_bytes: int | None = None
    gpus: int | None = None  # GPUs for the replayed command (``--gpus``: what the Slurm task was given)
    # Check the image and the data before the replay. The local batch turns it off: its plan checked each
    # distinct image and data set once before handing out tasks. A cluster node keeps it on (its own engine).
    checks: bool = True

    def request(self, capsule: Path) -> VerifyRequest:
        return VerifyRequest(
            target=capsule, cwd=Path(self.cwd), data_map={k: Path(v) for k, v in self.data_map.items()},
            tolerances=dict(self.tolerances), ignore=list(self.ignore), timeout_s=self.timeout_s, cpus=self.cpus,
            memory_bytes=self.memory_bytes, gpus=self.gpus,
        )


@dataclass
class GroupTask:
    id: str
    capsules: list[str]  # capsule folders, absolute, all of one experiment
    options: VerifyOptions

    def to_payload(self) -> dict[str, Any]:
        return {"schema": TASK_SCHEMA, "schema_version": SCHEMA_VERSION, **asdict(self)}

    @classmethod
    def from_payload(cls, raw: Any) -> GroupTask:
        """Read a task back, checking every field: a task file sits in a shared folder others can write."""
        if not isinstance(raw, dict) or raw.get("schema") != TASK_SCHEMA:
            raise BadInput("not a replay task", "pass a task file written by a replay batch")
        if raw.get("schema_version") != SCHEMA_VERSION:
            raise BadInput(f"replay task version {raw.get('schema_version')!r} is not {SCHEMA_VERSION}",
                           "run the task with the replay that wrote it")
        opts = raw.get("options")
        capsules = raw.get("capsules")
        if (not isinstance(raw.get("id"), str) or not isinstance(capsules, list) or not capsules
                or not all(isinstance(c, str) and c.startswith("/") for c in capsules) or not isinstance(opts, dict)):
            raise BadInput("replay task is malformed (id, capsules, options)", "rerun the batch")
        try:
            options = VerifyOptions(**opts)
        except TypeError as exc:
            raise BadInput(f"replay task options are malformed ({exc})", "rerun the batch") from None
        _check_options(options)
        return cls(id=raw["id"], capsules=list(capsules), options=options)


def _check_options(o: VerifyOptions) -> None:
    ok = (isinstance(o.cwd, str) and _str_map(o.data_map) and _str_map(o.tolerances)
          and isinstance(o.ignore, list) and all(isinstance(g, str) for g in o.ignore)
          and _number_or_none(o.timeout_s) and _number_or_none(o.cpus) and isinstance(o.checks, bool)
          and all(v is None or (isinstance(v, int) and not isinstance(v, bool) and v >= 0)
                  for v in (o.memory_bytes, o.gpus)))
    if not ok:
        raise BadInput("replay task options have the wrong types", "rerun the batch")


def _str_map(value: Any) -> bool:
    return isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())


def _number_or_none(value: Any) -> bool:
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))


def run_task(payload: dict[str, Any], engine: Engine, reporter: Reporter | None = None,
             cancel: threading.Event | None = None) -> dict[str, Any]:
    """Verify a task's group with one replay; a ``replay.task-result`` document (never raises ReplayError).

    ``cancel`` set while the replay runs kills its container (the engine honours it); the reports then say
    "interrupted" (exit 130).
    """
    reporter = reporter or NullReporter()
    task = GroupTask.from_payload(payload)
    started = time.time()
    reports = _verify_group(task, engine, reporter, cancel)
    host: dict[str, Any] = {}
    try:
        host = asdict(collect_host(engine.version()))
    except ReplayError:
        host = asdict(collect_host(""))
    return {
        "schema": RESULT_SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "id": task.id,
        "node": socket.gethostname(),
        "host": host,
        "started": started,
        "duration_s": round(time.time() - started, 3),
        "reports": [r.to_dict() for r in reports],
    }


def _verify_group(task: GroupTask, engine: Engine, reporter: Reporter,
                  cancel: threading.Event | None = None) -> list[VerifyReport]:
    paths = [Path(c) for c in task.capsules]
    reports: dict[int, VerifyReport] = {}
    prepared: dict[int, Prepared] = {}
    for i, path in enumerate(paths):
        try:
            prepared[i] = prepare(open_capsule(path), task.options.request(path))
        except ReplayError as exc:
            reports[i] = error_report(path, exc)
    if prepared:
        leader_index = min(prepared)
        leader = prepared[leader_index]
        key = experiment_key(leader.manifest)
        for i in [i for i, p in prepared.items() if experiment_key(p.manifest) != key]:
            reports[i] = error_report(paths[i], BadInput(
                f"capsule {prepared.pop(i).manifest.name} is not the same experiment as the rest of its task",
                "the batch plan groups only identical experiments; rerun the batch"))
        req = task.options.request(paths[leader_index])
        try:
            if cancel is not None and cancel.is_set():
                raise Interrupted()
            reports.update(_replay_once(engine, req, prepared, reporter, task.options.checks, cancel))
        except ReplayError as exc:
            for i in prepared:
                reports[i] = error_report(paths[i], exc)
    return [reports[i] for i in range(len(paths))]


def _replay_once(engine: Engine, req: VerifyRequest, group: dict[int, Prepared], reporter: Reporter,
                 checks: bool = True, cancel: threading.Event | None = None) -> dict[int, VerifyReport]:
    watch = Stopwatch()
    leader = group[min(group)]
    engine_version = engine.version()
    if checks:
        check_image(engine, leader.manifest)
        watch.lap("image")
        with StatCache() as cache:
            check_inputs(leader.manifest, req, cache, reporter)
        watch.lap("data")
    verify_host = collect_host(engine_version)
    out: dict[int, VerifyReport] = {}
    with output_folder(None) as out_root:
        result = run_replay(engine, leader, req, out_root, reporter, cancel=cancel)
        watch.lap("run")
        watch.timings["container_start"] = round(result.start_s, 4)
        raise_on_failure(result, req)
        shared = dict(watch.timings)
        for i, member in group.items():
            t0 = time.perf_counter()
            comparison = compare_replay(member, out_root)
            timings = {**shared, "compare": round(time.perf_counter() - t0, 4)}
            out[i] = build_report(member, result, comparison, verify_host, timings)
    return out
