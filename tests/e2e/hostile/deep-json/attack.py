from pathlib import Path


def attack(capsule: Path, project: Path, sentinel: Path) -> None:
    (capsule / "replay.json").write_text("[" * 100_000 + "]" * 100_000)
