from pathlib import Path


def attack(capsule: Path, project: Path, sentinel: Path) -> None:
    (capsule / "replay.json").unlink()
    (capsule / "replay.json").mkdir()
