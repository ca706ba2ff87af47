"""One script, many captures, for batch verify: `python train.py DATA MODE`.

MODE ok: a deterministic result from the data and the seed; diverge: a result that changes on every run;
fail: succeeds on the host (so it can be captured) and exits 3 when replayed in its capsule's container.
"""

import os
import sys
import time
from pathlib import Path

data, mode = sys.argv[1], sys.argv[2]
numbers = [int(x) for x in (Path(data) / "input.txt").read_text().split()]
if mode == "fail" and Path("/replay/replay.json").exists():
    print("error: the accelerator this run needs is gone", file=sys.stderr)
    sys.exit(3)
value = sum(numbers) * int(os.environ.get("REPLAY_SEED", "1"))
if mode == "diverge":
    value = time.time_ns()
Path("out").mkdir(exist_ok=True)
Path("out/result.txt").write_text(f"{value}\n")
print(f"result {value}")
