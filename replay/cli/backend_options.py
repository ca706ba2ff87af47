"""`replay verify --backend slurm ...`: the backend options, merged with ``[tool.replay]``.

Whatever the backend, the batch runs through one path (``replay/cli/batch.py`` -> ``replay.core.batch.plan`` ->
``replay.core.batch.run.run_batch``); these options only choose the backend and where its shared files go.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from replay.core.batch.settings import BackendSettings

BackendOpt = Annotated[str | None, typer.Option(
    "--backend", help="Where the batch runs: local, or slurm (one job array on the cluster). Default: [tool.replay].")]
JobsOpt = Annotated[int | None, typer.Option("--jobs", help="At most N tasks at once (Slurm: the array's %N).")]
PartitionOpt = Annotated[str | None, typer.Option("--partition", help="Slurm partition for the array.")]
TimeOpt = Annotated[str | None, typer.Option("--time", help="Slurm time limit per task, e.g. 30 or 2:00:00.")]
GpusOpt = Annotated[int | None, typer.Option(
    "--gpus", help="GPUs for the replay's container (the engine's device request); on Slurm, per task too.")]
WorkdirOpt = Annotated[Path | None, typer.Option(
    "--workdir", help="Shared folder for task and result files (default: .replay-work beside the capsules).")]


def settings(cwd: Path, backend: str | None, jobs: int | None, partition: str | None, time_limit: str | None,
             gpus: int | None, workdir: Path | None) -> BackendSettings:
    from replay import factory
    from replay.config import project_defaults
    from replay.core.batch.settings import BackendSettings

    defaults = project_defaults(cwd, factory.source_control())
    return BackendSettings.merge(defaults, cwd, backend, jobs, partition, time_limit, gpus, workdir)


def scratch(chosen: BackendSettings, targets: list[str], cwd: Path) -> tempfile.TemporaryDirectory[str]:
    """Where bundle TARGETs are unpacked: for a remote backend in the shared work folder (its nodes read the
    unpacked capsules and data there), else in the system's temporary folder. Removed after the batch."""
    if not chosen.remote:
        return tempfile.TemporaryDirectory(prefix="replay-target-")
    shared = chosen.shared_folder(targets, cwd)
    try:
        shared.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        from replay.errors import BadInput

        raise BadInput(f"cannot create the work folder {shared} ({exc.strerror})",
                       "pass --workdir DIR on a filesystem every node shares") from None
    return tempfile.TemporaryDirectory(prefix="targets-", dir=shared)
