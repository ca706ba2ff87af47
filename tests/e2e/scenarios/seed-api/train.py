"""A training script that seeds itself with replay's API, in an environment that has replay installed.

In the capsule image replay is not installed: the image gets a minimal `replay` package holding only the
seeding module, so this import works there too.
"""

import json
import random
from pathlib import Path

import numpy as np

from replay import seed_everything

record = seed_everything()  # the seed replay records with --seed, from REPLAY_SEED
x = np.load("data/x.npy")
weights = record.rng.normal(size=(x.shape[1], 3)) + np.random.rand(x.shape[1], 3) + random.random()
Path("out").mkdir(exist_ok=True)
np.save("out/weights.npy", x[:100] @ weights)
# What was seeded, without the versions (the image's Python build may differ from this host's).
summary = {key: record.to_dict()[key] for key in ("seed", "source", "seeded", "not_seeded")}
Path("out/seeding.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
print(summary)
