"""Which images gc picks: only replay's (by label), never one a capsule needs or one another is built on.
The engine here is a list of image records (the real engine's removals are in tests/e2e/test_housekeeping.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from replay.core.capsules.gc import plan_gc, run_gc
from replay.core.ports import ImageRecord
from replay.errors import BadInput
from replay.manifest import save
from tests.unit.test_manifest import full_manifest


def rec(image_id: str, parent: str = "", **labels: str) -> ImageRecord:
    return ImageRecord("sha256:" + image_id * 64, [], [], 100, {k.replace("_", "."): v for k, v in labels.items()},
                       "sha256:" + parent * 64 if parent else "")


class Images:
    def __init__(self, records: list[ImageRecord]) -> None:
        self.records = records
        self.removed: list[str] = []

    def labelled_images(self, key: str) -> list[ImageRecord]:
        return [r for r in self.records if key in r.labels]

    def image(self, ref: str) -> ImageRecord | None:
        return next((r for r in self.records if r.id == ref), None)

    def remove_unused_image(self, image_id: str) -> str | None:
        self.removed.append(image_id)
        return "a container uses it" if image_id.endswith("e" * 8) else None


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REPLAY_CACHE_DIR", str(tmp_path / "cache"))


def test_only_replays_images_that_no_capsule_needs_and_nothing_is_built_on(tmp_path: Path) -> None:
    m = full_manifest()
    m.image.id, m.image.environment_id = "sha256:" + "a" * 64, "sha256:" + "b" * 64
    (tmp_path / "kept").mkdir()
    save(m, tmp_path / "kept" / "replay.json")
    engine = Images([
        rec("a", "i", io_replay_name="kept", io_replay_stage="environment"),  # needed capsule image
        rec("i", "b", io_replay_stage="environment"),  # an intermediate layer under it
        rec("b", io_replay_stage="environment"),  # needed environment
        rec("c", "j", io_replay_name="old", io_replay_stage="environment"),  # a capsule image no capsule needs
        rec("d", io_replay_stage="environment"),  # an environment no capsule needs
        rec("e", io_replay_stage="packages"),  # a build stage
        rec("f", io_replay_version="1", io_replay_base_mirror="http://deb"),  # a base image: never
        rec("g", user_label="x"),  # not replay's: never
    ])

    plan = plan_gc([tmp_path], engine)  # type: ignore[arg-type]

    assert [(i.kind, i.id[7]) for i in plan.remove] == [("capsule image", "c"), ("environment", "d"),
                                                        ("build stage", "e")]
    assert plan.capsules == 1 and plan.needed == 2
    assert [(i.id[7]) for i in plan_gc([tmp_path], engine, names=["ol*"]).remove] == ["c"]  # type: ignore[arg-type]
    result = run_gc(plan, engine)  # type: ignore[arg-type]
    assert [i.id[7] for i in result.removed] == ["c", "d"]
    assert [(i.id[7], why) for i, why in result.kept] == [("e", "a container uses it")]


def test_a_capsule_whose_manifest_cannot_be_read_stops_gc(tmp_path: Path) -> None:
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "replay.json").write_text("{broken")
    with pytest.raises(BadInput, match="cannot tell which image"):
        plan_gc([tmp_path], Images([]))  # type: ignore[arg-type]
