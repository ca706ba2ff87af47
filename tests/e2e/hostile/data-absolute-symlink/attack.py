import shutil
from pathlib import Path


def attack(capsule: Path, project: Path, sentinel: Path) -> None:
    # The same bytes, through an absolute link out of the data folder: the host check sees the right
    # content, but in the container only data/ is mounted and the link dangles.
    elsewhere = project.parent / "elsewhere"
    elsewhere.mkdir()
    data = project / "data" / "digits.npz"
    shutil.move(data, elsewhere / "digits.npz")
    data.symlink_to(elsewhere / "digits.npz")
