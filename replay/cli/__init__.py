"""The command line: thin typer commands over the core, and the one error boundary.

Heavy modules (docker, jinja2, the core) are imported inside the commands, so `replay --help` stays fast.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Annotated, Any

import typer

from replay import __version__
from replay.cli.state import State
from replay.errors import EXIT_BAD_INPUT, EXIT_INTERRUPTED, Interrupted, LockMismatch, ReplayError, Stopped

EXIT_CODES = """Exit codes: 0 done, or reproduced (identical/equivalent); 1 diverged; 2 bad input or could not
verify (bad manifest, missing or changed data); 3 environment problem (no Docker engine, image or base
missing, the engine not answering); 4 the replayed command failed (non-zero exit, out of memory, timed
out); 129 SIGHUP, 130 Ctrl-C, 143 SIGTERM (the container stopped and removed, nothing half-written)."""

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
    engine: Annotated[str | None, typer.Option(
        "--engine", envvar="REPLAY_ENGINE", metavar="docker|podman",
        help="Container engine (default: `engine` under [tool.replay], else the one that answers: Docker, "
             "else Podman, rootless too).")] = None,
) -> None:
    State.verbose = State.verbose or verbose or bool(os.environ.get("REPLAY_VERBOSE"))
    if engine is not None:
        from replay import factory

        factory.chosen_engine = engine  # a Slurm batch's tasks carry it to their nodes (replay.task version 2)


def _register() -> None:
    from replay.cli import base, bundle, capture, check, diff, gc, listing, manifest, registry, show, task, verify

    app.command("capture", epilog=capture.EPILOG)(capture.capture_cmd)
    app.command("verify", epilog=verify.EPILOG)(verify.verify_cmd)
    app.command("check", epilog=check.EPILOG)(check.check_cmd)
    app.command("diff", epilog=diff.EPILOG)(diff.diff_cmd)
    app.command("show", epilog=show.EPILOG)(show.show_cmd)
    app.command("manifest", epilog=manifest.EPILOG)(manifest.manifest_cmd)
    app.command("pack", epilog=bundle.PACK_EPILOG)(bundle.pack_cmd)
    app.command("unpack", epilog=bundle.UNPACK_EPILOG)(bundle.unpack_cmd)
    app.command("push", epilog=registry.PUSH_EPILOG)(registry.push_cmd)
    app.command("pull", epilog=registry.PULL_EPILOG)(registry.pull_cmd)
    app.add_typer(base.app, name="base")
    app.command("task", epilog=task.EPILOG)(task.task_cmd)
    app.command("list", epilog=listing.EPILOG)(listing.list_cmd)
    app.command("gc", epilog=gc.EPILOG)(gc.gc_cmd)


_register()


def main(argv: list[str] | None = None) -> None:
    """Run the CLI: every ReplayError becomes one line on stderr and its documented exit code."""
    from replay import ui

    args = _lift_verbose(list(sys.argv[1:] if argv is None else argv))
    State.argv = list(args)
    previous = _stop_on_signals()
    stdout, sys.stdout = sys.stdout, ui.QuietPipe(sys.stdout)
    try:
        code = _run(args)
    except Stopped as exc:  # SIGTERM or SIGHUP, also while an error was being shown: every finally has cleaned up
        stopped = Interrupted(exc.signum)
        ui.error(f"{stopped.message}: nothing was kept")
        sys.exit(stopped.exit_code)
    finally:
        _restore(previous)
        sys.stdout.flush()  # what is still buffered meets a closed pipe here, where it is silenced
        sys.stdout = stdout
    if code == EXIT_INTERRUPTED:  # typer turns Ctrl-C inside a command into a returned 130
        ui.error("interrupted: nothing was kept")
    sys.exit(code if isinstance(code, int) else 0)


def _run(args: list[str]) -> Any:
    """The command's return code; each error shown as one line (``Stopped`` passes up to ``main``)."""
    from replay import ui

    ex = _click_exceptions()
    try:
        return app(args=args, prog_name="replay", standalone_mode=False)
    except ReplayError as exc:
        if State.verbose:
            ui.err.print_exception()
        show_error(exc)
        return exc.exit_code
    except (typer.Abort, KeyboardInterrupt):  # main says "interrupted"
        return EXIT_INTERRUPTED
    except ex.NoArgsIsHelpError as exc:  # bare `replay` or `replay base`: the help is the answer
        print(exc.format_message())
        return 0
    except ex.UsageError as exc:
        dashes = " (the training command and its options go after --)" if _command(args) == "capture " \
            and "--" not in args else ""
        ui.error(f"{exc.format_message().rstrip('.')}{dashes}: see `replay {_command(args)}--help`")
        return EXIT_BAD_INPUT
    except ex.ClickException as exc:
        ui.error(exc.format_message())
        return exc.exit_code
    except typer.Exit as exc:
        return exc.exit_code


def show_error(exc: ReplayError) -> None:
    """An error as the boundary shows it on stderr: its one line, the log's tail, a lock mismatch's table."""
    from replay import ui
    from replay.textsafe import neutral

    ui.error(exc.one_line())
    tail = getattr(exc, "log_tail", "")
    if tail and not ui.command_log_shown:  # streamed already: the traceback is printed once
        ui.err.print("[dim]--- last lines of the log ---[/]")
        ui.err.print(neutral(tail, keep_newlines=True), markup=False, highlight=False)
    if isinstance(exc, LockMismatch):
        ui.error_table(exc.columns, exc.rows)


def _stop_on_signals() -> dict[int, Any]:
    """Make SIGTERM and SIGHUP unwind like Ctrl-C (``Stopped``), once: a second signal while cleaning up is
    ignored, so the clean-up (stop and remove the container, remove temporaries) is never cut short."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        return {}

    def stop(signum: int, frame: Any) -> None:
        for other in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(other, signal.SIG_IGN)
        raise Stopped(signum)

    return {signum: signal.signal(signum, stop) for signum in (signal.SIGTERM, signal.SIGHUP)}


def _restore(previous: dict[int, Any]) -> None:
    for signum, handler in previous.items():
        signal.signal(signum, handler)


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
    known = {"capture", "verify", "check", "diff", "show", "manifest", "base", "pack", "unpack", "push", "pull", "task",
             "list", "gc"}
    return f"{first} " if first in known else ""
