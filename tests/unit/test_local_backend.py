"""The local backend's handles: a task that cannot start is FAILED with no result, never a hang."""

from __future__ import annotations

import threading
import time
from typing import Any, cast

from replay.core.batch.local import LocalBackend
from replay.core.ports import Engine, JobState, TaskSpec
from replay.errors import Interrupted


def wait_final(handle: Any) -> JobState:
    deadline = time.monotonic() + 10
    while not handle.status().state.final and time.monotonic() < deadline:
        time.sleep(0.01)
    return cast(JobState, handle.status().state)


def test_a_malformed_task_fails_with_no_result_and_the_rest_still_run() -> None:
    backend = LocalBackend(cast(Engine, None))  # a malformed payload is refused before any engine call
    handles = backend.submit([TaskSpec("bad", {"schema": "other"}), TaskSpec("bad2", {})], jobs=1)
    assert [wait_final(h) for h in handles] == [JobState.FAILED, JobState.FAILED]
    assert handles[0].result() is None
    assert "not a replay task" in handles[0].status().detail
    backend.close()


def test_close_cancels_what_never_started(monkeypatch) -> None:
    started = threading.Event()

    def slow_task(payload: dict[str, Any], engine: Engine, cancel: threading.Event | None = None) -> dict[str, Any]:
        # Stands in for a replay: runs until its cancel event is set, as the engine's run does.
        started.set()
        assert cancel is not None and cancel.wait(10)
        raise Interrupted()

    monkeypatch.setattr("replay.core.batch.local.run_task", slow_task)
    backend = LocalBackend(cast(Engine, None))
    handles = backend.submit([TaskSpec(f"t{i}", {}) for i in range(5)], jobs=1)
    assert started.wait(10)
    backend.close()
    states = [h.status().state for h in handles]
    assert all(state.final for state in states)
    assert states[1:] == [JobState.CANCELLED] * 4  # queued: never started
    assert all(h.result() is None for h in handles)
