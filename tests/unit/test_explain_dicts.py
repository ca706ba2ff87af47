"""Explanations as the verify report writes them: each kind's dict, literally as replay wrote it before
explanations were typed, and read back from that dict to the same dict and the same one line."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from replay.core.verify.explain import explain
from replay.core.verify.explanation import Explanation, NotAFile, from_dict
from replay.core.verify.tolerance import parse_tolerance


def _npy(arr: Any) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


def _npz(**arrays: Any) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


# name -> (file name, reference bytes, replayed bytes, with the tolerance rel:1e-3)
INPUTS: dict[str, tuple[str, str | bytes, str | bytes, bool]] = {
    'text_tol': ("log.txt", "step 1 took 0.51 s\nloss 0.2500\n",
                "step 1 took 0.73 s\nloss 0.2501\n", True),
    'csv_tol': ("m.csv", "epoch,loss\n1,0.5\n2,0.25\n",
               "epoch,loss\n1,0.5\n2,0.2501\n", True),
    'csv_plain': ("n.csv", "1,a\n2,b\n",
                 "1,a\n2,c\n", False),
    'json_tol': ("r.json", '{"acc": 0.5, "name": "x", "at": 1700000000}',
                '{"acc": 0.5001, "name": "y", "at": 1700000100, "new": [1]}', True),
    'json_same': ("s.json", '{"a": 1, "b": 2}',
                 '{"b": 2, "a": 1}', False),
    'json_bad': ("bad.json", '{not json',
                '{not jsoN', False),
    'npy_tol': ("w.npy", _npy(np.array([1.0, 2.0, 3.0])),
               _npy(np.array([1.0, 2.0000001, 3.5])), True),
    'npz': ("z.npz", _npz(a=np.zeros(3), b=np.ones((2, 2)), gone=np.arange(2)),
           _npz(a=np.zeros(3), b=np.full((2, 2), 1.5), extra=np.arange(2)), False),
    'binary': ("blob.bin", b"\x00\x01\x02",
              b"\x00\x01\x03", False),
    'identical_tol': ("same.txt", "a\n",
                     "a\n", True),
}

# name -> (explanation as a dict, its one line)
EXPECTED: dict[str, tuple[dict[str, Any], str]] = {
    'text_tol': (
        {'kind': 'text',
         'reference_size': 31,
         'replayed_size': 31,
         'first_byte_offset': 14,
         'tolerance': 'rel 0.001',
         'first_differing_line': 1,
         'first_differing_column': 15,
         'reference_line': 'step 1 took 0.51 s',
         'replayed_line': 'step 1 took 0.73 s',
         'diff': ['--- reference',
                  '+++ replayed',
                  '@@ -1,2 +1,2 @@',
                  '-step 1 took 0.51 s',
                  '-loss 0.2500',
                  '+step 1 took 0.73 s',
                  '+loss 0.2501'],
         'numeric': {'lines_compared': 2,
                     'lines_differing': 2,
                     'line_count_differs': False,
                     'structure_equal': True,
                     'numbers_moved': 2,
                     'numbers_beyond_tolerance': 1,
                     'max_abs_move': 0.21999999999999997,
                     'max_rel_move': 0.4313725490196078,
                     'max_abs_move_from_zero': None,
                     'classes': {'other': 1, 'timing': 1},
                     'first_differing_line': 1,
                     'first_line_beyond_tolerance': 1,
                     'complete': True},
         'within_tolerance': False},
        (
            'differs at byte 14 (sizes 31 vs 31); '
            "line 1: 'step 1 took 0.51 s' vs 'step 1 took 0.73 s'; "
            'lines differ in other values (1), timing-like numbers (1); '
            '2 numbers moved (max rel 0.431); '
            'beyond tolerance rel 0.001'
        ),
    ),
    'csv_tol': (
        {'kind': 'csv',
         'reference_size': 24,
         'replayed_size': 26,
         'first_byte_offset': 23,
         'tolerance': 'rel 0.001',
         'first_differing_line': 3,
         'first_differing_column': 7,
         'reference_line': '2,0.25',
         'replayed_line': '2,0.2501',
         'diff': ['--- reference',
                  '+++ replayed',
                  '@@ -1,3 +1,3 @@',
                  ' epoch,loss',
                  ' 1,0.5',
                  '-2,0.25',
                  '+2,0.2501'],
         'numeric': {'lines_compared': 3,
                     'lines_differing': 1,
                     'line_count_differs': False,
                     'structure_equal': True,
                     'numbers_moved': 1,
                     'numbers_beyond_tolerance': 1,
                     'max_abs_move': 9.999999999998899e-05,
                     'max_rel_move': 0.00039999999999995595,
                     'max_abs_move_from_zero': None,
                     'classes': {'other': 1},
                     'first_differing_line': 3,
                     'first_line_beyond_tolerance': 3,
                     'complete': True},
         'has_header': True,
         'first_differing_cell': {'row': 3,
                                  'column': 2,
                                  'column_name': 'loss',
                                  'reference': '0.25',
                                  'replayed': '0.2501',
                                  'abs_diff': 9.999999999998899e-05},
         'differing_cells': 1,
         'cells_beyond_tolerance': 0,
         'first_cell_beyond_tolerance': None,
         'within_tolerance': True},
        (
            'differs at byte 23 (sizes 24 vs 26); '
            "row 3, column 'loss': '0.25' vs '0.2501'; "
            '1 number moved (max rel 0.0004); '
            'within tolerance rel 0.001'
        ),
    ),
    'csv_plain': (
        {'kind': 'csv',
         'reference_size': 8,
         'replayed_size': 8,
         'first_byte_offset': 6,
         'first_differing_line': 2,
         'first_differing_column': 3,
         'reference_line': '2,b',
         'replayed_line': '2,c',
         'diff': ['--- reference', '+++ replayed', '@@ -1,2 +1,2 @@', ' 1,a', '-2,b', '+2,c'],
         'numeric': {'lines_compared': 2,
                     'lines_differing': 1,
                     'line_count_differs': False,
                     'structure_equal': False,
                     'numbers_moved': 0,
                     'numbers_beyond_tolerance': 0,
                     'max_abs_move': None,
                     'max_rel_move': None,
                     'max_abs_move_from_zero': None,
                     'classes': {'other': 1},
                     'first_differing_line': 2,
                     'first_line_beyond_tolerance': 2,
                     'complete': True},
         'has_header': False,
         'first_differing_cell': {'row': 2,
                                  'column': 2,
                                  'column_name': None,
                                  'reference': 'b',
                                  'replayed': 'c',
                                  'abs_diff': None}},
        "differs at byte 6 (sizes 8 vs 8); row 2, column 2: 'b' vs 'c'",
    ),
    'json_tol': (
        {'kind': 'json',
         'reference_size': 43,
         'replayed_size': 58,
         'first_byte_offset': 11,
         'tolerance': 'rel 0.001',
         'differing_values': 4,
         'differences': [{'path': 'acc',
                          'change': 'changed',
                          'reference': 0.5,
                          'replayed': 0.5001,
                          'abs_diff': 9.999999999998899e-05,
                          'rel_diff': 0.00019999999999997797},
                         {'path': 'name', 'change': 'changed', 'reference': 'x', 'replayed': 'y'},
                         {'path': 'at',
                          'change': 'changed',
                          'reference': 1700000000,
                          'replayed': 1700000100,
                          'abs_diff': 100.0,
                          'rel_diff': 5.882352941176471e-08},
                         {'path': 'new', 'change': 'added', 'reference': None, 'replayed': '<list of 1>'}],
         'within_tolerance': False},
        (
            'differs at byte 11 (sizes 43 vs 58); '
            'acc: 0.5 vs 0.5001 (abs diff 0.0001) (+3 more); '
            'beyond tolerance rel 0.001'
        ),
    ),
    'json_same': (
        {'kind': 'json',
         'reference_size': 16,
         'replayed_size': 16,
         'first_byte_offset': 2,
         'differing_values': 0,
         'differences': [],
         'note': 'same values; only formatting or key order differs'},
        'differs at byte 2 (sizes 16 vs 16); same values; only formatting or key order differs',
    ),
    'json_bad': (
        {'kind': 'text',
         'reference_size': 9,
         'replayed_size': 9,
         'first_byte_offset': 8,
         'first_differing_line': 1,
         'first_differing_column': 9,
         'reference_line': '{not json',
         'replayed_line': '{not jsoN',
         'diff': ['--- reference', '+++ replayed', '@@ -1 +1 @@', '-{not json', '+{not jsoN']},
        "differs at byte 8 (sizes 9 vs 9); line 1: '{not json' vs '{not jsoN'",
    ),
    'npy_tol': (
        {'kind': 'npy',
         'reference_size': 152,
         'replayed_size': 152,
         'first_byte_offset': 136,
         'tolerance': 'rel 0.001',
         'arrays': [{'name': None,
                     'shape': [3],
                     'replayed_shape': [3],
                     'dtype': 'float64',
                     'replayed_dtype': 'float64',
                     'size': 3,
                     'differing': 2,
                     'max_abs_diff': 0.5,
                     'max_rel_diff': 0.16666666666666666,
                     'within_tolerance': False}],
         'within_tolerance': False},
        (
            'differs at byte 136 (sizes 152 vs 152); '
            'array: shape (3,), max abs diff 0.5, 2 of 3 elements differ; '
            'beyond tolerance rel 0.001'
        ),
    ),
    'npz': (
        {'kind': 'npz',
         'reference_size': 802,
         'replayed_size': 804,
         'first_byte_offset': 221,
         'arrays': [{'name': 'b',
                     'shape': [2, 2],
                     'replayed_shape': [2, 2],
                     'dtype': 'float64',
                     'replayed_dtype': 'float64',
                     'size': 4,
                     'differing': 4,
                     'max_abs_diff': 0.5,
                     'max_rel_diff': 0.5}],
         'identical_arrays': 1,
         'missing_arrays': ['gone'],
         'extra_arrays': ['extra']},
        (
            'differs at byte 221 (sizes 802 vs 804); '
            "array 'b': shape (2, 2), max abs diff 0.5, 4 of 4 elements differ; "
            "missing arrays 'gone'; "
            "extra arrays 'extra'"
        ),
    ),
    'binary': (
        {'kind': 'binary', 'reference_size': 3, 'replayed_size': 3, 'first_byte_offset': 2},
        'differs at byte 2 (sizes 3 vs 3)',
    ),
    'identical_tol': (
        {'kind': 'text',
         'reference_size': 2,
         'replayed_size': 2,
         'first_byte_offset': None,
         'tolerance': 'rel 0.001',
         'within_tolerance': True},
        'identical',
    ),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_explanation_dict_is_unchanged(tmp_path: Path, name: str) -> None:
    file_name, a, b, with_tolerance = INPUTS[name]
    paths = []
    for side, data in (("ref", a), ("new", b)):
        (tmp_path / side).mkdir()
        (tmp_path / side / file_name).write_bytes(data.encode() if isinstance(data, str) else data)
        paths.append(tmp_path / side / file_name)
    expl = explain(paths[0], paths[1], parse_tolerance("rel:1e-3") if with_tolerance else None)
    assert expl.to_dict() == EXPECTED[name][0]
    assert list(expl.to_dict()) == list(EXPECTED[name][0])  # the same keys in the same order
    assert expl.summary() == EXPECTED[name][1]



# name -> noise classes of the output, were it to differ (replay.core.verify.noise)
NOISE: dict[str, dict[str, int]] = {
    "binary": {"other": 1},
    "csv_plain": {"other": 1},
    "csv_tol": {"other": 1},
    "identical_tol": {"other": 1},
    "json_bad": {"other": 1},
    "json_same": {"other": 1},
    "json_tol": {"other": 3, "timestamp": 1},
    "npy_tol": {"other": 1},
    "npz": {"other": 1},
    "text_tol": {"other": 1, "timing": 1},
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_noise_classes_are_unchanged(name: str) -> None:
    assert from_dict(EXPECTED[name][0]).noise_classes() == NOISE[name]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_read_back_to_the_same_dict_and_line(name: str) -> None:
    expl = from_dict(EXPECTED[name][0])
    assert list(expl.to_dict().items()) == list(EXPECTED[name][0].items())
    assert expl.summary() == EXPECTED[name][1]


# Dicts from branches the inputs above do not reach, as replay wrote them.
OTHER_DICTS: list[tuple[dict[str, Any], str]] = [
    ({"kind": "binary", "reference_size": 12, "replayed_size": 12, "first_byte_offset": 11,
      "note": "numpy is not installed"}, "differs at byte 11 (sizes 12 vs 12); numpy is not installed"),
    ({"kind": "unreadable", "reference_size": 3, "replayed_size": None, "first_byte_offset": None,
      "error": "[Errno 2] No such file or directory: 'x'"},
     "could not be read ([Errno 2] No such file or directory: 'x')"),
    ({"kind": "not a file", "first_byte_offset": None, "note": "the replay left a link here; not followed, not read"},
     "the replay left a link here; not followed, not read"),
    ({"kind": "json", "reference_size": 9, "replayed_size": 9, "first_byte_offset": 2, "tolerance": "abs 1",
      "note": "larger than 256 MiB; no key detail"},
     "differs at byte 2 (sizes 9 vs 9); larger than 256 MiB; no key detail"),
    ({"kind": "csv", "reference_size": 9, "replayed_size": 9, "first_byte_offset": 2,
      "note": "first difference is past the first 16 MiB; no line detail", "numeric": {
          "lines_compared": 9, "lines_differing": 0, "line_count_differs": False, "structure_equal": True,
          "numbers_moved": 0, "numbers_beyond_tolerance": 0, "max_abs_move": None, "max_rel_move": "NaN",
          "max_abs_move_from_zero": None, "classes": {}, "first_differing_line": None,
          "first_line_beyond_tolerance": None, "complete": False}},
     "differs at byte 2 (sizes 9 vs 9); first difference is past the first 16 MiB; no line detail"),
    ({"kind": "csv", "reference_size": 4, "replayed_size": 4, "first_byte_offset": 2, "first_differing_line": 1,
      "first_differing_column": 3, "reference_line": "a,b", "replayed_line": "a,c", "diff": [],
      "note": "not parsed as CSV (field larger than field limit (131072))"},
     "differs at byte 2 (sizes 4 vs 4); line 1: 'a,b' vs 'a,c'"),
]


@pytest.mark.parametrize("raw, line", OTHER_DICTS)
def test_other_kinds_read_back_to_the_same_dict(raw: dict[str, Any], line: str) -> None:
    from replay import jsonio

    expl = from_dict(raw)
    assert jsonio.dumps(expl.to_dict()) == jsonio.dumps(raw)
    assert expl.summary() == line
    assert isinstance(expl, Explanation)
    assert isinstance(expl, NotAFile) == (raw["kind"] == "not a file")


def test_a_report_writes_each_explanation_as_before_and_reads_it_back() -> None:
    import json

    from replay import jsonio
    from replay.core.verify.compare import OutputResult
    from replay.core.verify.report import VerifyReport

    names = sorted(EXPECTED)
    outputs = [OutputResult(f"out/{n}", "a" * 64, "b" * 64, 1, 1, "differs", explanation=from_dict(EXPECTED[n][0]))
               for n in names]
    report = VerifyReport(capsule="c", capsule_path="/c", verdict="diverged", exit_code=1, outputs=outputs)
    written = json.loads(report.to_json())
    assert [o["explanation"] for o in written["outputs"]] == [json.loads(jsonio.dumps(EXPECTED[n][0])) for n in names]
    assert VerifyReport.from_dict(written).to_json() == report.to_json()


_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                     max_leaves=8)


@given(st.sampled_from(sorted(EXPECTED)), st.sampled_from(["kind", "numeric", "arrays", "differences",
                                                            "first_differing_cell", "diff", "note"]), _JSON)
def test_a_report_with_any_explanation_is_read_or_refused_in_one_line(name: str, key: str, value: Any) -> None:
    """A node's result is read back from a shared folder: an explanation that is not replay's is a ManifestError."""
    from replay.core.verify.report import VerifyReport
    from replay.errors import ManifestError

    expl = {**EXPECTED[name][0], key: value}
    raw = {"schema": "replay.verify-report", "schema_version": 1, "capsule": "c", "capsule_path": "/c",
           "verdict": "diverged", "exit_code": 1,
           "outputs": [{"path": "p", "reference_sha256": None, "replayed_sha256": None, "reference_size": None,
                        "replayed_size": None, "status": "differs", "ignored": False, "explanation": expl,
                        "tolerance": None}]}
    try:
        report = VerifyReport.from_dict(raw)
    except ManifestError:
        return
    read = report.outputs[0].explanation
    assert read is not None
    read.summary(), read.noise_classes(), report.to_json()  # what the renderers do with it never fails
