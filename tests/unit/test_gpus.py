"""``--gpus N``: data in the RunSpec (no Docker syntax), the engine's device request in the adapter, and
carried from the batch options through the task payload to the node's replay."""

from __future__ import annotations

from pathlib import Path

import pytest

from replay.adapters.docker_engine import device_requests
from replay.core.batch.task import GroupTask
from replay.core.limits import RunLimits
from replay.core.ports import RunSpec
from replay.core.verify.options import ReplayOptions
from replay.errors import BadInput


def spec(gpus: int | None) -> RunSpec:
    return RunSpec(image="sha256:" + "a" * 64, argv=["python", "train.py"], workdir="/work", limits=RunLimits(gpus=gpus))


def test_n_gpus_become_one_device_request_for_n_gpus() -> None:
    [request] = device_requests(spec(2)) or []
    assert request["Count"] == 2 and request["Capabilities"] == [["gpu"]]
    assert request["Driver"] == "" and request["DeviceIDs"] == []  # any N of the engine's GPUs


@pytest.mark.parametrize("gpus", [None, 0])
def test_no_gpus_asked_is_no_device_request(gpus: int | None) -> None:
    assert device_requests(spec(gpus)) is None


def test_the_task_payload_carries_the_gpus_to_the_nodes_replay() -> None:
    task = GroupTask("E1", ["/shared/a"], ReplayOptions(cwd=Path("/shared"), limits=RunLimits(gpus=1)))
    back = GroupTask.from_payload(task.to_payload())
    assert back.options.limits.gpus == 1


@pytest.mark.parametrize("gpus", [-1, 1.5, True, "1"])
def test_a_task_with_a_bad_gpu_count_is_bad_input(gpus: object) -> None:
    payload = GroupTask("E1", ["/shared/a"], ReplayOptions(cwd=Path("/shared"))).to_payload()
    payload["options"]["gpus"] = gpus
    with pytest.raises(BadInput):
        GroupTask.from_payload(payload)
