"""The task document a backend hands to a node: written by a batch, read back with every field checked."""

from __future__ import annotations

from pathlib import Path

import pytest

from replay.core.batch.task import GroupTask
from replay.core.limits import RunLimits
from replay.core.verify.options import ReplayOptions
from replay.errors import BadInput


def _task() -> GroupTask:
    limits = RunLimits(timeout_s=60.0, memory_bytes=1 << 30)
    return GroupTask(id="t0", capsules=["/x/a", "/x/b"],
                     options=ReplayOptions(cwd=Path("/x"), tolerances={"acc": "1e-3"}, limits=limits))


def test_a_task_round_trips_through_its_payload() -> None:
    task = _task()
    payload = task.to_payload()
    assert payload["schema"] == "replay.task" and payload["schema_version"] == 1
    assert GroupTask.from_payload(payload) == task
    # The payload's shape: the policy and the limits flat under "options", with the node's checks switch.
    assert payload["options"] == {"cwd": "/x", "data_map": {}, "tolerances": {"acc": "1e-3"}, "ignore": [],
                                  "timeout_s": 60.0, "cpus": None, "memory_bytes": 1 << 30, "pids": None, "gpus": None,
                                  "max_output_bytes": None, "checks": True}


@pytest.mark.parametrize(
    "change",
    [
        lambda p: p.update(schema="other"),
        lambda p: p.update(schema_version=2),
        lambda p: p.update(capsules=[]),
        lambda p: p.update(capsules=["relative/path"]),
        lambda p: p.update(capsules=[3]),
        lambda p: p.update(id=None),
        lambda p: p["options"].update(unknown=1),
        lambda p: p["options"].update(timeout_s="soon"),
        lambda p: p["options"].update(memory_bytes=True),
        lambda p: p["options"].update(data_map={"data": 3}),
        lambda p: p["options"].update(ignore="out/*.log"),
        lambda p: p["options"].update(checks="no"),
        lambda p: p["options"].update(cpus=float("inf")),
    ],
)
def test_a_malformed_task_is_bad_input(change) -> None:
    payload = _task().to_payload()
    change(payload)
    with pytest.raises(BadInput):
        GroupTask.from_payload(payload)


def test_a_task_with_an_engine_is_version_2_and_one_without_stays_version_1() -> None:
    plain, podman = _task(), _task()
    podman.engine = "podman"
    assert plain.to_payload()["schema_version"] == 1 and "engine" not in plain.to_payload()
    payload = podman.to_payload()
    assert (payload["schema_version"], payload["engine"]) == (2, "podman")
    assert GroupTask.from_payload(payload) == podman
    assert GroupTask.from_payload(plain.to_payload()).engine is None  # a version-1 task: the node's own choice


@pytest.mark.parametrize("engine", ["lxc", "", None, 3, ["podman"], "docker\n"])
def test_a_version_2_task_names_an_engine_replay_knows(engine: object) -> None:
    payload = {**_task().to_payload(), "schema_version": 2, "engine": engine}
    with pytest.raises(BadInput, match="engine"):
        GroupTask.from_payload(payload)


def test_a_version_1_task_names_no_engine_and_an_unknown_version_is_refused() -> None:
    with pytest.raises(BadInput, match="version 1 names no engine"):
        GroupTask.from_payload({**_task().to_payload(), "engine": "podman"})
    for version in (3, 0, True, "2"):
        with pytest.raises(BadInput, match="is not one of 1, 2"):
            GroupTask.from_payload({**_task().to_payload(), "schema_version": version, "engine": "docker"})
