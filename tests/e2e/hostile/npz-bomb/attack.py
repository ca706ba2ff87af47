import hashlib
import io
import zipfile
from pathlib import Path

import numpy as np

from tests.e2e.test_hostile import edit_manifest

# An .npz of about 2 MB whose one entry inflates to 2 GiB of float64 zeros. Loaded as numpy loads an .npz,
# it would cost the verifier 2 GiB; checked by its entries' declared sizes, it is summarised, not loaded.
BOMB = r"""
import os, zipfile
os.makedirs('out', exist_ok=True)
header = b"{'descr': '<f8', 'fortran_order': False, 'shape': (268435456,), }"
header += b' ' * (117 - len(header)) + b'\n'
zeros = bytes(1 << 20)
with zipfile.ZipFile('out/arrays.npz', 'w', zipfile.ZIP_DEFLATED) as archive:
    with archive.open('x.npy', 'w', force_zip64=True) as entry:
        entry.write(b'\x93NUMPY\x01\x00' + len(header).to_bytes(2, 'little') + header)
        for _ in range(2048):
            entry.write(zeros)
"""


def attack(capsule: Path, project: Path, sentinel: Path) -> None:
    buffer = io.BytesIO()
    np.savez(buffer, x=np.zeros(4))
    reference = buffer.getvalue()
    copy = capsule / "reference" / "out" / "arrays.npz"
    copy.write_bytes(reference)

    def change(m: dict) -> None:
        m["command"]["argv"] = ["python", "-c", BOMB]
        m["outputs"]["roots"].append("out/arrays.npz")
        m["outputs"]["files"].append({"path": "out/arrays.npz", "size": len(reference),
                                      "sha256": hashlib.sha256(reference).hexdigest()})

    edit_manifest(capsule, change)
    assert zipfile.is_zipfile(copy)
