"""The Slurm batch backend: a batch's tasks as ONE job array on an existing cluster.

The only module that runs ``sbatch``, ``squeue``, ``scontrol`` and ``scancel``. ``submit`` writes each task's
payload into a fresh folder under the shared work folder, and a batch script that runs this same replay
installation (``sys.executable -m replay task``) on the node; ``sbatch --array=0-K%N`` submits it. Handles
poll ``squeue`` (pending and running tasks) and, for a task squeue no longer lists, ``scontrol show job``
(its final state, node and exit code): ``sacct`` needs an accounting database that small clusters lack.

A task is DONE only when Slurm says COMPLETED *and* its result file is there and is a task result; every
other end (FAILED, CANCELLED, TIMEOUT, PREEMPTED, NODE_FAIL, OUT_OF_MEMORY, ...) is reported with Slurm's
state, reason, node and exit code, never as a verdict.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from replay.core.ports import JobHandle, JobState, JobStatus, TaskSpec
from replay.errors import BadInput, EnvironmentProblem
from replay.fsutil import atomic_write_bytes, atomic_write_json

# Slurm's --time: M, M:S, H:M:S, D-H, D-H:M, D-H:M:S, or UNLIMITED.
_TIME = re.compile(r"^(?:\d+|\d+:\d{1,2}|\d+:\d{1,2}:\d{1,2}|\d+-\d+|\d+-\d+:\d{1,2}|\d+-\d+:\d{1,2}:\d{1,2}|UNLIMITED)$")
_PARTITION = re.compile(r"^[A-Za-z0-9_.,-]{1,128}$")
_RUNNING = {"RUNNING", "COMPLETING", "CONFIGURING", "SUSPENDED", "STOPPED", "SIGNALING", "STAGE_OUT", "RESIZING"}
_PENDING = {"PENDING", "REQUEUED", "REQUEUE_FED", "REQUEUE_HOLD", "RESV_DEL_HOLD", "SPECIAL_EXIT"}
_FINAL = {
    "COMPLETED": JobState.DONE,
    "FAILED": JobState.FAILED,
    "OUT_OF_MEMORY": JobState.FAILED,
    "NODE_FAIL": JobState.FAILED,
    "BOOT_FAIL": JobState.FAILED,
    "DEADLINE": JobState.FAILED,
    "REVOKED": JobState.CANCELLED,
    "CANCELLED": JobState.CANCELLED,
    "TIMEOUT": JobState.TIMEOUT,
    "PREEMPTED": JobState.PREEMPTED,
}
MAX_RESULT_BYTES = 64 << 20


def check_time_limit(value: str) -> str:
    if not _TIME.match(value):
        raise BadInput(f"--time {value} is not a Slurm time limit",
                       "use MINUTES, H:MM:SS or D-HH:MM (e.g. --time 30 or --time 2:00:00)")
    return value


def map_state(slurm_state: str) -> JobState:
    """A Slurm job state (``CANCELLED by 0`` included) as the backend port's JobState."""
    word = slurm_state.split()[0].rstrip("+") if slurm_state.strip() else ""
    if word in _RUNNING:
        return JobState.RUNNING
    if word in _PENDING:
        return JobState.PENDING
    return _FINAL.get(word, JobState.FAILED)  # a state this replay does not know is no verdict


@dataclass
class TaskRecord:
    """One array task as Slurm reports it."""

    index: int
    state: str  # Slurm's word: PENDING, RUNNING, COMPLETED, TIMEOUT...
    node: str = ""
    reason: str = ""
    exit_code: str = ""  # scontrol's "EXIT:SIGNAL"


def parse_jobid(sbatch_out: str) -> str:
    """``sbatch --parsable`` prints ``JOBID`` or ``JOBID;CLUSTER``."""
    first = sbatch_out.strip().splitlines()[0] if sbatch_out.strip() else ""
    jobid = first.split(";")[0].strip()
    if not jobid.isdigit():
        raise EnvironmentProblem(f"sbatch answered {first[:80]!r}, not a job ID", "check the cluster with sinfo")
    return jobid


def parse_squeue(out: str, jobid: str) -> dict[int, TaskRecord]:
    """``squeue -h -r -j JOBID -o '%i|%T|%N|%r'``: one line per array task (pending ones included with -r)."""
    records: dict[int, TaskRecord] = {}
    for line in out.splitlines():
        parts = line.strip().split("|")
        if len(parts) != 4:
            continue
        task_id, state, node, reason = parts
        base, _, index = task_id.partition("_")
        if base != jobid or not index.isdigit():
            continue  # another job, or a still-aggregated range like 5_[3-9] (-r expands them)
        records[int(index)] = TaskRecord(int(index), state.strip(), node.strip(), reason.strip())
    return records


_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_:/]*$")


def parse_scontrol(out: str) -> dict[str, str]:
    """``scontrol show job -o ID``: one line of KEY=VALUE fields; a value may hold spaces (a Reason, a Command)."""
    fields: dict[str, str] = {}
    last = ""
    for token in out.strip("\r\n").split(" "):
        if not token:
            continue
        key, eq, value = token.partition("=")
        if eq and _KEY.match(key) and key not in fields:
            fields[key] = value
            last = key
        elif last:
            fields[last] += " " + token
    return fields


def record_from_scontrol(out: str, jobid: str, index: int) -> TaskRecord | None:
    """The task's record, or None when scontrol does not describe that one task (a still-pending range)."""
    line = next((ln for ln in out.splitlines() if f"ArrayTaskId={index} " in ln + " "), "")
    f = parse_scontrol(line)
    if f.get("ArrayJobId") != jobid or f.get("ArrayTaskId") != str(index) or "JobState" not in f:
        return None
    node = f.get("BatchHost") or f.get("NodeList", "")
    return TaskRecord(index, f["JobState"], "" if node == "(null)" else node, f.get("Reason", ""),
                      f.get("ExitCode", ""))


def _forgotten(scontrol_out: str) -> bool:
    text = scontrol_out.lower()
    return "not found" in text or "invalid job id" in text


class SlurmBackend:
    """``--backend slurm``: one array per batch on the cluster the Slurm client commands reach."""

    name = "slurm"
    remote = True

    def __init__(self, workdir: Path, partition: str | None = None, time_limit: str | None = None,
                 gpus: int | None = None, poll_s: float = 1.0, python: str | None = None) -> None:
        if partition is not None and not _PARTITION.match(partition):
            raise BadInput(f"--partition {partition!r} is not a partition name", "see `sinfo -s` for the names")
        if gpus is not None and (isinstance(gpus, bool) or not isinstance(gpus, int) or gpus < 0):
            raise BadInput(f"--gpus {gpus} is not a number of GPUs", "e.g. --gpus 1")
        self.workdir = Path(workdir)
        self.partition = partition
        self.time_limit = check_time_limit(time_limit) if time_limit is not None else None
        self.gpus = gpus
        self.poll_s = poll_s
        self.python = python or sys.executable  # the same installation, on the shared filesystem
        self.jobid = ""
        self.folder: Path | None = None
        self.handles: list[SlurmJob] = []
        self._lock = threading.Lock()
        self._polled = 0.0
        self._records: dict[int, TaskRecord] = {}
        self.cancelled = False

    # --- the Backend port ---------------------------------------------------------------------------

    def submit(self, tasks: list[TaskSpec], jobs: int) -> list[JobHandle]:
        if not tasks:
            return []
        if shutil.which("sbatch") is None:
            raise EnvironmentProblem("sbatch is not on PATH: this machine is no Slurm submit host",
                                     "run on a login node of the cluster, or use --backend local")
        self.workdir.mkdir(parents=True, exist_ok=True)
        folder = self.workdir / f"batch-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
        folder.mkdir(mode=0o700)
        self.folder = folder
        for i, task in enumerate(tasks):
            atomic_write_json(folder / f"task-{i}.json", task.payload)
        script = folder / "run.sh"
        atomic_write_bytes(script, self._script(folder).encode(), mode=0o700)
        argv = ["sbatch", "--parsable", f"--array=0-{len(tasks) - 1}%{max(1, jobs)}", "--job-name=replay-batch",
                f"--output={folder}/log-%a.txt", f"--chdir={folder}", "--ntasks=1"]
        if self.partition:
            argv.append(f"--partition={self.partition}")
        if self.time_limit:
            argv.append(f"--time={self.time_limit}")
        if self.gpus:
            argv.append(f"--gpus={self.gpus}")
        self.jobid = parse_jobid(self._call([*argv, str(script)], "sbatch"))
        self.handles = [SlurmJob(self, i, t.id) for i, t in enumerate(tasks)]
        return list(self.handles)

    def close(self, wait_s: float = 60) -> None:
        """Cancel the array when anything of it is left, and wait until Slurm lists none of it."""
        if not self.jobid or all(h.status().state.final for h in self.handles):
            return
        self.cancel_all()
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline and not all(h.status().state.final for h in self.handles):
            time.sleep(self.poll_s)

    def describe(self) -> str:
        return f"slurm job {self.jobid}" if self.jobid else ""

    # --- what handles ask ---------------------------------------------------------------------------

    def cancel_all(self) -> None:
        self.cancelled = True
        if self.jobid:
            with contextlib.suppress(EnvironmentProblem):
                self._call(["scancel", self.jobid], "scancel")

    def cancel_task(self, index: int) -> None:
        with contextlib.suppress(EnvironmentProblem):
            self._call(["scancel", f"{self.jobid}_{index}"], "scancel")

    def record(self, index: int) -> TaskRecord | None:
        """The task's latest record; one squeue for the whole array per poll interval."""
        with self._lock:
            if time.monotonic() - self._polled >= self.poll_s:
                self._refresh()
                self._polled = time.monotonic()
            return self._records.get(index)

    def _refresh(self) -> None:
        final = {i for i, r in self._records.items() if map_state(r.state).final}
        try:
            out = self._call(["squeue", "-h", "-r", "-j", self.jobid, "-o", "%i|%T|%N|%r"], "squeue")
        except EnvironmentProblem:
            out = ""  # squeue refuses a job ID that left the queue on some versions: scontrol tells
        live = parse_squeue(out, self.jobid)
        self._records.update({i: r for i, r in live.items() if i not in final})
        for h in self.handles:
            if h.index in live or h.index in final:
                continue
            try:
                out = self._call(["scontrol", "show", "job", "-o", f"{self.jobid}_{h.index}"], "scontrol")
            except EnvironmentProblem as exc:
                out = str(exc)
            rec = record_from_scontrol(out, self.jobid, h.index)
            if rec is None and _forgotten(out):
                # Slurm forgets finished jobs after MinJobAge (and cancelled pending tasks at once).
                word = "COMPLETED" if h.result_path.exists() else "CANCELLED" if self.cancelled else "UNKNOWN"
                rec = TaskRecord(h.index, word, "", "" if word != "UNKNOWN" else "Slurm no longer knows the task")
            if rec is not None:
                self._records[h.index] = rec

    def _script(self, folder: Path) -> str:
        task = shlex.quote(str(folder)) + "/task-${SLURM_ARRAY_TASK_ID}.json"
        result = shlex.quote(str(folder)) + "/result-${SLURM_ARRAY_TASK_ID}.json"
        # The start line lets a benchmark split Slurm's scheduling delay from replay's own start-up.
        return ("#!/bin/bash\n# replay batch task: verify one group on this node's own engine\n"
                'echo "replay-task-start $(date +%s.%N) on $(hostname)"\n'
                f"exec {shlex.quote(self.python)} -m replay task {task} --result {result}\n")

    @staticmethod
    def _call(argv: list[str], what: str) -> str:
        try:
            res = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=os.environ.copy())
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise EnvironmentProblem(f"{what} did not answer ({exc})", "check the cluster with sinfo") from None
        if res.returncode != 0:
            msg = (res.stderr.strip() or res.stdout.strip()).splitlines()
            raise EnvironmentProblem(f"{what} failed: {msg[-1] if msg else f'exit {res.returncode}'}",
                                     "check the cluster with sinfo and the options (--partition, --time, --gpus)")
        return res.stdout


class SlurmJob:
    """One array task's handle (the JobHandle port)."""

    def __init__(self, backend: SlurmBackend, index: int, task_id: str) -> None:
        self.backend = backend
        self.index = index
        self.task_id = task_id
        self._final: JobStatus | None = None

    @property
    def id(self) -> str:
        return f"{self.backend.jobid}_{self.index}"

    @property
    def result_path(self) -> Path:
        assert self.backend.folder is not None
        return self.backend.folder / f"result-{self.index}.json"

    @property
    def log_path(self) -> Path:
        assert self.backend.folder is not None
        return self.backend.folder / f"log-{self.index}.txt"

    def status(self) -> JobStatus:
        if self._final is not None:
            return self._final
        rec = self.backend.record(self.index)
        if rec is None:
            return JobStatus(JobState.PENDING, "", "PENDING")
        state = map_state(rec.state)
        detail = self._detail(rec)
        if state == JobState.DONE and self._read_result() is None:
            state, detail = JobState.FAILED, f"{detail}, but it wrote no task result{self._log_tail()}"
        elif state.final and state != JobState.DONE:
            detail += self._log_tail()
        status = JobStatus(state, rec.node, detail)
        if state.final:
            self._final = status
        return status

    def result(self) -> dict[str, Any] | None:
        if self.status().state != JobState.DONE:
            return None
        return self._read_result()

    def cancel(self) -> None:
        self.backend.cancel_task(self.index)

    def _detail(self, rec: TaskRecord) -> str:
        words = [f"slurm task {self.id} {rec.state}"]
        if rec.node:
            words.append(f"on node {rec.node}")
        if rec.exit_code and rec.exit_code != "0:0":
            words.append(f"exit {rec.exit_code}")
        if rec.reason and rec.reason not in ("None", "(null)"):
            words.append(f"({rec.reason})")
        return " ".join(words)

    def _read_result(self) -> dict[str, Any] | None:
        try:
            path = self.result_path
            if path.is_symlink() or not path.is_file() or path.stat().st_size > MAX_RESULT_BYTES:
                return None
            raw = json.loads(path.read_text())
        except (OSError, ValueError, UnicodeDecodeError):
            return None
        if not isinstance(raw, dict) or raw.get("schema") != "replay.task-result":
            return None
        return raw

    def _log_tail(self, lines: int = 3) -> str:
        try:
            tail = [ln for ln in self.log_path.read_text(errors="replace").splitlines() if ln.strip()][-lines:]
        except OSError:
            return ""
        return (": " + " | ".join(tail))[:400] if tail else ""
