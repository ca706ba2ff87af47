"""The local batch backend: ``run_task`` payloads in a pool of ``jobs`` worker threads, against one engine.

Each task gets a cancel event that its replay honours (the engine kills the container), so ``cancel`` and
``close`` stop running replays for real: KeyboardInterrupt reaches only the main thread, never a worker.
"""

from __future__ import annotations

import socket
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from replay.core.batch.task import run_task
from replay.core.ports import Engine, JobHandle, JobState, JobStatus, TaskSpec
from replay.errors import Interrupted


class LocalHandle:
    def __init__(self, task_id: str) -> None:
        self._id = task_id
        self.cancel_event = threading.Event()
        self.started = threading.Event()
        self.future: Future[dict[str, Any]] | None = None

    @property
    def id(self) -> str:
        return self._id

    def status(self) -> JobStatus:
        node = socket.gethostname()
        future = self.future
        if future is None or (not future.done() and not self.started.is_set()):
            return JobStatus(JobState.CANCELLED if self.cancel_event.is_set() else JobState.PENDING, node)
        if not future.done():
            return JobStatus(JobState.RUNNING, node)
        if future.cancelled():
            return JobStatus(JobState.CANCELLED, node)
        exc = future.exception()
        if exc is not None and self.cancel_event.is_set() and isinstance(exc, Interrupted):
            return JobStatus(JobState.CANCELLED, node)  # stopped because it was asked to: not a failure
        if exc is not None:
            return JobStatus(JobState.FAILED, node, f"{type(exc).__name__}: {exc}")
        return JobStatus(JobState.DONE, node)

    def result(self) -> dict[str, Any] | None:
        future = self.future
        if future is None or not future.done() or future.cancelled() or future.exception() is not None:
            return None
        return future.result()

    def cancel(self) -> None:
        self.cancel_event.set()
        if self.future is not None:
            self.future.cancel()  # a queued task never starts; a running one sees the event


class LocalBackend:
    """The ``Backend`` port on this machine: threads, each replay in its own fresh container."""

    name = "local"
    remote = False

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._pool: ThreadPoolExecutor | None = None
        self._handles: list[LocalHandle] = []

    def submit(self, tasks: list[TaskSpec], jobs: int) -> list[JobHandle]:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="replay-task")
        handles: list[JobHandle] = []
        for task in tasks:
            handle = LocalHandle(task.id)
            handle.future = self._pool.submit(self._run, handle, task.payload)
            self._handles.append(handle)
            handles.append(handle)
        return handles

    def _run(self, handle: LocalHandle, payload: dict[str, Any]) -> dict[str, Any]:
        handle.started.set()
        if handle.cancel_event.is_set():  # cancelled while a worker was already taking it from the queue
            raise Interrupted()
        return run_task(payload, self._engine, cancel=handle.cancel_event)

    def describe(self) -> str:
        return f"{len(self._handles)} local tasks" if self._handles else ""

    def close(self) -> None:
        """Cancel what is queued or running and wait for the workers (each removes its container)."""
        # Queued ones first: a worker freed by cancelling a running task must find nothing left to start.
        active = [h for h in self._handles if h.status().state in (JobState.PENDING, JobState.RUNNING)]
        for handle in sorted(active, key=lambda h: h.started.is_set()):
            handle.cancel()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
