import io
from pathlib import Path

import docker

from tests.e2e.conftest import track_image
from tests.e2e.test_hostile import edit_manifest


def attack(capsule: Path, project: Path, sentinel: Path) -> None:
    """The capsule's own image with `VOLUME /vol` on top, and a command that writes 64 MiB there."""
    def change(m: dict) -> None:
        dockerfile = f"FROM {m['image']['id']}\nVOLUME /vol /scratch\n".encode()
        image, _ = docker.from_env().images.build(fileobj=io.BytesIO(dockerfile), network_mode="none", rm=True,
                                                   labels={"replay-test": "hostile-image-volume"})
        track_image(image.id)
        m["image"]["id"], m["image"]["tag"] = image.id, ""
        m["command"]["argv"] = ["python", "-c", "open('/vol/fill', 'wb').write(bytes(64 << 20))"]

    edit_manifest(capsule, change)
