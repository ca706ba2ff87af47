import json
from pathlib import Path

from tests.e2e.test_hostile import edit_manifest


def attack(capsule: Path, project: Path, sentinel: Path) -> None:
    # The capsule's command is someone else's: it leaves links in the output folder that point at the
    # verifier's files (it cannot see them, but the host would follow the links when comparing).
    script = (
        "import os, shutil\n"
        "os.makedirs('out', exist_ok=True)\n"
        f"os.symlink({json.dumps(str(sentinel / 'private.key'))}, 'out/metrics.json')\n"
        f"os.symlink({json.dumps(str(sentinel))}, 'out/model.pkl')\n"
        "open('out/predictions.npy', 'wb').write(b'x')\n"
    )
    edit_manifest(capsule, lambda m: m["command"].__setitem__("argv", ["python", "-c", script]))
