from pathlib import Path


def attack(capsule: Path, project: Path, sentinel: Path) -> None:
    # A reference copy that is a link to a private file of the verifier's (as /etc/shadow would be).
    copy = capsule / "reference" / "out" / "metrics.json"
    copy.unlink()
    copy.symlink_to(sentinel / "private.key")
