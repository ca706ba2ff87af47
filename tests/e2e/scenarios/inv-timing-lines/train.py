"""Seeded; prints the overhead of a test in seconds, and a hint line whose presence follows that timing."""

import os
import random
import time
from pathlib import Path

random.seed(int(os.environ.get("REPLAY_SEED", "0")))
Path("out").mkdir(exist_ok=True)
with open("out/stdout.txt", "w") as log:
    log.write(f"score {random.random():.6f}\n")
    started = time.perf_counter()
    sum(i * i for i in range(20000))
    overhead = time.perf_counter() - started
    log.write(f"the overhead of testing was {overhead:.7f} seconds\n")
    if int(overhead * 1e7) % 2:  # a hint that comes and goes with the timing
        log.write("hint: testing is slow on this machine; consider fewer test batches\n")
    log.write("done\n")
