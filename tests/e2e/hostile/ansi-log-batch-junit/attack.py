from pathlib import Path

from tests.e2e.test_hostile import edit_manifest


def attack(capsule: Path, project: Path, sentinel: Path) -> None:
    """A replay whose log is coloured (ANSI), with NUL and a vertical tab: characters XML 1.0 cannot hold."""
    log = "print('\\x1b[1;32mEpoch 1\\x1b[0m \\x00\\x0b done <script>alert(1)</script>'); raise SystemExit(3)"
    edit_manifest(capsule, lambda m: m["command"].__setitem__("argv", ["python", "-c", log]))
