"""`replay diff A B`: what differs between two capsules, section by section; exit 0 same, 1 different."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

import typer

EPILOG = """Example:

\b
  replay diff cluster/.replay/digits .replay/digits

Lists what differs underneath two captures: packages (added, removed, version changes), base image, Python,
data files, code commit and patch, seed, carried environment, capture hosts, then outputs and metrics.
Exit codes: 0 the manifests agree in all of these; 1 something differs; 2 bad input."""


def diff_cmd(
    a: Annotated[str, typer.Argument(help="A capsule folder (anything `replay verify` accepts).")],
    b: Annotated[str, typer.Argument(help="Another capsule folder.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the differences as JSON on stdout.")] = False,
) -> None:
    """Set two capsules side by side and list what differs underneath them."""
    from replay import ui
    from replay.core.capsules.diff import diff_manifests
    from replay.core.share import targets
    from replay.errors import EXIT_DIVERGED, EXIT_OK
    from replay.manifest import load

    cwd = Path.cwd()
    with tempfile.TemporaryDirectory(prefix="replay-target-") as scratch:
        ctx = targets.ResolveContext(cwd, Path(scratch))
        ra = targets.one(targets.resolve([a], ctx), a)
        rb = targets.one(targets.resolve([b], ctx), b)
        result = diff_manifests(load(ra.path), load(rb.path), a, b)
    if as_json:
        ui.print_json(result.to_dict())
    else:
        render(result)
    raise typer.Exit(EXIT_OK if result.same else EXIT_DIVERGED)


def render(result: object) -> None:
    from rich.table import Table

    from replay import ui
    from replay.core.capsules.diff import SECTIONS, CapsuleDiff

    assert isinstance(result, CapsuleDiff)
    if result.same:
        ui.out.print(f"[green]same[/]: {ui.escape(result.a)} and {ui.escape(result.b)} agree in every section "
                     f"({', '.join(SECTIONS)})")
        return
    colour = {"added": "green", "removed": "red", "changed": "yellow"}
    for name in SECTIONS:
        changes = result.sections.get(name) or []
        if not changes:
            continue
        table = Table(title=name.replace("_", " "), title_justify="left")
        for col in ("", "change", ui.escape(result.a), ui.escape(result.b)):
            table.add_column(col, overflow="fold", no_wrap=col == "change")
        for c in changes:
            table.add_row(ui.escape(c.item), f"[{colour[c.change]}]{c.change}[/]", ui.escape(_show(c.a)),
                          ui.escape(_show(c.b)))
        ui.out.print(table)
    same = [s.replace("_", " ") for s in SECTIONS if not result.sections.get(s)]
    if same:
        ui.out.print(f"[dim]the same: {', '.join(same)}[/]")


def _show(value: object) -> str:
    return "-" if value is None else str(value)
