"""The --auto-seed start-up hook, run in real interpreters: the host's sitecustomize and the image's .pth line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from replay.core.capture import autoseed
from replay.core.layout import seed_environment

# An unseeded "training script": every draw comes from a generator nobody seeded.
PROBE = """
import json, os, random, sys
early = "numpy" in sys.modules
import numpy as np
print(json.dumps({
    "numpy_at_start_up": early,
    "random": random.random(),
    "default_rng": float(np.random.default_rng().random()),
    "legacy": float(np.random.rand()),
    "pcg64": float(np.random.Generator(np.random.PCG64()).random()),
    "urandom": os.urandom(8).hex(),
}))
"""


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REPLAY_", "PYTHON"))}
    env.update(extra)
    return env


def run_hooked(script: str, env: dict[str, str], cwd: Path) -> dict[str, object]:
    with autoseed.host_hook(env) as hooked:
        proc = subprocess.run([sys.executable, "-c", script], env=hooked, cwd=cwd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def seeded(seed: int) -> dict[str, str]:
    return clean_env(**seed_environment(seed, auto_seed=True))


def test_the_hook_makes_an_unseeded_script_repeat(tmp_path: Path) -> None:
    first = run_hooked(PROBE, seeded(4), tmp_path)
    second = run_hooked(PROBE, seeded(4), tmp_path)
    for key in ("random", "default_rng", "legacy", "pcg64"):
        assert first[key] == second[key], key


def test_another_seed_gives_other_draws(tmp_path: Path) -> None:
    first, other = run_hooked(PROBE, seeded(4), tmp_path), run_hooked(PROBE, seeded(5), tmp_path)
    assert all(first[key] != other[key] for key in ("random", "default_rng", "legacy", "pcg64"))


def test_without_the_switch_the_hook_does_nothing(tmp_path: Path) -> None:
    env = clean_env(**seed_environment(4))  # REPLAY_SEED alone, no REPLAY_AUTO_SEED=1
    first, second = run_hooked(PROBE, env, tmp_path), run_hooked(PROBE, env, tmp_path)
    assert all(first[key] != second[key] for key in ("random", "default_rng", "legacy", "pcg64"))


def test_numpy_is_imported_by_the_script_not_at_start_up(tmp_path: Path) -> None:
    assert run_hooked(PROBE, seeded(4), tmp_path)["numpy_at_start_up"] is False


def test_os_urandom_stays_random(tmp_path: Path) -> None:
    # Documented limit: operating-system entropy is never touched.
    assert run_hooked(PROBE, seeded(4), tmp_path)["urandom"] != run_hooked(PROBE, seeded(4), tmp_path)["urandom"]


def test_a_seed_the_script_sets_itself_wins(tmp_path: Path) -> None:
    script = "import json, numpy as np\nnp.random.seed(123)\nprint(json.dumps({'legacy': float(np.random.rand())}))"
    plain = subprocess.run([sys.executable, "-c", script], env=clean_env(), capture_output=True, text=True, check=True)
    assert run_hooked(script, seeded(4), tmp_path) == json.loads(plain.stdout)


def test_the_host_hook_runs_the_sitecustomize_it_hides(tmp_path: Path) -> None:
    own = tmp_path / "own"
    own.mkdir()
    (own / "sitecustomize.py").write_text("import os\nos.environ['USER_SITECUSTOMIZE_RAN'] = '1'\n")
    script = "import json, os, random, sitecustomize\n" \
             "print(json.dumps({'ran': os.environ.get('USER_SITECUSTOMIZE_RAN'), 'file': sitecustomize.__file__, " \
             "'random': random.random()}))"
    env = seeded(4)
    env["PYTHONPATH"] = str(own)
    first, second = run_hooked(script, env, tmp_path), run_hooked(script, env, tmp_path)
    assert first["ran"] == "1" and first["file"] == str(own / "sitecustomize.py")
    assert first["random"] == second["random"]  # and the hook still seeded


def write_site(tmp_path: Path, auto_seed: bool, replay_api: bool) -> Path:
    site = tmp_path / "site-packages"
    for rel, data in autoseed.image_site_files(auto_seed, replay_api).items():
        (site / rel).parent.mkdir(parents=True, exist_ok=True)
        (site / rel).write_bytes(data)
    return site


def run_with_site(site: Path, script: str, env: dict[str, str]) -> dict[str, object]:
    # site.addsitedir is what the interpreter does with the virtualenv's site-packages at start-up: it runs
    # the .pth lines found there. -I keeps this checkout's replay and the caller's PYTHONPATH away.
    boot = f"import site, sys\nsite.addsitedir({str(site)!r})\n" + script
    proc = subprocess.run([sys.executable, "-I", "-c", boot], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


NUMPY_SITE = str(Path(__import__("numpy").__file__).parent.parent)
IMAGE_PROBE = f"sys.path.append({NUMPY_SITE!r})\n" + PROBE


def test_the_image_pth_line_seeds_an_unseeded_script(tmp_path: Path) -> None:
    site = write_site(tmp_path, auto_seed=True, replay_api=False)
    first, second = run_with_site(site, IMAGE_PROBE, seeded(4)), run_with_site(site, IMAGE_PROBE, seeded(4))
    for key in ("random", "default_rng", "legacy", "pcg64"):
        assert first[key] == second[key], key
    # The same seed gives the same draws through either mechanism, so a host run matches its replay.
    hosted = run_hooked(PROBE, seeded(4), tmp_path)
    assert {k: first[k] for k in ("random", "default_rng", "legacy", "pcg64")} == \
           {k: hosted[k] for k in ("random", "default_rng", "legacy", "pcg64")}


def test_the_image_pth_line_is_inert_without_the_switch(tmp_path: Path) -> None:
    site = write_site(tmp_path, auto_seed=True, replay_api=False)
    env = clean_env(**seed_environment(4))
    script = "import sys\nprint('{\"loaded\": %s}' % str('_replay_seeding' in sys.modules).lower())"
    assert run_with_site(site, script, env) == {"loaded": False}


def test_the_minimal_replay_package_gives_seed_everything_and_nothing_else(tmp_path: Path) -> None:
    site = write_site(tmp_path, auto_seed=False, replay_api=True)
    script = (
        f"sys.path.insert(0, {str(site)!r})\n"
        f"sys.path.append({NUMPY_SITE!r})\n"
        "import json, replay\n"
        "from replay import seed_everything\n"
        "record = seed_everything(3)\n"
        "print(json.dumps({'file': replay.__file__, 'seed': record.seed, 'seeded': record.seeded,\n"
        "                  'version': replay.__version__, 'typer': 'typer' in sys.modules}))"
    )
    out = run_with_site(site, script, clean_env())
    assert out["file"] == str(site / "replay" / "__init__.py")
    assert out["seed"] == 3 and out["seeded"][:2] == ["random", "numpy"]
    assert out["version"] == __import__("replay").__version__ and out["typer"] is False


def test_image_site_files_hold_exactly_what_was_asked_for() -> None:
    assert autoseed.image_site_files(False, False) == {}
    hook = autoseed.image_site_files(True, False)
    assert list(hook) == ["_replay_autoseed.pth", "_replay_seeding.py"]
    assert hook["_replay_seeding.py"] == autoseed.seeding_source()
    assert hook["_replay_autoseed.pth"].startswith(b"import ")  # site runs a .pth line only when it starts so
    api = autoseed.image_site_files(False, True)
    assert list(api) == ["replay/__init__.py", "replay/seeding.py"]
    assert list(autoseed.image_site_files(True, True)) == sorted([*hook, *api])


@pytest.mark.parametrize("seed", [0, 7])
def test_seed_environment_with_auto_seed(seed: int) -> None:
    assert seed_environment(seed, auto_seed=True) == {
        "REPLAY_SEED": str(seed), "PYTHONHASHSEED": str(seed), "REPLAY_AUTO_SEED": "1",
    }
    assert "REPLAY_AUTO_SEED" not in seed_environment(seed)


def test_an_auto_seed_capsule_image_gets_the_switch_and_the_hook_files() -> None:
    from replay.core.capture.pipeline import _capsule_context, _dockerfile_context
    from tests.unit.test_manifest import full_manifest

    manifest = full_manifest()  # auto_seed and replay_api on, seed 7
    # The switch is the run's (the capsule layer); the hook files are the environment's (inert without it).
    env = dict(_capsule_context(manifest, "sha256:" + "e" * 64).run_env)
    assert (env["REPLAY_SEED"], env["PYTHONHASHSEED"], env["REPLAY_AUTO_SEED"]) == ("7", "7", "1")
    ctx = _dockerfile_context(manifest, "sha256:" + "a" * 64)
    assert ctx.site_packages == "/opt/venv/lib/python3.11/site-packages"  # the base's Python made the venv
    manifest.command.auto_seed = manifest.python.replay_api = False
    manifest.python.project_paths, manifest.python.project_packages = [], []  # need it too (test_projectcode)
    ctx = _dockerfile_context(manifest, "sha256:" + "a" * 64)
    assert "REPLAY_AUTO_SEED" not in dict(_capsule_context(manifest, "sha256:" + "e" * 64).run_env)
    assert ctx.site_packages == ""


@pytest.mark.parametrize(("seed", "run", "recorded", "warned"), [
    (None, True, 0, False),  # --auto-seed alone: the documented default seed
    (11, True, 11, False),
    (None, False, 0, True),  # no --run: the reference outputs were not made under the hook
])
def test_the_seed_an_auto_seed_capture_records(seed: int | None, run: bool, recorded: int, warned: bool) -> None:
    from replay.core.capture.pipeline import CaptureRequest, _effective_seed
    from replay.core.events import RecordingReporter

    reporter = RecordingReporter()
    req = CaptureRequest(command=["python", "train.py"], cwd=Path("."), seed=seed, run=run, auto_seed=True)
    assert _effective_seed(req, reporter) == recorded
    assert bool(reporter.warnings) is warned and all("--run" in w for w in reporter.warnings)
    assert _effective_seed(CaptureRequest(command=["x"], cwd=Path("."), seed=seed), reporter) == seed
