"""The investigation's pure parts: what moved between two replays, classified, and the finding's words."""

from __future__ import annotations

from pathlib import Path

import pytest

from replay.core.verify.investigate import (
    Investigation,
    Run,
    _evidence,
    _moved,
    check_budget,
)
from replay.core.verify.pipeline import Capsule, Prepared
from replay.errors import BadInput
from replay.manifest import Manifest


def _run(root: Path, label: str, text: str, metrics: dict[str, float]) -> Run:
    (root / "out").mkdir(parents=True)
    (root / "out" / "log.txt").write_text(text)
    from replay.core.data.hashing import hash_nofollow

    found, _ = hash_nofollow(["out"], root, what="output")
    return Run(label, root, {f.path: (f.sha256, f.size) for f in found.files}, metrics)


def _prepared() -> Prepared:
    return Prepared(Capsule(Path("."), Manifest.__new__(Manifest)), {}, [], {})


def test_only_timings_moved_between_two_replays(tmp_path: Path) -> None:
    a = _run(tmp_path / "a", "replay 1", "{'time': 0.5012, 'loss': 0.25}\n", {"train_seconds": 3.0})
    b = _run(tmp_path / "b", "replay 2", "{'time': 0.5133, 'loss': 0.25}\n", {"train_seconds": 3.4})

    moved = _moved(a, b, _prepared(), hash_fixed=True)

    assert [m.name for m in moved] == ["out/log.txt", "train_seconds"]
    assert all(m.between == "replay 1 / replay 2" for m in moved)
    assert moved[1].detail == "3.0 vs 3.4"
    assert _evidence(moved).timing_only


def test_other_values_and_hash_order_are_not_the_clock(tmp_path: Path) -> None:
    a = _run(tmp_path / "a", "replay 1", "frozen: l1,l2,l3\n", {})
    b = _run(tmp_path / "b", "replay 2", "frozen: l3,l1,l2\n", {})

    moved = _moved(a, b, _prepared(), hash_fixed=False)

    assert moved[0].classes == {"order": 1}
    evidence = _evidence(moved)
    assert not evidence.timing_only and [i.name for i in evidence.reordered] == ["out/log.txt"]


def test_the_finding_says_confirmed_or_suspected() -> None:
    assert Investigation(4).conclude("clock", True, "x").finding == "confirmed: x"
    found = Investigation(4).conclude("threads", False, "y")
    assert found.finding == "suspected: y" and found.to_dict()["confirmed"] is False


@pytest.mark.parametrize("budget", [-1, 21])
def test_a_budget_out_of_range_is_bad_input(budget: int) -> None:
    with pytest.raises(BadInput, match="out of range"):
        check_budget(budget)
    assert check_budget(4) == 4


def test_a_confirmed_cause_sets_the_guesses_aside_and_keeps_the_facts() -> None:
    from replay.core.verify.diagnose import Finding
    from replay.core.verify.investigate import _settled

    findings = [Finding("environment", "hosts match: the likely cause is nondeterminism inside the command", True),
                Finding("seed", "no seed was recorded and values differ beyond noise (x)", True),
                Finding("hardware", "CPU model differs", True),
                Finding("data", "input data proven equal", False)]

    settled = _settled(findings, Investigation(4).conclude("outside", True, "x"))

    assert [(f.kind, f.likely) for f in settled] == [("hardware", True), ("environment", False), ("seed", False),
                                                      ("data", False)]
    assert settled[1].message.startswith("set aside by the investigation: ")
    assert _settled(findings, Investigation(4).conclude("inside", False, "y")) == findings
