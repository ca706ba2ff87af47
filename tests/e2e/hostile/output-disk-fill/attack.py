from pathlib import Path

from tests.e2e.test_hostile import edit_manifest

# A replay that would fill the host's disk through its output folder (bind-mounted from the host): 200 MB,
# 1 MiB at a time, against --max-output 20m. It is killed near the quota; 200 MB bounds the case.
FILL = """
import os
os.makedirs('out', exist_ok=True)
block = os.urandom(1 << 20)
with open('out/model.pkl', 'wb') as f:
    for _ in range(200):
        f.write(block)
        f.flush()
"""


def attack(capsule: Path, project: Path, sentinel: Path) -> None:
    edit_manifest(capsule, lambda m: m["command"].__setitem__("argv", ["python", "-c", FILL]))
