"""The batch plan is pure data: which capsules share an image, a data set, an experiment."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from replay.core.batch.plan import PlannedCapsule, default_jobs, make_plan, thread_pin
from replay.core.batch.task import experiment_key
from replay.errors import BadInput, ManifestError
from replay.manifest import Manifest
from tests.unit.test_manifest import full_manifest

ENV_A = "sha256:" + "a" * 64
ENV_B = "sha256:" + "b" * 64


def capture(name: str, env: str = ENV_A, seed: int = 7, digest: str = "sha256:" + "1" * 64,
            threads: str = "2") -> Manifest:
    m = copy.deepcopy(full_manifest())
    m.name = name
    m.created = f"2026-01-01T00:00:{len(name):02d}+00:00"
    m.image.environment_id = env
    m.image.id = "sha256:" + format(abs(hash((name, env, seed))), "064x")[:64]  # every capture its own C
    m.command.seed = seed
    m.command.numerics_env = {"OMP_NUM_THREADS": threads}
    m.data.digest = digest
    return m


def planned(manifests: list[Manifest | None], tmp: Path) -> list[PlannedCapsule]:
    out = []
    for i, m in enumerate(manifests):
        name = m.name if m else f"broken{i}"
        error = None if m else ManifestError("no capsule", "")
        out.append(PlannedCapsule(i, name, tmp / name, name, m, error))
    return out


def test_captures_of_one_experiment_share_the_environment_and_one_replay(tmp_path: Path) -> None:
    caps = [capture("a1"), capture("a2"), capture("b1", seed=8), capture("c1", env=ENV_B)]
    plan = make_plan(planned(caps, tmp_path), tmp_path, cores=2)
    assert plan.counts() == {"capsules": 4, "images": 2, "data_sets": 1, "experiments": 3}
    assert [e.members for e in plan.experiments] == [[0, 1], [2], [3]]
    assert [g.members for g in plan.images] == [[0, 1, 2], [3]]
    assert [c.experiment for c in plan.capsules] == ["E1", "E1", "E2", "E3"]
    assert experiment_key(caps[0]) == experiment_key(caps[1])  # their capsule images differ; the key does not


def test_forty_captures_over_four_images_two_data_sets_ten_experiments(tmp_path: Path) -> None:
    envs = ["sha256:" + c * 64 for c in "abcd"]
    digests = ["sha256:" + c * 64 for c in "12"]
    caps = []
    for e in range(10):  # 10 distinct experiments, each captured 4 times
        for r in range(4):
            caps.append(capture(f"x{e}-{r}", env=envs[e % 4], seed=e, digest=digests[e % 2]))
    plan = make_plan(planned(caps, tmp_path), tmp_path, cores=2)
    assert plan.counts() == {"capsules": 40, "images": 4, "data_sets": 2, "experiments": 10}
    assert all(len(e.members) == 4 for e in plan.experiments)


def test_an_old_capsule_without_environment_id_groups_by_its_own_image(tmp_path: Path) -> None:
    old1, old2 = capture("o1", env=""), capture("o2", env="")
    plan = make_plan(planned([old1, old2], tmp_path), tmp_path, cores=2)
    assert plan.counts()["images"] == 2 and plan.counts()["experiments"] == 2


def test_the_same_data_in_another_place_is_another_data_set(tmp_path: Path) -> None:
    a, b = capture("a"), capture("b")
    caps = planned([a, b], tmp_path)
    caps[1].data_map = {"data": tmp_path / "copy"}
    plan = make_plan(caps, tmp_path, cores=2)
    assert plan.counts()["data_sets"] == 2 and plan.counts()["experiments"] == 2


def test_data_option_applies_to_the_capsules_recording_that_root(tmp_path: Path) -> None:
    a = capture("a")
    other = capture("b")
    other.data.roots = ["elsewhere"]
    plan = make_plan(planned([a, other], tmp_path), tmp_path, {"data": tmp_path / "d"}, cores=2)
    assert plan.capsules[0].data_map == {"data": tmp_path / "d"}
    assert plan.capsules[1].data_map == {}
    with pytest.raises(BadInput, match="--data nowhere"):
        make_plan(planned([a], tmp_path), tmp_path, {"nowhere": tmp_path}, cores=2)


def test_unreadable_capsules_are_in_no_group(tmp_path: Path) -> None:
    plan = make_plan(planned([capture("a"), None], tmp_path), tmp_path, cores=2)
    assert [c.name for c in plan.unreadable] == ["broken1"]
    assert plan.counts() == {"capsules": 2, "images": 1, "data_sets": 1, "experiments": 1}
    assert plan.to_dict()["unreadable"][0]["capsule"] == "broken1"


def test_jobs_default_is_cores_over_the_largest_thread_pin(tmp_path: Path) -> None:
    assert thread_pin(capture("a", threads="4")) == 4
    assert thread_pin(capture("a", threads="many")) == 1
    assert default_jobs([capture("a", threads="1"), capture("b", threads="2")], cores=8) == 4
    assert default_jobs([capture("a", threads="16")], cores=8) == 1
    assert default_jobs([], cores=3) == 3
    assert make_plan(planned([capture("a", threads="1")], tmp_path), tmp_path, cores=2).jobs == 2
    assert make_plan(planned([capture("a")], tmp_path), tmp_path, jobs=5, cores=2).jobs == 5
    with pytest.raises(BadInput, match="--jobs 0"):
        make_plan(planned([capture("a")], tmp_path), tmp_path, jobs=0)
