from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np
import pytest

from replay.core.verify.compare import (
    MetricResult,
    MetricStatus,
    OutputResult,
    OutputStatus,
    Verdict,
    compare_metrics,
    compare_outputs,
    load_metrics,
    parse_assignment,
    verdict,
)
from replay.core.verify.tolerance import Tolerance, first_difference, parse_tolerance, tolerance_for
from replay.errors import BadInput
from replay.manifest import FileEntry

NAN, INF = math.nan, math.inf


# --- tolerances ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "atol", "rtol"),
    [
        ("1e-3", 1e-3, 0.0),
        ("abs:1e-3", 1e-3, 0.0),
        ("rel:1e-6", 0.0, 1e-6),
        ("0", 0.0, 0.0),
        ("abs:1e-3,rel:1e-6", 1e-3, 1e-6),
        (" rel:0.5 , ABS:2 ", 2.0, 0.5),
    ],
)
def test_parse_tolerance_accepts(spec: str, atol: float, rtol: float) -> None:
    assert parse_tolerance(spec) == Tolerance(atol, rtol)


@pytest.mark.parametrize(
    "spec", ["", "-1e-3", "nan", "inf", "abs:", "rel:-1", "x", "foo:1", "abs:1,abs:2", "1e-3,", "abs:1;rel:2"]
)
def test_parse_tolerance_rejects(spec: str) -> None:
    with pytest.raises(BadInput) as info:
        parse_tolerance(spec)
    assert info.value.message == f"tolerance '{spec}' is not valid"
    assert "rel:1e-6" in info.value.hint


def test_describe() -> None:
    assert Tolerance().describe() == "exact"
    assert Tolerance(atol=0.001).describe() == "abs 0.001"
    assert Tolerance(rtol=1e-6).describe() == "rel 1e-06"
    assert Tolerance(0.001, 1e-6).describe() == "abs 0.001 + rel 1e-06"


@pytest.mark.parametrize(
    ("tol", "ref", "new", "allowed"),
    [
        (Tolerance(), 1.0, 1.0, True),
        (Tolerance(), 1.0, 1.0 + 1e-12, False),
        # Binary-exact values, so that the boundary (inclusive) is tested rather than rounding.
        (Tolerance(atol=0.125), 1.0, 1.125, True),
        (Tolerance(atol=0.125), 1.0, 0.875, True),
        (Tolerance(atol=0.125), 1.0, 1.25, False),
        (Tolerance(rtol=0.25), 8.0, 10.0, True),
        (Tolerance(rtol=0.25), 8.0, 10.5, False),
        (Tolerance(rtol=0.25), -8.0, -6.0, True),
        (Tolerance(atol=1.0, rtol=0.1), 10.0, 12.0, True),
        (Tolerance(atol=1.0), NAN, NAN, True),
        (Tolerance(atol=1.0), NAN, 1.0, False),
        (Tolerance(atol=1.0), 1.0, NAN, False),
        (Tolerance(rtol=1.0), INF, INF, True),
        (Tolerance(rtol=1.0), INF, 1e308, False),
        (Tolerance(atol=1.0), INF, -INF, False),
        (Tolerance(atol=1e300), 1.0, INF, False),
    ],
)
def test_allows(tol: Tolerance, ref: float, new: float, allowed: bool) -> None:
    assert tol.allows(ref, new) is allowed


def test_parse_assignment() -> None:
    assert parse_assignment("eval.acc = rel:1e-6", "--tolerance") == ("eval.acc", "rel:1e-6")
    assert parse_assignment("a=b=c", "--x") == ("a", "b=c")
    for bad in ("acc", "=1e-3", "acc=", " = "):
        with pytest.raises(BadInput, match="--tolerance"):
            parse_assignment(bad, "--tolerance")


def test_tolerance_for_exact_beats_glob_and_longest_glob_wins() -> None:
    tols = {"*": "1", "eval.*": "2", "eval.acc*": "3", "eval.acc": "4"}
    assert tolerance_for("eval.acc", tols) == ("eval.acc", Tolerance(4.0))
    assert tolerance_for("eval.acc_top5", tols) == ("eval.acc*", Tolerance(3.0))
    assert tolerance_for("eval.loss", tols) == ("eval.*", Tolerance(2.0))
    assert tolerance_for("train.loss", tols) == ("*", Tolerance(1.0))
    assert tolerance_for("loss", {"eval.*": "1"}) is None
    # The same answer whatever order the keys were given in.
    assert tolerance_for("ab", {"a?": "1", "?b": "2"}) == tolerance_for("ab", {"?b": "2", "a?": "1"})


# --- metrics -------------------------------------------------------------------------------------------


def test_load_metrics_flattens(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    path.write_text('{"acc": 0.5, "eval": {"loss": 2, "deep": {"x": -1e-3}}, "nan": NaN, "inf": -Infinity}')
    got = load_metrics(path)
    assert {k: v for k, v in got.items() if k not in ("nan", "inf")} == {
        "acc": 0.5,
        "eval.loss": 2.0,
        "eval.deep.x": -1e-3,
    }
    assert math.isnan(got["nan"]) and got["inf"] == -INF
    assert all(isinstance(v, float) for v in got.values())


@pytest.mark.parametrize(
    ("text", "detail"),
    [
        ("[1, 2]", "top level is a list"),
        ('{"acc": true}', "'acc' is a boolean"),
        ('{"preds": [1, 2]}', "'preds' is a list"),
        ('{"eval": {"name": "x"}}', "'eval.name' is a string"),
        ('{"acc": null}', "'acc' is null"),
        ('{"a.b": 1, "a": {"b": 2}}', "'a.b' appears twice"),
        ("{not json", "invalid JSON"),
    ],
)
def test_load_metrics_rejects(tmp_path: Path, text: str, detail: str) -> None:
    path = tmp_path / "m.json"
    path.write_text(text)
    with pytest.raises(BadInput) as info:
        load_metrics(path)
    assert info.value.message.startswith(f"metrics file {path} is not a JSON object of numbers (")
    assert detail in info.value.message
    assert '{"accuracy": 0.85' in info.value.hint


def test_load_metrics_missing_file(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="cannot read metrics file"):
        load_metrics(tmp_path / "absent.json")


def test_compare_metrics_statuses() -> None:
    ref = {"acc": 0.85, "loss": 1.0, "gone": 3.0, "nan": NAN, "f1": 0.5, "zero": 0.0}
    new = {"acc": 0.85, "loss": 1.0005, "new": 1.0, "nan": NAN, "f1": 0.6, "zero": 1e-9}
    results = compare_metrics(ref, new, {"loss": "1e-3", "zero": "abs:1e-6"})
    by_name = {r.name: r for r in results}
    assert [r.name for r in results] == sorted(by_name)
    assert {n: r.status for n, r in by_name.items()} == {
        "acc": "identical",
        "loss": "within_tolerance",
        "gone": "missing",
        "new": "unexpected",
        "nan": "identical",
        "f1": "diverged",
        "zero": "within_tolerance",
    }
    assert by_name["loss"].tolerance == "abs 0.001"
    assert by_name["f1"].tolerance == "exact"
    assert by_name["loss"].abs_diff == pytest.approx(5e-4)
    assert by_name["loss"].rel_diff == pytest.approx(5e-4)
    assert by_name["zero"].rel_diff is None  # relative to 0 is undefined
    assert by_name["gone"].replayed is None and by_name["gone"].abs_diff is None
    assert by_name["new"].reference is None


def test_compare_metrics_nan_against_number_diverges() -> None:
    (result,) = compare_metrics({"loss": 1.0}, {"loss": NAN}, {"*": "rel:10"})
    assert result.status == "diverged"


# --- first_difference ----------------------------------------------------------------------------------


def _pair(tmp_path: Path, a: bytes, b: bytes) -> tuple[Path, Path]:
    pa, pb = tmp_path / "a", tmp_path / "b"
    pa.write_bytes(a)
    pb.write_bytes(b)
    return pa, pb


def _flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 1]) + data[at + 1 :]


DATA = bytes(range(256)) * 40  # 10,240 bytes: several chunks of 1,000 and a partial last one


@pytest.mark.parametrize("chunk", [1000, 1024, 4096, 4 << 20])
@pytest.mark.parametrize("at", [0, 1, 999, 1000, 1001, 4095, 4096, 5000, 10_239])
def test_first_difference_finds_the_byte(tmp_path: Path, chunk: int, at: int) -> None:
    a, b = _pair(tmp_path, DATA, _flip(DATA, at))
    assert first_difference(a, b, chunk=chunk) == at
    assert first_difference(b, a, chunk=chunk) == at


@pytest.mark.parametrize("chunk", [1000, 1024, 4 << 20])
def test_first_difference_identical_and_empty(tmp_path: Path, chunk: int) -> None:
    assert first_difference(*_pair(tmp_path, DATA, DATA), chunk=chunk) is None
    assert first_difference(*_pair(tmp_path, b"", b""), chunk=chunk) is None


@pytest.mark.parametrize("chunk", [1000, 1024, 2048, 4 << 20])
@pytest.mark.parametrize("cut", [0, 1, 1000, 2048, 10_000])
def test_first_difference_prefix_is_the_shorter_size(tmp_path: Path, chunk: int, cut: int) -> None:
    a, b = _pair(tmp_path, DATA[:cut], DATA)
    assert first_difference(a, b, chunk=chunk) == cut
    assert first_difference(b, a, chunk=chunk) == cut


def test_first_difference_earlier_byte_beats_size(tmp_path: Path) -> None:
    a, b = _pair(tmp_path, DATA, _flip(DATA, 7)[:100])
    assert first_difference(a, b, chunk=64) == 7


# --- outputs -------------------------------------------------------------------------------------------


def _entry(root: Path, rel: str, data: bytes) -> FileEntry:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return FileEntry(rel, len(data), hashlib.sha256(data).hexdigest())


def _npy(array: np.ndarray) -> bytes:
    import io

    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


def test_compare_outputs_statuses(tmp_path: Path) -> None:
    ref_root, new_root = tmp_path / "ref", tmp_path / "new"
    preds = np.linspace(0, 1, 50)
    ref = [
        _entry(ref_root, "out/model.bin", b"weights"),
        _entry(ref_root, "out/preds.npy", _npy(preds)),
        _entry(ref_root, "out/far.npy", _npy(preds)),
        _entry(ref_root, "out/logs/train.log", b"took 3.1s\n"),
        _entry(ref_root, "out/gone.txt", b"x"),
        _entry(ref_root, "out/result.txt", b"0.85\n"),
    ]
    new = [
        _entry(new_root, "out/model.bin", b"weights"),
        _entry(new_root, "out/preds.npy", _npy(preds + 1e-9)),
        _entry(new_root, "out/far.npy", _npy(preds + 1e-2)),
        _entry(new_root, "out/logs/train.log", b"took 3.4s\n"),
        _entry(new_root, "out/extra.bin", b"?"),
        _entry(new_root, "out/result.txt", b"0.86\n"),
    ]
    results = compare_outputs(ref, new, new_root, ref_root, ["out/logs/*"], {"*.npy": "1e-6"})
    by_path = {r.path: r for r in results}
    assert [r.path for r in results] == sorted(by_path)
    assert {p: r.status for p, r in by_path.items()} == {
        "out/model.bin": "identical",
        "out/preds.npy": "within_tolerance",
        "out/far.npy": "differs",
        "out/logs/train.log": "ignored",
        "out/gone.txt": "missing",
        "out/extra.bin": "unexpected",
        "out/result.txt": "differs",
    }
    assert by_path["out/logs/train.log"].ignored and not by_path["out/result.txt"].ignored
    assert by_path["out/preds.npy"].tolerance == "abs 1e-06"
    assert by_path["out/result.txt"].tolerance is None
    assert by_path["out/model.bin"].explanation is None
    explanation = by_path["out/result.txt"].explanation
    assert explanation is not None and explanation.first_differing_line == 1
    assert by_path["out/gone.txt"].replayed_sha256 is None and by_path["out/gone.txt"].reference_size == 1
    assert verdict(results, []) == "diverged"


def test_compare_outputs_without_reference_copies(tmp_path: Path) -> None:
    new_root = tmp_path / "new"
    ref = [FileEntry("out/p.npy", 1, "0" * 64)]
    new = [_entry(new_root, "out/p.npy", _npy(np.zeros(3)))]
    (result,) = compare_outputs(ref, new, new_root, None, [], {"*": "1"})
    # Nothing to weigh the tolerance against: it cannot be settled.
    assert result.status == "differs" and result.explanation is None


def test_ignore_glob_crosses_folders_and_covers_unexpected(tmp_path: Path) -> None:
    new_root = tmp_path / "new"
    new = [_entry(new_root, "out/deep/run.log", b"x")]
    (result,) = compare_outputs([], new, new_root, None, ["*.log"], {})
    assert result.status == "unexpected" and result.ignored
    assert verdict([result], []) == "equivalent"


# --- verdict -------------------------------------------------------------------------------------------


def _out(status: str, ignored: bool = False) -> OutputResult:
    return OutputResult("p", None, None, None, None, status, ignored)


def _met(status: str) -> MetricResult:
    return MetricResult("m", 1.0, 1.0, 0.0, 0.0, "exact", status)


@pytest.mark.parametrize(
    ("outputs", "metrics", "expected"),
    [
        ([], [], "identical"),
        ([_out("identical")], [_met("identical")], "identical"),
        ([_out("identical", ignored=True)], [], "identical"),
        ([_out("within_tolerance")], [_met("identical")], "equivalent"),
        ([_out("ignored", ignored=True)], [], "equivalent"),
        ([_out("identical")], [_met("within_tolerance")], "equivalent"),
        ([_out("differs")], [], "diverged"),
        ([_out("missing")], [], "diverged"),
        ([_out("unexpected")], [], "diverged"),
        ([_out("unexpected", ignored=True)], [], "equivalent"),
        ([_out("missing", ignored=True)], [], "equivalent"),
        ([], [_met("diverged")], "diverged"),
        ([], [_met("missing")], "diverged"),
        ([], [_met("unexpected")], "diverged"),
        ([_out("within_tolerance")], [_met("diverged")], "diverged"),
    ],
)
def test_verdict(outputs: list[OutputResult], metrics: list[MetricResult], expected: str) -> None:
    assert verdict(outputs, metrics) == expected


def test_to_dict() -> None:
    assert _out("differs").to_dict()["status"] == "differs"
    assert _met("identical").to_dict() == {
        "name": "m",
        "reference": 1.0,
        "replayed": 1.0,
        "abs_diff": 0.0,
        "rel_diff": 0.0,
        "tolerance": "exact",
        "status": "identical",
    }
    assert Tolerance(1.0).to_dict() == {"atol": 1.0, "rtol": 0.0}


# --- hostile metrics files -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ('{"acc": ' + "9" * 400 + "}", "'acc' is an integer too large for a number"),
        ('{"acc": ' + "9" * 5000 + "}", "holds a number it cannot read"),
        ('{"a": ' * 100_000 + "1" + "}" * 100_000, "nested too deeply"),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ],
)
def test_hostile_metrics_files_are_bad_input(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "metrics.json"
    path.write_text(text)
    with pytest.raises(BadInput, match=needle):
        load_metrics(path)


def test_metrics_nested_as_deep_as_json_allows_flatten_without_recursion(tmp_path: Path) -> None:
    depth = 900  # json accepts this; a recursive flatten on top of pytest's stack would not
    path = tmp_path / "metrics.json"
    path.write_text('{"a": ' * depth + "1" + "}" * depth)
    assert load_metrics(path) == {".".join(["a"] * depth): 1.0}


def test_non_finite_metrics_written_as_strings_are_read_back(tmp_path: Path) -> None:
    path = tmp_path / "metrics.json"
    path.write_text('{"loss": "NaN", "up": "Infinity", "down": -1e400}')
    got = load_metrics(path)
    assert math.isnan(got["loss"]) and got["up"] == math.inf and got["down"] == -math.inf


def test_settled_and_reproduced_statuses() -> None:
    assert {s.value for s in OutputStatus if s.settled} == {"identical", "within_tolerance", "ignored"}
    assert {s.value for s in MetricStatus if s.settled} == {"identical", "within_tolerance"}
    assert {v.value for v in Verdict if v.reproduced} == {"identical", "equivalent"}
    # A missing file that matches an --ignore glob keeps its status, and does not diverge.
    assert _out("missing", True).settled and not _out("missing").settled
    assert _out("ignored").status is OutputStatus.IGNORED  # a status given as its string becomes the enum
