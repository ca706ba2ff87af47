import sys

if sys.argv[1:2] == ["task"]:
    # A batch node runs one task per process: the lean path skips typer and rich (see replay/task_main.py).
    from replay.task_main import fast_args
    from replay.task_main import main as task_main

    found = fast_args(sys.argv[2:])
    if found is not None:
        sys.exit(task_main(*found))

from replay.cli import main  # noqa: E402 - after the fast path, which must not import it

main()
