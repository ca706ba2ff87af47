from pathlib import Path

from tests.e2e.test_hostile import edit_manifest

# An .npy whose header claims 10^11 float64 elements (800 GB) in a file of a few bytes.
BOMB = r"""
import os, struct
os.makedirs('out', exist_ok=True)
header = b"{'descr': '<f8', 'fortran_order': False, 'shape': (100000000000,), }\n"
with open('out/predictions.npy', 'wb') as f:
    f.write(b'\x93NUMPY\x01\x00' + struct.pack('<H', len(header)) + header + b'\0' * 64)
"""


def attack(capsule: Path, project: Path, sentinel: Path) -> None:
    edit_manifest(capsule, lambda m: m["command"].__setitem__("argv", ["python", "-c", BOMB]))
