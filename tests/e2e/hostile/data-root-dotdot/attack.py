from pathlib import Path

from tests.e2e.test_hostile import edit_manifest


def attack(capsule: Path, project: Path, sentinel: Path) -> None:
    def change(m: dict) -> None:
        m["data"]["roots"].append("../sentinel")
        m["data"]["files"].append({"path": "../sentinel/private.key", "size": 30, "sha256": "0" * 64})

    edit_manifest(capsule, change)
