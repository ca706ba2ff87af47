"""A batch, `check` and a capture as an ordinary user on rootless Podman (issue 21), by the real `replay`.

Root (the test) makes one user for the module (``tests/e2e/rootless.py``), captures the batch scenario on
Docker, and hands the user a copy of the capsules and their data, with the capsules' images loaded into the
user's own Podman storage (``docker save | podman load``: the same image IDs). No Podman service runs: replay
starts one for each command and stops it. What is proven each time: the verdicts Docker gives, the engine
named in the reports, no container and no process of the user's left, nothing left in the user's TMPDIR
(the replays' outputs, written by the container as the user, are removed by replay), and every file of the
user's work folder the user's own, removable by the user.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e import rootless
from tests.e2e.conftest import BASE, SCENARIOS, Project, new_project
from tests.e2e.test_batch import capture_as

pytestmark = pytest.mark.podman

# name -> (seed, mode): a1 and a2 are one experiment (replayed once), div differs on every run.
CAPTURES = {"a1": (1, "ok"), "a2": (1, "ok"), "div": (1, "diverge")}
EXPECTED = {"a1": "identical", "a2": "identical", "div": "diverged"}
CGROUP_V1 = not Path("/sys/fs/cgroup/cgroup.controllers").exists()


@pytest.fixture(scope="module")
def reviewer() -> Iterator[rootless.Reviewer]:
    rootless.require()
    with rootless.reviewer_user() as user:
        yield user
    assert rootless.gone(user), f"user {user.name} is still in /etc/passwd"


@pytest.fixture(scope="module")
def captured(tmp_path_factory, engine, train_venv, reviewer) -> dict[str, Any]:
    """The batch scenario captured on Docker; the capsules' images and the base in the user's Podman."""
    project = new_project(tmp_path_factory.mktemp("podbatch"), "batch", train_venv)
    suffix = project.name.rsplit("-", 1)[-1]
    names = {short: f"{short}-{suffix}" for short in CAPTURES}
    ids = [json.loads((capture_as(project, names[s], seed, "data/a", mode) / "replay.json").read_text())["image"]["id"]
           for s, (seed, mode) in CAPTURES.items()]
    rootless.load_images(reviewer, BASE, *sorted(set(ids)))
    return {"project": project, "names": names}


def hand_over(reviewer: rootless.Reviewer, project: Project, name: str) -> tuple[Path, Path]:
    """A work folder in the user's home with a copy of the capsules and the data, and an empty TMPDIR."""
    work, tmp = reviewer.home / name, reviewer.home / f"{name}-tmp"
    shutil.copytree(project.root / ".replay", work / ".replay")
    shutil.copytree(project.root / "data", work / "data")
    tmp.mkdir()
    reviewer.give(work)
    reviewer.give(tmp)
    return work, tmp


def assert_left_clean(reviewer: rootless.Reviewer, work: Path, tmp: Path) -> None:
    assert reviewer.podman("ps", "--all", "--quiet").stdout.strip() == ""  # no container left
    assert rootless.processes_of(reviewer) == []  # the Podman service replay started is stopped
    assert rootless.entries(tmp) == []  # the replays' output folders removed
    owners = {(p.lstat().st_uid, p.lstat().st_gid) for p in [work, *work.rglob("*")]}
    assert owners == {(reviewer.uid, reviewer.gid)}, owners  # the user's own files, no subordinate uid
    assert reviewer.run("rm", "-r", str(work)).returncode == 0 and not work.exists()


def test_a_batch_as_an_ordinary_user_on_rootless_podman_gives_dockers_verdicts(captured, reviewer) -> None:
    project, names = captured["project"], captured["names"]
    docker = project.replay("verify", ".replay", "--jobs", "2", "--json")
    assert docker.code == 1, docker.stderr  # div diverged
    work, tmp = hand_over(reviewer, project, "batch")

    result = reviewer.replay("verify", ".replay", "--jobs", "2", "--json", cwd=work, TMPDIR=str(tmp))

    assert result.returncode == 1, result.stderr
    doc, reference = json.loads(result.stdout), docker.json()
    outcomes = {c["name"]: c["outcome"] for c in doc["capsules"]}
    assert outcomes == {c["name"]: c["outcome"] for c in reference["capsules"]}  # Docker's verdicts
    assert outcomes == {names[s]: v for s, v in EXPECTED.items()}
    assert doc["plan"]["jobs"] == 2 and (doc["plan"]["experiments"], doc["plan"]["replays_run"]) == (2, 2)
    assert {c["experiment"] for c in doc["capsules"] if c["name"] in (names["a1"], names["a2"])} == {
        c["experiment"] for c in reference["capsules"] if c["name"] == names["a1"]}  # the pair replayed once
    hosts = [c["report"]["hosts"] for c in doc["capsules"]]
    assert {(h["capture"]["engine"], h["verify"]["engine"]) for h in hosts} == {("docker", "podman (rootless)")}
    if CGROUP_V1:
        assert all("memory" in c["report"]["run"]["unenforced"] for c in doc["capsules"])
    assert_left_clean(reviewer, work, tmp)


def test_check_as_an_ordinary_user_on_rootless_podman_tells_stable_from_unstable(captured, reviewer) -> None:
    project, names = captured["project"], captured["names"]
    work, tmp = hand_over(reviewer, project, "check")

    stable = reviewer.replay("check", f".replay/{names['a1']}", "--runs", "2", "--vary", "cpus", "--json",
                             cwd=work, TMPDIR=str(tmp))
    unstable = reviewer.replay("check", f".replay/{names['div']}", "--runs", "2", "--json", cwd=work, TMPDIR=str(tmp))

    assert stable.returncode == 0, stable.stderr
    report = json.loads(stable.stdout)
    assert report["stable"] is True and report["compared"] == ["capture", "run 1", "run 2"]
    assert [r["verdict"] for r in report["runs"]] == ["identical", "identical"]
    [cpus] = report["variations"]
    assert cpus["name"] == "cpus" and cpus["error"] is None and cpus["changed_outputs"] == []
    if CGROUP_V1:  # no cgroup of its own: the CPU pin and the limits are said not applied, never hidden
        assert "memory" in report["unenforced"]
        assert "only the thread counts changed" in cpus["note"], cpus
    assert unstable.returncode == 1, unstable.stderr
    report = json.loads(unstable.stdout)
    assert report["stable"] is False
    assert [(o["path"], o["status"]) for o in report["outputs"]] == [("out/result.txt", "unstable")]
    assert_left_clean(reviewer, work, tmp)


def test_a_capture_as_an_ordinary_user_on_rootless_podman_verifies_identical(captured, reviewer) -> None:
    """The user's own project, captured and verified on rootless Podman (the base loaded into its storage)."""
    root, tmp = reviewer.home / "project", reviewer.home / "project-tmp"
    shutil.copytree(SCENARIOS / "batch", root, ignore=shutil.ignore_patterns("scenario.json", "__pycache__"))
    (root / ".gitignore").write_text(".venv/\ndata/\nout/\n.replay/\n")
    tmp.mkdir()
    reviewer.give(root)
    reviewer.give(tmp)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    for argv in (["git", "init", "-q"], [*git, "add", "-A"], [*git, "commit", "-q", "-m", "s"],
                 [rootless.SYSTEM_PYTHON, "prepare.py"], [rootless.SYSTEM_PYTHON, "-m", "venv", ".venv"]):
        done = reviewer.run(*argv, cwd=root)
        assert done.returncode == 0, done.stderr
    name = f"e2e-rootless-{reviewer.name}"
    path = f"{root / '.venv' / 'bin'}:{reviewer.env()['PATH']}"  # the user's virtualenv is the active one

    capture = reviewer.replay("capture", "--name", name, "--base", BASE, "--run", "--data", "data/a", "--output",
                              "out/result.txt", "--seed", "3", "--", "python", "train.py", "data/a", "ok",
                              cwd=root, PATH=path, TMPDIR=str(tmp))
    assert capture.returncode == 0, capture.stderr
    manifest = json.loads((root / ".replay" / name / "replay.json").read_text())
    assert manifest["host"]["engine"] == "podman (rootless)"
    listed = reviewer.podman("image", "inspect", "--format", "{{.Id}}", manifest["image"]["id"])
    assert listed.returncode == 0 and manifest["image"]["id"].endswith(listed.stdout.strip())
    verified = reviewer.replay("verify", f".replay/{name}", "--json", cwd=root, TMPDIR=str(tmp))

    assert verified.returncode == 0, verified.stderr
    report = json.loads(verified.stdout)
    assert report["verdict"] == "identical" and report["image_id"] == manifest["image"]["id"]
    assert (report["hosts"]["capture"]["engine"], report["hosts"]["verify"]["engine"]) == ("podman (rootless)",) * 2
    subprocess.run(["rm", "-rf", str(root / ".venv")], check=True)  # made by the user: not the replay's to judge
    assert_left_clean(reviewer, root, tmp)
