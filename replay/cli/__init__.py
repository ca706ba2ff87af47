"""The command line: thin typer commands over the core, and the one error boundary.

Heavy modules (docker, jinja2, the core) are imported inside the commands, so `replay --help` stays fast.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated, Any

import typer

from replay import __version__
from replay.errors import EXIT_BAD_INPUT, EXIT_INTERRUPTED, ReplayError

EXIT_CODES = """Exit codes: 0 done, or reproduced (identical/equivalent); 1 diverged; 2 bad input or could not
verify (bad manifest, missing or changed data); 3 environment problem (no Docker engine, image or base
missing); 4 the replayed command failed (non-zero exit, out of memory, timed out); 130 interrupted."""

app = typer.Typer(
    name="replay",
    help="Capture a finished ML training run into a pinned Docker image, and verify it later byte for byte.",
    epilog=EXIT_CODES,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


class State:
    verbose = False


def _version(value: bool) -> None:
    if value:
        print(f"replay {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show tool output and tracebacks.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    State.verbose = State.verbose or verbose or bool(os.environ.get("REPLAY_VERBOSE"))


def _register() -> None:
    from replay.cli import base, capture, manifest, show, task, verify

    app.command("capture", epilog=capture.EPILOG)(capture.capture_cmd)
    app.command("verify", epilog=verify.EPILOG)(verify.verify_cmd)
    app.command("show", epilog=show.EPILOG)(show.show_cmd)
    app.command("manifest", epilog=manifest.EPILOG)(manifest.manifest_cmd)
    app.add_typer(base.app, name="base")
    app.command("task", epilog=task.EPILOG)(task.task_cmd)


_register()


def main(argv: list[str] | None = None) -> None:
    """Run the CLI: every ReplayError becomes one line on stderr and its documented exit code."""
    from replay import ui

    ex = _click_exceptions()
    args = _lift_verbose(list(sys.argv[1:] if argv is None else argv))
    try:
        code = app(args=args, prog_name="replay", standalone_mode=False)
    except ReplayError as exc:
        if State.verbose:
            ui.err.print_exception()
        ui.error(exc.one_line())
        tail = getattr(exc, "log_tail", "")
        if tail:
            ui.err.print("[dim]--- last lines of the log ---[/]")
            ui.err.print(tail, markup=False, highlight=False)
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        ui.error("interrupted: nothing was kept")
        sys.exit(EXIT_INTERRUPTED)
    except ex.NoArgsIsHelpError as exc:  # bare `replay` or `replay base`: the help is the answer
        print(exc.format_message())
        sys.exit(0)
    except ex.UsageError as exc:
        ui.error(f"{exc.format_message().rstrip('.')}: see `replay {_command(args)}--help`")
        sys.exit(EXIT_BAD_INPUT)
    except ex.ClickException as exc:
        ui.error(exc.format_message())
        sys.exit(exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    if code == EXIT_INTERRUPTED:  # typer turns Ctrl-C inside a command into a returned 130
        ui.error("interrupted: nothing was kept")
    sys.exit(code if isinstance(code, int) else 0)


def _click_exceptions() -> Any:
    """Recent typer releases vendor click as ``typer._click``; older ones use click itself."""
    import importlib

    try:
        return importlib.import_module("typer._click.exceptions")
    except ImportError:  # pragma: no cover - depends on the installed typer
        return importlib.import_module("click.exceptions")


def _lift_verbose(args: list[str]) -> list[str]:
    """Accept -v/--verbose anywhere before `--`, not only before the command name."""
    end = args.index("--") if "--" in args else len(args)
    head = [a for a in args[:end] if a not in ("-v", "--verbose")]
    if len(head) != end:
        State.verbose = True
    return head + args[end:]


def _command(args: list[str]) -> str:
    first = next((a for a in args if not a.startswith("-")), "")
    return f"{first} " if first in {"capture", "verify", "show", "manifest", "base", "task"} else ""
