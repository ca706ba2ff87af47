from __future__ import annotations

import builtins
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from replay.core.verify import explain as explain_mod
from replay.core.verify.explain import explain
from replay.core.verify.tolerance import Tolerance


def _pair(tmp_path: Path, name: str, a: str | bytes, b: str | bytes) -> tuple[Path, Path]:
    (tmp_path / "ref").mkdir(exist_ok=True)
    (tmp_path / "new").mkdir(exist_ok=True)
    pa, pb = tmp_path / "ref" / name, tmp_path / "new" / name
    for path, data in ((pa, a), (pb, b)):
        path.write_bytes(data.encode() if isinstance(data, str) else data)
    return pa, pb


def test_identical_files(tmp_path: Path) -> None:
    expl = explain(*_pair(tmp_path, "a.txt", "same\n", "same\n"))
    assert expl.to_dict() == {"kind": "text", "reference_size": 5, "replayed_size": 5, "first_byte_offset": None}
    assert expl.summary() == "identical"


def test_text_line_and_diff(tmp_path: Path) -> None:
    ref = "".join(f"epoch {i} loss 0.{i:03d}\n" for i in range(1, 41))
    new = ref.replace("epoch 12 loss 0.012", "epoch 12 loss 0.019")
    expl = explain(*_pair(tmp_path, "train.log", ref, new))
    assert expl.kind == "text"
    assert expl.first_byte_offset == ref.index("0.012") + 4
    assert expl.first_differing_line == 12
    assert expl.reference_line == "epoch 12 loss 0.012"
    assert expl.replayed_line == "epoch 12 loss 0.019"
    diff = expl.diff
    assert len(diff) <= 20
    # Hunk numbers are those of the whole file, not of the window read around the difference.
    assert diff[2].startswith("@@ -9,7 +9,7 @@")
    assert "-epoch 12 loss 0.012" in diff and "+epoch 12 loss 0.019" in diff
    assert expl.summary() == (
        f"differs at byte {expl.first_byte_offset} (sizes {len(ref)} vs {len(new)}); "
        "line 12: 'epoch 12 loss 0.012' vs 'epoch 12 loss 0.019'; 1 number moved (max rel 0.583)"
    )


def test_text_sniffed_without_suffix_and_extra_line(tmp_path: Path) -> None:
    expl = explain(*_pair(tmp_path, "RESULT", "a\nb\n", "a\nb\nc\n"))
    assert expl.kind == "text"
    assert expl.first_differing_line == 3
    assert expl.reference_line is None and expl.replayed_line == "c"


def test_long_line_keeps_the_difference_in_view(tmp_path: Path) -> None:
    ref = "x" * 1000 + "A" + "y" * 1000
    expl = explain(*_pair(tmp_path, "a.txt", ref, ref.replace("A", "B")))
    assert expl.first_differing_column == 1001
    assert len(expl.reference_line) <= 206 and "A" in expl.reference_line
    assert "B" in expl.replayed_line


def test_difference_past_the_text_cap_gives_only_the_offset(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setattr(explain_mod, "TEXT_CAP", 100)
    ref = "line\n" * 100
    expl = explain(*_pair(tmp_path, "a.txt", ref, ref + "more\n"))
    assert expl.first_byte_offset == 500
    assert "first_differing_line" not in expl.to_dict() and "note" in expl.to_dict()


def test_binary(tmp_path: Path) -> None:
    expl = explain(*_pair(tmp_path, "w.bin", b"\0\1\2\3", b"\0\1\7\3"))
    assert expl.to_dict() == {"kind": "binary", "reference_size": 4, "replayed_size": 4, "first_byte_offset": 2}
    assert expl.summary() == "differs at byte 2 (sizes 4 vs 4)"


def test_csv_cell_with_header(tmp_path: Path) -> None:
    ref = "epoch,loss,acc\n1,0.5,0.80\n2,0.4,0.85\n"
    new = "epoch,loss,acc\n1,0.5,0.80\n2,0.4,0.86\n"
    expl = explain(*_pair(tmp_path, "metrics.csv", ref, new))
    assert expl.kind == "csv" and expl.has_header
    assert expl.first_differing_line == 3
    cell = expl.first_differing_cell
    assert (cell.row, cell.column, cell.column_name) == (3, 3, "acc")
    assert (cell.reference, cell.replayed) == ("0.85", "0.86")
    assert cell.abs_diff == pytest.approx(0.01)
    assert "within_tolerance" not in expl.to_dict()
    assert "row 3, column 'acc': '0.85' vs '0.86'" in expl.summary()


def test_csv_tolerance(tmp_path: Path) -> None:
    ref = "id\tp\n1\t0.5\n2\t0.25\n3\t0.125\n"
    near = ref.replace("0.25", "0.2500001")
    far = near.replace("0.125", "0.2")
    tol = Tolerance(atol=1e-3)
    expl = explain(*_pair(tmp_path, "p.tsv", ref, near), tol)
    assert expl.within_tolerance is True and expl.differing_cells == 1
    expl = explain(*_pair(tmp_path, "p.tsv", ref, far), tol)
    assert expl.within_tolerance is False
    assert expl.differing_cells == 2 and expl.cells_beyond_tolerance == 1
    assert expl.first_cell_beyond_tolerance.row == 4
    assert expl.summary().endswith("beyond tolerance abs 0.001")


def test_csv_text_cells_and_extra_rows_are_beyond_any_tolerance(tmp_path: Path) -> None:
    tol = Tolerance(atol=1.0)
    assert explain(*_pair(tmp_path, "a.csv", "x,1\n", "y,1\n"), tol).within_tolerance is False
    assert explain(*_pair(tmp_path, "a.csv", "1\n", "1\n2\n"), tol).within_tolerance is False


def test_json_keys(tmp_path: Path) -> None:
    ref = {"eval": {"acc": 0.8, "loss": 1.0}, "preds": [1, 2], "name": "a"}
    new = {"eval": {"acc": 0.9}, "preds": [1, 2, 3], "name": "b"}
    expl = explain(*_pair(tmp_path, "r.json", json.dumps(ref), json.dumps(new)))
    assert expl.kind == "json" and expl.differing_values == 4
    got = {d.path: d for d in expl.differences}
    assert got["eval.acc"].abs_diff == pytest.approx(0.1)
    assert got["eval.acc"].rel_diff == pytest.approx(0.125)
    assert got["eval.loss"].change == "missing" and got["eval.loss"].reference == 1.0
    assert got["preds[2]"].change == "added" and got["preds[2]"].replayed == 3
    assert got["name"].change == "changed"
    assert expl.summary().endswith("eval.acc: 0.8 vs 0.9 (abs diff 0.1) (+3 more)")


def test_json_at_most_ten_keys_and_tolerance(tmp_path: Path) -> None:
    ref = {f"k{i}": float(i) for i in range(30)}
    new = {k: v + 1e-4 for k, v in ref.items()}
    pair = _pair(tmp_path, "m.json", json.dumps(ref), json.dumps(new))
    expl = explain(*pair, Tolerance(atol=1e-3))
    assert expl.differing_values == 30 and len(expl.differences) == 10
    assert expl.within_tolerance is True
    assert explain(*pair, Tolerance(atol=1e-5)).within_tolerance is False


def test_json_same_values_other_formatting(tmp_path: Path) -> None:
    expl = explain(*_pair(tmp_path, "m.json", '{"a": 1, "b": 2}', '{"b":2,"a":1.0}'), Tolerance())
    assert expl.differing_values == 0 and expl.within_tolerance is True


def test_invalid_json_falls_back_to_text(tmp_path: Path) -> None:
    expl = explain(*_pair(tmp_path, "m.json", "{oops\n", "{oops!\n"))
    assert expl.kind == "text" and expl.first_differing_line == 1


def _save(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as handle:
        np.save(handle, array)


def test_npy_stats_and_tolerance(tmp_path: Path) -> None:
    a = np.arange(100, dtype=np.float32)
    b = a.copy()
    b[5] += 0.03
    b[7] = np.nan
    (tmp_path / "ref").mkdir()
    (tmp_path / "new").mkdir()
    pa, pb = tmp_path / "ref" / "pred.npy", tmp_path / "new" / "pred.npy"
    _save(pa, a)
    _save(pb, b)
    expl = explain(pa, pb, Tolerance(atol=0.1))
    (arr,) = expl.arrays
    assert (arr.shape, arr.dtype, arr.size, arr.differing) == ([100], "float32", 100, 2)
    assert arr.max_abs_diff == pytest.approx(0.03, rel=1e-4)
    assert arr.max_rel_diff == pytest.approx(0.006, rel=1e-4)
    # The NaN against a number is beyond any tolerance.
    assert arr.within_tolerance is False and expl.within_tolerance is False
    assert "array: shape (100,), max abs diff 0.03, 2 of 100 elements differ" in expl.summary()

    b[7] = a[7]
    _save(pb, b)
    assert explain(pa, pb, Tolerance(atol=0.1)).within_tolerance is True
    assert explain(pa, pb, Tolerance(atol=0.01)).within_tolerance is False


def test_npy_unsigned_integers_do_not_wrap(tmp_path: Path) -> None:
    pa, pb = _pair(tmp_path, "x.npy", b"", b"")
    _save(pa, np.array([1, 5], dtype=np.uint8))
    _save(pb, np.array([0, 5], dtype=np.uint8))
    (arr,) = explain(pa, pb).arrays
    assert arr.max_abs_diff == 1.0 and arr.differing == 1


def test_npy_infinities_must_match_exactly(tmp_path: Path) -> None:
    pa, pb = _pair(tmp_path, "x.npy", b"", b"")
    _save(pa, np.array([np.inf, -np.inf, 1.0]))
    _save(pb, np.array([np.inf, -np.inf, 2.0]))
    assert explain(pa, pb, Tolerance(atol=1.0)).within_tolerance is True
    _save(pb, np.array([1e308, -np.inf, 1.0]))
    # rtol * |inf| is inf: without the finiteness rule any value would pass.
    assert explain(pa, pb, Tolerance(rtol=0.5)).within_tolerance is False


def test_npy_shape_mismatch(tmp_path: Path) -> None:
    pa, pb = _pair(tmp_path, "x.npy", b"", b"")
    _save(pa, np.zeros((2, 3)))
    _save(pb, np.zeros((3, 2)))
    expl = explain(pa, pb, Tolerance(atol=1.0))
    assert expl.within_tolerance is False
    assert "array: shape (2, 3) vs (3, 2)" in expl.summary()


def test_npz_members(tmp_path: Path) -> None:
    pa, pb = _pair(tmp_path, "out.npz", b"", b"")
    np.savez(pa, pred=np.zeros(4), same=np.ones(2), gone=np.ones(1), labels=np.array(["a", "b"]))
    np.savez(pb, pred=np.array([0, 0, 0.5, 0]), same=np.ones(2), new=np.ones(1), labels=np.array(["a", "c"]))
    expl = explain(pa, pb)
    assert expl.kind == "npz"
    names = {a.name: a for a in expl.arrays}
    assert set(names) == {"pred", "labels"} and expl.identical_arrays == 1
    assert names["pred"].differing == 1 and names["pred"].max_abs_diff == 0.5
    assert names["labels"].differing == 1 and names["labels"].max_abs_diff is None
    assert (expl.missing_arrays, expl.extra_arrays) == (["gone"], ["new"])
    text = expl.summary()
    assert "array 'pred': shape (4,), max abs diff 0.5" in text and "missing arrays 'gone'" in text


def test_npz_missing_member_is_not_within_tolerance(tmp_path: Path) -> None:
    pa, pb = _pair(tmp_path, "out.npz", b"", b"")
    np.savez(pa, x=np.zeros(2), y=np.zeros(2))
    np.savez(pb, x=np.zeros(2) + 1e-9)
    assert explain(pa, pb, Tolerance(atol=1.0)).within_tolerance is False
    np.savez(pb, x=np.zeros(2) + 1e-9, y=np.zeros(2))
    assert explain(pa, pb, Tolerance(atol=1.0)).within_tolerance is True


def test_corrupt_npy_is_explained_as_bytes(tmp_path: Path) -> None:
    expl = explain(*_pair(tmp_path, "x.npy", b"not numpy", b"not numpy!"), Tolerance(atol=1.0))
    assert expl.kind == "binary" and "within_tolerance" not in expl.to_dict()


def test_without_numpy_arrays_are_bytes(tmp_path: Path, monkeypatch: Any) -> None:
    pa, pb = _pair(tmp_path, "x.npy", b"", b"")
    _save(pa, np.zeros(3))
    _save(pb, np.ones(3))
    real_import = builtins.__import__

    def no_numpy(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "numpy" or name.startswith("numpy."):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_numpy)
    expl = explain(pa, pb, Tolerance(atol=1.0))
    assert expl.kind == "binary" and expl.note == "numpy is not installed"
    assert "within_tolerance" not in expl.to_dict()


def test_unreadable(tmp_path: Path) -> None:
    expl = explain(tmp_path / "absent.txt", tmp_path / "also-absent.txt")
    assert expl.kind == "unreadable"
    assert expl.summary().startswith("could not be read")
