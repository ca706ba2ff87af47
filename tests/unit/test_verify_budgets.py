"""The verifier's read budgets: files past them are refused or summarised before they are parsed."""

from __future__ import annotations

import io
import json
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from replay.core.verify import budgets
from replay.core.verify.compare import load_metrics
from replay.core.verify.explain import explain
from replay.errors import BadInput


def _npy_bytes(header: str, major: int = 1) -> bytes:
    raw = header.encode("latin1")
    size = struct.pack("<H" if major == 1 else "<I", len(raw))
    return b"\x93NUMPY" + bytes([major, 0]) + size + raw


def test_metrics_over_the_byte_budget_are_refused_before_parsing(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(budgets, "METRICS_BYTES", 1000)
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps({"accuracy": 0.5, "pad": " " * 2000}))
    with pytest.raises(BadInput, match="read budget of 0 MiB"):
        load_metrics(path)


def test_metrics_with_too_many_keys_are_refused(tmp_path: Path) -> None:
    content = json.dumps({f"k{i}": i for i in range(budgets.JSON_ELEMENTS + 1)}).encode()
    with pytest.raises(BadInput, match="element budget"):
        load_metrics(tmp_path / "metrics.json", content)


def test_metrics_within_the_budgets_load() -> None:
    assert load_metrics(Path("m.json"), b'{"a": 1, "b": {"c": 2}}') == {"a": 1.0, "b.c": 2.0}


def test_json_elements_bound_never_undercounts() -> None:
    doc = {"a": [1, 2, {"b": [3, 4]}], "c": {"d": 5}, "e": "x,y"}
    data = json.dumps(doc).encode()
    values = 0
    stack: list[object] = [doc]
    while stack:
        value = stack.pop()
        values += 1
        if isinstance(value, dict):
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    assert budgets.json_elements_bound(data) >= values


def test_a_json_output_over_the_element_budget_is_summarised(tmp_path: Path) -> None:
    ref, new = tmp_path / "ref.json", tmp_path / "new.json"
    ref.write_text('{"a": 1}')
    new.write_text(json.dumps(list(range(budgets.JSON_ELEMENTS + 10))))
    out = explain(ref, new)
    assert out.note is not None and "element budget" in out.note


def test_npy_header_claiming_1e11_elements_is_refused_before_loading(tmp_path: Path) -> None:
    ref, new = tmp_path / "ref.npy", tmp_path / "new.npy"
    np.save(ref, np.zeros(4))
    new.write_bytes(_npy_bytes("{'descr': '<f8', 'fortran_order': False, 'shape': (100000000000,), }\n"))
    out = explain(ref, new)
    assert out.kind == "binary" and out.note is not None and "element budget" in out.note


def test_npy_header_claiming_more_than_its_file_holds_is_refused(tmp_path: Path) -> None:
    ref, new = tmp_path / "ref.npy", tmp_path / "new.npy"
    np.save(ref, np.zeros(4))
    new.write_bytes(_npy_bytes("{'descr': '<f8', 'fortran_order': False, 'shape': (1000,), }\n") + b"\0" * 64)
    out = explain(ref, new)
    assert out.note is not None and "more than the file holds" in out.note


def test_npz_entry_inflating_past_the_budget_is_not_loaded(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(budgets, "NPZ_ENTRY_BYTES", 1 << 16)
    ref, new = tmp_path / "ref.npz", tmp_path / "new.npz"
    np.savez(ref, x=np.zeros(4))
    np.savez_compressed(new, x=np.zeros(1 << 14))  # 128 KiB of zeros, a few hundred bytes compressed
    out = explain(ref, new)
    assert out.kind == "binary" and out.note is not None and "per entry" in out.note


def test_npy_header_of_numpy_round_trips(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    np.save(buffer, np.zeros((3, 5), dtype="<i4", order="F"))
    buffer.seek(0)
    header = budgets.read_npy_header(buffer)
    assert header.shape == (3, 5) and header.descr == "<i4" and header.fortran_order
    assert header.data_offset == buffer.tell() and len(buffer.getvalue()) == header.data_offset + 60


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_npy_header_reader_never_fails_otherwise_on_arbitrary_bytes(data: bytes) -> None:
    for stream in (data, b"\x93NUMPY\x01\x00" + data, _npy_bytes(data.decode("latin1"))):
        handle = io.BytesIO(stream)
        try:
            header = budgets.read_npy_header(handle)
        except budgets.HeaderError:
            continue
        assert handle.tell() <= budgets.NPY_HEADER_BYTES + 12
        assert header.elements <= budgets.ARRAY_ELEMENTS


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=1 << 40), max_size=6), st.sampled_from(["<f8", "|u1", "<i2"]))
def test_npy_header_reader_bounds_any_claimed_shape(shape: list[int], descr: str) -> None:
    text = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': {tuple(shape)!r}, }}\n"
    try:
        header = budgets.read_npy_header(io.BytesIO(_npy_bytes(text)))
    except budgets.HeaderError as exc:
        assert "element budget" in str(exc)
        return
    assert list(header.shape) == shape and header.elements <= budgets.ARRAY_ELEMENTS


def test_a_csv_line_over_the_budget_is_not_split_into_cells(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(budgets, "CSV_LINE_CHARS", 1000)
    ref, new = tmp_path / "ref.csv", tmp_path / "new.csv"
    ref.write_text("a,b\n1,2\n")
    new.write_text("a,b\n" + "1," * 5000 + "\n")
    out = explain(ref, new)
    assert out.to_dict()["note"].startswith("not parsed as CSV (a line longer than 1000 characters")


def test_csv_lines_within_the_budget_are_compared(tmp_path: Path) -> None:
    ref, new = tmp_path / "ref.csv", tmp_path / "new.csv"
    ref.write_text("a,b\n1,2\n")
    new.write_text("a,b\n1,3\n")
    out = explain(ref, new)
    assert out.to_dict()["first_differing_cell"]["column"] == 2
