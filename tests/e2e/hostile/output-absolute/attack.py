from pathlib import Path

from tests.e2e.test_hostile import edit_manifest


def attack(capsule: Path, project: Path, sentinel: Path) -> None:
    def change(m: dict) -> None:
        m["outputs"]["roots"] = [f"{sentinel}/abs", "/tmp/replay-hostile-output-absolute"]
        m["outputs"]["files"] = [{**m["outputs"]["files"][0], "path": f"{root}/model.pkl"} for root in m["outputs"]["roots"]]
        m["outputs"]["metrics_files"] = []

    edit_manifest(capsule, change)
