"""End-to-end fixtures: a real Docker engine, a real training virtualenv, real git projects.

Under CI=true a missing engine or base image is a failure, never a skip. Every image a test session makes
(capsules named e2e-*, and their package-stage images) is removed when the session ends.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
SCENARIOS = Path(__file__).parent / "scenarios"
BASE = os.environ.get("REPLAY_BASE", "replay-base/python:3.11-bookworm")
TRAIN_REQUIREMENTS = REPO / "demo" / "requirements.txt"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/e2e" in str(item.fspath):
            item.add_marker(pytest.mark.engine)


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI must run the end-to-end tests: `make test` starts the engine and builds the base)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def engine() -> Iterator[Any]:
    from replay.adapters.docker_engine import DockerEngine
    from replay.errors import ReplayError

    eng = DockerEngine()
    try:
        eng.version()
    except ReplayError as exc:
        _unavailable(exc.one_line())
    if eng.image(BASE) is None:
        _unavailable(f"base image {BASE} is missing: run `make base`")
    before = {img["Id"] for img in eng.api.images(all=True)}
    yield eng
    # Hermetic: remove what this session built, newest first, and nothing else.
    made = [img["Id"] for img in eng.api.images(all=True) if img["Id"] not in before and _ours(img)]
    for _ in range(3):  # children before parents: what a child still holds is retried on the next pass
        left = []
        for image_id in made:
            try:
                eng.remove_image(image_id)
            except ReplayError:
                left.append(image_id)
        made = left


def _ours(image: dict[str, Any]) -> bool:
    labels = image.get("Labels") or {}
    return labels.get("io.replay.name", "").startswith("e2e-") or labels.get("io.replay.stage") == "packages"


@pytest.fixture(scope="session")
def train_venv() -> Path:
    """The researcher's virtualenv (numpy, scikit-learn), made once and kept in .cache between runs."""
    key = hashlib.sha256(TRAIN_REQUIREMENTS.read_bytes() + sys.version.encode()).hexdigest()[:12]
    venv = REPO / ".cache" / f"e2e-train-venv-{key}"
    if not (venv / "ok").exists():
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", "-r", str(TRAIN_REQUIREMENTS)], check=True)
        (venv / "ok").write_text("ok\n")
    return venv


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


@dataclass
class Project:
    root: Path
    venv: Path
    name: str
    scenario: dict[str, Any]

    @property
    def capsule(self) -> Path:
        return self.root / ".replay" / self.name

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("REPLAY_")}
        env["PATH"] = f"{self.venv / 'bin'}:{env['PATH']}"  # the active virtualenv is the one captured
        env["REPLAY_CACHE_DIR"] = str(REPO / ".cache" / "replay")
        env.update(extra)
        return env

    def replay(self, *args: str, timeout: float = 600, **env: str) -> Result:
        proc = subprocess.run([sys.executable, "-m", "replay", *args], cwd=self.root, env=self.env(**env),
                              capture_output=True, text=True, timeout=timeout)
        return Result(proc.returncode, proc.stdout, proc.stderr)

    def capture(self, *extra: str) -> Result:
        args = list(self.scenario["capture"])
        split = args.index("--") if "--" in args else len(args)
        return self.replay("capture", "--name", self.name, "--base", BASE, *extra, *args[:split], *args[split:])


def new_project(parent: Path, scenario: str, venv: Path) -> Project:
    """A fresh git repository holding the scenario's files, prepared with the training virtualenv."""
    source = SCENARIOS / scenario
    spec = json.loads((source / "scenario.json").read_text())
    root = parent / scenario
    shutil.copytree(source, root, ignore=shutil.ignore_patterns("scenario.json", "__pycache__"))
    for rel in spec.get("include", []):
        shutil.copy(REPO / rel, root / Path(rel).name)
    (root / ".gitignore").write_text(".venv/\ndata/\nout/\n.replay/\n.env\n")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    subprocess.run([*git, "init", "-q"], cwd=root, check=True)
    subprocess.run([*git, "add", "-A"], cwd=root, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "scenario"], cwd=root, check=True)
    for script in spec.get("prepare", []):
        subprocess.run([str(venv / "bin" / "python"), script], cwd=root, check=True, capture_output=True)
    return Project(root, venv, f"e2e-{scenario}-{uuid.uuid4().hex[:6]}", spec)


@pytest.fixture
def make_project(tmp_path: Path, engine: Any, train_venv: Path) -> Any:
    return lambda scenario: new_project(tmp_path, scenario, train_venv)
