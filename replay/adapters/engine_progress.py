"""Progress read out of the engine's streams: the bytes of a pull, the bytes fed to a load, the build step.

Everything here reads what the engine sent, and through it what a registry or a build log said: a line is
read up to a bound (``docker_engine._lines``), a line that is not the JSON object expected is skipped, every
figure is bounded (a negative, fractional, boolean or absurd one is not believed), the layers tracked are
bounded in number, and build text is neutralized (``replay.textsafe``) and cut to a width before it is shown.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from replay.textsafe import neutral

MAX_FIGURE = 1 << 50  # 1 PiB: a layer said to be larger is not believed
MAX_LAYERS = 4096  # layers tracked in one pull; any further one is not counted
MAX_ID = 128  # a layer ID longer than this is not one
STEP_WIDTH = 60  # characters of a build step's instruction shown beside its bar
# The classic builder ("Step 4/9 : RUN ...") and Podman's ("STEP 4/9: RUN ..."); bounded digits.
_STEP = re.compile(r"^step (\d{1,6})/(\d{1,6})\s*:?\s?(.*)$", re.IGNORECASE | re.DOTALL)
# Statuses after which a layer's download is whole, whatever its last progress said.
_DOWNLOADED = frozenset({"Download complete", "Verifying Checksum", "Extracting", "Pull complete"})


def json_object(line: str) -> dict[str, Any] | None:
    """One line of an engine's JSON stream as an object; None for anything else (not JSON, too deep, a list)."""
    try:
        value = json.loads(line)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def figure(value: Any) -> int | None:
    """A byte count the stream gave, or None when it is not a plain integer from 0 to MAX_FIGURE."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_FIGURE:
        return None
    return value


class PullProgress:
    """The pull stream's per-layer ``progressDetail`` {current, total} while downloading, summed over layers.

    ``feed`` takes one decoded message and says whether the sums moved; ``done`` and ``total`` are the sums
    (``total`` None while a layer announced is still of unknown size). A layer that "Already exists" is not
    downloaded and not counted.
    """

    def __init__(self) -> None:
        self._layers: dict[str, list[int | None]] = {}  # layer ID -> [bytes downloaded, its size or None]

    def feed(self, message: Any) -> bool:
        if not isinstance(message, dict):
            return False
        layer, status = message.get("id"), message.get("status")
        if not isinstance(layer, str) or not isinstance(status, str) or not 0 < len(layer) <= MAX_ID:
            return False
        entry = self._layers.get(layer)
        if status == "Already exists":
            return self._layers.pop(layer, None) is not None
        if entry is None:
            if status not in ("Pulling fs layer", "Waiting", "Downloading") or len(self._layers) >= MAX_LAYERS:
                return False
            entry = self._layers[layer] = [0, None]
        if status == "Downloading":
            return self._downloading(entry, message.get("progressDetail"))
        if status in _DOWNLOADED and entry[1] is not None and entry[0] != entry[1]:
            entry[0] = entry[1]
            return True
        return False

    @staticmethod
    def _downloading(entry: list[int | None], detail: Any) -> bool:
        if not isinstance(detail, dict):
            return False
        current, size = figure(detail.get("current")), figure(detail.get("total"))
        if current is None:
            return False
        if size is not None and size > 0:
            entry[1] = size
        known = entry[1]
        new = min(current, known) if known is not None else current
        changed = new != entry[0]
        entry[0] = new
        return changed

    @property
    def done(self) -> int:
        return sum(int(c or 0) for c, _ in self._layers.values())

    @property
    def total(self) -> int | None:
        sizes = [s for _, s in self._layers.values()]
        if not sizes or any(s is None for s in sizes):
            return None
        return sum(int(s or 0) for s in sizes)


def follow_pull(lines: Iterable[str], on_bytes: Callable[[int, int | None], None] | None) -> Iterator[dict[str, Any]]:
    """The pull stream's messages (lines already bounded), passing each change of the sums to ``on_bytes``."""
    progress = PullProgress()
    for line in lines:
        message = json_object(line)
        if message is None:
            continue
        if progress.feed(message) and on_bytes is not None:
            on_bytes(progress.done, progress.total)
        yield message


def counted(chunks: Iterable[bytes], on_bytes: Callable[[int], None] | None) -> Iterator[bytes]:
    """``chunks`` unchanged, telling ``on_bytes`` how many bytes have been handed on so far (what the engine's
    load stream was fed), after each chunk."""
    seen = 0
    for chunk in chunks:
        yield chunk
        seen += len(chunk)
        if on_bytes is not None:
            on_bytes(seen)


@dataclass(frozen=True)
class BuildStep:
    number: int
    total: int
    instruction: str  # neutralized, one line, at most STEP_WIDTH characters

    def describe(self) -> str:
        return f"step {self.number}/{self.total} {self.instruction}".rstrip()


def build_step(line: str, width: int = STEP_WIDTH) -> BuildStep | None:
    """The step a build log line starts ("Step 4/9 : RUN pip install ..."), or None; its instruction one
    line, every control character shown as an escape, cut to ``width`` characters (with "…")."""
    match = _STEP.match(line[: width * 4 + 32])  # a step line of megabytes is not read whole
    if match is None:
        return None
    number, total = int(match.group(1)), int(match.group(2))
    if not 0 < number <= total:
        return None
    text = neutral(" ".join(match.group(3).split()))
    if len(text) > width:
        text = text[: width - 1] + "…"
    return BuildStep(number, total, text)
