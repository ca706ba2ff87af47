"""Capture and verify speed, side by side with reference figures measured in the same run.

    python benchmarks/bench_capture_verify.py [--files 1000] [--base IMAGE]

Prints three tables:
  1. `replay --help` start-up next to a bare `python -c pass` (target: under 0.5 s);
  2. a first (cold: --no-cache) capture of a numpy/scikit-learn project next to a second capture after a
     one-line code change (target: the second takes at most 25% of the first);
  3. verify overhead for a capsule with N data files and a warm stat cache, broken down by stage, next to a
     bare `docker run --rm BASE true` (target: overhead under 1.5 s). Overhead is verify's wall time minus
     the replayed command's own run time inside its container.

Needs a Docker engine and the base image (`make base`); leaves no image or container behind.
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

from rich.console import Console
from rich.table import Table

REPO = Path(__file__).resolve().parents[1]
console = Console()


def timed(cmd: list[str], **kw: object) -> tuple[float, subprocess.CompletedProcess[str]]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, **kw)  # type: ignore[call-overload]
    return time.perf_counter() - start, proc


def best(cmd: list[str], runs: int = 5) -> float:
    return min(timed(cmd)[0] for _ in range(runs))


def git_project(root: Path, files: dict[str, str]) -> None:
    root.mkdir(parents=True)
    for name, text in files.items():
        (root / name).write_text(text)
    git = ["git", "-c", "user.name=b", "-c", "user.email=b@example.invalid"]
    subprocess.run([*git, "init", "-q"], cwd=root, check=True)
    subprocess.run([*git, "add", "-A"], cwd=root, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "bench"], cwd=root, check=True)


def train_venv() -> Path:
    venv = REPO / ".cache" / "bench-train-venv"
    if not (venv / "ok").exists():
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        requirements = REPO / "examples" / "digits-sklearn" / "requirements.txt"
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "-r", str(requirements)], check=True)
        (venv / "ok").write_text("ok\n")
    return venv


def replay_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "replay", *args]


def bench_help() -> None:
    table = Table(title="1. start-up", title_justify="left")
    for col in ("command", "best of 5 (s)"):
        table.add_column(col)
    table.add_row("replay --help", f"{best(replay_cmd('--help')):.3f}")
    table.add_row("replay capture --help", f"{best(replay_cmd('capture', '--help')):.3f}")
    table.add_row("python -c pass (reference)", f"{best([sys.executable, '-c', 'pass']):.3f}")
    console.print(table)


def bench_capture(work: Path, base: str, made: list[str]) -> None:
    venv = train_venv()
    project = work / "capture-project"
    example = REPO / "examples" / "digits-sklearn"
    git_project(project, {
        "train.py": (example / "train.py").read_text(),
        "make_data.py": (example / "make_data.py").read_text(),
        ".gitignore": "data/\nout/\n.replay/\n",
    })
    env = {**os.environ, "PATH": f"{venv / 'bin'}:{os.environ['PATH']}"}
    subprocess.run([str(venv / "bin" / "python"), "make_data.py"], cwd=project, check=True, capture_output=True)
    subprocess.run([str(venv / "bin" / "python"), "train.py", "--seed", "7"], cwd=project, check=True,
                   capture_output=True, env={**env, "REPLAY_SEED": "7"})
    args = ["capture", "--base", base, "--name", "bench-capture", "--data", "data", "--output", "out/model.pkl",
            "--output", "out/predictions.npy", "--metrics", "out/metrics.json", "--seed", "7", "--json", "--force"]
    first_s, first = timed(replay_cmd(*args, "--no-cache", "--", "python", "train.py", "--seed", "7"),
                           cwd=project, env=env)
    if first.returncode != 0:
        raise SystemExit(f"first capture failed: {first.stderr[-800:]}")
    made.append(json.loads(first.stdout)["image_id"])
    (project / "train.py").write_text((project / "train.py").read_text() + "\n# a one-line code change\n")
    second_s, second = timed(replay_cmd(*args, "--", "python", "train.py", "--seed", "7"), cwd=project, env=env)
    if second.returncode != 0:
        raise SystemExit(f"second capture failed: {second.stderr[-800:]}")
    made.append(json.loads(second.stdout)["image_id"])
    table = Table(title="2. capture (numpy + scikit-learn project)", title_justify="left")
    for col in ("capture", "wall (s)", "stages (s)"):
        table.add_column(col)
    for label, secs, proc in (("first, cold (--no-cache)", first_s, first),
                              ("second, after a code change", second_s, second)):
        stages = json.loads(proc.stdout)["timings"]
        table.add_row(label, f"{secs:.2f}", "  ".join(f"{k} {v:.2f}" for k, v in stages.items()))
    table.add_row("second / first", f"{100 * second_s / first_s:.1f}%", "target: at most 25%")
    console.print(table)


def bench_verify(work: Path, base: str, n_files: int, made: list[str]) -> None:
    project = work / "verify-project"
    git_project(project, {
        "run.py": "import pathlib\npathlib.Path('out').mkdir(exist_ok=True)\n"
                  "pathlib.Path('out/n.txt').write_text(str(len(list(pathlib.Path('data').iterdir()))))\n",
        ".gitignore": "data/\nout/\n.replay/\n",
    })
    data = project / "data"
    data.mkdir()
    for i in range(n_files):
        (data / f"f{i:05d}.bin").write_bytes(os.urandom(4096))
    (project / "out").mkdir()
    (project / "out" / "n.txt").write_text(str(n_files))
    # A project with no packages: the environment is the base's Python alone, so the run itself is tiny.
    empty_venv = work / "empty-venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(empty_venv)], check=True)
    env = {**os.environ, "PATH": f"{empty_venv / 'bin'}:{os.environ['PATH']}"}
    cap = subprocess.run(replay_cmd("capture", "--base", base, "--name", "bench-verify", "--data", "data",
                                    "--output", "out/n.txt", "--json", "--", "python", "run.py"),
                         cwd=project, env=env, capture_output=True, text=True)
    if cap.returncode != 0:
        raise SystemExit(f"capture for the verify benchmark failed: {cap.stderr[-800:]}")
    made.append(json.loads(cap.stdout)["image_id"])
    capsule = str(project / ".replay" / "bench-verify")
    subprocess.run(replay_cmd("verify", capsule), cwd=project, capture_output=True)  # warms the stat cache
    walls, overheads, reports = [], [], []
    for _ in range(5):
        wall, proc = timed(replay_cmd("verify", capsule, "--json"), cwd=project)
        report = json.loads(proc.stdout)
        assert report["verdict"] == "identical", report
        walls.append(wall)
        overheads.append(wall - report["run"]["duration_s"])
        reports.append(report)
    bare = best(["docker", "run", "--rm", "--network", "none", base, "true"], runs=5)
    mid = reports[overheads.index(statistics.median(overheads))] if len(overheads) % 2 else reports[0]
    table = Table(title=f"3. verify overhead ({n_files} data files, warm stat cache; median of 5)",
                  title_justify="left")
    for col in ("stage", "seconds"):
        table.add_column(col)
    t = mid["timings"]
    for stage in ("manifest", "image", "data", "container_start", "compare"):
        table.add_row(stage, f"{t.get(stage, 0):.3f}")
    table.add_row("command run inside the container", f"{mid['run']['duration_s']:.3f}")
    table.add_row("verify wall time (whole process)", f"{statistics.median(walls):.3f}")
    table.add_row("[bold]overhead (wall - command run)[/]", f"[bold]{statistics.median(overheads):.3f}[/]  target < 1.5")
    table.add_row("reference: docker run --rm BASE true", f"{bare:.3f}")
    console.print(table)


def package_stage_images() -> list[str]:
    out = subprocess.run(["docker", "images", "-q", "--no-trunc", "--filter", "label=io.replay.stage=packages"],
                         capture_output=True, text=True).stdout
    return out.split()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--base", default=os.environ.get("REPLAY_BASE", "replay-base/python:3.11-bookworm"))
    parser.add_argument("--skip-capture", action="store_true", help="only start-up and verify")
    args = parser.parse_args()
    made: list[str] = []
    stages_before = set(package_stage_images())
    with tempfile.TemporaryDirectory(prefix="replay-bench-") as tmp:
        os.environ["REPLAY_CACHE_DIR"] = str(Path(tmp) / "cache")  # private lock, wheel and stat caches
        try:
            bench_help()
            if not args.skip_capture:
                bench_capture(Path(tmp), args.base, made)
            bench_verify(Path(tmp), args.base, args.files, made)
        finally:
            # Leave nothing behind: the capsule images, then the package-stage images this run built.
            made += [i for i in package_stage_images() if i not in stages_before]
            for image in made:
                subprocess.run(["docker", "rmi", "-f", image], capture_output=True)


if __name__ == "__main__":
    main()
