from pathlib import Path

from tests.e2e.test_hostile import edit_manifest


def attack(capsule: Path, project: Path, sentinel: Path) -> None:
    # Aimed at the sentinel and at a fresh name under /tmp, from wherever verify's output folder is.
    at_sentinel = "../" * 16 + str(sentinel).lstrip("/") + "/pwned/model.pkl"
    at_tmp = "../" * 16 + "tmp/replay-hostile-output-dotdot/model.pkl"

    def change(m: dict) -> None:
        m["outputs"]["roots"] = [at_sentinel, at_tmp]
        m["outputs"]["files"] = [{**m["outputs"]["files"][0], "path": p} for p in (at_sentinel, at_tmp)]
        m["outputs"]["metrics_files"] = []

    edit_manifest(capsule, change)
