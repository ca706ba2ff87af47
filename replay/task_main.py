"""``python -m replay task FILE --result OUT`` without the command line's typer and rich: what a batch node
starts once per task, where the ~0.3 s those imports cost (more on a busy node) is paid per task.

``replay/__main__.py`` sends exactly that shape here; anything else (``--help``, a typo) goes to the full
command line, which gives its usual help and errors. ``replay task`` (``replay/cli/task.py``) calls ``run``
too, so both ways do the same thing. The error boundary is the CLI's: one line on stderr, the error's exit code.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path


def fast_args(argv: list[str]) -> tuple[Path, Path] | None:
    """(FILE, OUT) for ``FILE --result OUT`` or ``FILE --result=OUT``; None for any other shape."""
    if len(argv) == 3 and argv[1] == "--result" and not argv[0].startswith("-") and not argv[2].startswith("-"):
        return Path(argv[0]), Path(argv[2])
    if len(argv) == 2 and argv[1].startswith("--result=") and not argv[0].startswith("-") and argv[1][9:]:
        return Path(argv[0]), Path(argv[1][9:])
    return None


def run(file: Path, result: Path) -> None:
    """Verify the task's group on the engine it names, else this machine's; write the replay.task-result
    atomically."""
    from replay import factory, jsonio
    from replay.core.batch.node import engine_choice, read_task, run_node_task
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
    document = run_node_task(payload, factory.engine(engine_choice(payload)))
    atomic_write_text(result, jsonio.dumps(document) + "\n")


def main(file: Path, result: Path) -> int:
    from replay.errors import EXIT_INTERRUPTED, ReplayError

    try:
        run(file, result)
    except ReplayError as exc:
        print(f"error: {exc.one_line()}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("error: interrupted: nothing was kept", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0
