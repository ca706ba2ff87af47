"""`replay task`: run one batch task where a backend placed it (a Slurm node), writing its result file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

EPILOG = """Example:

\b
  replay task /shared/replay-work/task-3.json --result /shared/replay-work/result-3.json

A batch backend runs this for you (`replay verify TARGET... --backend slurm` submits one array task per
experiment). It verifies the task's group of capsules with this machine's own container engine, getting the
image by ID, else from the bundle or registry the task names, and writes a replay.task-result JSON
atomically. Exit codes: 0 a result was written (whatever its verdicts); 2 the task file is bad; 3 no engine."""


def task_cmd(
    file: Annotated[Path, typer.Argument(help="A replay.task JSON file written by a batch backend.")],
    result: Annotated[Path, typer.Option("--result", help="Where to write the replay.task-result JSON.")],
) -> None:
    """Verify one batch task's capsules on this machine's engine and write the result (used by backends)."""
    import signal

    from replay import factory, jsonio
    from replay.core.node_task import read_task, run_node_task
    from replay.fsutil import atomic_write_text

    def stop(signum: int, frame: object) -> None:
        # scancel and a --time limit send SIGTERM, then SIGKILL after KillWait: stop now, so the engine
        # removes the replay's container on the way out (its `finally`), and ignore a second signal.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGHUP, stop)
    payload = read_task(file)
    document = run_node_task(payload, factory.engine())
    atomic_write_text(result, jsonio.dumps(document) + "\n")
