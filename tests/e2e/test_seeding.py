"""Seeding against the real engine: unseeded examples diverge, and `--auto-seed` makes them identical unchanged.

The PyTorch image is the slow one (a 190 MB wheel installed on 2 cores): its test makes exactly the two
captures the claim needs, and the second reuses the first one's package layers.
"""

from __future__ import annotations

import json
from typing import Any

from tests.e2e.conftest import Project


def verdict_of(project: Project) -> tuple[int, str, dict[str, Any]]:
    verified = project.replay("verify", str(project.capsule), "--json")
    report = verified.json()
    return verified.code, report["verdict"], report


def manifest_of(project: Project) -> dict[str, Any]:
    return json.loads((project.capsule / "replay.json").read_text())


def diverges_plain_and_is_identical_with_auto_seed(project: Project, timeout: float = 600) -> None:
    plain = project.capture(timeout=timeout)
    assert plain.code == 0, plain.stderr
    assert manifest_of(project)["command"]["auto_seed"] is False
    code, verdict, report = verdict_of(project)
    assert (code, verdict) == (1, "diverged"), report["outputs"]
    assert any(o["status"] == "differs" for o in report["outputs"] if o["path"].endswith(".npy"))

    seeded = project.capture("--auto-seed", "--force", timeout=timeout)
    assert seeded.code == 0, seeded.stderr
    command = manifest_of(project)["command"]
    assert command["auto_seed"] is True and command["seed"] == 0  # no --seed: the documented default
    code, verdict, report = verdict_of(project)
    assert (code, verdict) == (0, "identical"), report["outputs"]
    assert {o["status"] for o in report["outputs"]} == {"identical"}


def test_unseeded_numpy_example_diverges_without_auto_seed_and_is_identical_with_it(make_project) -> None:
    project = make_project("numpy-gd")
    diverges_plain_and_is_identical_with_auto_seed(project)
    shown = project.replay("show", str(project.capsule))
    assert shown.code == 0 and "auto-seed" in shown.stdout


def test_unseeded_torch_example_diverges_without_auto_seed_and_is_identical_with_it(make_torch_project) -> None:
    project = make_torch_project("torch-cpu")
    # Installing torch into the image is minutes on 2 busy cores; the second capture reuses those layers.
    diverges_plain_and_is_identical_with_auto_seed(project, timeout=1800)
    packages = manifest_of(project)["python"]["packages"]
    assert any(p["name"] == "torch" and p["version"].startswith("2.13.0") for p in packages)


def test_auto_seed_takes_the_given_seed_and_another_seed_gives_other_outputs(make_project) -> None:
    project = make_project("numpy-gd")
    assert project.capture("--auto-seed", "--seed", "11").code == 0
    assert manifest_of(project)["command"]["seed"] == 11
    first = (project.root / "out" / "params.npy").read_bytes()
    code, verdict, _ = verdict_of(project)
    assert (code, verdict) == (0, "identical")

    assert project.capture("--auto-seed", "--seed", "12", "--force").code == 0
    assert (project.root / "out" / "params.npy").read_bytes() != first  # the seed, not a constant, drives the run


def test_a_script_calling_seed_everything_runs_in_the_image_without_replay_installed(make_replay_api_project) -> None:
    project = make_replay_api_project("seed-api")
    captured = project.capture()
    assert captured.code == 0, captured.stderr
    manifest = manifest_of(project)
    assert manifest["python"]["replay_api"] is True
    assert all(p["name"].lower() != "replay-capsule" for p in manifest["python"]["packages"])  # never locked
    seeding = json.loads((project.root / "out" / "seeding.json").read_text())
    assert seeding["seed"] == 5 and seeding["source"] == "REPLAY_SEED"
    assert {"random", "numpy"} <= set(seeding["seeded"])

    code, verdict, report = verdict_of(project)

    assert (code, verdict) == (0, "identical"), report
