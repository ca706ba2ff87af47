"""`replay verify --investigate` over the e2e divergence scenarios: extra replays and time per scenario, next to
a plain `replay verify` of the same capsule.

    python benchmarks/bench_investigate.py [--scenarios inv-clock,inv-threads] [--budget 4]

Captures each scenario of tests/e2e/scenarios/inv-* once (the e2e training virtualenv, made once and kept in
.cache), verifies it plainly and with --investigate, and prints per scenario: the cause named, confirmed or
not, the extra replays, the investigation's seconds, and both verify wall times. Target: a median of at most
2 extra replays over the scenarios. Needs a Docker engine and the base image (`make base`); removes every
image it made.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.e2e.conftest import (  # noqa: E402  (the scenarios' own project maker and training virtualenv)
    BASE,
    TRAIN_REQUIREMENTS,
    cached_venv,
    new_project,
)

SCENARIOS = ["inv-timing-key", "inv-timing-lines", "inv-threads", "inv-hash-order", "inv-unseeded", "inv-clock",
             "inv-stale"]
TARGET_MEDIAN = 2
console = Console(width=150)


def timed(project: object, *args: str) -> tuple[float, subprocess.CompletedProcess[str]]:
    env = project.env()  # type: ignore[attr-defined]
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "replay", *args], cwd=project.root,  # type: ignore[attr-defined]
                          env=env, capture_output=True, text=True)
    return time.perf_counter() - start, proc


def bench(name: str, work: Path, venv: Path, budget: int, images: list[str]) -> list[str]:
    project = new_project(work, name, venv)
    spec = project.scenario
    args = list(spec["capture"])
    _, captured = timed(project, "capture", "--name", project.name, "--base", BASE, *args)
    if captured.returncode != 0:
        raise SystemExit(f"capture of {name} failed:\n{captured.stderr[-2000:]}")
    manifest = json.loads((project.capsule / "replay.json").read_text())
    images += [manifest["image"]["id"], manifest["image"].get("environment_id", "")]
    plain_s, _ = timed(project, "verify", str(project.capsule), "--json")
    inv_s, proc = timed(project, "verify", str(project.capsule), "--json", "--investigate-runs", str(budget))
    found = json.loads(proc.stdout).get("investigation") or {}
    return [name, spec.get("cause", "?"), str(found.get("cause")), "yes" if found.get("confirmed") else "no",
            str(found.get("extra_replays")), f"{found.get('seconds', 0):.1f}", f"{plain_s:.1f}", f"{inv_s:.1f}"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--budget", type=int, default=4)
    opts = parser.parse_args()
    venv = cached_venv("e2e-train-venv", TRAIN_REQUIREMENTS)
    images: list[str] = []
    table = Table(title="verify --investigate per scenario (reference: a plain verify of the same capsule)")
    for col in ("scenario", "expected", "named", "confirmed", "extra replays", "investigation s", "plain verify s",
                "verify --investigate s"):
        table.add_column(col)
    rows = []
    try:
        with tempfile.TemporaryDirectory(prefix="bench-investigate-") as tmp:
            for name in opts.scenarios.split(","):
                rows.append(bench(name, Path(tmp), venv, opts.budget, images))
                table.add_row(*rows[-1])
    finally:
        for image in [i for i in images if i]:
            subprocess.run(["docker", "rmi", image], capture_output=True)
    console.print(table)
    extra = [int(r[4]) for r in rows if r[4].isdigit()]
    if extra:
        median = statistics.median(extra)
        verdict = "met" if median <= TARGET_MEDIAN else "MISSED"
        console.print(f"median extra replays {median:g} (target <= {TARGET_MEDIAN}: {verdict}); "
                      f"right cause named and confirmed in {sum(r[1] == r[2] and r[3] == 'yes' for r in rows)} of "
                      f"{len(rows)}")


if __name__ == "__main__":
    main()
