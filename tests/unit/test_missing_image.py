"""A capsule whose image the engine lacks says where the image can come from, never `docker load`."""

from __future__ import annotations

import pytest

from replay.core.verify.pipeline import check_image
from replay.errors import ImageProblem
from tests.unit.test_manifest import full_manifest

DIGEST = "127.0.0.1:5000/team/digits@sha256:" + "a" * 64


class Empty:  # an engine that holds no image
    def __init__(self, kind: str = "docker") -> None:
        self.kind = kind

    def name(self) -> str:
        return self.kind

    def image(self, ref: str) -> None:
        return None


@pytest.mark.parametrize(("kind", "where"), [("docker", "this Docker engine"),
                                             ("podman (rootless)", "this engine (podman (rootless))")])
def test_the_missing_image_names_the_engine_that_lacks_it(kind: str, where: str) -> None:
    with pytest.raises(ImageProblem) as caught:
        check_image(Empty(kind), full_manifest())  # type: ignore[arg-type]
    assert f"is not in {where}" in caught.value.one_line()


def test_a_pushed_capsule_names_its_recorded_digest() -> None:
    m = full_manifest()
    m.image.registry_digest = DIGEST
    with pytest.raises(ImageProblem) as caught:
        check_image(Empty(), m)  # type: ignore[arg-type]
    line = caught.value.one_line()
    assert f"replay pull {DIGEST} -o FOLDER" in line and f"replay verify {DIGEST}" in line
    assert "docker load" not in line and caught.value.exit_code == 3


def test_a_capsule_never_pushed_points_at_its_bundle() -> None:
    m = full_manifest()
    m.image.registry_digest = None
    with pytest.raises(ImageProblem) as caught:
        check_image(Empty(), m)  # type: ignore[arg-type]
    line = caught.value.one_line()
    assert "replay unpack BUNDLE -o FOLDER --load" in line and "docker load" not in line
