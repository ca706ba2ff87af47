"""Noise classes, the numeric-aware tokenizer and text comparison, and the evidence the diagnosis reads."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from replay.core.verify.compare import MetricResult, OutputResult
from replay.core.verify.diagnose import diagnose
from replay.core.verify.explain import explain
from replay.core.verify.explanation import ArrayDiff, ArrayExplanation, TextExplanation
from replay.core.verify.noise import NoiseClass, classify_number, collect_evidence, describe, is_float_noise
from replay.core.verify.numtext import TextDiff, TokenKind, ceil_1, compare_line, compare_text, suggest_tolerance, tokenize
from replay.core.verify.tolerance import Tolerance, parse_tolerance
from replay.manifest import HostInfo

# --- classification ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("ref", "new", "before", "after", "name", "expected"), [
    (0.17, 0.52, "done in ", " sec", "", NoiseClass.TIMING),
    (12.0, 15.0, "epoch 3 ", "ms", "", NoiseClass.TIMING),
    (3.2, 4.1, "elapsed: ", "", "", NoiseClass.TIMING),
    (1.0, 2.0, "", "", "train_time", NoiseClass.TIMING),
    (1795412345.1, 1795412399.5, "finished at ", "", "", NoiseClass.TIMESTAMP),
    (1.0, 2.0, "", "", "trained_at", NoiseClass.TIMESTAMP),
    (0.8512345678, 0.8512345679, "acc ", "", "", NoiseClass.FLOAT_NOISE),
    (0.85, 0.87, "acc ", "", "", NoiseClass.OTHER),
    (12.0, 13.0, "trained in ", " epochs", "", NoiseClass.OTHER),  # epochs are not a time unit
    (100.0, 101.0, "count ", "", "", NoiseClass.OTHER),  # integers never count as float noise
])
def test_classify_number(ref: float, new: float, before: str, after: str, name: str, expected: NoiseClass) -> None:
    assert classify_number(ref, new, before, after, name) is expected


def test_float_noise_needs_finite_close_values() -> None:
    assert is_float_noise(1.0000000001, 1.0)
    assert not is_float_noise(float("nan"), 1.0) and not is_float_noise(1.0, 1.1)


def test_describe() -> None:
    assert describe({"timing": 12}, "out/stdout.txt") == "only timing-like numbers differ in out/stdout.txt (12 lines)"
    assert describe({"timing": 1}) == "only timing-like numbers differ (1 line)"
    assert describe({"timing": 2, "other": 3}, "x") == "lines differ in x in other values (3), timing-like numbers (2)"


# --- tokenizer -----------------------------------------------------------------------------------------


def test_tokenize_kinds() -> None:
    line = "step 3 in 0.17 sec loss=-1.5e-3 at 2026-12-01T21:25:39Z <Obj at 0x7f3a2b1c> /tmp/tmpab12cd/x layer3"
    kinds = [(t.kind, t.text) for t in tokenize(line) if t.kind is not TokenKind.TEXT]
    assert kinds == [(TokenKind.NUMBER, "3"), (TokenKind.NUMBER, "0.17"), (TokenKind.NUMBER, "-1.5e-3"),
                     (TokenKind.DATETIME, "2026-12-01T21:25:39Z"), (TokenKind.HEX, "0x7f3a2b1c"),
                     (TokenKind.TEMP_PATH, "/tmp/tmpab12cd/x")]  # "layer3" is a name, not a number


def test_a_minus_between_digits_is_not_a_sign() -> None:
    assert [t.text for t in tokenize("1-2") if t.kind is TokenKind.NUMBER] == ["1", "2"]


@given(st.text())
def test_tokens_join_back_to_the_line(line: str) -> None:
    tokens = tokenize(line)
    assert "".join(t.text for t in tokens) == line
    for t in tokens:
        if t.kind is TokenKind.NUMBER:
            assert isinstance(t.value, float)  # parses, never raises (huge exponents become inf)
    assert compare_line(line, line) is None


@given(st.lists(st.floats(allow_nan=False, allow_infinity=False, min_value=-1e6, max_value=1e6), max_size=5),
       st.text(alphabet="abc :=,", max_size=5))
def test_lines_differing_only_in_numbers_line_up(numbers: list[float], sep: str) -> None:
    a = (sep or " ").join(f"x{i} {v!r}" for i, v in enumerate(numbers))
    b = (sep or " ").join(f"x{i} {v * 2 + 1!r}" for i, v in enumerate(numbers))
    diff = compare_line(a, b, Tolerance(atol=1e12))
    assert diff is None or (not diff.structural and all(m.allowed for m in diff.moves))


# --- lines and files -----------------------------------------------------------------------------------


def test_compare_line_structural_and_allowed() -> None:
    tol = parse_tolerance("rel:0.5")
    assert compare_line("loss 0.10", "loss 0.1") is None  # the same number, written another way
    moved = compare_line("in 0.17 sec", "in 0.2 sec", tol)
    assert moved is not None and not moved.structural and moved.moves[0].allowed
    beyond = compare_line("in 0.17 sec", "in 0.9 sec", tol)
    assert beyond is not None and not beyond.moves[0].allowed
    text = compare_line("ok 1", "failed 1", tol)
    assert text is not None and text.structural and text.classes == {NoiseClass.OTHER}
    address = compare_line("<A at 0x7f0000001>", "<A at 0x7f0000abc>", tol)
    assert address is not None and address.structural and address.classes == {NoiseClass.ADDRESS}


def _pair(tmp_path: Path, name: str, ref: str, new: str) -> tuple[Path, Path]:
    (tmp_path / "a").mkdir(exist_ok=True)
    (tmp_path / "b").mkdir(exist_ok=True)
    a, b = tmp_path / "a" / name, tmp_path / "b" / name
    a.write_text(ref)
    b.write_text(new)
    return a, b


TIMED = "".join(f"step {i}: sum {i * i} in 0.{i}7 sec\n" for i in range(1, 13)) + "done\n"


def test_compare_text_counts_moves_and_classes(tmp_path: Path) -> None:
    a, b = _pair(tmp_path, "stdout.txt", TIMED, TIMED.replace("7 sec", "9 sec"))
    found = compare_text(a, b, parse_tolerance("rel:0.5"))
    assert found.lines_differing == 12 and found.numbers_moved == 12 and found.numbers_beyond == 0
    assert found.class_lines == {"timing": 12} and found.structure_equal and found.within()
    assert found.max_rel_move == pytest.approx(0.2 / 1.7)
    strict = compare_text(a, b, parse_tolerance("rel:0.01"))
    assert not strict.within() and strict.first_beyond_line == 1


def test_compare_text_line_count_and_cap(tmp_path: Path) -> None:
    a, b = _pair(tmp_path, "x.txt", "a\nb\n", "a\n")
    assert compare_text(a, b).line_count_differs and not compare_text(a, b, Tolerance(rtol=1)).within()
    a, b = _pair(tmp_path, "y.txt", "1\n" * 100, "2\n" * 100)
    capped = compare_text(a, b, None, cap=10)
    assert not capped.complete and capped.lines_compared < 100


def test_explain_text_with_a_numeric_tolerance_is_within(tmp_path: Path) -> None:
    a, b = _pair(tmp_path, "stdout.txt", TIMED, TIMED.replace("7 sec", "9 sec"))
    expl = explain(a, b, parse_tolerance("rel:0.5"))
    assert expl.within_tolerance is True and expl.numeric.numbers_moved == 12
    assert "only timing-like numbers differ (12 lines); 12 numbers moved" in expl.summary()
    assert explain(a, b, parse_tolerance("rel:0.01")).within_tolerance is False
    a, b = _pair(tmp_path, "other.txt", TIMED, TIMED.replace("done", "fail"))
    assert explain(a, b, parse_tolerance("rel:0.5")).within_tolerance is False


def test_csv_cells_with_units_compare_numbers_as_numbers(tmp_path: Path) -> None:
    a, b = _pair(tmp_path, "t.csv", "step,time\n1,0.17 sec\n", "step,time\n1,0.2 sec\n")
    assert explain(a, b, parse_tolerance("rel:0.5")).within_tolerance is True
    assert explain(a, b, parse_tolerance("rel:0.01")).within_tolerance is False


def test_suggestions_round_up_with_headroom() -> None:
    assert ceil_1(0.034) == "0.04" and ceil_1(3e-10) == "4e-10" and ceil_1(9.5) == "20"
    assert suggest_tolerance(0.3, None) == "rel:0.4"
    assert suggest_tolerance(0.3, 2.0) == "abs:3,rel:0.4"
    assert suggest_tolerance(None, None) is None
    for value in (1e-12, 0.3, 0.5, 7.0, 123.0):
        assert float(ceil_1(value)) > value


# --- evidence and diagnosis ----------------------------------------------------------------------------


def _out(path: str, classes: dict[str, int] | None, status: str = "differs") -> OutputResult:
    expl = TextExplanation(kind="text", numeric=TextDiff(class_lines=classes, complete=True)) if classes else None
    return OutputResult(path, "a", "b", 1, 1, status, explanation=expl)


def _findings(outputs: list[OutputResult], metrics: list[MetricResult], seed: int | None = None,
              varied: tuple[str, ...] = ()) -> list[dict[str, object]]:
    evidence = collect_evidence(outputs, metrics, varied, (), 3 if varied else 0)
    return [f.to_dict() for f in diagnose(HostInfo(), HostInfo(), seed=seed, diverged=True, evidence=evidence)]


def test_timings_only_are_noise_and_do_not_blame_the_seed() -> None:
    found = _findings([_out("out/stdout.txt", {"timing": 12})], [])
    likely = [f for f in found if f["likely"]]
    assert [f["kind"] for f in likely] == ["noise"]
    assert "only timing-like numbers differ in out/stdout.txt (12 lines)" in str(likely[0]["message"])
    seed = next(f for f in found if f["kind"] == "seed")
    assert seed["likely"] is False


def test_values_beyond_noise_without_a_seed_blame_the_seed() -> None:
    metric = MetricResult("accuracy", 0.95, 0.7, 0.25, 0.26, "exact", "diverged")
    found = _findings([_out("out/stdout.txt", {"timing": 2}), _out("out/model.pkl", None)], [metric])
    seed = next(f for f in found if f["kind"] == "seed")
    assert seed["likely"] is True and "out/model.pkl" in str(seed["message"]) and "accuracy" in str(seed["message"])


def test_an_output_that_varied_at_capture_is_called_noise() -> None:
    found = _findings([_out("out/run.log", None)], [], seed=3, varied=("out/run.log",))
    assert any(f["kind"] == "noise" and "already varied between runs at capture (3 runs)" in str(f["message"])
               for f in found)


def test_timestamp_metric_is_noise_and_float_noise_arrays_too() -> None:
    stamp = MetricResult("trained_at", 1.7e9, 1.7e9 + 25, 25.0, 1e-8, "exact", "diverged")
    arrays = OutputResult("out/p.npy", "a", "b", 1, 1, "differs", explanation=ArrayExplanation(
        kind="npy", arrays=[ArrayDiff(None, [2], [2], "float64", "float64", 2, max_rel_diff=1e-9)]))
    evidence = collect_evidence([arrays], [stamp])
    assert evidence.all_noise and {i.name: i.classes for i in evidence.items} == {
        "out/p.npy": {"float_noise": 1}, "trained_at": {"timestamp": 1}}
