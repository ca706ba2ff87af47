"""End-to-end fixtures: a real Docker engine, a real training virtualenv, real git projects.

Under CI=true a missing engine or base image is a failure, never a skip.

Hermetic: the session records the ID of every image its captures build (``track_image``) and removes exactly
those at the end, plus the package-stage images that appeared during the session and that nothing else
uses (removed without force, so an image another session is building on stays). It never removes by label
alone: another test session may share this engine. It ends by asserting that no container labelled with
one of its capsule names is left.

The CLI under test gets a clean environment (``Project.env``): the host's thread variables, REPLAY_* and
the rest of the caller's environment never leak into capsules or change results.
"""

from __future__ import annotations

import contextlib
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
TRAIN_REQUIREMENTS = REPO / "examples" / "digits-sklearn" / "requirements.txt"
TORCH_REQUIREMENTS = REPO / "examples" / "torch-cpu" / "requirements.txt"
NUMPY_REQUIREMENTS = REPO / "examples" / "numpy-gd" / "requirements.txt"
CAPSULE_LABEL = "io.replay.capsule"

# What this test session made: image IDs, and capsule names (its containers carry them as a label).
SESSION_IMAGES: set[str] = set()
SESSION_CAPSULES: set[str] = set()
# Environment images under the capsule images: removed after them, without force (captures share them).
ENVIRONMENT_IMAGES: set[str] = set()
# The only variables of the caller's environment that reach the CLI under test.
PASSED_THROUGH = ("HOME", "DOCKER_HOST", "DOCKER_CONFIG", "TMPDIR", "CI", "SLURM_CONF")


def track_image(image_id: str) -> None:
    """Have the session remove this image at the end."""
    if image_id:
        SESSION_IMAGES.add(image_id)


def track_capsule(capsule: Path) -> None:
    """Record a capsule's name and image after a capture (a failed capture has no replay.json)."""
    try:
        manifest = json.loads((capsule / "replay.json").read_text())
    except (OSError, ValueError):
        return
    SESSION_CAPSULES.add(str(manifest.get("name", "")))
    track_image(str((manifest.get("image") or {}).get("id", "")))
    ENVIRONMENT_IMAGES.add(str((manifest.get("image") or {}).get("environment_id", "")))


def clean_env(**extra: str) -> dict[str, str]:
    """A minimal environment for the CLI under test: PATH, HOME, the engine's address, and ``extra``."""
    env = {k: os.environ[k] for k in PASSED_THROUGH if k in os.environ}
    env["PATH"] = os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin")
    env["REPLAY_CACHE_DIR"] = str(REPO / ".cache" / "replay")
    env.update(extra)
    return env


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
    _remove_session_images(eng, before)
    left = [c["Id"][:12] for name in sorted(SESSION_CAPSULES) if name
            for c in eng.api.containers(all=True, filters={"label": f"{CAPSULE_LABEL}={name}"})]
    assert not left, f"containers left behind by this test session: {left}"


def _remove_session_images(eng: Any, before: set[str]) -> None:
    """The tracked images (their tags with them), then package stages this session left dangling."""
    from docker.errors import APIError, NotFound

    for image_id in sorted(SESSION_IMAGES - before):
        # APIError: still used by a container another test keeps; left to its owner.
        with contextlib.suppress(NotFound, APIError):
            eng.api.remove_image(image_id, force=True)
    for image_id in sorted(ENVIRONMENT_IMAGES - before - {""}):
        # Still under another session's capsule image: left to its owner.
        with contextlib.suppress(NotFound, APIError):
            eng.api.remove_image(image_id, force=False, noprune=False)
    stages = eng.api.images(all=True, filters={"label": "io.replay.stage=packages", "dangling": True})
    for image in stages:
        if image["Id"] not in before:
            # In use (another session's build on this engine): not ours to take.
            with contextlib.suppress(NotFound, APIError):
                eng.api.remove_image(image["Id"], force=False, noprune=False)


def cached_venv(prefix: str, requirements: Path, *more: str) -> Path:
    """A virtualenv with ``requirements`` (and ``more`` pip install arguments), made once, kept in .cache."""
    key = hashlib.sha256(requirements.read_bytes() + sys.version.encode() + "\0".join(more).encode()).hexdigest()[:12]
    venv = REPO / ".cache" / f"{prefix}-{key}"
    if not (venv / "ok").exists():
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = [str(venv / "bin" / "pip"), "install", "--quiet"]
        subprocess.run([*pip, "-r", str(requirements)], check=True)
        if more:
            subprocess.run([*pip, *more], check=True)
        (venv / "ok").write_text("ok\n")
    return venv


@pytest.fixture(scope="session")
def train_venv() -> Path:
    """The researcher's virtualenv (numpy, scikit-learn), made once and kept in .cache between runs."""
    return cached_venv("e2e-train-venv", TRAIN_REQUIREMENTS)


@pytest.fixture(scope="session")
def torch_venv() -> Path:
    """A PyTorch CPU training virtualenv (examples/torch-cpu: torch==2.13.0, exactly), kept in .cache."""
    return cached_venv("e2e-torch-venv", TORCH_REQUIREMENTS)


@pytest.fixture(scope="session")
def replay_api_venv() -> Path:
    """NumPy plus replay-capsule itself (editable, no dependencies): a script may `from replay import ...`."""
    return cached_venv("e2e-replay-api-venv", NUMPY_REQUIREMENTS, "--no-deps", "--editable", str(REPO))


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
        env = clean_env()
        env["PATH"] = f"{self.venv / 'bin'}:{env['PATH']}"  # the active virtualenv is the one captured
        env.update(extra)
        return env

    def replay(self, *args: str, timeout: float = 600, **env: str) -> Result:
        return self.replay_in(self.root, *args, timeout=timeout, **env)

    def replay_in(self, cwd: Path, *args: str, timeout: float = 600, **env: str) -> Result:
        """The real `replay` command, run from ``cwd`` with this project's clean environment."""
        proc = subprocess.run([sys.executable, "-m", "replay", *args], cwd=cwd, env=self.env(**env),
                              capture_output=True, text=True, timeout=timeout)
        if args and args[0] == "capture":
            self.track()
        return Result(proc.returncode, proc.stdout, proc.stderr)

    def capture(self, *extra: str, timeout: float = 600) -> Result:
        args = list(self.scenario["capture"])
        split = args.index("--") if "--" in args else len(args)
        return self.replay("capture", "--name", self.name, "--base", BASE, *extra, *args[:split], *args[split:],
                           timeout=timeout)

    def track(self, capsule: Path | None = None) -> None:
        """Hand a capsule's image to the session's teardown (capture() does it for its own capsule)."""
        SESSION_CAPSULES.add(self.name)
        track_capsule(capsule or self.capsule)


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


@pytest.fixture
def make_torch_project(tmp_path: Path, engine: Any, torch_venv: Path) -> Any:
    return lambda scenario: new_project(tmp_path, scenario, torch_venv)


@pytest.fixture
def make_replay_api_project(tmp_path: Path, engine: Any, replay_api_venv: Path) -> Any:
    return lambda scenario: new_project(tmp_path, scenario, replay_api_venv)


@pytest.fixture(scope="module", params=["docker", pytest.param("podman-rootless", marks=pytest.mark.podman)])
def verifier(request: pytest.FixtureRequest, engine: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Who verifies, once per module and engine: root on Docker, or an ordinary user on rootless Podman (its
    Podman service started once for the module). Capsules are captured on Docker and handed to it."""
    from tests.e2e import rootless

    if request.param != "docker":
        rootless.require()
    with rootless.verifier(request.param, engine, tmp_path_factory.mktemp("verifier")) as made:
        yield made
