"""Strict JSON out and hostile JSON in (replay.jsonio)."""

from __future__ import annotations

import json
import math

import pytest

from replay import jsonio
from replay.fsutil import atomic_write_json


def test_dumps_writes_non_finite_floats_as_strings_at_any_depth() -> None:
    doc = {"a": math.nan, "b": [math.inf, {"c": -math.inf}], "d": (1.5, 2), "e": "NaN"}
    text = jsonio.dumps(doc)
    assert json.loads(text) == {"a": "NaN", "b": ["Infinity", {"c": "-Infinity"}], "d": [1.5, 2], "e": "NaN"}


@pytest.mark.parametrize(("value", "number"), [
    (1, 1.0), (0.25, 0.25), ("Infinity", math.inf), ("-Infinity", -math.inf), (True, None), ("1.0", None),
    (None, None), (10**400, None), ([1], None),
])
def test_number(value: object, number: float | None) -> None:
    assert jsonio.number(value) == number


def test_number_nan() -> None:
    got = jsonio.number("NaN")
    assert got is not None and math.isnan(got)


@pytest.mark.parametrize(("data", "needle"), [
    ("{", "invalid JSON"),
    (b"\xff\xfe\x00", "not UTF-8"),
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ("1" * 5000, "holds a number it cannot read"),
])
def test_loads_turns_every_failure_into_one_error(data: str | bytes, needle: str) -> None:
    with pytest.raises(jsonio.JSONInputError, match=needle):
        jsonio.loads(data)


def test_atomic_write_json_is_strict(tmp_path) -> None:
    atomic_write_json(tmp_path / "x.json", {"loss": math.nan})
    assert (tmp_path / "x.json").read_text() == '{\n  "loss": "NaN"\n}\n'
