"""The local backend's handles: a task that cannot start is FAILED with no result, never a hang."""

from __future__ import annotations

import time
from typing import Any, cast

from replay.core.local_backend import LocalBackend
from replay.core.ports import Engine, JobState, TaskSpec


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


def test_close_cancels_what_never_started() -> None:
    backend = LocalBackend(cast(Engine, None))
    handles = backend.submit([TaskSpec(f"t{i}", {}) for i in range(50)], jobs=1)
    backend.close()
    states = {h.status().state for h in handles}
    assert states <= {JobState.FAILED, JobState.CANCELLED} and JobState.CANCELLED in states
