"""Fully seeded; prints its timing under a key, and pandas-style (43 spaces of padding before the number)."""

import os
import random
import time
from pathlib import Path

random.seed(int(os.environ.get("REPLAY_SEED", "0")))
started = time.perf_counter()
loss = sum(random.random() for _ in range(10000)) / 10000
elapsed = time.perf_counter() - started
Path("out").mkdir(exist_ok=True)
with open("out/log.txt", "w") as log:
    log.write(f"{ {'time': round(elapsed, 9), 'loss': round(loss, 6)} }\n")
    log.write(f"mean_score_time{' ' * 43}{elapsed:.9f}\n")
    log.write(f"mean_test_score{' ' * 43}{loss:.6f}\n")
