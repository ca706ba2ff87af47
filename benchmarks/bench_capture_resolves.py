"""What the system-library scan and the command check cost a warm re-capture of the torch example.

    python benchmarks/bench_capture_resolves.py [--base IMAGE] [--runs 3]

The environment is examples/torch-cpu's (torch 2.13.0 CPU and its dependencies, about 1 GB of
site-packages). One capture warms the image cache; then warm re-captures alternate with and without the two
steps (``CaptureRequest.resolve_checks``), and the best of each is printed side by side with the two stages'
own times (target: the steps add at most 2 s). Needs a Docker engine and the base image; removes the images
it made.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "torch-cpu"
console = Console()


def torch_venv() -> Path:
    venv = REPO / ".cache" / "bench-torch-venv"
    if not (venv / "ok").exists():
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "-r", str(EXAMPLE / "requirements.txt")],
                       check=True)
        (venv / "ok").write_text("ok\n")
    return venv


def torch_project(root: Path, venv: Path) -> None:
    root.mkdir(parents=True)
    for name in ("train.py", "make_data.py"):
        shutil.copy(EXAMPLE / name, root / name)
    (root / ".gitignore").write_text("data/\nout/\n.replay/\n")
    git = ["git", "-c", "user.name=b", "-c", "user.email=b@example.invalid"]
    subprocess.run([*git, "init", "-q"], cwd=root, check=True)
    subprocess.run([*git, "add", "-A"], cwd=root, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "bench"], cwd=root, check=True)
    for script in ("make_data.py", "train.py"):
        subprocess.run([str(venv / "bin" / "python"), script], cwd=root, check=True, capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default=os.environ.get("REPLAY_BASE", "replay-base/python:3.11-bookworm"))
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    from replay import factory
    from replay.core.capture.pipeline import CaptureRequest, CaptureResult, capture
    from replay.errors import ReplayError

    venv = torch_venv()
    engine, tools = factory.engine(), factory.toolchain()
    made: list[str] = []
    environments: set[str] = set()
    with tempfile.TemporaryDirectory(prefix="replay-bench-resolves-") as tmp:
        project = Path(tmp) / "torch-cpu"
        torch_project(project, venv)

        def once(checks: bool) -> tuple[float, CaptureResult]:
            req = CaptureRequest(command=["python", "train.py"], cwd=project, data=["data"],
                                 outputs=["out/weights.npy", "out/predictions.npy"], metrics=["out/metrics.json"],
                                 python=str(venv / "bin" / "python"), python_named=True, base=args.base,
                                 name="bench-resolves", force=True, resolve_checks=checks)
            start = time.perf_counter()
            result = capture(req, engine, tools)
            made.append(result.manifest.image.id)
            environments.add(result.manifest.image.environment_id)
            return time.perf_counter() - start, result

        try:
            once(True)  # cold: builds the environment image once
            walls: dict[bool, list[float]] = {True: [], False: []}
            stages: list[tuple[float, float]] = []
            for _ in range(args.runs):
                for checks in (True, False):
                    wall, result = once(checks)
                    walls[checks].append(wall)
                    if checks:
                        stages.append((result.timings.get("system", 0.0), result.timings.get("command", 0.0)))
        finally:
            for image in made:  # this benchmark's capsule images
                with contextlib.suppress(ReplayError):
                    engine.remove_image(image)
            for image in environments:  # without force: another capture of the same code may share it
                subprocess.run(["docker", "image", "rm", image], capture_output=True, check=False)
    with_checks, without = min(walls[True]), min(walls[False])
    scan, command = min(s[0] for s in stages), min(s[1] for s in stages)
    table = Table(title=f"warm re-capture of examples/torch-cpu (best of {args.runs})", title_justify="left")
    for col in ("capture", "wall (s)"):
        table.add_column(col)
    table.add_row("without the library scan and command check", f"{without:.2f}")
    table.add_row("with them (what `replay capture` does)", f"{with_checks:.2f}")
    table.add_row("  added", f"{with_checks - without:+.2f}  (target: at most +2.00)")
    table.add_row("  of which: library scan (stage 'system')", f"{scan:.2f}")
    table.add_row("  of which: command check in the image (stage 'command')", f"{command:.2f}")
    console.print(table)


if __name__ == "__main__":
    main()
