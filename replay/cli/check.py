"""`replay check`: replay a capsule several times, render what is stable and what is noise, exit 0 or 1."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from replay.cli.limit_options import with_limits
from replay.core.limits import RunLimits  # at run time: typer evaluates the signature

if TYPE_CHECKING:
    from replay.core.check.floor import CheckReport

EPILOG = """Example:

\b
  replay check .replay/digits --runs 3 --vary timezone --vary cpus

Exit codes: 0 every output and metric is the same in every run (and under every variation); 1 something
differs between runs or changes under a variation (the report says what, how far, and suggests a --tolerance
or --ignore); 2 bad input or changed data; 3 environment problem; 4 the replayed command failed."""


@with_limits
def check_cmd(
    target: Annotated[str, typer.Argument(help="A capsule folder (anything `replay verify` accepts).")],
    runs: Annotated[int, typer.Option("--runs", help="Replays to compare (the capture's own run counts too).")] = 2,
    vary: Annotated[list[str] | None, typer.Option(
        "--vary", help="One extra run with this changed: time, timezone, locale, user, hostname, cpus, umask, all.",
    )] = None,
    data: Annotated[
        list[str] | None, typer.Option("--data", help="RECORDED=LOCAL: where a recorded data path is here.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON on stdout.")] = False,
    report: Annotated[Path | None, typer.Option(help="Write the JSON report to this file.")] = None,
    *,
    limits: RunLimits,
) -> None:
    """Replay a capsule N times in fresh containers and report, per output and metric, whether it is stable."""
    from replay import factory, jsonio, ui
    from replay.cli.state import State
    from replay.cli.verify import check_destination, data_mappings
    from replay.core.check.floor import CheckRequest, check
    from replay.core.share import targets
    from replay.core.verify.options import ReplayOptions
    from replay.fsutil import atomic_write_text

    cwd = Path.cwd()
    data_map = data_mappings(data or [], cwd)
    if report is not None:
        check_destination(report, "--report")  # before the runs, which may take long
    with tempfile.TemporaryDirectory(prefix="replay-target-") as scratch:
        resolved = targets.one(targets.resolve([target], targets.ResolveContext(cwd, Path(scratch))), target)
        options = ReplayOptions(cwd=cwd, data_map={**resolved.data_map, **data_map}, limits=limits)
        req = CheckRequest(target=resolved.path, options=options, runs=runs, vary=list(vary or []),
                           ensure_image=resolved.ensure_image)
        with ui.RichReporter(verbose=State.verbose) as reporter:
            result = check(req, factory.engine(), reporter)
    if report:
        atomic_write_text(report, jsonio.dumps(result.to_dict()) + "\n")
    if as_json:
        ui.print_json(result.to_dict())
    else:
        render(result)
    raise typer.Exit(result.exit_code)


def render(result: CheckReport) -> None:
    from rich.panel import Panel
    from rich.table import Table

    from replay import ui
    from replay.core.verify.noise import describe

    out = ui.out
    word, style = ("STABLE", "green") if result.stable else ("UNSTABLE", "red")
    out.print(Panel(f"[bold {style}]{word}[/]  {ui.escape(result.capsule)}  ({len(result.compared)} runs "
                    f"compared: {ui.escape(', '.join(result.compared))}; exit {result.exit_code})", expand=False))
    if result.unenforced:
        out.print(f"[yellow]the engine could not enforce these limits: {ui.escape(', '.join(result.unenforced))}[/] "
                  "(rootless Podman on a cgroup v1 host)", soft_wrap=True)
    colour = {"stable": "green", "unstable": "red", "differs_from_capture": "yellow"}
    table = Table(title="outputs", title_justify="left")
    for col in ("path", "status", "spread", "suggestion"):
        table.add_column(col, overflow="fold", no_wrap=col == "status")
    for o in result.outputs:
        spread = []
        if o.max_abs is not None:
            spread.append(f"max abs {o.max_abs:.3g}")
        if o.max_rel is not None:
            spread.append(f"max rel {o.max_rel:.3g}")
        if o.classes:
            spread.append(ui.escape(describe(o.classes)))
        hint = f"{ui.escape(o.suggestion.argument)} (suggested)" if o.suggestion else ""
        table.add_row(ui.escape(o.path), f"[{colour.get(o.status, 'white')}]{o.status}[/]", "; ".join(spread) or "-", hint)
    out.print(table)
    if result.metrics:
        mt = Table(title="metrics", title_justify="left")
        for col in ("metric", "status", "min", "max", "largest diff", "suggestion"):
            mt.add_column(col, overflow="fold", no_wrap=col in ("status", "min", "max", "largest diff"),
                          justify="right" if col in ("min", "max", "largest diff") else "left")
        for x in result.metrics:
            hint = f"{ui.escape(x.suggestion.argument)} (suggested)" if x.suggestion else ""
            mt.add_row(ui.escape(x.name), f"[{colour.get(x.status, 'white')}]{x.status}[/]", ui.number(x.min),
                       ui.number(x.max), ui.number(x.largest_diff), hint)
        out.print(mt)
    for v in result.variations:
        if v.error:
            line = f"[red]the command failed[/]: {ui.escape(v.error)}"
        elif v.caused:
            line = f"[red]changed[/] {ui.escape(', '.join(v.caused))}"
        elif v.changed_outputs or v.changed_metrics:
            line = f"[yellow]changed only what also differs between runs[/] ({ui.escape(', '.join(v.also_unstable))})"
        else:
            line = "[green]changed nothing[/]"
        out.print(f"--vary {ui.escape(v.name)} ({ui.escape(str(v.applied))}): {line}", soft_wrap=True)
        if v.note:
            out.print(f"  [dim]{ui.escape(v.note)}[/]", soft_wrap=True)
    if not result.stable:
        out.print("[dim]suggestions would make these runs verify; they are not a diagnosis[/]")
    out.print("[dim]" + "  ".join(f"{k} {v:.2f}s" for k, v in result.timings.items()) + "[/]")

