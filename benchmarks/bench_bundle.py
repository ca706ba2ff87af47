"""Bundle speed and size, side by side with reference figures measured in the same run.

    python benchmarks/bench_bundle.py [--base IMAGE] [--runs 2]

Captures one numpy/scikit-learn project, then prints three tables:
  1. packing throughput: `replay pack CAPSULE -o FILE` next to `docker save IMAGE | zstd -T0 -3 > FILE` on the
     same image (target: at least 80% of the reference's throughput; best of --runs, run alternately);
  2. verify overhead of a bundle whose image the engine already has next to verifying the capsule folder
     (target: within 0.5 s; no image is loaded, checked with the engine's `load` events);
  3. the size of a bundle of 10 capsules sharing one image next to one capsule's bundle (target: at most
     1.1x). The 10 capsules are copies of the captured one under 10 names (one image, ten manifests).

Needs a Docker engine, the base image (`make base`) and the `zstd` tool (`make tools` installs it);
leaves no image or container behind.
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_capture_verify import git_project, package_stage_images, replay_cmd, timed, train_venv  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
console = Console()


def ensure_zstd() -> None:
    if shutil.which("zstd") is None:
        subprocess.run(["bash", str(REPO / "scripts" / "ensure-tools.sh")], check=True)


def capture(work: Path, base: str, made: list[str]) -> tuple[Path, Path, str]:
    venv = train_venv()
    project = work / "bundle-project"
    git_project(project, {
        "train.py": (REPO / "examples" / "digits-sklearn" / "train.py").read_text(),
        "make_data.py": (REPO / "examples" / "digits-sklearn" / "make_data.py").read_text(),
        ".gitignore": "data/\nout/\n.replay/\n",
    })
    env = {**os.environ, "PATH": f"{venv / 'bin'}:{os.environ['PATH']}"}
    subprocess.run([str(venv / "bin" / "python"), "make_data.py"], cwd=project, check=True, capture_output=True)
    cap = subprocess.run(replay_cmd("capture", "--base", base, "--name", "bench-bundle", "--run", "--data", "data",
                                    "--output", "out/model.pkl", "--output", "out/predictions.npy", "--metrics",
                                    "out/metrics.json", "--seed", "7", "--json", "--", "python", "train.py"),
                         cwd=project, env=env, capture_output=True, text=True)
    if cap.returncode != 0:
        raise SystemExit(f"capture failed: {cap.stderr[-800:]}")
    image = json.loads(cap.stdout)["image_id"]
    made.append(image)
    return project, project / ".replay" / "bench-bundle", image


def bench_pack(work: Path, capsule: Path, image: str, runs: int) -> None:
    size = int(subprocess.run(["docker", "image", "inspect", "-f", "{{.Size}}", image], capture_output=True,
                              text=True, check=True).stdout)
    ours, theirs = [], []
    ref_file, our_file = work / "ref.tar.zst", work / "pack.replay"
    for _ in range(runs):
        ref_file.unlink(missing_ok=True)
        secs, proc = timed(["bash", "-o", "pipefail", "-c", f"docker save {image} | zstd -T0 -3 -q > {ref_file}"])
        if proc.returncode != 0:
            raise SystemExit(f"reference failed: {proc.stderr}")
        theirs.append(secs)
        our_file.unlink(missing_ok=True)
        secs, proc = timed(replay_cmd("pack", str(capsule), "-o", str(our_file)))
        if proc.returncode != 0:
            raise SystemExit(f"replay pack failed: {proc.stderr[-800:]}")
        ours.append(secs)
    table = Table(title=f"1. packing one capsule (image {size / 2**20:.0f} MiB; best of {runs})", title_justify="left")
    for col in ("", "wall (s)", "MiB/s of image", "file (MiB)"):
        table.add_column(col)
    ref_rate, our_rate = size / min(theirs) / 2**20, size / min(ours) / 2**20
    table.add_row("docker save | zstd -T0 -3 (reference)", f"{min(theirs):.2f}", f"{ref_rate:.1f}",
                  f"{ref_file.stat().st_size / 2**20:.1f}")
    table.add_row("replay pack", f"{min(ours):.2f}", f"{our_rate:.1f}", f"{our_file.stat().st_size / 2**20:.1f}")
    table.add_row("[bold]replay / reference throughput[/]", "", f"[bold]{100 * our_rate / ref_rate:.0f}%[/]",
                  "target: at least 80%")
    console.print(table)


def loads_since(since: float) -> list[str]:
    out = subprocess.run(["docker", "events", "--since", str(int(since)), "--until", str(int(time.time()) + 1),
                          "--filter", "type=image", "--filter", "event=load", "--format", "{{.ID}}"],
                         capture_output=True, text=True).stdout
    return out.split()


def bench_verify(work: Path, project: Path, capsule: Path, runs: int) -> None:
    bundle = work / "verify.replay"
    subprocess.run(replay_cmd("pack", str(capsule), "-o", str(bundle), "--with-data"), cwd=project, check=True,
                   capture_output=True)  # the data are found where verify finds them: from the project
    since = time.time()
    folder_walls, bundle_walls = [], []
    for _ in range(max(3, runs)):
        for target, walls in ((str(capsule), folder_walls), (str(bundle), bundle_walls)):
            wall, proc = timed(replay_cmd("verify", target, "--json"), cwd=project)
            report = json.loads(proc.stdout)
            assert report["verdict"] == "identical", report
            walls.append(wall - report["run"]["duration_s"])  # the replayed command's own time varies most
    loaded = loads_since(since)
    table = Table(title=f"2. verify with the image already in the engine (median of {len(folder_walls)})",
                  title_justify="left")
    for col in ("target", "wall - command run (s)"):
        table.add_column(col)
    folder, packed = statistics.median(folder_walls), statistics.median(bundle_walls)
    table.add_row("capsule folder (reference)", f"{folder:.3f}")
    table.add_row(f"bundle, {bundle.stat().st_size / 2**20:.0f} MiB, with data", f"{packed:.3f}")
    table.add_row("[bold]bundle overhead[/]", f"[bold]{packed - folder:+.3f}[/]  target within 0.5")
    table.add_row("images loaded meanwhile (engine events)", str(len(loaded)))
    console.print(table)


def bench_many(work: Path, capsule: Path) -> None:
    copies = []
    for i in range(10):
        copy = work / "many" / f"exp-{i}"
        shutil.copytree(capsule, copy)
        manifest = json.loads((copy / "replay.json").read_text())
        manifest["name"] = f"exp-{i}"
        (copy / "replay.json").write_text(json.dumps(manifest, indent=2))
        copies.append(str(copy))
    one, ten = work / "one.replay", work / "ten.replay"
    subprocess.run(replay_cmd("pack", copies[0], "-o", str(one)), check=True, capture_output=True)
    subprocess.run(replay_cmd("pack", *copies, "-o", str(ten)), check=True, capture_output=True)
    table = Table(title="3. bundle of 10 capsules sharing one image", title_justify="left")
    for col in ("bundle", "MiB"):
        table.add_column(col)
    table.add_row("one capsule (reference)", f"{one.stat().st_size / 2**20:.2f}")
    table.add_row("ten capsules", f"{ten.stat().st_size / 2**20:.2f}")
    table.add_row("[bold]ten / one[/]", f"[bold]{ten.stat().st_size / one.stat().st_size:.3f}x[/]  target at most 1.1x")
    console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", default=os.environ.get("REPLAY_BASE", "replay-base/python:3.11-bookworm"))
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--skip-pack", action="store_true", help="only tables 2 and 3")
    args = parser.parse_args()
    ensure_zstd()
    made: list[str] = []
    stages_before = set(package_stage_images())
    with tempfile.TemporaryDirectory(prefix="replay-bench-bundle-") as tmp:
        work = Path(tmp)
        try:
            project, capsule, image = capture(work, args.base, made)
            if not args.skip_pack:
                bench_pack(work, capsule, image, args.runs)
            bench_verify(work, project, capsule, args.runs)
            bench_many(work, capsule)
        finally:
            made += [i for i in package_stage_images() if i not in stages_before]
            for image_id in made:
                subprocess.run(["docker", "rmi", "-f", image_id], capture_output=True)


if __name__ == "__main__":
    main()
