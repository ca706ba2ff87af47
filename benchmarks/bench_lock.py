"""Locking speed, side by side in one run: a cold lock of the demo's environment through replay next to
`pip-compile` run directly on the same requirements.in, and a relock of the unchanged environment with the
cache warm.

    python benchmarks/bench_lock.py [--requirements examples/digits-sklearn/requirements.txt] [--runs 3]

Cold means fresh caches for both sides: a new REPLAY_CACHE_DIR (locks and wheels), pip's HTTP cache
(PIP_CACHE_DIR) and pip-tools' own cache (XDG_CACHE_HOME). Replay's cold lock is the whole lock step of a
capture: the interpreter probe, pip-compile, and the wheels for the image (pip download). The warm relock is
the same step again on the unchanged environment (target: at most 10% of the cold lock, and under 2 s).
Needs no Docker engine: the image's target is the offline base's (CPython 3.11, x86_64, glibc 2.36).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def train_venv(requirements: Path) -> Path:
    venv = REPO / ".cache" / "bench-lock-venv"
    if not (venv / "ok").exists():
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", "-r", str(requirements)], check=True)
        (venv / "ok").write_text("ok\n")
    return venv


def fresh_caches(root: Path) -> None:
    """Point replay, pip and pip-tools at new, empty caches under ``root``."""
    for name, var in (("replay", "REPLAY_CACHE_DIR"), ("pip", "PIP_CACHE_DIR"), ("xdg", "XDG_CACHE_HOME")):
        folder = root / name
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        os.environ[var] = str(folder)


def replay_lock(python: str, project: Path, stage: Path) -> dict[str, float]:
    """The lock step of a capture, timed part by part (the probe, pip-compile or its cache, the wheels)."""
    from replay import factory
    from replay.core.capture.lock.environment import lock_environment
    from replay.core.capture.lock.source import take_lock
    from replay.core.pyenv import Target

    class Timed:
        def __init__(self, inner: object) -> None:
            self.inner, self.times = inner, {"compile": 0.0, "wheels": 0.0}

        def __getattr__(self, name: str) -> object:
            method = getattr(self.inner, name)
            if name not in ("compile", "fetch_wheels"):
                return method

            def timed(*args: object, **kwargs: object) -> object:
                start = time.perf_counter()
                try:
                    return method(*args, **kwargs)
                finally:
                    self.times["compile" if name == "compile" else "wheels"] += time.perf_counter() - start
            return timed

    tools = factory.toolchain()
    target = Target(python="3.11", abi="cp311", machine="x86_64", glibc=(2, 36))
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir(parents=True)
    start = time.perf_counter()
    interp = tools.python.inspect(python)
    probe = time.perf_counter() - start
    from replay.core.events import NullReporter

    taken = take_lock(interp, project, None, True, tools.exporter, NullReporter())
    locker = Timed(tools.locker)
    env = lock_environment(interp, project, stage, target, locker, taken=taken)  # type: ignore[arg-type]
    total = time.perf_counter() - start
    env.cleanup()
    return {"total": total, "probe": probe, **locker.times}


def pip_compile_direct(requirements_in: str, work: Path) -> float:
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    (work / "requirements.in").write_text(requirements_in)
    from replay.adapters.piptools import COMPILE_ARGS  # the same options replay passes, quietly

    cmd = [sys.executable, "-m", "piptools", "compile", "--quiet", *COMPILE_ARGS, "--output-file=requirements.lock",
           "requirements.in"]
    start = time.perf_counter()
    subprocess.run(cmd, cwd=work, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requirements", type=Path, default=REPO / "examples" / "digits-sklearn" / "requirements.txt")
    parser.add_argument("--runs", type=int, default=3, help="warm relocks to time (the best is shown)")
    args = parser.parse_args()
    python = str(train_venv(args.requirements) / "bin" / "python")
    cpu = next((ln.split(":", 1)[1].strip() for ln in subprocess.run(["lscpu"], capture_output=True, text=True)
                .stdout.splitlines() if ln.startswith("Model name")), "unknown")

    with tempfile.TemporaryDirectory(prefix="bench-lock-") as tmp:
        root = Path(tmp)
        project = root / "project"
        project.mkdir()
        # The requirements.in replay hands pip-compile: the interpreter's pins (what a capture locks).
        from replay import factory
        from replay.core.capture.lock.environment import classify

        interp = factory.toolchain().python.inspect(python)
        requirements_in = "".join(f"{pin}\n" for pin in classify(interp, project).pins)

        fresh_caches(root / "ref-cache")
        reference = pip_compile_direct(requirements_in, root / "ref")
        fresh_caches(root / "replay-cache")
        cold = replay_lock(python, project, root / "stage")
        warm = min((replay_lock(python, project, root / "stage") for _ in range(args.runs)), key=lambda t: t["total"])

    ratio = warm["total"] / cold["total"]
    print(f"CPU: {cpu}; {len(requirements_in.splitlines())} pinned packages ({', '.join(requirements_in.split())})")
    print(f"{'what':<44} {'replay':>10} {'reference':>30}")
    print(f"{'cold lock (fresh caches)':<44} {cold['total']:>9.2f}s {'pip-compile directly ' + f'{reference:.2f}s':>30}")
    print(f"{'  of which: probe / pip-compile / wheels':<44} "
          f"{cold['probe']:.2f} / {cold['compile']:.2f} / {cold['wheels']:.2f} s")
    verdict = "met" if ratio <= 0.10 and warm["total"] < 2 else "NOT met"
    print(f"{'warm relock, unchanged environment':<44} {warm['total']:>9.2f}s "
          f"{f'{ratio:.1%} of cold; target <= 10% and < 2 s: {verdict}':>30}")
    print(f"{'  of which: probe / lock cache / wheel cache':<44} "
          f"{warm['probe']:.3f} / {warm['compile']:.4f} / {warm['wheels']:.4f} s")


if __name__ == "__main__":
    main()
