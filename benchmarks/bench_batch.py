"""Batch verify against a shell loop of single verifies, side by side in one run.

    python benchmarks/bench_batch.py [--sizes 10,20,40] [--base IMAGE] [--sleep 1.0]

Builds a capsule set by real captures: 4 code versions (4 environment images) x 2 data sets (outside the
projects, so every capsule records the same places) x seeds, giving 10 distinct experiments, each captured
4 times: 40 capsules. The training is CPU-light (read the data, sleep --sleep seconds, write one file).

Prints two tables:
  1. for 10, 20 and 40 of those capsules (always the 10 experiments, 1, 2 or 4 captures each): a shell loop of
     single `replay verify` calls against one `replay verify CAPSULES... --jobs 1`, with the batch's own
     figures (images and data sets checked, replays run, seconds outside the replays). Target: the batch at
     most loop / (capsules / distinct experiments) + 10%, and its work outside the replays flat in n.
  2. `--jobs 2` against `--jobs 1` over the 10 distinct experiments (target: at least 1.7x on 2 cores).

Needs a Docker engine and the base image (`make base`); removes every image it made.
"""

from __future__ import annotations

import argparse
import json
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
console = Console()
TRAIN = '''import os, sys, time
from pathlib import Path
# code version {version}
numbers = [int(x) for x in (Path(sys.argv[1]) / "input.txt").read_text().split()]
time.sleep({sleep})
Path("out").mkdir(exist_ok=True)
Path("out/result.txt").write_text(str(sum(numbers) * int(os.environ.get("REPLAY_SEED", "1"))) + "\\n")
'''


def replay(*args: str) -> list[str]:
    return [sys.executable, "-m", "replay", *args]


def run(cmd: list[str], cwd: Path, env: dict[str, str], check: bool = True) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    took = time.perf_counter() - start
    if check and proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return took, proc.stdout


def make_set(work: Path, base: str, sleep: float, captures: list[list[Path]]) -> dict[str, str]:
    """Fill captures[e][r] (the r-th capture of experiment e); return the environment the CLI runs with."""
    venv = work / "venv"  # an empty virtualenv: nothing to lock, a small environment image
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    env = {k: v for k, v in os.environ.items() if k in ("HOME", "DOCKER_HOST", "TMPDIR")}
    env["PATH"] = f"{venv / 'bin'}:{os.environ.get('PATH', '/usr/bin:/bin')}"
    env["REPLAY_CACHE_DIR"] = str(REPO / ".cache" / "replay")
    data = []
    for i in range(2):
        folder = work / f"data{i}"
        folder.mkdir()
        (folder / "input.txt").write_text(" ".join(str(n) for n in range(i, i + 100)) + "\n")
        data.append(folder)
    projects = []
    for version in range(4):
        root = work / f"project{version}"
        root.mkdir()
        (root / "train.py").write_text(TRAIN.format(version=version, sleep=sleep))
        (root / ".gitignore").write_text("out/\n.replay/\n")
        git = ["git", "-c", "user.name=b", "-c", "user.email=b@example.invalid"]
        subprocess.run([*git, "init", "-q"], cwd=root, check=True)
        subprocess.run([*git, "add", "-A"], cwd=root, check=True)
        subprocess.run([*git, "commit", "-q", "-m", "bench"], cwd=root, check=True)
        projects.append(root)
    started = time.perf_counter()
    for e in range(10):
        root, folder = projects[e % 4], data[e % 2]
        captures.append([])
        for r in range(4):
            name = f"bench-e{e}-r{r}"
            captures[-1].append(root / ".replay" / name)  # before: a failed capture is still cleaned up
            run(replay("capture", "--name", name, "--base", base, "--run", "--data", str(folder), "--output",
                       "out/result.txt", "--seed", str(e + 1), "--", "python", "train.py", str(folder)), root, env)
    console.print(f"[dim]40 captures in {time.perf_counter() - started:.0f} s[/]")
    return env


def bench_sizes(captures: list[list[Path]], sizes: list[int], env: dict[str, str], work: Path) -> None:
    table = Table(title="1. batch vs a shell loop of single verifies (--jobs 1)", title_justify="left")
    for col in ("capsules", "experiments", "images / data sets checked", "replays run", "loop (s)", "batch (s)",
                "batch outside replays (s)", "target: loop/(n/10)+10% (s)", "loop/batch"):
        table.add_column(col, justify="right")
    for n in sizes:
        per = n // 10
        chosen = [str(c) for e in captures for c in e[:per]]
        script = "for c in " + " ".join(f"'{c}'" for c in chosen) + "; do " + " ".join(replay("verify")) + \
            ' "$c" >/dev/null || exit 1; done'
        loop, _ = run(["bash", "-c", script], work, env)
        took, out = run(replay("verify", *chosen, "--jobs", "1", "--json"), work, env)
        doc = json.loads(out)
        assert doc["exit_code"] == 0, doc["counts"]
        plan, timings = doc["plan"], doc["timings"]
        outside = took - timings["replays"]
        target = loop / (n / plan["experiments"]) * 1.1
        table.add_row(str(n), str(plan["experiments"]), f"{plan['images_checked']} / {plan['data_sets_checked']}",
                      str(plan["replays_run"]), f"{loop:.1f}", f"{took:.1f}", f"{outside:.1f}", f"{target:.1f}",
                      f"{loop / took:.2f}x")
    console.print(table)


def bench_jobs(captures: list[list[Path]], env: dict[str, str], work: Path) -> None:
    table = Table(title="2. --jobs 2 vs --jobs 1, 10 distinct CPU-light experiments", title_justify="left")
    for col in ("jobs", "batch (s)", "replays (s)", "speed-up"):
        table.add_column(col, justify="right")
    chosen = [str(e[0]) for e in captures]
    one = two = 0.0
    for jobs in (1, 2):
        took, out = run(replay("verify", *chosen, "--jobs", str(jobs), "--json"), work, env)
        replays = json.loads(out)["timings"]["replays"]
        if jobs == 1:
            one = took
        else:
            two = took
        table.add_row(str(jobs), f"{took:.1f}", f"{replays:.1f}", "1.00x" if jobs == 1 else f"{one / two:.2f}x")
    console.print(table)


def cleanup(captures: list[list[Path]]) -> None:
    capsule_images, environments = set(), set()
    for capsule in (c for e in captures for c in e):
        try:
            image = json.loads((capsule / "replay.json").read_text())["image"]
        except (OSError, ValueError, KeyError):
            continue
        capsule_images.add(image["id"])
        environments.add(image.get("environment_id", ""))
    for image_id in sorted(capsule_images) + sorted(environments - {""}):
        subprocess.run(["docker", "rmi", image_id], capture_output=True)


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    except OSError:
        return "unknown"
    return next((line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name")),
                "unknown")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,20,40")
    parser.add_argument("--base", default=os.environ.get("REPLAY_BASE", "replay-base/python:3.11-bookworm"))
    parser.add_argument("--sleep", type=float, default=1.0)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    console.print(f"CPU: {cpu_model()}, usable cores: {len(os.sched_getaffinity(0))}")
    work = Path(tempfile.mkdtemp(prefix="replay-bench-batch-"))
    captures: list[list[Path]] = []
    try:
        env = make_set(work, args.base, args.sleep, captures)
        bench_sizes(captures, sizes, env, work)
        bench_jobs(captures, env, work)
    finally:
        cleanup(captures)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
