"""`replay base build`: a Python base image made from Debian packages, with no registry."""

from __future__ import annotations

from typing import Annotated

import typer

app = typer.Typer(help="Base images for capsules.", no_args_is_help=True, add_completion=False)


EPILOG = """Example:

\b
  replay base build --python 3.11
  replay capture --base replay-base/python:3.11-bookworm ... -- python train.py"""


@app.command("build", epilog=EPILOG)
def build_cmd(
    tag: Annotated[str | None, typer.Option(help="Image tag [default: replay-base/python:X.Y-SUITE].")] = None,
    python: Annotated[str, typer.Option("--python", help="Python minor version, e.g. 3.11.")] = "3.11",
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")] = False,
) -> None:
    """Build a Debian-based Python image offline (debootstrap from apt's mirror; needs root)."""
    from replay import factory, ui
    from replay.cli.state import State
    from replay.core.capture.base_images import build_base

    with ui.RichReporter(verbose=State.verbose) as reporter:
        built = build_base(factory.engine(), factory.rootfs_builder(), python=python, tag=tag, reporter=reporter)
    if as_json:
        ui.print_json({"schema": "replay.base-build", "schema_version": 1, "tag": built.tag, "image_id": built.image_id,
                       "python_version": built.python_version, "size": built.size, "mirror": built.mirror})
        return
    ui.out.print(f"[green]built[/] {built.tag}  {built.image_id}  Python {built.python_version}  "
                 f"{ui.human_bytes(built.size)}")
    ui.out.print(f"use it with: replay capture --base {built.tag} ...")
