"""Pure comparisons behind `replay verify`: bytes per output file, metrics with tolerances, one verdict.

Nothing here runs a container or prints. Paths are the manifest's POSIX paths, relative to the project
root; globs (``--ignore``, tolerance keys) are matched with ``fnmatchcase``, where ``*`` also crosses ``/``,
so ``*.log`` matches ``out/logs/train.log``.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from replay import jsonio
from replay.core.verify import budgets
from replay.core.verify.explanation import Explanation, NotAFile
from replay.core.verify.tolerance import Tolerance, tolerance_for
from replay.errors import BadInput
from replay.manifest import FileEntry

METRICS_HINT = 'write metrics as {"accuracy": 0.85, ...}'


def parse_assignment(text: str, what: str, form: str = "NAME=VALUE", example: str = "accuracy=1e-3") -> tuple[str, str]:
    """Split a ``NAME=SPEC`` option value; ``what`` names the option in the error, ``form`` and ``example``
    say how that option is written (``--data`` is RECORDED=LOCAL, not a tolerance)."""
    name, sep, spec = text.partition("=")
    name, spec = name.strip(), spec.strip()
    if not sep or not name or not spec:
        raise BadInput(f"{what} '{text}' is not {form}", f"write {what} as {form}, e.g. {what} {example}")
    return name, spec


# --- metrics -------------------------------------------------------------------------------------------


def load_metrics(path: Path, content: bytes | None = None) -> dict[str, float]:
    """A JSON object of numbers, nested objects flattened to dotted names (``{"eval": {"acc": 1}}`` -> eval.acc).

    The file may come from a stranger's capsule or a replayed command: invalid, deeply nested or huge-number
    JSON is a ``BadInput`` naming what is wrong, never a traceback; so is a file over the verifier's read
    budgets (``budgets.METRICS_BYTES`` and ``JSON_ELEMENTS``), checked before it is parsed.
    "NaN", "Infinity" and "-Infinity" as strings are read as those floats, as replay writes them.
    ``content``, when given, is the file's bytes already read (safely, by the caller); ``path`` names it.
    """
    try:
        if content is None:
            with open(path, "rb") as handle:
                content = handle.read(budgets.METRICS_BYTES + 1)
        over = budgets.json_over_budget(content, budgets.METRICS_BYTES)
        if over is not None:
            raise BadInput(f"metrics file {path} is {over}", budgets.HOW_TO_RAISE)
        raw = jsonio.loads(content)
    except OSError as exc:
        raise BadInput(f"cannot read metrics file {path} ({exc.strerror or exc})", METRICS_HINT) from None
    except jsonio.JSONInputError as exc:
        raise _bad_metrics(path, str(exc)) from None
    if not isinstance(raw, dict):
        raise _bad_metrics(path, f"top level is {_json_type(raw)}")
    out: dict[str, float] = {}
    # Iterative, not recursive: json accepts nesting nearly as deep as the interpreter's stack.
    stack: list[tuple[dict[str, Any], str]] = [(raw, "")]
    while stack:
        obj, prefix = stack.pop()
        for key, value in obj.items():
            name = f"{prefix}{key}"
            if isinstance(value, dict):
                stack.append((value, f"{name}."))
                continue
            number = jsonio.number(value)
            if number is None:
                huge = isinstance(value, int) and not isinstance(value, bool)
                raise _bad_metrics(path, f"'{name}' is {'an integer too large for a number' if huge else _json_type(value)}")
            if name in out:
                raise _bad_metrics(path, f"'{name}' appears twice")
            out[name] = number
    return out


def _json_type(value: Any) -> str:
    names = {bool: "a boolean", list: "a list", str: "a string", type(None): "null", dict: "an object"}
    return names.get(type(value), type(value).__name__)


def _bad_metrics(path: Path, detail: str) -> BadInput:
    return BadInput(f"metrics file {path} is not a JSON object of numbers ({detail})", METRICS_HINT)


class MetricStatus(enum.StrEnum):
    IDENTICAL = "identical"
    WITHIN_TOLERANCE = "within_tolerance"
    DIVERGED = "diverged"
    MISSING = "missing"
    UNEXPECTED = "unexpected"

    @property
    def settled(self) -> bool:
        """Never makes a replay diverge."""
        return self in (MetricStatus.IDENTICAL, MetricStatus.WITHIN_TOLERANCE)


class OutputStatus(enum.StrEnum):
    IDENTICAL = "identical"
    DIFFERS = "differs"
    WITHIN_TOLERANCE = "within_tolerance"
    IGNORED = "ignored"
    MISSING = "missing"
    UNEXPECTED = "unexpected"

    @property
    def settled(self) -> bool:
        """Never makes a replay diverge (a missing or unexpected file may still be ignored: ``OutputResult``)."""
        return self in (OutputStatus.IDENTICAL, OutputStatus.WITHIN_TOLERANCE, OutputStatus.IGNORED)


class Verdict(enum.StrEnum):
    IDENTICAL = "identical"
    EQUIVALENT = "equivalent"
    DIVERGED = "diverged"
    ERROR = "error"

    @property
    def reproduced(self) -> bool:
        """Identical or equivalent: ``replay verify`` exits 0."""
        return self in (Verdict.IDENTICAL, Verdict.EQUIVALENT)


@dataclass
class MetricResult:
    name: str
    reference: float | None
    replayed: float | None
    abs_diff: float | None
    rel_diff: float | None
    tolerance: str
    status: MetricStatus

    def __post_init__(self) -> None:
        self.status = MetricStatus(self.status)  # a status given as its string

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _same(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


def compare_metrics(
    reference: dict[str, float], replayed: dict[str, float], tolerances: dict[str, str]
) -> list[MetricResult]:
    results = []
    for name in sorted(reference.keys() | replayed.keys()):
        ref, new = reference.get(name), replayed.get(name)
        match = tolerance_for(name, tolerances)
        tol = match[1] if match else Tolerance()
        abs_diff = rel_diff = None
        if ref is None:
            status = MetricStatus.UNEXPECTED
        elif new is None:
            status = MetricStatus.MISSING
        else:
            if _same(ref, new):
                status, abs_diff, rel_diff = MetricStatus.IDENTICAL, 0.0, 0.0
            else:
                status = MetricStatus.WITHIN_TOLERANCE if tol.allows(ref, new) else MetricStatus.DIVERGED
                abs_diff = abs(new - ref)
                # Relative to the reference; undefined (None) where the reference is 0, inf or NaN.
                rel_diff = abs_diff / abs(ref) if ref != 0 and math.isfinite(ref) else None
        results.append(MetricResult(name, ref, new, abs_diff, rel_diff, tol.describe(), status))
    return results


# --- output files --------------------------------------------------------------------------------------


@dataclass
class OutputResult:
    path: str
    reference_sha256: str | None
    replayed_sha256: str | None
    reference_size: int | None
    replayed_size: int | None
    # A missing or unexpected file that matches an --ignore glob keeps its status with ``ignored`` set, and
    # does not diverge.
    status: OutputStatus
    ignored: bool = False
    explanation: Explanation | None = None
    tolerance: str | None = None

    def __post_init__(self) -> None:
        self.status = OutputStatus(self.status)  # a status given as its string

    @property
    def settled(self) -> bool:
        """Never makes the replay diverge: settled, or matching an --ignore glob."""
        return self.ignored or self.status.settled

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        return out | {"explanation": self.explanation.to_dict() if self.explanation is not None else None}


def compare_outputs(
    reference: list[FileEntry],
    replayed: list[FileEntry],
    replayed_root: Path,
    reference_root: Path | None,
    ignore: list[str],
    tolerances: dict[str, str],
) -> list[OutputResult]:
    """Match output files by path and say, for each, how the replay's copy relates to the reference.

    A file whose hashes differ gets an explanation when its reference copy exists under ``reference_root``;
    with a tolerance key matching its path, a numeric file whose values all fall within is settled. Both
    copies are opened through ``safefs`` (no link followed, only regular files): someone else made them.
    """
    # Imported here: explain pulls in csv/difflib, and numpy lazily, which a byte-identical replay never needs.
    from replay.core.verify.explain import explain

    refs = {f.path: f for f in reference}
    news = {f.path: f for f in replayed}
    results = []
    for path in sorted(refs.keys() | news.keys()):
        ref, new = refs.get(path), news.get(path)
        ignored = any(fnmatchcase(path, pattern) for pattern in ignore)
        result = OutputResult(
            path=path,
            reference_sha256=ref.sha256 if ref else None,
            replayed_sha256=new.sha256 if new else None,
            reference_size=ref.size if ref else None,
            replayed_size=new.size if new else None,
            status=OutputStatus.MISSING if new is None else OutputStatus.UNEXPECTED,
            ignored=ignored,
        )
        results.append(result)
        if ref is None or new is None:
            continue
        if ref.sha256 == new.sha256 and ref.size == new.size:
            result.status = OutputStatus.IDENTICAL
            continue
        match = tolerance_for(path, tolerances)
        tol = match[1] if match else None
        result.tolerance = tol.describe() if tol else None
        if reference_root is not None:
            result.explanation = _explain_safely(explain, reference_root, replayed_root, path, tol)
        if tol is not None and result.explanation and result.explanation.within_tolerance is True:
            result.status = OutputStatus.WITHIN_TOLERANCE
        else:
            result.status = OutputStatus.IGNORED if ignored else OutputStatus.DIFFERS
    return results


def _explain_safely(explain: Callable[..., Explanation], reference_root: Path, replayed_root: Path, path: str,
                    tol: Tolerance | None) -> Explanation | None:
    """The explanation from both copies, opened without following links; None without a reference copy."""
    from replay.safefs import NotRegular, opened

    try:
        with opened(reference_root, path) as ref:
            try:
                with opened(replayed_root, path) as new:
                    return explain(ref, new, tol, suffix=Path(path).suffix)
            except NotRegular as exc:
                return NotAFile(note=f"the replayed {path} is {exc.what}; not read")
            except FileNotFoundError:
                return None
    except (NotRegular, FileNotFoundError, NotADirectoryError):
        return None  # no usable reference copy (the capsule's were checked before the run)


# --- verdict -------------------------------------------------------------------------------------------


def verdict(outputs: list[OutputResult], metrics: list[MetricResult]) -> Verdict:
    """identical: everything identical; equivalent: the rest ignored or within tolerance; else diverged."""
    statuses = [o.status for o in outputs] + [m.status for m in metrics]
    if all(s == "identical" for s in statuses):
        return Verdict.IDENTICAL
    settled = all(o.settled for o in outputs) and all(m.status.settled for m in metrics)
    return Verdict.EQUIVALENT if settled else Verdict.DIVERGED


def settle_metrics_files(outputs: list[OutputResult], metrics_files: list[str], metrics: list[MetricResult],
                         per_file: dict[str, list[str]]) -> list[OutputResult]:
    """A metrics file whose bytes differ but whose every metric is within tolerance is within tolerance too.

    ``per_file`` maps each metrics file to the metric names it holds. Without this, a jitter that the
    declared tolerance allows would still diverge through the file's bytes.
    """
    by_name = {m.name: m for m in metrics}
    settled = []
    for out in outputs:
        names = per_file.get(out.path, [])
        if (out.status is OutputStatus.DIFFERS and out.path in metrics_files and names
                and all(by_name.get(n) is not None and by_name[n].status.settled for n in names)):
            out = replace(out, status=OutputStatus.WITHIN_TOLERANCE, tolerance="metrics within their tolerances")
        settled.append(out)
    return settled
