"""``--backend`` and its options (``--jobs``, ``--partition``, ``--time``, ``--gpus``, ``--workdir``), the command
line over ``[tool.replay]``, checked before anything runs; and where a remote batch's shared work folder is.

The batch itself runs through the one batch path (``replay.core.batch.plan`` then ``replay.core.batch.run.run_batch``)
whatever the backend; this module only says which backend, with which options.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from replay.manifest import MANIFEST_NAME

WORKDIR_NAME = ".replay-work"
BACKENDS = ("local", "slurm")  # what ``replay.factory.backend`` builds
ENGINES = ("docker", "podman")  # what ``replay.factory.engine`` builds (``--engine``; a batch task's ``engine``)


def default_workdir(targets: Sequence[str], cwd: Path) -> Path:
    """Beside what the first TARGET names (on the shared filesystem, so this is too); hidden, so no folder
    target reads it: ``.replay`` -> ``.replay/.replay-work``; ``.replay/a`` and ``b.replay`` -> beside them."""
    first = targets[0] if targets else "."
    path = cwd / first
    if not path.exists() and "#" in first:
        path = cwd / first.rpartition("#")[0]  # FILE#NAME
    if not path.exists():
        return (cwd / WORKDIR_NAME).resolve()  # a registry reference: nothing on disk to sit beside
    path = path.resolve()
    if path.is_dir() and not (path / MANIFEST_NAME).exists():
        return path / WORKDIR_NAME  # a folder of capsules
    if path.name == MANIFEST_NAME:
        path = path.parent
    return path.parent / WORKDIR_NAME


@dataclass
class BackendSettings:
    """``--backend`` and its options, command line over ``[tool.replay]``, checked before anything runs."""

    name: str = "local"
    jobs: int = 4
    partition: str | None = None
    time_limit: str | None = None
    gpus: int | None = None
    workdir: Path | None = None

    @classmethod
    def merge(cls, defaults: Any, cwd: Path, backend: str | None = None, jobs: int | None = None,
              partition: str | None = None, time_limit: str | None = None, gpus: int | None = None,
              workdir: Path | None = None) -> BackendSettings:
        """``defaults`` is a ``replay.config.ProjectDefaults`` (its workdir already absolute); a relative --workdir
        is under ``cwd``."""
        from replay.errors import BadInput

        name = backend or getattr(defaults, "backend", None) or "local"
        if name not in BACKENDS:
            raise BadInput(f"--backend {name} is not a backend replay knows", f"use one of: {', '.join(BACKENDS)}")
        jobs = jobs if jobs is not None else getattr(defaults, "jobs", None) or 4
        if jobs < 1:
            raise BadInput(f"--jobs {jobs} is not positive", "e.g. --jobs 8")
        raw_workdir = workdir if workdir is not None else getattr(defaults, "workdir", None)
        settings = cls(
            name=name, jobs=jobs,
            partition=partition if partition is not None else getattr(defaults, "partition", None),
            time_limit=time_limit if time_limit is not None else getattr(defaults, "time", None),
            gpus=gpus if gpus is not None else getattr(defaults, "gpus", None),
            workdir=(cwd / raw_workdir).resolve() if raw_workdir is not None else None,
        )
        if settings.gpus is not None and (isinstance(settings.gpus, bool) or not isinstance(settings.gpus, int)
                                          or settings.gpus < 0):
            raise BadInput(f"--gpus {settings.gpus} is not a GPU count", "e.g. --gpus 1 (0 or none: no GPU)")
        # --gpus is the replay's container's on every backend (and, on Slurm, each task's request too).
        if name != "slurm" and (settings.partition or settings.time_limit):
            raise BadInput(f"--partition and --time are options of --backend slurm, not {name}",
                           "add --backend slurm, or drop them")
        return settings

    @property
    def remote(self) -> bool:
        return self.name == "slurm"

    def shared_folder(self, targets: Sequence[str], cwd: Path) -> Path:
        """The work folder every node sees: task and result files, and unpacked bundle targets."""
        return self.workdir or default_workdir(targets, cwd)

    def options(self, targets: Sequence[str], cwd: Path) -> dict[str, Any]:
        """What ``replay.factory.backend(name, **options)`` takes for this backend (the local one: its engine)."""
        if self.name != "slurm":
            return {}
        return {"workdir": self.shared_folder(targets, cwd), "partition": self.partition,
                "time_limit": self.time_limit, "gpus": self.gpus}
