"""Parsed JSON into dataclasses, checked field by field: ``build(tp, value, where)``.

Every versioned document replay reads (replay.json, the verify report's hosts) is built this way, so that a
bad value is one ``ManifestError`` naming the exact field (``replay.json.outputs.files[3].size: expected
int, got str``), never a traceback. The types it knows are dataclasses, ``X | None``, ``list[X]``,
``dict[str, X]``, ``str`` (no NUL byte), ``int`` (0 to ``INT_MAX``), ``float`` (also "NaN", "Infinity" and
"-Infinity" as replay writes them) and ``bool``. A list of one item type can have a faster reader of its
own (``list_reader``): the manifest's million-entry file lists do.
"""

from __future__ import annotations

import functools
import types
import typing
from collections.abc import Callable
from dataclasses import MISSING, fields, is_dataclass
from typing import Any

from replay import jsonio
from replay.errors import ManifestError

# The largest integer a document holds (sizes, counts, seeds): what a signed 64-bit field can store.
INT_MAX = (1 << 63) - 1
HINT = "recapture the run"

ListReader = Callable[[list[Any], str], list[Any]]
_LIST_READERS: dict[Any, ListReader] = {}


def list_reader(item: type, reader: ListReader) -> None:
    """Read every ``list[item]`` with ``reader(value, where)`` (which checks as ``build`` would) instead."""
    _LIST_READERS[item] = reader


@functools.cache
def schema(tp: type) -> tuple[tuple[str, Any, bool], ...]:
    """(name, type, required) per field of a dataclass, resolved once: get_type_hints is slow."""
    hints = typing.get_type_hints(tp)
    return tuple((f.name, hints[f.name], f.default is MISSING and f.default_factory is MISSING) for f in fields(tp))


def build(tp: Any, value: Any, where: str) -> Any:
    """Turn parsed JSON into ``tp``, naming the exact field on any mismatch (a ``ManifestError``)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return _union(typing.get_args(tp), value, where)
    if is_dataclass(tp) and isinstance(tp, type):
        if not isinstance(value, dict):
            raise ManifestError(f"{where}: expected an object", HINT)
        kwargs = {}
        for name, hint, required in schema(tp):
            if name in value:
                kwargs[name] = build(hint, value[name], f"{where}.{name}")
            elif required:
                raise ManifestError(f"{where}: missing field '{name}'", HINT)
        return tp(**kwargs)
    if origin is list:
        (item,) = typing.get_args(tp)
        if not isinstance(value, list):
            raise ManifestError(f"{where}: expected a list", HINT)
        if (reader := _LIST_READERS.get(item)) is not None:
            return reader(value, where)
        return [build(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        _, item = typing.get_args(tp)
        if not isinstance(value, dict):
            raise ManifestError(f"{where}: expected an object", HINT)
        for k in value:
            if "\0" in k:
                raise ManifestError(f"{where}: a key holds a NUL byte", HINT)
        return {k: build(item, v, f"{where}.{k}") for k, v in value.items()}
    return _scalar(tp, value, where)


def _union(options: tuple[Any, ...], value: Any, where: str) -> Any:
    if value is None and type(None) in options:
        return None
    errors = []
    for option in options:
        if option is type(None):
            continue
        try:
            return build(option, value, where)
        except ManifestError as exc:
            errors.append(exc.message)
    raise ManifestError(errors[0] if errors else f"{where}: unexpected null", HINT)


def _scalar(tp: Any, value: Any, where: str) -> Any:
    if tp is float:
        number = jsonio.number(value)
        if number is not None:
            return number
        if isinstance(value, int) and not isinstance(value, bool):
            raise ManifestError(f"{where}: {int_text(value)} is too large for a number", HINT)
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            if 0 <= value <= INT_MAX:
                return value
            raise ManifestError(f"{where}: {int_text(value)} is out of range (0 to 2**63 - 1)", HINT)
    elif tp is str:
        if isinstance(value, str):
            if "\0" in value:
                raise ManifestError(f"{where}: holds a NUL byte", HINT)
            return value
    elif tp is bool:
        if isinstance(value, bool):
            return value
    else:  # pragma: no cover - a schema type this reader does not know is a programming error
        raise TypeError(f"unsupported schema type {tp!r}")
    raise ManifestError(f"{where}: expected {tp.__name__}, got {type(value).__name__}", HINT)


def int_text(value: int) -> str:
    # str() of a huge integer is slow, and refused past 4300 digits: name its size instead.
    return str(value) if -10**20 < value < 10**20 else f"an integer of {value.bit_length()} bits"
