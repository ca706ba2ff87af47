"""A training run that forgot its seed: predictions and metrics change on every run."""

import json
import time
from pathlib import Path

import numpy as np

rng = np.random.default_rng()  # no seed: the bug replay must catch
weights = rng.normal(size=(64, 10))
data = np.load("data/digits.npz")
scores = (data["x"][:200] / 16.0) @ weights
Path("out").mkdir(exist_ok=True)
np.save("out/predictions.npy", scores)
accuracy = float((scores.argmax(axis=1) == data["y"][:200]).mean())
Path("out/metrics.json").write_text(json.dumps({"accuracy": accuracy, "trained_at": time.time()}) + "\n")
print(f"accuracy {accuracy:.3f}")
