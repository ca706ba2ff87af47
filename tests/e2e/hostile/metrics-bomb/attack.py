from pathlib import Path

from tests.e2e.test_hostile import edit_manifest

# About 48 MB and 3 million keys where the metrics file belongs: parsed whole, the verifier's own process
# (which no container limits) would grow by gigabytes. Over the read budget, it is not parsed.
BOMB = """
import os
os.makedirs('out', exist_ok=True)
with open('out/metrics.json', 'w') as f:
    f.write('{')
    for start in range(0, 3_000_000, 100_000):
        f.write(','.join(f'"k{i}": {i}' for i in range(start, start + 100_000)) + (',' if start < 2_900_000 else ''))
    f.write('}')
"""


def attack(capsule: Path, project: Path, sentinel: Path) -> None:
    edit_manifest(capsule, lambda m: m["command"].__setitem__("argv", ["python", "-c", BOMB]))
