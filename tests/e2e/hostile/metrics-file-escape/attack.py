from pathlib import Path

from tests.e2e.test_hostile import edit_manifest


def attack(capsule: Path, project: Path, sentinel: Path) -> None:
    escape = "../" * 16 + str(sentinel).lstrip("/") + "/private.key"
    edit_manifest(capsule, lambda m: m["outputs"].__setitem__("metrics_files", [escape]))
