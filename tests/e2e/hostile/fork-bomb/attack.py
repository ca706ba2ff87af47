from pathlib import Path

from tests.e2e.test_hostile import edit_manifest

# Children that fork until the kernel says no: under --pids 64 the bomb ends there, bounded, and says where.
BOMB = """
import os, sys, time
children = 0
try:
    for _ in range(600):
        if os.fork() == 0:
            time.sleep(20)
            os._exit(0)
        children += 1
except OSError as exc:
    print(f"limited at {children} children: {exc}", flush=True)
    sys.exit(3)
sys.exit(0)
"""


def attack(capsule: Path, project: Path, sentinel: Path) -> None:
    edit_manifest(capsule, lambda m: m["command"].__setitem__("argv", ["python", "-c", BOMB]))
