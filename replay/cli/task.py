"""`replay task`: run one batch task where a backend placed it (a Slurm node), writing its result file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

EPILOG = """Example:

\b
  replay task /shared/replay-work/task-3.json --result /shared/replay-work/result-3.json

A batch backend runs this for you (`replay verify TARGET... --backend slurm` submits one array task per
experiment). It verifies the task's group of capsules with the engine the task names (the batch's --engine),
else this machine's own (REPLAY_ENGINE, else the one that answers), getting the image by ID, else from the
bundle or registry the task names, and writes a replay.task-result JSON atomically. Exit codes: 0 a result
was written (whatever its verdicts); 2 the task file is bad; 3 no engine."""


def task_cmd(
    file: Annotated[Path, typer.Argument(help="A replay.task JSON file written by a batch backend.")],
    result: Annotated[Path, typer.Option("--result", help="Where to write the replay.task-result JSON.")],
) -> None:
    """Verify one batch task's capsules on this machine's engine and write the result (used by backends)."""
    from replay.task_main import run

    run(file, result)
