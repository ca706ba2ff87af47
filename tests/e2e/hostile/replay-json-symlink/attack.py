from pathlib import Path


def attack(capsule: Path, project: Path, sentinel: Path) -> None:
    # replay.json itself a link: it could name any file of the verifier's; here a working manifest elsewhere,
    # so only the refusal to follow it stops the replay.
    elsewhere = project.parent / "elsewhere"
    elsewhere.mkdir()
    (capsule / "replay.json").rename(elsewhere / "replay.json")
    (capsule / "replay.json").symlink_to(elsewhere / "replay.json")
