"""Verify without root: an ordinary user verifies a bundle and a registry reference with rootless Podman.

Root (the test) makes the user (subordinate ids, its own XDG_RUNTIME_DIR) and removes it with its files at
the end. The capsule is captured on the Docker engine; the reviewer has nothing but the bundle (or the
reference) and the data, and no Podman service running: replay starts one for the command and stops it.
What is proven: the same verdict (identical) under the same image ID, no container and no process of the
reviewer's left, output files that belong to the reviewer (who removes them), and no file outside the
output folder changed (a sentinel checksum of the reviewer's work folder). The isolation probes and the
hostile suite run on both engines through conftest's ``verifier`` fixture (test_verify.py, test_hostile.py).
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
from tests.e2e.conftest import BASE, new_project, track_image
from tests.e2e.test_share import registry  # noqa: F401 - the module's registry fixture, shared

pytestmark = pytest.mark.podman


@pytest.fixture(scope="module")
def reviewer() -> Iterator[rootless.Reviewer]:
    rootless.require()
    with rootless.reviewer_user() as user:
        yield user


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory, engine: Any, train_venv: Path) -> Any:
    project = new_project(tmp_path_factory.mktemp("podman"), "seeded", train_venv)
    result = project.capture()
    assert result.code == 0, result.stderr
    return project


def work_folder(reviewer: rootless.Reviewer, name: str) -> Path:
    folder = reviewer.home / name
    folder.mkdir()
    (folder / "sentinel.txt").write_text("the verify must not change this\n")
    return folder


def verify_as_reviewer(reviewer: rootless.Reviewer, work: Path, *args: str) -> dict[str, Any]:
    """``replay verify ARGS --keep out --json`` as the reviewer in ``work``; the checks every case shares."""
    reviewer.give(work)
    before = rootless.tree_digest(work)
    result = reviewer.replay("verify", *args, "--keep", "out", "--json", cwd=work)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["verdict"] == "identical", report
    assert report["hosts"]["verify"]["engine"] == "podman (rootless)"
    if not Path("/sys/fs/cgroup/cgroup.controllers").exists():  # cgroup v1: no limits for an ordinary user
        assert "memory" in report["run"]["unenforced"] and "pids" in report["run"]["unenforced"], report["run"]
    assert reviewer.podman("ps", "--all", "--quiet").stdout.strip() == ""  # no container left
    assert rootless.processes_of(reviewer) == []  # the Podman service replay started is stopped
    out = work / "out"
    owners = {(p.lstat().st_uid, p.lstat().st_gid) for p in [out, *out.rglob("*")]}
    assert owners == {(reviewer.uid, reviewer.gid)}, owners  # keep-id: the reviewer's files, no subuid
    assert any(p.is_file() for p in out.rglob("*"))
    assert reviewer.run("rm", "-r", str(out), cwd=work).returncode == 0 and not out.exists()
    assert rootless.tree_digest(work) == before  # nothing outside the output folder changed
    return report


def test_a_bundle_captured_on_docker_verifies_as_an_ordinary_user(seeded, reviewer, tmp_path) -> None:
    image_id = json.loads((seeded.capsule / "replay.json").read_text())["image"]["id"]
    work = work_folder(reviewer, "bundle")
    packed = seeded.replay("pack", str(seeded.capsule), "-o", str(work / "digits.replay"), "--with-data")
    assert packed.code == 0, packed.stderr

    report = verify_as_reviewer(reviewer, work, "digits.replay")

    assert report["image_id"] == image_id  # Docker's image ID is Podman's: the same image
    assert report["hosts"]["capture"]["engine"] == "docker"
    listed = reviewer.podman("image", "inspect", "--format", "{{.Id}}", image_id)
    assert listed.returncode == 0 and image_id.endswith(listed.stdout.strip())


def test_a_registry_reference_verifies_as_an_ordinary_user(seeded, reviewer, registry, engine) -> None:  # noqa: F811
    image_id = json.loads((seeded.capsule / "replay.json").read_text())["image"]["id"]
    pushed = seeded.replay("push", str(seeded.capsule), f"{registry}/podman/{seeded.name}", "--json")
    assert pushed.code == 0, pushed.stderr
    track_image(image_id)
    ref = pushed.json()["ref"]
    # The local registry speaks plain HTTP: the reviewer says so in its own Podman configuration.
    conf = reviewer.home / ".config" / "containers"
    conf.mkdir(parents=True, exist_ok=True)
    (conf / "registries.conf").write_text(f'[[registry]]\nlocation = "{registry}"\ninsecure = true\n')
    reviewer.give(reviewer.home / ".config")
    reviewer.podman("rmi", "--force", image_id)  # pulled, not left over from another test
    work = work_folder(reviewer, "registry")
    shutil.copytree(seeded.root / "data", work / "data")

    report = verify_as_reviewer(reviewer, work, ref)

    assert report["image_id"] == image_id
    assert "pulled by digest" in report["provenance"]


def test_engine_flag_names_an_engine_replay_knows(reviewer) -> None:
    result = reviewer.replay("--engine", "lxc", "verify", "nowhere.replay")
    assert result.returncode == 2
    assert "--engine lxc is not an engine replay knows" in result.stderr and "Traceback" not in result.stderr


def podman_image_id(ref: str) -> str:
    found = subprocess.run(["podman", "image", "inspect", "--format", "{{.Id}}", ref], capture_output=True, text=True)
    got = found.stdout.strip() if found.returncode == 0 else ""
    return f"sha256:{got}" if got and not got.startswith("sha256:") else got  # the CLI leaves the prefix out


def test_a_capsule_captured_on_podman_verifies_on_docker(make_project, engine, reviewer, tmp_path) -> None:
    """The other direction, as root: capture and pack on (rootful) Podman, verify the bundle on Docker. Podman
    gets the base from Docker (`docker save | podman load`); what the test added to Podman is removed."""
    before = podman_images()
    if not podman_image_id(BASE):
        subprocess.run(f"docker save {BASE} | podman load", shell=True, check=True, capture_output=True)
    project = make_project("seeded")
    image_id = ""
    try:
        captured = project.replay("capture", "--name", project.name, "--base", BASE, *project.scenario["capture"],
                                  REPLAY_ENGINE="podman")
        assert captured.code == 0, captured.stderr
        manifest = json.loads((project.capsule / "replay.json").read_text())
        image_id = manifest["image"]["id"]
        assert manifest["host"]["engine"] == "podman" and podman_image_id(image_id) == image_id
        packed = project.replay("pack", str(project.capsule), "-o", str(tmp_path / "p.replay"), "--with-data",
                                REPLAY_ENGINE="podman")
        assert packed.code == 0, packed.stderr
        assert engine.image(image_id) is None  # Docker never had it: the verify loads it from the bundle

        verified = project.replay_in(tmp_path, "verify", str(tmp_path / "p.replay"), "--json", REPLAY_ENGINE="docker")

        assert verified.code == 0, verified.stderr
        report = verified.json()
        assert report["verdict"] == "identical" and report["image_id"] == image_id  # the same ID on Docker
        assert (report["hosts"]["capture"]["engine"], report["hosts"]["verify"]["engine"]) == ("podman", "docker")
    finally:
        track_image(image_id)  # Docker's copy
        for made in sorted(podman_images() - before):  # the capsule, its stages, the base when it was loaded
            subprocess.run(["podman", "rmi", "--force", made], capture_output=True)


def podman_images() -> set[str]:
    listed = subprocess.run(["podman", "images", "--all", "--quiet", "--no-trunc"], capture_output=True, text=True)
    return set(listed.stdout.split())
