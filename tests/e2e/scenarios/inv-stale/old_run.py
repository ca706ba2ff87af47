"""What an older version of train.py wrote: the reference the capture records (no --run)."""

from pathlib import Path

Path("out").mkdir(exist_ok=True)
Path("out/result.txt").write_text("accuracy 0.871234\n")
