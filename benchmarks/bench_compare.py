"""replay's byte comparison (first_difference) side by side with `cmp`, on files in the page cache.

    python benchmarks/bench_compare.py [--size-mib 1024] [--repeat 3]

Makes two identical random files in /tmp (removed afterwards), times both tools best-of-N on them, then
again with one byte changed in the last MiB of the second file, and prints MB/s (10^6 bytes of one file
per second) and replay's share of cmp's throughput (the target is at least 90%).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from replay.core.verify.compare import first_difference  # noqa: E402

TARGET = 0.90


def make_files(folder: Path, size: int) -> tuple[Path, Path]:
    a, b = folder / "a.bin", folder / "b.bin"
    block = 16 << 20
    with open(a, "wb") as handle:
        left = size
        while left:
            handle.write(os.urandom(min(block, left)))
            left -= min(block, left)
    shutil.copyfile(a, b)
    return a, b


def best_of(repeat: int, fn: Callable[[], object]) -> tuple[float, object]:
    fn()  # warm the page cache and the code path; not timed
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def run_cmp(a: Path, b: Path) -> int | None:
    proc = subprocess.run(["cmp", str(a), str(b)], capture_output=True, text=True)
    if proc.returncode == 0:
        return None
    if proc.returncode == 1:  # "a b differ: byte 123, line 4" (1-based)
        return int(proc.stdout.split("byte ")[1].split(",")[0]) - 1
    raise RuntimeError(proc.stderr.strip())


def flip_byte(path: Path, offset: int) -> None:
    with open(path, "r+b") as handle:
        handle.seek(offset)
        old = handle.read(1)
        handle.seek(offset)
        handle.write(bytes([old[0] ^ 0xFF]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if shutil.which("cmp") is None:
        print("cmp is not installed (diffutils)", file=sys.stderr)
        return 2
    size = args.size_mib << 20
    console = Console()
    table = Table(title=f"first differing byte, two {args.size_mib} MiB files in the page cache, best of {args.repeat}")
    for column in ("case", "replay s", "replay MB/s", "cmp s", "cmp MB/s", "replay / cmp"):
        table.add_column(column, justify="left" if column == "case" else "right")
    ok = True
    with tempfile.TemporaryDirectory(prefix="replay-bench-", dir="/tmp") as tmp:
        with console.status(f"writing two {args.size_mib} MiB files"):
            a, b = make_files(Path(tmp), size)
        changed = max(0, size - (1 << 19))  # in the last MiB, so both tools read nearly everything
        for case, offset in (("identical", None), ("diff in last MiB", changed)):
            if offset is not None:
                flip_byte(b, offset)
            with console.status(f"timing: {case}"):
                t_replay, got_replay = best_of(args.repeat, lambda: first_difference(a, b))
                t_cmp, got_cmp = best_of(args.repeat, lambda: run_cmp(a, b))
            if got_replay != offset or got_cmp != offset:
                console.print(f"[red]wrong answer[/]: replay {got_replay}, cmp {got_cmp}, expected {offset}")
                return 1
            # Bytes of one file actually compared: up to and including the differing byte.
            compared = size if offset is None else offset + 1
            ratio = t_cmp / t_replay
            ok = ok and ratio >= TARGET
            table.add_row(
                case,
                f"{t_replay:.3f}",
                f"{compared / t_replay / 1e6:,.0f}",
                f"{t_cmp:.3f}",
                f"{compared / t_cmp / 1e6:,.0f}",
                f"[{'green' if ratio >= TARGET else 'red'}]{ratio:.0%}[/]",
            )
    console.print(table)
    console.print(f"target: replay at least {TARGET:.0%} of cmp's throughput: {'met' if ok else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
