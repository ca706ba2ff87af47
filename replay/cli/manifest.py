"""`replay manifest`: hash data on its own, or check it against a capsule's data manifest."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from replay.core.data.check import DataCheckResult
    from replay.manifest import DataManifest

EPILOG = """Examples:

\b
  replay manifest data                       (print every file's size and sha256, and the tree digest)
  replay manifest data --check .replay/run   (list missing, changed and extra files; exit 2 if any)"""


def manifest_cmd(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders to hash.")],
    check: Annotated[Path | None, typer.Option(help="Compare with this capsule's data manifest.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")] = False,
) -> None:
    """Hash files and folders into a data manifest, or check them against a capsule."""
    from rich.table import Table

    from replay import factory, ui
    from replay.cli.state import State
    from replay.core.data.check import DataCheck
    from replay.core.data.hashing import hash_paths
    from replay.core.data.statcache import StatCache
    from replay.core.layout import project_root
    from replay.ui import escape

    root = project_root(Path.cwd(), factory.source_control())
    if check is not None:
        data_check = DataCheck.load(check)  # a bad capsule is refused before any progress is drawn
        with ui.RichReporter(verbose=State.verbose, quiet=as_json) as reporter, StatCache() as cache:
            result = data_check.run(paths, root, cache=cache, reporter=reporter)
        _render_check(result, as_json)
        if not result.ok:
            raise result.mismatch()
        return
    with ui.RichReporter(verbose=State.verbose, quiet=as_json) as reporter, StatCache() as cache:
        actual = hash_paths(paths, root, cache=cache, reporter=reporter, record_links=True)
    if as_json:
        ui.print_json({"schema": "replay.data-manifest", "schema_version": 1, **_manifest_dict(actual)})
        return
    table = Table()
    table.add_column("path")
    table.add_column("size", justify="right")
    table.add_column("sha256")
    for f in actual.files:
        table.add_row(escape(f.path), str(f.size), f.sha256)
    ui.out.print(table)
    ui.out.print(f"{len(actual.files)} files, {ui.human_bytes(actual.total_bytes)}, digest {actual.digest}")


def _render_check(result: DataCheckResult, as_json: bool) -> None:
    from rich.table import Table

    from replay import ui
    from replay.ui import escape

    if as_json:
        ui.print_json(result.to_dict())
        return
    diff, covered = result.diff, result.coverage
    if result.ok:
        color = "green" if covered.complete else "yellow"
        ui.out.print(f"[{color}]{escape(covered.line(result.actual.digest))}[/]", soft_wrap=True)
        return
    table = Table(title=f"data against {escape(str(result.capsule))}", title_justify="left")
    table.add_column("status")
    table.add_column("path")
    table.add_column("detail")
    for f in diff.missing:
        table.add_row("[red]missing[/]", escape(f.path), f"{f.size} bytes expected")
    for want, got in diff.changed:
        table.add_row("[red]changed[/]", escape(want.path), f"size {want.size} -> {got.size}, sha256 "
                      f"{ui.short(want.sha256)} -> {ui.short(got.sha256)}")
    for f in diff.extra:
        table.add_row("[yellow]extra[/]", escape(f.path), f"{f.size} bytes")
    ui.out.print(table)
    if not covered.complete:
        ui.out.print(f"not checked: {escape(', '.join(covered.not_checked))}", soft_wrap=True)


def _manifest_dict(m: DataManifest) -> dict[str, object]:
    from dataclasses import asdict

    return asdict(m)
