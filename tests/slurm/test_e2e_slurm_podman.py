"""A Slurm batch with ``--engine podman``: the tasks carry the engine and the node replays on Podman.

Through the real one-node cluster, as root: Slurm runs each array task as the submitting user, and this
cluster's tests submit as root, so the node's Podman here is rootful (`replay task` starts its own
`podman system service` for the task and stops it). The capsules are captured on Docker and their images
loaded into root's Podman (``docker save | podman load``: the same IDs); what the test added to Podman is
removed at the end. The report is the local Docker batch's, bar clocks and hosts, and each capsule's host
facts name Podman.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from tests.e2e.conftest import CAPSULE_LABEL, new_project
from tests.e2e.test_batch import capture_as
from tests.slurm.cluster import Cluster
from tests.slurm.test_e2e_slurm import HOST, differences, stable

pytestmark = pytest.mark.podman


def podman(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["podman", *args], capture_output=True, text=True, timeout=600)


def podman_images() -> set[str]:
    """Root's Podman images, as IDs without the ``sha256:`` prefix."""
    return {i.removeprefix("sha256:") for i in podman("images", "--all", "--quiet", "--no-trunc").stdout.split()}


def test_a_slurm_batch_with_engine_podman_replays_on_the_nodes_podman(engine, train_venv, slurm_cluster: Cluster,
                                                                      tmp_path) -> None:
    if os.geteuid() != 0 or not shutil.which("podman"):
        message = "the Slurm batch on Podman runs as root with podman installed (`make podman`)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    project = new_project(tmp_path, "batch", train_venv)
    suffix = project.name.rsplit("-", 1)[-1]
    names = [f"{n}-{suffix}" for n in ("a1", "a2", "b")]
    ids = sorted({json.loads((capture_as(project, n, seed, "data/a", "ok") / "replay.json").read_text())["image"]["id"]
                  for n, seed in zip(names, (1, 1, 2), strict=True)})
    before = podman_images()
    try:
        loaded = subprocess.run(f"docker save {' '.join(ids)} | podman load", shell=True, capture_output=True, text=True)
        assert loaded.returncode == 0, loaded.stderr
        work = tmp_path / "work"
        local = project.replay("verify", ".replay", "--jobs", "2", "--json")  # on Docker, here

        result = project.replay("--engine", "podman", "verify", ".replay", "--backend", "slurm", "--partition",
                                slurm_cluster.partition, "--jobs", "2", "--workdir", str(work), "--json",
                                SLURM_CONF=str(slurm_cluster.conf))

        assert local.code == 0, local.stderr
        assert result.code == 0, result.stderr
        doc = json.loads(result.stdout)
        assert doc["plan"]["backend"] == "slurm" and sorted(c["name"] for c in doc["capsules"]) == names
        assert not differences(stable(doc), stable(local.json()))  # the local batch's report, bar clocks, hosts
        assert {(c["node"], c["report"]["hosts"]["verify"]["engine"]) for c in doc["capsules"]} == {(HOST, "podman")}
        assert {c["report"]["hosts"]["verify"]["engine"] for c in local.json()["capsules"]} == {"docker"}
        tasks = [json.loads(p.read_text()) for p in work.glob("batch-*/task-*.json")]
        assert tasks and {(t["schema_version"], t["engine"]) for t in tasks} == {(2, "podman")}  # carried
        assert not slurm_cluster.jobs()
        left = [c for n in names for c in podman("ps", "--all", "--quiet", "--filter", f"label={CAPSULE_LABEL}={n}")
                .stdout.split()]
        assert left == []
    finally:
        for made in sorted({i.removeprefix("sha256:") for i in ids} - before):  # what this test loaded, only
            podman("rmi", "--force", made)
