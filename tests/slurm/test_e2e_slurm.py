"""Batches through the real one-node Slurm cluster, against the real Docker engine, from real captures.

Each test proves what its name says: the same per-capsule verdicts as the local ``run_task``; Slurm's
``--time`` kill reported as TIMEOUT with the node; Ctrl-C cancelling the array with no job and no container
left; a node whose engine lacks the image loading it from an archive on the shared filesystem.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from replay.adapters.slurm import SlurmBackend
from replay.core.batch_task import VerifyOptions, run_task
from replay.core.node_task import ImageSources
from replay.core.remote_batch import RemoteGroup, payloads, run_remote
from tests.e2e.conftest import BASE, CAPSULE_LABEL, Project, new_project, track_capsule
from tests.slurm.cluster import Cluster

HOST = socket.gethostname()


def capture_as(project: Project, name: str) -> Path:
    """Capture the project's scenario once more under another name (the same code: an identical experiment)."""
    args = list(project.scenario["capture"])
    result = project.replay("capture", "--name", name, "--base", BASE, *args)
    assert result.code == 0, result.stderr
    capsule = project.root / ".replay" / name
    track_capsule(capsule)
    return capsule


def captured(parent: Path, scenario: str, venv: Path) -> Project:
    project = new_project(parent, scenario, venv)
    result = project.capture()
    assert result.code == 0, result.stderr
    return project


def options(project: Project, **extra: Any) -> VerifyOptions:
    return VerifyOptions(cwd=str(project.root), **extra)


@pytest.fixture(scope="module")
def projects(tmp_path_factory, engine, train_venv) -> dict[str, Any]:
    parent = tmp_path_factory.mktemp("slurm-batch")
    seeded = captured(parent, "seeded", train_venv)
    twin = capture_as(seeded, f"{seeded.name}-twin")
    return {"seeded": seeded, "twin": twin, "unseeded": captured(parent, "unseeded", train_venv),
            "failing": captured(parent, "failing", train_venv)}


def batch_groups(projects: dict[str, Any]) -> list[RemoteGroup]:
    seeded = projects["seeded"]
    return [
        RemoteGroup([seeded.capsule], options=options(seeded)),
        RemoteGroup([projects["twin"]], options=options(seeded)),
        RemoteGroup([projects["unseeded"].capsule], options=options(projects["unseeded"])),
        RemoteGroup([projects["failing"].capsule], options=options(projects["failing"])),
    ]


def no_containers(engine: Any, *names: str) -> list[str]:
    return [c["Id"][:12] for n in names for c in engine.api.containers(all=True, filters={"label": f"{CAPSULE_LABEL}={n}"})]


def test_a_batch_through_slurm_gives_the_same_verdicts_as_local_run_task(projects, engine, slurm_cluster: Cluster,
                                                                          tmp_path) -> None:
    groups = batch_groups(projects)
    local = [r for spec in payloads(groups, VerifyOptions(cwd="/")) for r in run_task(spec.payload, engine)["reports"]]
    backend = SlurmBackend(tmp_path / "work", partition=slurm_cluster.partition, poll_s=0.5)
    seen: list[tuple[int, str, str]] = []
    remote = run_remote(backend, groups, VerifyOptions(cwd="/"), jobs=2,
                        on_status=lambda i, g, s: seen.append((i, s.state.value, s.node)), poll_s=0.5)
    verdicts = [(r["capsule"], r["verdict"], r["exit_code"]) for r in remote]
    assert verdicts == [(r["capsule"], r["verdict"], r["exit_code"]) for r in local]
    assert [v[1:] for v in verdicts] == [("identical", 0), ("identical", 0), ("diverged", 1), ("error", 4)]
    # Each replay ran on the node, which recorded its own host facts; the live table saw it run there.
    ran = [r for r in remote if r["verdict"] != "error"]
    assert all(r["run"]["node"] == HOST and r["hosts"]["verify"]["docker_version"] for r in ran)
    assert {(i, "running", HOST) for i in range(4)} <= set(seen) and {(i, "done", HOST) for i in range(4)} <= set(seen)
    assert not slurm_cluster.jobs()


def test_a_task_killed_by_the_slurm_time_limit_is_reported_as_timeout(engine, train_venv, slurm_cluster: Cluster,
                                                                       tmp_path) -> None:
    sleeper = captured(tmp_path, "sleeper", train_venv)
    backend = SlurmBackend(tmp_path / "work", partition=slurm_cluster.partition, time_limit="1", poll_s=1)
    t0 = time.monotonic()
    [report] = run_remote(backend, [RemoteGroup([sleeper.capsule])], options(sleeper), jobs=1, poll_s=1)
    took = time.monotonic() - t0
    print(f"\n--time 1 kill reported after {took:.1f} s")
    assert (report["verdict"], report["exit_code"]) == ("error", 4)
    assert "TIMEOUT" in report["error"] and f"on node {HOST}" in report["error"]
    assert report["run"]["backend_state"] == "timeout" and report["run"]["node"] == HOST
    assert not slurm_cluster.jobs()
    assert not no_containers(engine, sleeper.name)  # the node's replay removed its container on SIGTERM


def test_ctrl_c_cancels_the_array_and_leaves_no_job_or_container(engine, train_venv, slurm_cluster: Cluster,
                                                                   tmp_path) -> None:
    sleeper = captured(tmp_path, "sleeper", train_venv)
    proc = subprocess.Popen([sys.executable, "-m", "replay", "verify", str(sleeper.capsule), "--backend", "slurm",
                             "--partition", slurm_cluster.partition, "--workdir", str(tmp_path / "work")],
                            cwd=sleeper.root, env=sleeper.env(SLURM_CONF=str(slurm_cluster.conf)),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not no_containers(engine, sleeper.name):
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.5)
    assert no_containers(engine, sleeper.name), "the replay never started on the node"
    assert any("RUNNING" in line for line in slurm_cluster.jobs())
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=90)
    assert proc.returncode == 130, err
    assert "cancelled" in err and "slurm job" in err
    assert not slurm_cluster.jobs()
    deadline = time.monotonic() + 30  # the node's replay removes its container as SIGTERM stops it
    while time.monotonic() < deadline and no_containers(engine, sleeper.name):
        time.sleep(0.5)
    assert not no_containers(engine, sleeper.name)


def test_the_cli_verifies_a_folder_of_capsules_through_slurm(projects, slurm_cluster: Cluster, tmp_path) -> None:
    seeded = projects["seeded"]
    report = tmp_path / "batch.json"
    result = seeded.replay("verify", ".replay", "--backend", "slurm", "--partition", slurm_cluster.partition,
                           "--jobs", "2", "--report", str(report), SLURM_CONF=str(slurm_cluster.conf))
    assert result.code == 0, result.stderr
    document = json.loads(report.read_text())
    assert document["schema"] == "replay.batch-report" and document["backend"] == "slurm"
    assert {r["verdict"] for r in document["reports"]} == {"identical"} and len(document["reports"]) >= 2
    assert "identical" in result.stdout and HOST in result.stdout
    assert (seeded.root / ".replay" / ".replay-work").is_dir()  # the default work folder: beside the capsules


def test_a_node_whose_engine_lacks_the_image_loads_it_from_an_archive(projects, engine, slurm_cluster: Cluster,
                                                                      tmp_path) -> None:
    seeded = projects["seeded"]
    capsule = capture_as(seeded, f"{seeded.name}-bundled")
    image_id = json.loads((capsule / "replay.json").read_text())["image"]["id"]
    archive = tmp_path / "shared" / "image.tar"
    archive.parent.mkdir()
    with archive.open("wb") as f:
        for chunk in engine.save(image_id):
            f.write(chunk)
    engine.api.remove_image(image_id, force=True)  # this test's own capture: the node must load it back
    assert engine.image(image_id) is None
    backend = SlurmBackend(tmp_path / "work", partition=slurm_cluster.partition, poll_s=0.5)
    group = RemoteGroup([capsule], sources=ImageSources(archive=str(archive)), options=options(seeded))
    [report] = run_remote(backend, [group], VerifyOptions(cwd="/"), jobs=1, poll_s=0.5)
    assert (report["verdict"], report["exit_code"]) == ("identical", 0), report.get("error")
    assert engine.image(image_id) is not None
