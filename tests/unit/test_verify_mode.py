"""`replay verify TARGET...`: the one rule that says single or batch (and why), and a batch's capsules as
core loads them from the resolved TARGETs."""

from __future__ import annotations

from pathlib import Path

import pytest

from replay.core.batch.mode import VerifyMode, choose_mode
from replay.core.batch.plan import load_capsules, make_plan
from replay.core.share.targets import ResolvedCapsule
from replay.errors import BadInput, ManifestError
from replay.manifest import save
from tests.unit.test_manifest import full_manifest

ONE, TWO = ["a"], ["a", "b"]


def test_one_capsule_and_no_batch_option_is_a_single_verify() -> None:
    assert choose_mode(ONE) == VerifyMode(False, "one capsule")
    assert choose_mode(ONE, keep=True) == VerifyMode(False, "one capsule")


@pytest.mark.parametrize(("capsules", "options", "reason"), [
    (TWO, {}, "2 capsules"),
    ([], {}, "0 capsules"),
    (ONE, {"backend": "slurm", "remote": True}, "the slurm backend"),
    (ONE, {"plan": True}, "--plan"),
    (ONE, {"html": True}, "--html"),
    (ONE, {"jobs": 1}, "--jobs"),
    (ONE, {"fail_fast": True}, "--fail-fast"),
    (TWO, {"backend": "slurm", "remote": True, "plan": True}, "the slurm backend"),  # the first reason wins
])
def test_a_batch_says_why(capsules: list[str], options: dict[str, object], reason: str) -> None:
    assert choose_mode(capsules, **options) == VerifyMode(True, reason)  # type: ignore[arg-type]


def test_keep_is_refused_for_a_batch() -> None:
    with pytest.raises(BadInput, match="--keep takes one capsule, not a batch") as info:
        choose_mode(ONE, jobs=2, keep=True)
    assert info.value.exit_code == 2


def test_capsules_are_loaded_in_order_and_a_bad_one_keeps_its_error(tmp_path: Path) -> None:
    good = tmp_path / "good"
    good.mkdir()
    save(full_manifest(), good / "replay.json")
    (tmp_path / "bad").mkdir()
    found = [ResolvedCapsule("good", Path("good"), "good", data_map={"data": tmp_path}, pull="r@sha256:" + "0" * 64),
             ResolvedCapsule("bad", tmp_path / "bad", "bad")]

    capsules = load_capsules(found, tmp_path)

    assert [(c.index, c.name, c.path, c.source) for c in capsules] == [
        (0, "good", good.resolve(), "good"), (1, "bad", (tmp_path / "bad").resolve(), "bad")]
    assert capsules[0].manifest == full_manifest() and capsules[0].error is None
    assert capsules[0].data_map == {"data": tmp_path} and capsules[0].pull == found[0].pull
    assert capsules[1].manifest is None and isinstance(capsules[1].error, ManifestError)
    assert make_plan(capsules, tmp_path, cores=1).unreadable == [capsules[1]]
