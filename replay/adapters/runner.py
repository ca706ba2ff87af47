"""The seam between replay and whatever runs containers.

``verify`` describes a run as a ``RunSpec`` and hands it to a ``ContainerRunner``. The local Docker engine is
the one backend today (``docker_engine.DockerEngine``); a cluster backend can sit beside it by implementing
the same three methods.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class Mount:
    source: str  # absolute host path; must exist (a missing source is an error, never created)
    target: str  # absolute path inside the container
    read_only: bool = True


@dataclass
class RunSpec:
    image: str
    argv: list[str]
    workdir: str
    env: dict[str, str] = field(default_factory=dict)
    mounts: list[Mount] = field(default_factory=list)
    user: str = "10001:10001"
    network: bool = False
    read_only_root: bool = True
    tmpfs: dict[str, str] = field(default_factory=lambda: {"/tmp": "rw,exec,nosuid,size=1g"})
    cpus: float | None = None
    memory: str | None = None  # docker syntax: "2g", "512m"
    timeout_s: float | None = None
    labels: dict[str, str] = field(default_factory=dict)


@dataclass
class RunResult:
    exit_code: int
    duration_s: float
    start_s: float = 0.0  # time from create to running, the engine's own overhead
    timed_out: bool = False
    oom_killed: bool = False
    log_tail: str = ""


@dataclass
class ImageRecord:
    id: str
    tags: list[str]
    repo_digests: list[str]
    size: int
    labels: dict[str, str]


class ContainerRunner(Protocol):
    def version(self) -> str:
        """The engine's version, recorded with the host facts."""

    def image(self, ref: str) -> ImageRecord | None:
        """The image under ``ref`` (tag or ID), or None when the engine does not have it."""

    def run(self, spec: RunSpec, on_line: Callable[[str], None]) -> RunResult:
        """Run to completion, streaming output lines; always leaves no container behind."""
