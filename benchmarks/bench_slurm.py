"""The same batch of N capsules through Slurm and through local ``run_task``s, side by side, in one run.

    python benchmarks/bench_slurm.py [--capsules 20] [--jobs 1]

Captures N distinct experiments (one small project, seeds 1..N: same image, N replays), then verifies them
through the one batch path (``run_batch``, as ``replay verify CAPSULES...`` does), ``--jobs`` at a time:
  1. with the local backend (worker threads, this engine);
  2. with the Slurm backend: one array (``sbatch --array=0-N%JOBS``) on the cluster ``SLURM_CONF`` names, or on
     a one-node test cluster this script starts (``tests/slurm/cluster.py``) when none is set.
Prints both totals, the per-task overhead of Slurm beyond local ((slurm total - local total) / N * jobs),
and Slurm's submit-to-start gap per task (sbatch to the node's ``run_task`` starting, for the first task;
the previous task's end to this one's start after it). Target: at most 1 s per task beyond local.

Needs a Docker engine, the base image (`make base`) and Slurm (`make slurm`); removes the image it built.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
console = Console()

TRAIN = """import json, os, random
random.seed(int(os.environ.get("PYTHONHASHSEED", "0")))
os.makedirs("out", exist_ok=True)
with open("out/result.json", "w") as f:
    json.dump({"value": random.random()}, f)
"""


def project(root: Path) -> Path:
    root.mkdir(parents=True)
    (root / "train.py").write_text(TRAIN)
    (root / "data").mkdir()
    (root / "data" / "input.txt").write_text("x\n")
    (root / ".gitignore").write_text(".venv/\nout/\n.replay/\n")
    git = ["git", "-c", "user.name=b", "-c", "user.email=b@example.invalid"]
    subprocess.run([*git, "init", "-q"], cwd=root, check=True)
    subprocess.run([*git, "add", "-A"], cwd=root, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "bench"], cwd=root, check=True)
    venv = root / ".venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    return venv


def capture_all(root: Path, venv: Path, n: int, base: str) -> list[Path]:
    env = {**os.environ, "PATH": f"{venv / 'bin'}:{os.environ['PATH']}", "VIRTUAL_ENV": str(venv)}
    capsules = []
    for seed in range(1, n + 1):
        name = f"bench-slurm-{seed:02d}"
        proc = subprocess.run([sys.executable, "-m", "replay", "capture", "--name", name, "--base", base,
                               "--run", "--data", "data", "--output", "out/result.json", "--seed", str(seed),
                               "--", "python", "train.py"], cwd=root, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            sys.exit(f"capture failed: {proc.stderr.strip()}")
        capsules.append(root / ".replay" / name)
    return capsules


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--capsules", type=int, default=20)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--poll", type=float, default=None, help="squeue interval (default: the backend's)")
    parser.add_argument("--base", default=os.environ.get("REPLAY_BASE", "replay-base/python:3.11-bookworm"))
    args = parser.parse_args()

    from replay import factory
    from replay.adapters.slurm import SlurmBackend
    from replay.core.batch.plan import PlannedCapsule, make_plan
    from replay.core.batch.run import BatchOptions, run_batch
    from replay.core.verify.options import ReplayOptions
    from replay.manifest import load

    scratch = Path(tempfile.mkdtemp(prefix="bench-slurm-"))
    cluster = None
    engine = factory.engine()
    image_ids: set[str] = set()
    stages_before = set(_package_stages())
    try:
        if not os.environ.get("SLURM_CONF"):
            from tests.slurm.cluster import Cluster, ensure_installed

            ensure_installed()
            cluster = Cluster(scratch / "cluster").start()
            os.environ["SLURM_CONF"] = str(cluster.conf)
            console.print(f"one-node test cluster up in {cluster.startup_s:.1f} s")
        root = scratch / "project"
        venv = project(root)
        t0 = time.perf_counter()
        capsules = capture_all(root, venv, args.capsules, args.base)
        image_ids = {json.loads((c / "replay.json").read_text())["image"]["id"] for c in capsules}
        console.print(f"captured {len(capsules)} capsules in {time.perf_counter() - t0:.1f} s")

        def plan() -> Any:
            caps = [PlannedCapsule(i, c.name, c, str(c), load(c)) for i, c in enumerate(capsules)]
            return make_plan(caps, root, jobs=args.jobs)

        options = BatchOptions(ReplayOptions(cwd=root), poll_s=0.05)
        t0 = time.perf_counter()
        local_result = run_batch(plan(), options, engine, factory.backend("local", engine=engine))
        local_total = time.perf_counter() - t0
        local = [local_result.reports[i] for i in range(len(capsules))]
        local_verdicts = [r.verdict for r in local]
        local_runs = [r.timings.get("run", 0.0) for r in local]

        backend = SlurmBackend(scratch / "work", **({"poll_s": args.poll} if args.poll is not None else {}))
        submitted = time.time()
        t0 = time.perf_counter()
        slurm_result = run_batch(plan(), options, None, backend)
        slurm_total = time.perf_counter() - t0
        assert backend.folder is not None
        groups = capsules
        results = [json.loads((backend.folder / f"result-{i}.json").read_text()) for i in range(len(groups))]
        slurm_verdicts = [slurm_result.reports[i].verdict for i in range(len(capsules))]

        script_starts = sorted(_script_start(backend.folder / f"log-{i}.txt") for i in range(len(groups)))
        # Submit-to-start per task: the first from sbatch, each later one from the end of the task it waited
        # for (with --jobs 1, the previous one): what Slurm and a fresh `python -m replay task` add.
        ends = sorted((r["started"] + r["duration_s"]) for r in results)
        starts = sorted(r["started"] for r in results)
        gaps = [starts[0] - submitted]
        sched = [script_starts[0] - submitted]
        if args.jobs == 1:
            gaps += [s - e for s, e in zip(starts[1:], ends[:-1], strict=True)]
            sched += [s - e for s, e in zip(script_starts[1:], ends[:-1], strict=True)]
        startup = [s - b for s, b in zip(starts, script_starts, strict=True)]

        table = Table(title=f"{len(groups)} capsules, --jobs {args.jobs}", title_justify="left")
        for col in ("backend", "total (s)", "per task (s)", "verdicts"):
            table.add_column(col)
        table.add_row("local backend (reference)", f"{local_total:.2f}", f"{local_total / len(groups):.2f}",
                      _count(local_verdicts))
        table.add_row("slurm array", f"{slurm_total:.2f}", f"{slurm_total / len(groups):.2f}", _count(slurm_verdicts))
        console.print(table)
        beyond = (slurm_total - local_total) / len(groups) * args.jobs
        console.print(f"slurm beyond local: {slurm_total - local_total:.2f} s in total, {beyond:.2f} s per task "
                      f"(target <= 1 s)")
        console.print(f"submit-to-start: first task {gaps[0]:.2f} s"
                      + (f"; later tasks median {statistics.median(gaps[1:]):.2f} s, max {max(gaps[1:]):.2f} s"
                         if len(gaps) > 1 else ""))
        console.print(f"of which Slurm (to the batch script's first line): first {sched[0]:.2f} s"
                      + (f", later median {statistics.median(sched[1:]):.2f} s" if len(sched) > 1 else "")
                      + f"; `python -m replay task` start-up to run_task: median {statistics.median(startup):.2f} s")
        console.print(f"replay task on the node, median run_task {statistics.median(r['duration_s'] for r in results):.2f}"
                      f" s; local median replay {statistics.median(local_runs):.2f} s")
        if local_verdicts != slurm_verdicts:
            sys.exit("the verdicts differ between the backends")
    finally:
        if cluster is not None:
            cluster.stop()
        for image_id in image_ids:
            subprocess.run(["docker", "rmi", "-f", image_id], capture_output=True)
        for stage in set(_package_stages()) - stages_before:  # without -f: one in use by another build stays
            subprocess.run(["docker", "rmi", stage], capture_output=True)
        shutil.rmtree(scratch, ignore_errors=True)


def _script_start(log: Path) -> float:
    for line in log.read_text().splitlines():
        if line.startswith("replay-task-start "):
            return float(line.split()[1])
    raise SystemExit(f"{log} has no start line")


def _package_stages() -> list[str]:
    out = subprocess.run(["docker", "images", "-q", "--no-trunc", "--filter", "label=io.replay.stage=packages"],
                         capture_output=True, text=True).stdout
    return out.split()


def _count(verdicts: list[str]) -> str:
    return ", ".join(f"{v} {verdicts.count(v)}" for v in sorted(set(verdicts)))


if __name__ == "__main__":
    main()
