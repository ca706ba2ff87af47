from pathlib import Path

from tests.e2e.test_hostile import edit_manifest

# 80 MB on one line without a newline, then a clean exit within a second: the verifier reads it in one pass,
# keeps a bounded tail, and never calls that a timeout.
FLOOD = "import sys\nfor _ in range(80):\n    sys.stdout.write('x' * (1 << 20))\nsys.stdout.flush()\n"


def attack(capsule: Path, project: Path, sentinel: Path) -> None:
    edit_manifest(capsule, lambda m: m["command"].__setitem__("argv", ["python", "-c", FLOOD]))
