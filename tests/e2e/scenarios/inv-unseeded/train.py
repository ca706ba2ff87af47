"""A run that forgot its seed: NumPy's default_rng() draws from the operating system on every run."""

import json
from pathlib import Path

import numpy as np

rng = np.random.default_rng()
weights = rng.normal(size=8)
Path("out").mkdir(exist_ok=True)
Path("out/metrics.json").write_text(json.dumps({"loss": float(np.abs(weights).mean())}) + "\n")
np.save("out/weights.npy", weights)
