"""Verify overhead on rootless Podman next to Docker, on the same capsule, in one run.

    sudo .venv/bin/python benchmarks/bench_podman.py [--base IMAGE] [--runs 3]

Captures the digits project on Docker, packs it (with its data) into a bundle, makes an ordinary user (as
tests/e2e/test_podman.py does; removed at the end with its files) and times `replay verify BUNDLE`:
  - on Docker, as root (the image already in the engine);
  - on rootless Podman, as that user: once loading the image (the reviewer's first verify), then with the
    image loaded. No Podman service runs beforehand: replay starts one for each command and stops it, and
    that start is counted in Podman's overhead, as a reviewer would pay it.
Overhead is the command's wall time minus the replayed command's own duration (the report's run.duration_s).
Target: rootless Podman's overhead with the image loaded at most 1.5x Docker's. Best of --runs, alternated.
Needs root, a Docker engine, the base image (`make base`) and Podman (`make podman`).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench_bundle import capture  # noqa: E402
from bench_capture_verify import replay_cmd  # noqa: E402

from tests.e2e import rootless  # noqa: E402

console = Console()
TARGET = 1.5


def timed_verify(argv: list[str], **kwargs: object) -> tuple[float, float]:
    """(wall seconds, the replayed command's seconds) of one `replay verify ... --json`."""
    t0 = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, **kwargs)  # type: ignore[call-overload]
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"verify failed ({proc.returncode}): {proc.stderr[-800:]}")
    report = json.loads(proc.stdout)
    if report["verdict"] != "identical":
        raise SystemExit(f"verify said {report['verdict']}")
    return wall, float(report["run"]["duration_s"])


def reviewer_verify(reviewer: rootless.Reviewer, work: Path) -> list[str]:
    env = [f"{k}={v}" for k, v in reviewer.env().items()]
    return ["runuser", "-u", reviewer.name, "--", "env", "-i", *env, rootless.SYSTEM_PYTHON, "-m", "replay",
            "verify", str(work / "bench.replay"), "--json"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", default=os.environ.get("REPLAY_BASE", "replay-base/python:3.11-bookworm"))
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root: the benchmark makes an ordinary user for rootless Podman")
    made: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-podman-") as tmp, rootless.reviewer_user() as reviewer:
        try:
            project, capsule, _ = capture(Path(tmp), args.base, made)
            work = reviewer.home / "bench"
            work.mkdir()
            packed = subprocess.run(replay_cmd("pack", str(capsule), "-o", str(work / "bench.replay"), "--with-data"),
                                    cwd=project, capture_output=True, text=True)
            if packed.returncode != 0:
                raise SystemExit(f"replay pack failed: {packed.stderr[-800:]}")
            reviewer.give(work)
            podman = reviewer_verify(reviewer, work)
            first = timed_verify(podman, cwd=work)  # loads the image into the reviewer's Podman
            docker_runs, podman_runs = [], []
            for _ in range(args.runs):
                docker_runs.append(timed_verify(replay_cmd("--engine", "docker", "verify", str(work / "bench.replay"),
                                                           "--json"), cwd=tmp))
                podman_runs.append(timed_verify(podman, cwd=work))
        finally:
            for image in made:
                subprocess.run(["docker", "image", "rm", "-f", image], capture_output=True)
    show(min(docker_runs), min(podman_runs), first)


def show(docker: tuple[float, float], podman: tuple[float, float], first: tuple[float, float]) -> None:
    table = Table(title="replay verify BUNDLE: overhead beyond the replayed command (best of runs)")
    for column in ("engine", "wall s", "command s", "overhead s", "x Docker's overhead"):
        table.add_column(column, justify="right" if column != "engine" else "left")
    base = docker[0] - docker[1]
    rows = (("Docker (root)", docker), ("rootless Podman, image loaded", podman),
            ("rootless Podman, first verify (loads the image)", first))
    for name, (wall, command) in rows:
        overhead = wall - command
        table.add_row(name, f"{wall:.2f}", f"{command:.2f}", f"{overhead:.2f}", f"{overhead / base:.2f}x")
    console.print(table)
    ratio = (podman[0] - podman[1]) / base
    verdict = "meets" if ratio <= TARGET else "misses"
    console.print(f"rootless Podman with the image loaded: {ratio:.2f}x Docker's overhead ({verdict} the {TARGET}x target)")


if __name__ == "__main__":
    main()
