import os
from pathlib import Path

import pytest


def attack(capsule: Path, project: Path, sentinel: Path) -> None:
    # Readable by the verifier (root), closed to the container's own user (uid 10001, the image's).
    if os.geteuid() != 0:
        pytest.skip("as a non-root verifier the container runs as the caller, who owns the data")
    os.chmod(project / "data" / "digits.npz", 0o600)
