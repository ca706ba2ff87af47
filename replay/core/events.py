"""How the core tells its caller what it is doing, without printing anything itself.

The CLI passes a Reporter that draws rich progress bars and streams logs; tests and library callers pass
``NullReporter`` or their own.
"""

from __future__ import annotations

import time
from typing import Protocol

# The byte tasks of images brought into an engine (``Reporter.progress``: bytes done of the total).
PULLING = "pulling the image"  # downloaded from a registry, summed over the layers
LOADING = "loading the image"  # fed to the engine's load stream


class Reporter(Protocol):
    def stage(self, name: str) -> None:
        """A new step begins (e.g. "hashing data", "building image")."""

    def progress(self, task: str, completed: float, total: float | None = None) -> None:
        """``completed`` of ``total`` units of ``task`` are done (bytes, files, build steps)."""

    def status(self, task: str, detail: str) -> None:
        """What ``task`` is working on now ("resolving numpy"): shown beside its spinner and elapsed time."""

    def log(self, line: str, source: str = "tool") -> None:
        """One line of output: ``source`` is "command" for the training's own, "tool" for builds and pip."""

    def warn(self, message: str) -> None:
        """Something the user should know that does not stop the job."""


class Stopwatch:
    """Seconds per stage, for the timings that capture and verify report: ``lap(name)`` closes a stage."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}
        self._clock = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.timings[name] = round(now - self._clock, 4)
        self._clock = now


class NullReporter:
    def stage(self, name: str) -> None:
        pass

    def progress(self, task: str, completed: float, total: float | None = None) -> None:
        pass

    def status(self, task: str, detail: str) -> None:
        pass

    def log(self, line: str, source: str = "tool") -> None:
        pass

    def warn(self, message: str) -> None:
        pass


class RecordingReporter(NullReporter):
    """Keeps warnings and stages, for tests and for the --json summary."""

    def __init__(self) -> None:
        self.stages: list[str] = []
        self.warnings: list[str] = []
        self.lines: list[str] = []

    def stage(self, name: str) -> None:
        self.stages.append(name)

    def log(self, line: str, source: str = "tool") -> None:
        self.lines.append(line)

    def warn(self, message: str) -> None:
        self.warnings.append(message)
