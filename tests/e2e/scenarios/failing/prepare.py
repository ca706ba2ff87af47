"""Outputs of an earlier, successful run; the command as captured now fails."""

from pathlib import Path

Path("data").mkdir(exist_ok=True)
Path("data/input.txt").write_text("1 2 3\n")
Path("out").mkdir(exist_ok=True)
Path("out/result.txt").write_text("6\n")
