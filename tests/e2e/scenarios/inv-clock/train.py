"""Seeded; stamps its output with the wall-clock time it finished."""

import datetime
import os
import random
from pathlib import Path

random.seed(int(os.environ.get("REPLAY_SEED", "0")))
Path("out").mkdir(exist_ok=True)
stamp = datetime.datetime.now(datetime.UTC).isoformat()
Path("out/result.txt").write_text(f"accuracy {random.random():.6f}\nfinished {stamp}\n")
