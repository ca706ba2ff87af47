"""Evidence before blame: timing words and padding, lines that come and go with a timing, items in hash
order, and a missing seed named only when a randomness-driven difference remains."""

from __future__ import annotations

from pathlib import Path

import pytest

from replay.core.verify.diagnose import diagnose
from replay.core.verify.noise import ItemNoise, NoiseClass, NoiseEvidence, classify_number
from replay.core.verify.numtext import compare_line, compare_text, same_items
from replay.manifest import HostInfo

RNG_BLAME = "no seed was recorded and values differ beyond noise"


@pytest.mark.parametrize(("before", "after"), [
    ("{'time': ", ", 'loss': 0.5}"),
    ("the overhead of testing was ", " seconds"),
    ("mean_score_time" + " " * 43, ""),
    ("took ", ""),
    ("throughput: ", ""),
    ("epoch 3: ", " it/s"),
    ("duration=", ""),
])
def test_numbers_next_to_words_that_mean_time_are_timing(before: str, after: str) -> None:
    assert classify_number(0.5012, 0.5133, before, after) is NoiseClass.TIMING


@pytest.mark.parametrize(("before", "after"), [("items ", ""), ("loss ", ""), ("step 3 ", ""), ("systems ", "")])
def test_other_words_are_not_timing(before: str, after: str) -> None:
    assert classify_number(0.5012, 0.5133, before, after) is NoiseClass.OTHER


def test_a_padded_pandas_timing_line_is_timing() -> None:
    diff = compare_line(f"mean_score_time{' ' * 43}0.0123", f"mean_score_time{' ' * 43}0.0456")
    assert diff is not None and diff.classes == {NoiseClass.TIMING}


def test_same_items_in_another_order_is_order() -> None:
    assert same_items("frozen: l1,l2,l3", "frozen: l3,l1,l2")
    assert not same_items("frozen: l1,l2", "frozen: l1,l2") and not same_items("a", "b")
    assert not same_items("frozen: l1,l2", "frozen: l1,l4")
    diff = compare_line("{'a', 'b', 'c'}", "{'c', 'a', 'b'}")
    assert diff is not None and diff.classes == {NoiseClass.ORDER}


def test_a_line_that_comes_and_goes_next_to_a_timing_is_timing_driven(tmp_path: Path) -> None:
    ref, new = tmp_path / "ref.txt", tmp_path / "new.txt"
    ref.write_text("score 0.1\nthe overhead of testing was 0.0797 seconds\nhint: slow\ndone\n")
    new.write_text("score 0.1\nthe overhead of testing was 0.0397 seconds\ndone\n")

    found = compare_text(ref, new)

    assert found.class_lines == {"timing": 1, "timing_driven": 1} and found.line_count_differs


def test_a_line_that_comes_and_goes_elsewhere_is_other(tmp_path: Path) -> None:
    ref, new = tmp_path / "ref.txt", tmp_path / "new.txt"
    ref.write_text("score 0.1\nextra line\ndone\n")
    new.write_text("score 0.1\ndone\n")

    assert compare_text(ref, new).class_lines == {"other": 1}


def _evidence(classes: dict[str, int], hash_seed_fixed: bool = False) -> NoiseEvidence:
    return NoiseEvidence([ItemNoise("out/log.txt", classes)], hash_seed_fixed=hash_seed_fixed)


HOST = HostInfo(os="Linux", kernel="6", arch="x86_64", cpu_model="cpu", cores=2)


def _findings(evidence: NoiseEvidence, seed: int | None = None) -> list[tuple[str, str, bool]]:
    return [(f.kind, f.message, f.likely) for f in diagnose(HOST, HOST, seed=seed, diverged=True, evidence=evidence)]


def test_hash_order_is_named_and_the_seed_is_not_blamed() -> None:
    found = _findings(_evidence({"order": 1}))

    assert any(kind == "seed" and "PYTHONHASHSEED" in msg and likely for kind, msg, likely in found)
    assert not any(RNG_BLAME in msg for _, msg, _ in found)


def test_order_with_a_recorded_hash_seed_is_not_hash_order() -> None:
    evidence = _evidence({"order": 1}, hash_seed_fixed=True)
    assert evidence.reordered == [] and evidence.beyond_noise


def test_timing_and_timing_driven_lines_are_noise_not_a_missing_seed() -> None:
    evidence = _evidence({"timing": 2, "timing_driven": 1})
    found = _findings(evidence)

    assert evidence.timing_only and not evidence.beyond_noise
    assert not any(RNG_BLAME in msg for _, msg, _ in found)
    assert any(kind == "noise" and likely for kind, _, likely in found)


def test_a_missing_seed_is_named_when_other_values_remain_and_never_with_a_seed() -> None:
    evidence = NoiseEvidence([ItemNoise("out/log.txt", {"timing": 1}), ItemNoise("out/w.npy", {"other": 1})])

    assert any(RNG_BLAME in msg and "out/w.npy" in msg for _, msg, _ in _findings(evidence))
    assert not any(kind == "seed" for kind, _, _ in _findings(evidence, seed=3))
