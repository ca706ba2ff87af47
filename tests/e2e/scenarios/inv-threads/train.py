"""Seeded, but a lock-free multithreaded updater: each worker reads a shared weight and writes it back, so
another worker's update in between is lost, and the result depends on how the threads were scheduled.
One worker per usable CPU (or OMP_NUM_THREADS), as parallel libraries do."""

import json
import os
import random
import sys
import threading
from pathlib import Path

rng = random.Random(int(os.environ.get("REPLAY_SEED", "0")))
data = [rng.random() for _ in range(120000)]
workers = int(os.environ.get("OMP_NUM_THREADS") or len(os.sched_getaffinity(0)))
sys.setswitchinterval(1e-6)
weights = [0.0] * 4


def step(w: float, x: float) -> float:
    return w + x * 1e-3


def work(chunk: list[float]) -> None:
    start.wait()  # all workers at once, as a thread pool's are
    for i, x in enumerate(chunk):
        k = i % 4
        w = weights[k]  # read ...
        weights[k] = step(w, x)  # ... and write back: what another worker wrote in between is lost


start = threading.Barrier(workers)
threads = [threading.Thread(target=work, args=(data[n::workers],)) for n in range(workers)]
for t in threads:
    t.start()
for t in threads:
    t.join()
Path("out").mkdir(exist_ok=True)
Path("out/weights.json").write_text(json.dumps({"weights": [round(w, 6) for w in weights]}) + "\n")
