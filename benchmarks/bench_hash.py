"""How fast replay hashes data, side by side with the reference tools.

    python benchmarks/bench_hash.py [--size-mib 2048] [--files 10000] [--workdir DIR]

(a) one big random file (warm, 2 GiB): ``hash_file`` against ``openssl dgst -sha256`` (target: at least 95% of
    its speed), at several read-buffer sizes and at the chosen ``CHUNK_SIZE``: a buffer larger than the
    core's L2 cache is evicted between the read and the hash, so the best size depends on the CPU (its
    model and L2 size are printed with the figures);
(b) a tree of small files (4-64 KiB): ``hash_paths`` against ``find | xargs -P$(nproc) sha256sum``;
(c) checking unchanged data again (the tree and the big file): a cold stat cache against a warm one
    (target: at least 20 times faster).

Every figure is the best of 3 runs with the page cache warm, so that it measures hashing, not the disk.
The data lives in a temporary folder (under --workdir, default the system's temp folder) with a private
stat cache, all removed at the end. Needs only the standard library, rich, and the two reference tools.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

from replay.core.data import hashing  # noqa: E402
from replay.core.data.hashing import CHUNK_SIZE, hash_file, hash_paths  # noqa: E402
from replay.core.data.statcache import StatCache  # noqa: E402

RUNS = 3
BUFFERS = (64 << 10, 128 << 10, 256 << 10, 1 << 20)
PAST = time.time() - 3600  # data older than the stat cache's racy window, so that it gets cached


def best_of(fn: Callable[[], object], runs: int = RUNS) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def run_quiet(cmd: str) -> None:
    subprocess.run(cmd, shell=True, check=True, stdout=subprocess.DEVNULL)


def make_big_file(path: Path, size_mib: int) -> None:
    with open(path, "wb") as handle:
        for _ in range(size_mib):
            handle.write(os.urandom(1 << 20))
    os.utime(path, (PAST, PAST))


def make_tree(root: Path, count: int) -> int:
    rng = random.Random(1)
    total = 0
    for i in range(count):
        folder = root / f"{i // 100:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        size = rng.randint(4, 64) * 1024
        path = folder / f"{i:06d}.bin"
        path.write_bytes(os.urandom(size))
        os.utime(path, (PAST, PAST))
        total += size
    return total


def warm(path: Path) -> None:
    run_quiet(f"find {path} -type f -print0 | xargs -0 cat > /dev/null")


def with_buffer(size: int) -> None:
    """Make hash_file read with a ``size``-byte buffer (the module's per-thread buffer is rebuilt)."""
    hashing.CHUNK_SIZE = size
    if hasattr(hashing._local, "buffer"):
        del hashing._local.buffer


def bench_big(big: Path) -> tuple[dict[int, float], float]:
    """MB/s of hash_file at each buffer size (the chosen CHUNK_SIZE among them), and of openssl."""
    size = big.stat().st_size
    theirs = best_of(lambda: run_quiet(f"openssl dgst -sha256 {big}"))
    expected = subprocess.run(["openssl", "dgst", "-sha256", "-r", str(big)], capture_output=True, text=True)
    ours: dict[int, float] = {}
    for buffer in sorted({*BUFFERS, CHUNK_SIZE}):
        with_buffer(buffer)
        ours[buffer] = size / best_of(lambda: hash_file(big)) / 1e6
        if hash_file(big)[1] != expected.stdout.split()[0]:
            raise SystemExit("hash_file and openssl disagree")
    with_buffer(CHUNK_SIZE)
    return ours, size / theirs / 1e6


def cpu_facts() -> str:
    """``lscpu``'s model name and L2 size, the two facts that decide the best buffer."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "CPU model unknown (no lscpu)"
    facts = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    model = facts.get("Model name", "?").strip()
    l2 = facts.get("L2 cache", facts.get("L2d cache", "?")).strip()
    return f"{model}, L2 {l2}"


def kib(size: int) -> str:
    return f"{size >> 20} MiB" if size >= 1 << 20 else f"{size >> 10} KiB"


def bench_tree(tree: Path, count: int, base: Path) -> tuple[float, float]:
    ours = best_of(lambda: hash_paths([tree], base))
    theirs = best_of(lambda: run_quiet(f"find {tree} -type f -print0 | xargs -0 -P$(nproc) sha256sum"))
    return count / ours, count / theirs


def bench_recheck(paths: list[Path], base: Path, cache_dir: Path) -> tuple[float, float]:
    def one_pass() -> None:
        with StatCache(cache_dir / "statcache.sqlite") as cache:
            hash_paths(paths, base, cache=cache)

    def cold() -> None:
        shutil.rmtree(cache_dir, ignore_errors=True)
        one_pass()

    cold_s = best_of(cold)
    one_pass()  # leave the cache filled, whichever run was last
    warm_s = best_of(one_pass)
    return cold_s, warm_s


def verdict(ok: bool) -> str:
    return "[green]met[/]" if ok else "[red]missed[/]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=2048, help="size of the big file (default 2048)")
    parser.add_argument("--files", type=int, default=10_000, help="number of small files (default 10000)")
    parser.add_argument("--workdir", type=Path, default=None, help="where to make the temporary data")
    args = parser.parse_args()
    for tool in ("openssl", "sha256sum", "find", "xargs"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not installed: it is one of the reference tools")

    console = Console()
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    openssl = subprocess.run(["openssl", "version"], capture_output=True, text=True).stdout.strip()
    console.print(f"[dim]{cpu_facts()}; {cpus} CPUs, Python {sys.version.split()[0]}, {openssl}, best of {RUNS} runs[/]")
    work = Path(tempfile.mkdtemp(prefix="replay-bench-", dir=args.workdir))
    try:
        base, cache_dir = work / "data", work / "cache"
        big, tree = base / "big.bin", base / "tree"
        base.mkdir()
        with console.status("writing test data"):
            make_big_file(big, args.size_mib)
            tree_bytes = make_tree(tree, args.files)
            warm(base)
        with console.status(f"(a) hashing one {args.size_mib} MiB file"):
            ours_mbs, openssl_mbs = bench_big(big)
        with console.status(f"(b) hashing {args.files:,} small files"):
            ours_fps, sha256sum_fps = bench_tree(tree, args.files, base)
        with console.status("(c) re-checking unchanged data"):
            cold_s, warm_s = bench_recheck([tree, big], base, cache_dir)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    table = Table(title="replay hashing, side by side with the reference tools")
    for column in ("benchmark", "replay", "reference", "ratio", "target"):
        table.add_column(column, justify="left" if column == "benchmark" else "right")
    for buffer, mbs in ours_mbs.items():
        ratio = mbs / openssl_mbs
        chosen = buffer == CHUNK_SIZE
        table.add_row(
            f"(a) one {args.size_mib:,} MiB file, {kib(buffer)} buffer{' (chosen)' if chosen else ''}"
            "\n    vs openssl dgst -sha256",
            f"{mbs:,.0f} MB/s",
            f"{openssl_mbs:,.0f} MB/s",
            f"{ratio:.0%}",
            f">= 95% {verdict(ratio >= 0.95)}" if chosen else "",
        )
    table.add_row(
        f"(b) {args.files:,} files of 4-64 KiB ({tree_bytes / 1e6:,.0f} MB)\n    vs xargs -P{cpus} sha256sum",
        f"{ours_fps:,.0f} files/s",
        f"{sha256sum_fps:,.0f} files/s",
        f"{ours_fps / sha256sum_fps:.0%}",
        "",
    )
    speedup = cold_s / warm_s
    table.add_row(
        "(c) re-check (a) + (b), unchanged\n    warm stat cache vs cold",
        f"{warm_s:.3f} s",
        f"{cold_s:.3f} s",
        f"{speedup:.1f}x",
        f">= 20x {verdict(speedup >= 20)}",
    )
    console.print(table)


if __name__ == "__main__":
    main()
