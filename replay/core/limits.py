"""Resource limits for a replayed command, checked before anything runs (a bad one is exit 2, never an
engine error after the image and data checks).

``RunLimits`` is the one place the limits live: parsed once from the command line (``LIMIT_OPTIONS`` says
which flags, how each is read and checked), carried by every request (verify, batch, check, a batch task's
payload) into the ``RunSpec``, and applied by the engine adapter. A new limit is a field here, a row of
``LIMIT_OPTIONS``, and its mapping in the engine adapter.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from replay.errors import BadInput

# The Docker engine refuses less than this; anything below cannot start a Python interpreter anyway.
MIN_MEMORY_BYTES = 6 << 20
_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([bkmgt]?)(?:i?b)?\s*$", re.IGNORECASE)
# The replay's working tree is a throw-away copy of the image's code with room for what the command writes
# outside its declared outputs (logs, caches): at most this many bytes, in memory, gone with the container.
SCRATCH_TREE_BYTES = 2 << 30
MEMORY_HINT = "pass a size such as 512m or 2g (k, m, g, t: powers of 1024)"


def parse_memory(text: str) -> int:
    """``2g`` -> 2147483648; plain numbers are bytes."""
    match = _SIZE.match(text)
    if not match:
        raise BadInput(f"--memory {text} is not a size", MEMORY_HINT)
    value = float(match.group(1)) * _UNITS[match.group(2).lower()]
    if not math.isfinite(value) or value > 1 << 50:
        raise BadInput(f"--memory {text} is too large", MEMORY_HINT)
    size = int(value)
    if size < MIN_MEMORY_BYTES:
        raise BadInput(f"--memory {text} is below the engine's minimum of 6m", MEMORY_HINT)
    return size


def usable_cores() -> int:
    """The CPUs this process may run on (os.cpu_count ignores affinity and container limits)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def check_cpus(cpus: float) -> float:
    cores = usable_cores()
    if not math.isfinite(cpus) or cpus <= 0:
        raise BadInput(f"--cpus {cpus:g} is not a positive number",
                       f"pass a CPU count from 0.01 to {cores} (this machine's usable cores), or leave it out for no limit")
    if cpus < 0.01 or cpus > cores:
        raise BadInput(f"--cpus {cpus:g} is outside what this machine can give",
                       f"pass a CPU count from 0.01 to {cores} (this machine's usable cores)")
    return cpus


MAX_TIMEOUT_S = 30 * 86400  # what a timer can hold, with room: a month is no limit in practice


def check_timeout(seconds: float) -> float:
    if not math.isfinite(seconds) or seconds <= 0:
        raise BadInput(f"--timeout {seconds:g} is not a positive number of seconds",
                       "pass a number of seconds, e.g. --timeout 600, or leave it out for no limit")
    if seconds > MAX_TIMEOUT_S:
        raise BadInput(f"--timeout {seconds:g} is longer than {MAX_TIMEOUT_S} s (30 days)",
                       "pass fewer seconds, or leave --timeout out for no limit")
    return seconds


# A fork bomb ends here; threads count too (the kernel's pids controller counts tasks).
DEFAULT_PIDS = 4096
MAX_PIDS = 1 << 22  # the kernel's own pid_max ceiling


def check_pids(count: int) -> int:
    if not 16 <= count <= MAX_PIDS:
        raise BadInput(f"--pids {count} is outside 16 to {MAX_PIDS}",
                       f"pass how many processes and threads the command may have at once (default {DEFAULT_PIDS})")
    return count


MAX_OUTPUT_CAP = 20 << 30  # the default output quota: this, or half the output folder's free space if less
MIN_OUTPUT_BYTES = 1 << 20
MAX_OUTPUT_HINT = "pass a size such as 500m or 50g (k, m, g, t: powers of 1024)"


def parse_max_output(text: str) -> int:
    """``--max-output 20m`` -> 20971520."""
    match = _SIZE.match(text)
    if not match:
        raise BadInput(f"--max-output {text} is not a size", MAX_OUTPUT_HINT)
    value = float(match.group(1)) * _UNITS[match.group(2).lower()]
    if not math.isfinite(value) or value > 1 << 60:
        raise BadInput(f"--max-output {text} is too large", MAX_OUTPUT_HINT)
    if value < MIN_OUTPUT_BYTES:
        raise BadInput(f"--max-output {text} is below 1m", MAX_OUTPUT_HINT)
    return int(value)


def default_max_output(folder: str | os.PathLike[str] | None) -> int:
    """The smaller of 20 GiB and half the free space of ``folder``'s filesystem: a replay never fills it."""
    try:
        st = os.statvfs(folder if folder is not None else ".")
    except OSError:
        return MAX_OUTPUT_CAP
    return max(MIN_OUTPUT_BYTES, min(MAX_OUTPUT_CAP, st.f_bavail * st.f_frsize // 2))


def format_size(size: int) -> str:
    """1048576 -> 1m, the way the size options are written."""
    for unit, shift in (("t", 40), ("g", 30), ("m", 20), ("k", 10)):
        if size >= 1 << shift and size % (1 << shift) == 0:
            return f"{size >> shift}{unit}"
    return f"{size / (1 << 20):.1f}m" if size >= 1 << 20 else str(size)


def default_memory_bytes() -> int:
    """Half of this machine's memory: a replay that wants more is killed for memory (exit 4), not the machine."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - every Linux answers
        return 4 << 30
    return max(MIN_MEMORY_BYTES, total // 2)


@dataclass(frozen=True)
class RunLimits:
    """What one replayed command may use; None: no limit (no GPU, for ``gpus``)."""

    timeout_s: float | None = None
    cpus: float | None = None
    memory_bytes: int | None = None  # None: default_memory_bytes() of the machine that runs the replay
    pids: int | None = None  # processes and threads at once; None: DEFAULT_PIDS
    gpus: int | None = None  # GPUs the command may use (any N of the engine's GPUs)
    max_output_bytes: int | None = None  # what the declared outputs may hold; None: default_max_output()

    def effective(self, output_dir: str | os.PathLike[str] | None = None) -> RunLimits:
        """These limits with the defaults filled in, on the machine that runs the replay (a node has its own);
        ``output_dir``: where the outputs go, whose free space bounds the default output quota."""
        return replace(self, memory_bytes=self.memory_bytes or default_memory_bytes(),
                       pids=self.pids or DEFAULT_PIDS,
                       max_output_bytes=self.max_output_bytes or default_max_output(output_dir))

    def to_payload(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_payload(cls, raw: Any) -> RunLimits:
        """Limits from a task payload (a file in a shared folder): every field typed and in range, or BadInput."""
        if not isinstance(raw, dict) or set(raw) - {f.name for f in fields(cls)}:
            raise BadInput("replay task limits are malformed", "rerun the batch")
        for name in ("timeout_s", "cpus"):
            value = raw.get(name)
            if value is not None and (not isinstance(value, (int, float)) or isinstance(value, bool)
                                      or not math.isfinite(value) or value <= 0):
                raise BadInput(f"replay task limit {name} is not a positive number", "rerun the batch")
        for name in ("memory_bytes", "pids", "gpus", "max_output_bytes"):
            value = raw.get(name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
                raise BadInput(f"replay task limit {name} is not a whole number of 0 or more", "rerun the batch")
        return cls(**raw)


@dataclass(frozen=True)
class LimitOption:
    """A command-line flag that sets one ``RunLimits`` field: the CLI builds its options from these rows."""

    field: str  # the RunLimits field
    flag: str
    type: type  # what the command line parses the value as, before ``check``
    help: str
    check: Callable[[Any], Any]  # the parsed value -> the field's value; BadInput when it is wrong


LIMIT_OPTIONS = (
    LimitOption("timeout_s", "--timeout", float, "Stop the replayed command after SECONDS.", check_timeout),
    LimitOption("cpus", "--cpus", float, "CPU limit for the replayed command.", check_cpus),
    LimitOption("memory_bytes", "--memory", str, "Memory limit, e.g. 2g (default: half of this machine's).",
                parse_memory),
    LimitOption("pids", "--pids", int, f"Most processes and threads at once (default {DEFAULT_PIDS}).", check_pids),
    LimitOption("max_output_bytes", "--max-output", str,
                "Most the declared outputs may hold, e.g. 50g (default: 20g or half the free space, if less).",
                parse_max_output),
)


def parse_limits(given: dict[str, Any], gpus: int | None = None) -> RunLimits:
    """``given``: field -> the command line's value (None: not given), checked row by row."""
    values = {o.field: o.check(given[o.field]) for o in LIMIT_OPTIONS if given.get(o.field) is not None}
    return RunLimits(**values, gpus=gpus)  # --gpus is a backend option, checked with [tool.replay]
