"""A Slurm batch with ``--engine podman``, submitted by an ordinary user: each task carries the engine and
the node replays on that user's rootless Podman.

Through the real one-node cluster: Slurm runs each array task as the submitting user, here an ordinary user
the test makes (``tests/e2e/rootless.py``), so the node's `replay task` runs as that user and starts its own
rootless `podman system service` for the task (and stops it). The capsules are captured on Docker by root
and their images loaded into the user's Podman storage (``docker save | podman load``: the same IDs). The
report is root's local Docker batch's, bar clocks, hosts and the limits rootless Podman could not enforce;
each capsule's host facts name the node's rootless Podman.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e import rootless
from tests.e2e.conftest import new_project
from tests.e2e.test_batch import capture_as
from tests.slurm.cluster import Cluster
from tests.slurm.test_e2e_slurm import HOST, differences, stable

pytestmark = pytest.mark.podman


@pytest.fixture(scope="module")
def reviewer() -> Iterator[rootless.Reviewer]:
    rootless.require()
    with rootless.reviewer_user() as user:
        yield user
    assert rootless.gone(user), f"user {user.name} is still in /etc/passwd"


def comparable(text: str, root: Path) -> Any:
    """The batch report with the folder it was run in as ``ROOT`` (the user verifies a copy), without each
    run's ``unenforced`` (rootless Podman on cgroup v1 names the limits it could not enforce)."""
    report = json.loads(text.replace(json.dumps(str(root))[1:-1], "ROOT"))
    for capsule in report["capsules"]:
        (capsule["report"].get("run") or {}).pop("unenforced", None)
    return report


def test_a_slurm_batch_with_engine_podman_replays_on_the_nodes_rootless_podman(engine, train_venv, reviewer,
                                                                               slurm_cluster: Cluster, tmp_path) -> None:
    project = new_project(tmp_path, "batch", train_venv)
    suffix = project.name.rsplit("-", 1)[-1]
    names = [f"{n}-{suffix}" for n in ("a1", "a2", "b")]
    ids = {json.loads((capture_as(project, n, seed, "data/a", "ok") / "replay.json").read_text())["image"]["id"]
           for n, seed in zip(names, (1, 1, 2), strict=True)}
    rootless.load_images(reviewer, *sorted(ids))
    local = project.replay("verify", ".replay", "--jobs", "2", "--json")  # root, on Docker, here
    assert local.code == 0, local.stderr
    work = reviewer.home / "slurm"
    shutil.copytree(project.root / ".replay", work / ".replay")
    shutil.copytree(project.root / "data", work / "data")
    reviewer.give(work)
    mode = slurm_cluster.root.stat().st_mode & 0o777
    os.chmod(slurm_cluster.root, 0o755)  # the user's sbatch reads slurm.conf and reaches munge's socket there
    try:
        result = reviewer.replay("--engine", "podman", "verify", ".replay", "--backend", "slurm", "--partition",
                                 slurm_cluster.partition, "--jobs", "2", "--workdir", str(work / "tasks"), "--json",
                                 cwd=work, SLURM_CONF=str(slurm_cluster.conf))
    finally:
        os.chmod(slurm_cluster.root, mode)

    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["plan"]["backend"] == "slurm" and sorted(c["name"] for c in doc["capsules"]) == sorted(names)
    found = differences(stable(comparable(result.stdout, work)), stable(comparable(local.stdout, project.root)))
    assert not found  # the local batch's report, bar clocks, hosts and paths
    nodes = {(c["node"], c["report"]["hosts"]["verify"]["engine"]) for c in doc["capsules"]}
    assert nodes == {(HOST, "podman (rootless)")}  # each task ran on the node as the user, on its Podman
    assert {c["report"]["hosts"]["verify"]["engine"] for c in local.json()["capsules"]} == {"docker"}
    tasks = [json.loads(p.read_text()) for p in (work / "tasks").glob("batch-*/task-*.json")]
    assert tasks and {(t["schema_version"], t["engine"]) for t in tasks} == {(2, "podman")}  # carried
    assert not slurm_cluster.jobs()
    assert reviewer.podman("ps", "--all", "--quiet").stdout.strip() == ""  # no container left
    assert rootless.processes_of(reviewer) == []  # the node's Podman service stopped with its task
