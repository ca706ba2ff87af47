"""Batches through the real one-node Slurm cluster, against the real Docker engine, from real captures.

Each test proves what its name says: the same batch report (verdicts, groups, counts) through Slurm as
through the local backend, by the one batch path (``run_batch``); Slurm's ``--time`` kill reported as TIMEOUT
with the node; Ctrl-C cancelling the array with no job and no container left; the CLI writing the typed batch
report, JUnit, Markdown and HTML; a node whose engine lacks the image loading it from a bundle TARGET.
"""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from replay import factory
from replay.adapters.slurm import SlurmBackend
from replay.core.batch.plan import Plan, PlannedCapsule, make_plan
from replay.core.batch.report import build_batch_report
from replay.core.batch.run import BatchOptions, run_batch
from replay.core.verify.options import ReplayOptions
from replay.manifest import load
from tests.e2e.conftest import BASE, CAPSULE_LABEL, Project, new_project, track_capsule
from tests.slurm.cluster import Cluster

HOST = socket.gethostname()
# What may differ between two runs of one batch: clocks, durations, and where it ran.
VOLATILE = {"timings", "hosts", "duration_s", "start_s", "node", "started", "verified_at", "created",
            "backend", "log_tail"}


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


@pytest.fixture(scope="module")
def projects(tmp_path_factory, engine, train_venv) -> dict[str, Any]:
    parent = tmp_path_factory.mktemp("slurm-batch")
    seeded = captured(parent, "seeded", train_venv)
    twin = capture_as(seeded, f"{seeded.name}-twin")
    return {"seeded": seeded, "twin": twin, "unseeded": captured(parent, "unseeded", train_venv),
            "failing": captured(parent, "failing", train_venv)}


def plan_of(items: list[tuple[Path, Project]], jobs: int) -> Plan:
    """Capsules of several projects in one plan, each with its own project's data (as --data would say)."""
    caps = []
    for i, (path, project) in enumerate(items):
        m = load(path)
        caps.append(PlannedCapsule(i, path.name, path, str(path), m, None, {r: project.root / r for r in m.data.roots}))
    return make_plan(caps, Path("/"), jobs=jobs)


def the_batch(projects: dict[str, Any]) -> list[tuple[Path, Project]]:
    seeded = projects["seeded"]
    return [(seeded.capsule, seeded), (projects["twin"], seeded), (projects["unseeded"].capsule, projects["unseeded"]),
            (projects["failing"].capsule, projects["failing"])]


def stable(value: Any) -> Any:
    """The report without what VOLATILE names, at any depth. A diverged capsule's replayed values are a new draw
    on every replay (the unseeded one has no seed), so of it what stays is what every draw gives: each output and
    its status, the metrics' names, and the kinds of its findings. Whether a metric moved is the draw's (200
    samples' accuracy lands on the reference's value now and then: its metrics file then differs only in its
    timestamp, which adds a noise finding, and the seed finding names one fewer value)."""
    if isinstance(value, dict) and value.get("verdict") == "diverged" and isinstance(value.get("report"), dict):
        report = value["report"]
        value = {**value, "explanation": None, "report": {
            **report, "outputs": [(o["path"], o["status"]) for o in report["outputs"]],
            "metrics": [m["name"] for m in report["metrics"]],
            "diagnosis": [(f["kind"], f["likely"]) for f in report["diagnosis"] if f["kind"] != "noise"]}}
    if isinstance(value, dict):
        return {k: stable(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [stable(v) for v in value]
    return value


def differences(a: Any, b: Any, where: str = "") -> list[str]:
    """Where two JSON values differ, as paths with both values (an assertion message that says what)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(set(a) | set(b)) for d in differences(a.get(k), b.get(k), f"{where}.{k}")]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in differences(x, y, f"{where}[{i}]")]
    return [] if a == b else [f"{where}: {str(a)[:200]!r} != {str(b)[:200]!r}"]


def no_containers(engine: Any, *names: str) -> list[str]:
    return [c["Id"][:12] for n in names for c in engine.api.containers(all=True, filters={"label": f"{CAPSULE_LABEL}={n}"})]


def test_the_same_batch_through_slurm_and_locally_gives_the_same_batch_report(projects, engine, slurm_cluster: Cluster,
                                                                              tmp_path) -> None:
    items = the_batch(projects)
    local = build_batch_report(run_batch(plan_of(items, 2), BatchOptions(ReplayOptions(Path("/"))), engine,
                                         factory.backend("local", engine=engine)))
    backend = SlurmBackend(tmp_path / "work", partition=slurm_cluster.partition, poll_s=0.5)
    seen: set[tuple[str, str, str]] = set()
    result = run_batch(plan_of(items, 2), BatchOptions(ReplayOptions(Path("/")), poll_s=0.2), None, backend,
                       observe=lambda rows: seen.update((r.id, r.phase.value, r.node) for r in rows))
    slurm = build_batch_report(result)
    verdicts = [(c.name, c.verdict, c.exit_code) for c in slurm.capsules]
    assert verdicts == [(c.name, c.verdict, c.exit_code) for c in local.capsules]
    assert [v[1:] for v in verdicts] == [("identical", 0), ("identical", 0), ("diverged", 1), ("error", 4)]
    assert not differences(stable(slurm.to_dict()), stable(local.to_dict()))  # the whole report, bar clocks, hosts
    for report in (slurm, local):  # what the draw cannot change: the unseeded capsule is blamed on its seed
        assert report.capsules[2].report is not None
        assert [f.likely for f in report.capsules[2].report.diagnosis if f.kind == "seed"] == [True]
    assert (slurm.plan.backend, local.plan.backend) == ("slurm", "local")
    # Each replay ran on the node, which recorded its own host facts.
    ran = [c for c in slurm.capsules if c.verdict != "error"]
    assert len(ran) == 3 and all(c.node == HOST and c.report and c.report.hosts.verify is not None
                                 and c.report.hosts.verify.docker_version for c in ran)
    experiments = {c.experiment for c in slurm.capsules}
    assert len(experiments) == 3 and slurm.plan.replays_run == 3  # the twin rode on its pair's replay
    # Only the end is certain: a fast task may finish between two polls, so "running" may never be seen.
    assert {(e, "done", HOST) for e in experiments} <= seen
    assert not slurm_cluster.jobs()


def test_a_task_killed_by_the_slurm_time_limit_is_reported_as_timeout(engine, train_venv, slurm_cluster: Cluster,
                                                                       tmp_path) -> None:
    sleeper = captured(tmp_path, "sleeper", train_venv)
    backend = SlurmBackend(tmp_path / "work", partition=slurm_cluster.partition, time_limit="1", poll_s=1)
    t0 = time.monotonic()
    result = run_batch(plan_of([(sleeper.capsule, sleeper)], 1), BatchOptions(ReplayOptions(Path("/"))), None, backend)
    print(f"\n--time 1 kill reported after {time.monotonic() - t0:.1f} s")
    report = result.reports[0]
    assert (report.verdict, report.exit_code) == ("error", 4)
    assert "TIMEOUT" in (report.error or "") and f"on node {HOST}" in (report.error or "")
    assert report.run is not None and report.run.backend_state == "timeout" and report.run.node == HOST
    assert (result.rows[0].backend_state, result.rows[0].node) == ("timeout", HOST)
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
    assert "cancelled slurm job" in err, err
    assert not slurm_cluster.jobs()
    deadline = time.monotonic() + 30  # the node's replay removes its container as SIGTERM stops it
    while time.monotonic() < deadline and no_containers(engine, sleeper.name):
        time.sleep(0.5)
    assert not no_containers(engine, sleeper.name)


def test_the_cli_verifies_a_folder_of_capsules_through_slurm_into_the_same_reports(projects, slurm_cluster: Cluster,
                                                                                   tmp_path) -> None:
    seeded = projects["seeded"]
    files = {kind: tmp_path / f"batch.{kind}" for kind in ("json", "xml", "md", "html")}
    result = seeded.replay("verify", ".replay", "--backend", "slurm", "--partition", slurm_cluster.partition,
                           "--jobs", "2", "--report", str(files["json"]), "--junit", str(files["xml"]),
                           "--markdown", str(files["md"]), "--html", str(files["html"]),
                           SLURM_CONF=str(slurm_cluster.conf))
    assert result.code == 0, result.stderr
    document = json.loads(files["json"].read_text())
    assert document["schema"] == "replay.batch-report" and document["plan"]["backend"] == "slurm"
    assert {c["verdict"] for c in document["capsules"]} == {"identical"} and len(document["capsules"]) >= 2
    assert {c["node"] for c in document["capsules"]} == {HOST}
    assert ET.parse(files["xml"]).getroot().tag == "testsuites"
    assert "reproduced" in files["md"].read_text() and "<html" in files["html"].read_text()
    assert "identical" in result.stdout and HOST in result.stdout  # the verdict table names the node
    assert "done" in result.stderr  # the live table's last state
    assert (seeded.root / ".replay" / ".replay-work").is_dir()  # the default work folder: beside the capsules
    local = seeded.replay("verify", ".replay", "--jobs", "2", "--json")
    assert local.code == 0, local.stderr
    assert not differences(stable(json.loads(local.stdout)), stable(document))


def test_a_node_whose_engine_lacks_the_image_loads_it_from_the_bundle_target(projects, engine, slurm_cluster: Cluster,
                                                                            tmp_path) -> None:
    seeded = projects["seeded"]
    name = f"{seeded.name}-bundled"
    capsule = capture_as(seeded, name)
    image_id = json.loads((capsule / "replay.json").read_text())["image"]["id"]
    bundle = tmp_path / "shared" / "exp.replay"
    bundle.parent.mkdir()
    packed = seeded.replay("pack", str(capsule), "-o", str(bundle))
    assert packed.code == 0, packed.stderr
    shutil.rmtree(capsule)  # only the bundle holds it now
    for target in (str(bundle), f"{bundle}#{name}"):
        engine.api.remove_image(image_id, force=True)  # this test's own capture: the node must load it back
        assert engine.image(image_id) is None
        report = tmp_path / "bundle.json"
        result = seeded.replay("verify", target, "--backend", "slurm", "--partition", slurm_cluster.partition,
                               "--workdir", str(tmp_path / "work"), "--report", str(report),
                               SLURM_CONF=str(slurm_cluster.conf))
        assert result.code == 0, result.stderr
        [line] = json.loads(report.read_text())["capsules"]
        assert (line["name"], line["verdict"], line["node"]) == (f"{bundle}#{name}", "identical", HOST)
        assert line["report"]["image_id"] == image_id
        assert engine.image(image_id) is not None  # loaded by the node's task, from the bundle
    assert not list((tmp_path / "work").glob("targets-*"))  # the unpacked copies are gone with the batch
