"""Parsing a bundle's index, which runs on a stranger's bytes before anything else (after the signature):
the path check (a path twice, or a file that is also a folder) next to the pairwise check it replaced.

    python benchmarks/bench_bundle_index.py [--sizes 5000,10000,40000,160000] [--pairwise-up-to 10000]

Target: linear-ish (n log n): 40,000 paths in well under a second, where the pairwise check took 310 s.
No engine needed; writes nothing.
"""

from __future__ import annotations

import argparse
import json
import time

from rich.console import Console
from rich.table import Table

from replay.core.share.bundle.format import first_clash, parse_index

BLOB = "a" * 64


def index_bytes(n: int) -> bytes:
    files = [{"path": "replay.json", "blob": BLOB}] + [
        {"path": f"reference/out/{i // 200}/file-{i}.bin", "blob": BLOB} for i in range(n)]
    member = {"name": f"blobs/{BLOB}.zst", "size": 1, "sha256": BLOB, "raw_size": 1, "raw_sha256": BLOB}
    doc = {"format": "replay-bundle", "version": 1, "members": [member],
           "images": [{"id": f"sha256:{BLOB}", "layers": []}],
           "capsules": [{"name": "demo", "image": f"sha256:{BLOB}", "files": files}]}
    return json.dumps(doc).encode()


def pairwise(paths: list[str]) -> bool:
    """The check before: every new path against every path seen."""
    seen: set[str] = set()
    for p in paths:
        if p in seen or any(q.startswith(p + "/") or p.startswith(q + "/") for q in seen):
            return True
        seen.add(p)
    return False


def timed(fn: object, *args: object) -> float:
    t0 = time.perf_counter()
    fn(*args)  # type: ignore[operator]
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="5000,10000,40000,160000")
    parser.add_argument("--pairwise-up-to", type=int, default=10000)
    args = parser.parse_args()
    table = Table(title="bundle index: path check and whole parse")
    for col in ("paths", "index MiB", "first_clash s", "pairwise s (reference)", "parse_index s"):
        table.add_column(col, justify="right")
    for n in (int(s) for s in args.sizes.split(",")):
        raw = index_bytes(n)
        paths = [f["path"] for f in json.loads(raw)["capsules"][0]["files"]]
        ours = timed(first_clash, paths)
        ref = f"{timed(pairwise, paths):.2f}" if n <= args.pairwise_up_to else "(skipped)"
        whole = timed(parse_index, raw)
        table.add_row(str(n), f"{len(raw) / 2**20:.1f}", f"{ours:.3f}", ref, f"{whole:.3f}")
    Console().print(table)


if __name__ == "__main__":
    main()
