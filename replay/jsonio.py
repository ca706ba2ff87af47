"""JSON in and out, the same way everywhere: strict JSON written, hostile JSON read without a traceback.

Written: numbers JSON cannot hold (NaN, Infinity, -Infinity: a diverged loss) become the strings "NaN",
"Infinity" and "-Infinity", so that jq and every strict parser accept the document. Readers of replay's own
documents turn those strings back into floats where a number is expected (``number``).

Read: anything a stranger hands over (a capsule's replay.json, a metrics file, a probe's output) may be
invalid, not UTF-8, nested 100,000 deep, or hold a 5,000-digit integer. ``loads`` turns each of these into
one ``JSONInputError`` whose message says what is wrong, instead of a JSONDecodeError, RecursionError or
ValueError escaping as a traceback. Nothing here imports the rest of the package.
"""

from __future__ import annotations

import json
import math
from typing import Any

NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


class JSONInputError(ValueError):
    """Text that is not a JSON document this reader accepts; ``str(exc)`` says why, in a few words."""


def finite(value: Any) -> Any:
    """``value`` with every non-finite float, at any depth of dicts, lists and tuples, written as a string."""
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def dumps(obj: Any, indent: int | None = 2) -> str:
    """Strict JSON: non-finite floats as strings, never a bare NaN."""
    return json.dumps(finite(obj), indent=indent, allow_nan=False)


def number(value: Any) -> float | None:
    """The float a JSON number, or one of the strings "NaN", "Infinity", "-Infinity", stands for; else None.

    An integer too large for a float (a 400-digit one) is None too: it is not a number replay can compare.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, float):
        return value
    if isinstance(value, int):
        try:
            return float(value)
        except OverflowError:
            return None
    if isinstance(value, str):
        return NON_FINITE.get(value)
    return None


def loads(data: str | bytes) -> Any:
    """Parse one JSON document; every way it can fail is a ``JSONInputError`` with a short reason."""
    try:
        return json.loads(data)
    except json.JSONDecodeError as exc:
        raise JSONInputError(f"invalid JSON: {exc}") from None
    except UnicodeDecodeError:
        raise JSONInputError("not UTF-8 text") from None
    except RecursionError:
        raise JSONInputError("nested too deeply") from None
    except ValueError as exc:  # e.g. "Exceeds the limit (4300 digits) for integer string conversion"
        raise JSONInputError(f"holds a number it cannot read ({exc})") from None
