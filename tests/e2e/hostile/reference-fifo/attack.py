import os
from pathlib import Path


def attack(capsule: Path, project: Path, sentinel: Path) -> None:
    # Reading a FIFO blocks until someone writes: a verifier that opens it hangs forever.
    copy = capsule / "reference" / "out" / "metrics.json"
    copy.unlink()
    os.mkfifo(copy)
