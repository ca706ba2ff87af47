import shutil
from pathlib import Path


def attack(capsule: Path, project: Path, sentinel: Path) -> None:
    # O_NOFOLLOW guards only the last component: here the folder on the way is the link.
    (sentinel / "metrics.json").unlink(missing_ok=True)
    shutil.rmtree(capsule / "reference" / "out")
    (capsule / "reference" / "out").symlink_to(sentinel)
