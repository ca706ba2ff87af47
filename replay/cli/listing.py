"""`replay list`: the capsules under some folders, with their image, sizes and last verify."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from replay.core.capsules.list import CapsuleRow
    from replay.core.ports import Engine

EPILOG = """Example:

\b
  replay list                   (the capsules under this folder, .replay/ included)
  replay list runs/ ~/exp --json

The last verify is the one run on this machine against the same image (kept in replay's cache); the image
column says whether the engine has the image (no engine: "?")."""

LIST_SCHEMA = "replay.capsule-list"
LIST_VERSION = 1


def list_cmd(
    folders: Annotated[list[Path] | None, typer.Argument(help="Folders to look for capsules in [default: .].",
                                                         show_default=False)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the list as JSON on stdout.")] = False,
) -> None:
    """List capsules: name, last verify, image, and sizes (image, data, capsule folder)."""
    from replay import factory, ui
    from replay.core.capsules.list import list_capsules
    from replay.errors import BadInput, EnvironmentProblem
    from replay.ui import escape

    chosen = list(folders or [Path(".")])
    for folder in chosen:
        if not folder.is_dir():
            raise BadInput(f"{folder} is not a folder", "pass folders that hold capsules (or capsule folders)")
    engine = factory.engine()
    usable: Engine | None = engine
    try:
        engine.version()
    except EnvironmentProblem:
        usable = None  # listing needs no engine: the image column then says "?"
    rows = list_capsules(chosen, usable)
    if as_json:
        ui.print_json({"schema": LIST_SCHEMA, "schema_version": LIST_VERSION, "capsules": [r.to_dict() for r in rows]})
        return
    if not rows:
        ui.err.print(f"no capsule under {escape(', '.join(str(f) for f in chosen))}")
        return
    render_rows(rows)
    for r in rows:
        if r.manifest is None:
            ui.warn(f"{r.path}: unreadable ({r.error})")


def render_rows(rows: list[CapsuleRow]) -> None:
    """The capsules as a table: name, last verify, image (and whether the engine has it), sizes, path."""
    from rich.table import Table

    from replay import ui
    from replay.ui import escape

    table = Table()
    for column in ("name", "last verify", "image", "image size", "data", "capsule", "path"):
        sized = column in ("image size", "data", "capsule")
        table.add_column(column, justify="right" if sized else "left", no_wrap=column not in ("name", "path"),
                         overflow="fold", min_width=12 if column in ("name", "path") else None)
    for r in rows:
        m = r.manifest
        if m is None:
            continue
        last = f"{r.last.verdict.upper()} {r.last.at[:10]}" if r.last else "-"
        present = {True: "", False: " (not here)", None: " (?)"}[r.image_present]
        table.add_row(escape(m.name), escape(last), ui.short(m.image.id) + present, ui.human_bytes(m.image.size),
                      ui.human_bytes(m.data.total_bytes), ui.human_bytes(r.capsule_bytes), escape(_shown(r.path)))
    ui.out.print(table)


def _shown(path: Path) -> str:
    """Under the current folder, the path from it (shorter); elsewhere, as found."""
    import os

    relative = os.path.relpath(path)
    return str(path) if relative.startswith("..") else relative
