"""Deterministic weights, but a log with a timestamp and an accuracy with a last-digits jitter."""

import json
import os
import time
from pathlib import Path

import numpy as np

seed = int(os.environ["REPLAY_SEED"])
weights = np.random.default_rng(seed).normal(size=(64, 10))
data = np.load("data/digits.npz")
scores = (data["x"][:200] / 16.0) @ weights
accuracy = float((scores.argmax(axis=1) == data["y"][:200]).mean())
jitter = (time.perf_counter_ns() % 1000) * 1e-12  # like a nondeterministic reduction: tiny, never zero-sure
Path("out").mkdir(exist_ok=True)
np.save("out/weights.npy", weights)
Path("out/metrics.json").write_text(json.dumps({"accuracy": accuracy + jitter}) + "\n")
Path("out/run.log").write_text(f"finished at {time.time()}\n")
