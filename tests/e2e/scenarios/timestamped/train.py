"""Deterministic weights and predictions, but a log with timestamps, a metric with a last-digits jitter, and
a file that records the time zone's offset (stable here, changed by `replay check --vary timezone`)."""

import json
import os
import time
from datetime import datetime
from pathlib import Path

import numpy as np

seed = int(os.environ["REPLAY_SEED"])
weights = np.random.default_rng(seed).normal(size=(64, 10))
data = np.load("data/digits.npz")
scores = (data["x"][:200] / 16.0) @ weights
accuracy = float((scores.argmax(axis=1) == data["y"][:200]).mean())
jitter = ((time.perf_counter_ns() % 997) + 1) * 1e-12  # like a nondeterministic reduction: tiny, never zero
Path("out").mkdir(exist_ok=True)
np.save("out/weights.npy", weights)
Path("out/metrics.json").write_text(json.dumps({"accuracy": accuracy + jitter, "samples": 200}) + "\n")
Path("out/tz.txt").write_text(time.strftime("%z", time.localtime(0)) + "\n")
with open("out/train.log", "w") as log:
    log.write(f"{datetime.now().isoformat()} started\n")
    log.write(f"{datetime.now().isoformat()} samples 200\n")
    log.write(f"{datetime.now().isoformat()} accuracy {accuracy:.4f}\n")
