"""No randomness and no seed: a log whose only differences between runs are the timings it prints."""

import time
from pathlib import Path

Path("out").mkdir(exist_ok=True)
total = 0
with open("out/stdout.txt", "w") as log:
    for step in range(1, 6):
        started = time.perf_counter()
        time.sleep(0.05)
        total += step * step
        log.write(f"step {step}: sum of squares {total} in {time.perf_counter() - started:.9f} sec\n")
    log.write("done\n")
Path("out/result.txt").write_text(f"{total}\n")
