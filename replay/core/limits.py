"""Resource limits for a replayed command, checked before anything runs (a bad one is exit 2, never an
engine error after the image and data checks)."""

from __future__ import annotations

import math
import os
import re

from replay.errors import BadInput

# The Docker engine refuses less than this; anything below cannot start a Python interpreter anyway.
MIN_MEMORY_BYTES = 6 << 20
_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([bkmgt]?)(?:i?b)?\s*$", re.IGNORECASE)
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


def check_timeout(seconds: float) -> float:
    if not math.isfinite(seconds) or seconds <= 0:
        raise BadInput(f"--timeout {seconds:g} is not a positive number of seconds",
                       "pass a number of seconds, e.g. --timeout 600, or leave it out for no limit")
    return seconds
