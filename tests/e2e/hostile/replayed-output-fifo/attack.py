from pathlib import Path

from tests.e2e.test_hostile import edit_manifest


def attack(capsule: Path, project: Path, sentinel: Path) -> None:
    # A FIFO where the metrics file belongs: reading it would hang the verifier.
    script = "import os\nos.makedirs('out', exist_ok=True)\nos.mkfifo('out/metrics.json')\n"
    edit_manifest(capsule, lambda m: m["command"].__setitem__("argv", ["python", "-c", script]))
