"""`replay manifest`: hash data on its own, or check it against a capsule's data manifest."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
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
    from replay.core.data import check as datacheck
    from replay.core.data.diff import diff_manifests
    from replay.core.data.hashing import hash_paths
    from replay.core.data.statcache import StatCache
    from replay.core.layout import project_root
    from replay.errors import DataMismatch
    from replay.manifest import load
    from replay.ui import escape

    root = project_root(Path.cwd(), factory.source_control())
    expected = load(check).data if check is not None else None
    with ui.RichReporter(verbose=State.verbose, quiet=as_json) as reporter, StatCache() as cache:
        actual = hash_paths(paths, root, cache=cache, reporter=reporter, record_links=expected is None)
    if expected is None:
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
        return
    diff = diff_manifests(datacheck.scoped(expected, actual.roots), actual)
    covered = datacheck.coverage(expected, actual.roots)
    if as_json:
        ui.print_json({"schema": "replay.data-check", "schema_version": 1, "ok": diff.ok, **diff.to_dict(),
                       "coverage": covered.to_dict()})
    else:
        table = Table(title=f"data against {escape(str(check))}", title_justify="left")
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
        if not diff.ok:
            ui.out.print(table)
            if not covered.complete:
                ui.out.print(f"not checked: {escape(', '.join(covered.not_checked))}", soft_wrap=True)
        else:
            color = "green" if covered.complete else "yellow"
            ui.out.print(f"[{color}]{escape(covered.line(actual.digest))}[/]", soft_wrap=True)
    if not diff.ok:
        raise DataMismatch(
            f"data differs from the capsule: {len(diff.missing)} missing, {len(diff.changed)} changed, "
            f"{len(diff.extra)} extra", "restore the captured data (see the table above)", [])


def _manifest_dict(m: DataManifest) -> dict[str, object]:
    from dataclasses import asdict

    return asdict(m)
