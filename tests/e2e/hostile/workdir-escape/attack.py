from pathlib import Path

from tests.e2e.test_hostile import edit_manifest


def attack(capsule: Path, project: Path, sentinel: Path) -> None:
    edit_manifest(capsule, lambda m: m["command"].__setitem__("workdir", "../../../etc"))
