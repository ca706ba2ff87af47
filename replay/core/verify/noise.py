"""What kind of noise a difference looks like: timings, timestamps, memory addresses, temporary paths, or
the last digits of a float. Pure functions over the text around a value; nothing here reads files.

The classes are evidence for the diagnosis, not proof: "only timing-like numbers differ" says a clock, not a
missing seed, moved the output; a difference of class ``other`` is one no rule here explains.
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol


class NoiseClass(enum.StrEnum):
    TIMING = "timing"  # a number next to a time unit ("in 0.17 sec", "elapsed: 3.2")
    TIMESTAMP = "timestamp"  # a date, a time of day, or seconds since the epoch
    ADDRESS = "address"  # a memory address or object id (0x7f3a...)
    TEMP_PATH = "temp_path"  # a temporary file or folder name (/tmp/tmpab12cd)
    FLOAT_NOISE = "float_noise"  # the same float but for its last digits
    TIMING_DRIVEN = "timing_driven"  # a line that appears or disappears next to a timing
    ORDER = "order"  # the same items in another order (a set or dict printed without PYTHONHASHSEED)
    OTHER = "other"  # nothing here explains it

    @property
    def label(self) -> str:
        return _LABELS[self]


_LABELS = {
    NoiseClass.TIMING: "timing-like numbers",
    NoiseClass.TIMESTAMP: "dates and timestamps",
    NoiseClass.ADDRESS: "memory addresses and object ids",
    NoiseClass.TEMP_PATH: "temporary paths",
    NoiseClass.FLOAT_NOISE: "the last digits of floats",
    NoiseClass.TIMING_DRIVEN: "lines that come and go with a timing",
    NoiseClass.ORDER: "the order of the same items",
    NoiseClass.OTHER: "other values",
}

# Classes a clock, an allocator or a temp-file name explain: a seed would not change them.
CLOCK_LIKE = frozenset({NoiseClass.TIMING, NoiseClass.TIMESTAMP, NoiseClass.ADDRESS, NoiseClass.TEMP_PATH,
                        NoiseClass.TIMING_DRIVEN})
# What only the clock moves: a frozen clock, not a seed, would keep it still.
CLOCK = frozenset({NoiseClass.TIMING, NoiseClass.TIMESTAMP, NoiseClass.TIMING_DRIVEN})
# A relative move this small is rounding (float32 carries about 7 digits), not another result.
FLOAT_NOISE_REL = 1e-6

_UNIT_AFTER = re.compile(
    r"^\s*(?:s|sec|secs|second|seconds|ms|msec|msecs|millis|milliseconds|us|µs|usec|microseconds|ns|"
    r"nanoseconds|min|mins|minute|minutes|h|hr|hrs|hours?|it/s|s/it|samples/s|examples/s|steps/s)(?![A-Za-z])",
    re.IGNORECASE,
)
# A word that means time, then at most a few non-letters ("'time': ", "took ", "overhead of testing was ").
_WORD_BEFORE = re.compile(
    r"(?<![A-Za-z])(?:elapsed|took|duration|time|runtime|wall|latency|timing|spent|seconds|secs?|ms|overhead|throughput)"
    r"(?:\s+(?:of|was|is|were|for|in|testing|\w+ing)){0,3}[\s'\"]*[:=]?\s*$",
    re.IGNORECASE,
)
_TIME_NAME = re.compile(r"(?:^|[._-])(?:time|elapsed|duration|seconds|secs|runtime|latency|took|overhead|"
                        r"throughput)|_s$|_ms$", re.IGNORECASE)
# How far back a time word may stand, once padding (pandas pads columns with spaces) is stripped.
_LOOK_BACK = 40
_STAMP_NAME = re.compile(r"(?:^|[._-])(?:timestamp|date|created|started|finished|at)$|_at$", re.IGNORECASE)

# Seconds (or milliseconds) since the epoch between 2001-09 and 2096: a clock reading, not a result.
_EPOCH_S = (1e9, 4e9)
_EPOCH_MS = (1e12, 4e12)


def classify_number(ref: float, new: float, before: str = "", after: str = "", name: str = "") -> NoiseClass:
    """The class of a number that moved from ``ref`` to ``new``, from the text around it (``before`` and
    ``after`` on its line) or the metric ``name`` it is recorded under."""
    if is_timing_context(before, after) or (name and _TIME_NAME.search(name)):
        return NoiseClass.TIMING
    if (name and _STAMP_NAME.search(name)) or (_epoch(ref) and _epoch(new)):
        return NoiseClass.TIMESTAMP
    if is_float_noise(ref, new):
        return NoiseClass.FLOAT_NOISE
    return NoiseClass.OTHER


def is_timing_context(before: str, after: str) -> bool:
    """A number with a time unit after it, or a word meaning time before it (padding between them skipped)."""
    return bool(_UNIT_AFTER.match(after) or _WORD_BEFORE.search(before.rstrip()[-_LOOK_BACK:] + " "))


def is_float_noise(ref: float, new: float) -> bool:
    """Both finite, not both integers, and within FLOAT_NOISE_REL of each other."""
    if not (math.isfinite(ref) and math.isfinite(new)) or ref == new:
        return ref == new
    if ref.is_integer() and new.is_integer():
        return False
    scale = max(abs(ref), abs(new))
    return abs(new - ref) <= FLOAT_NOISE_REL * scale


def _epoch(value: float) -> bool:
    size = abs(value)
    return _EPOCH_S[0] <= size <= _EPOCH_S[1] or _EPOCH_MS[0] <= size <= _EPOCH_MS[1]


def only(classes: Iterable[NoiseClass]) -> NoiseClass | None:
    """The one class all of ``classes`` share, or None when they are empty or mixed."""
    found = set(classes)
    return found.pop() if len(found) == 1 else None


def explained_by_noise(classes: Iterable[NoiseClass]) -> bool:
    """True when every class is noise a seed would not fix (clocks, addresses, temp names, float rounding)."""
    found = set(classes)
    return bool(found) and found <= (CLOCK_LIKE | {NoiseClass.FLOAT_NOISE})


def describe(counts: dict[str, int], path: str | None = None) -> str:
    """E.g. "only timing-like numbers differ in out/stdout.txt (12 lines)"; without a path, no "in PATH"."""
    where = f" in {path}" if path else ""
    if not counts:
        return f"differs{where}"
    if len(counts) == 1:
        ((cls, n),) = counts.items()
        return f"only {NoiseClass(cls).label} differ{where} ({n} line{'s' if n != 1 else ''})"
    parts = ", ".join(f"{NoiseClass(c).label} ({n})" for c, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
    return f"lines differ{where} in {parts}"


# --- evidence for the diagnosis ------------------------------------------------------------------------


@dataclass
class ItemNoise:
    """What differs in one output or metric, as noise classes (class -> lines, or 1 for a value)."""

    name: str
    classes: dict[str, int] = field(default_factory=dict)
    varied_at_capture: bool = False
    is_metric: bool = False

    @property
    def explained(self) -> bool:
        return explained_by_noise(NoiseClass(c) for c in self.classes)

    @property
    def reordered(self) -> bool:
        """Items in another order (and nothing else but noise): what hash randomization does to a set."""
        found = {NoiseClass(c) for c in self.classes}
        return NoiseClass.ORDER in found and found <= CLOCK_LIKE | {NoiseClass.FLOAT_NOISE, NoiseClass.ORDER}

    @property
    def clock_only(self) -> bool:
        """Only what the clock moves: timings, timestamps and the lines they bring and take."""
        return bool(self.classes) and {NoiseClass(c) for c in self.classes} <= CLOCK

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "classes": dict(sorted(self.classes.items())),
                "varied_at_capture": self.varied_at_capture, "is_metric": self.is_metric}


@dataclass
class NoiseEvidence:
    """Every diverging output and metric, classified; and how many runs the capture compared, if any."""

    items: list[ItemNoise] = field(default_factory=list)
    capture_runs: int = 0
    hash_seed_fixed: bool = False  # PYTHONHASHSEED was recorded: another order is not hash randomization

    @property
    def reordered(self) -> list[ItemNoise]:
        """Items whose values are the same but in another order, when no PYTHONHASHSEED was recorded."""
        return [] if self.hash_seed_fixed else [i for i in self.items if i.reordered]

    @property
    def beyond_noise(self) -> list[ItemNoise]:
        """Items with a difference no noise rule (nor hash order) explains: what a missing seed (or a real
        change) would do."""
        reordered = self.reordered
        return [i for i in self.items if not i.explained and i not in reordered]

    @property
    def timing_only(self) -> bool:
        """Every difference is one the clock makes (timings, timestamps, the lines they bring)."""
        return bool(self.items) and all(i.clock_only for i in self.items)

    @property
    def all_noise(self) -> bool:
        return bool(self.items) and not self.beyond_noise


def collect_evidence(outputs: list[Any], metrics: list[Any], unstable_outputs: Iterable[str] = (),
                     unstable_metrics: Iterable[str] = (), capture_runs: int = 0,
                     hash_seed_fixed: bool = False) -> NoiseEvidence:
    """Evidence from a comparison: ``outputs`` are OutputResults, ``metrics`` MetricResults (duck-typed, so
    that this module stays a leaf); only what makes a replay diverge is classified."""
    varied_out, varied_met = set(unstable_outputs), set(unstable_metrics)
    items = []
    for out in outputs:
        if out.settled:
            continue
        items.append(ItemNoise(out.path, output_classes(out.status, out.explanation), out.path in varied_out))
    for met in metrics:
        if met.status.settled:
            continue
        if met.reference is None or met.replayed is None:
            classes = {NoiseClass.OTHER.value: 1}
        else:
            classes = {classify_number(met.reference, met.replayed, name=met.name).value: 1}
        items.append(ItemNoise(met.name, classes, met.name in varied_met, is_metric=True))
    return NoiseEvidence(items, capture_runs, hash_seed_fixed)


class Explained(Protocol):
    """An explanation (``replay.core.verify.explanation``), which knows its own noise classes."""

    def noise_classes(self) -> dict[str, int]: ...


def output_classes(status: str, expl: Explained | None) -> dict[str, int]:
    """Noise classes of one differing output, from its explanation (``replay.core.verify.explanation``)."""
    if status != "differs" or expl is None:
        return {NoiseClass.OTHER.value: 1}
    return expl.noise_classes()
