"""A seeded training harness that, like tensorboard, writes its logs to a folder nobody declared (runs/logs),
and notes beside its declared output folder; the outputs depend on those writes succeeding."""

import json
import os
from pathlib import Path

import numpy as np

rng = np.random.default_rng(int(os.environ.get("REPLAY_SEED", "0")))
data = np.load("data/digits.npz")
weights = rng.normal(size=(64, 10))
logs = Path("runs/logs")
try:
    logs.mkdir(parents=True, exist_ok=True)
    for step in range(3):
        (logs / f"events.{step}").write_text(f"step {step} loss {float(weights[step].sum()):.6f}\n")
    Path("runs/exp").mkdir(parents=True, exist_ok=True)
    Path("runs/exp/notes.txt").write_text("a note beside the declared outputs\n")
    logged = len(list(logs.iterdir()))
except OSError as exc:  # a harness that swallows the error, as tensorboard's writer does
    print(f"could not write logs: {exc}")
    logged = 0
scores = (data["x"][:200] / 16.0) @ weights
out = Path("runs/exp/out")
out.mkdir(parents=True, exist_ok=True)
np.save(out / "scores.npy", scores)
(out / "metrics.json").write_text(json.dumps({"logged": logged}) + "\n")
print(f"logged {logged}")
