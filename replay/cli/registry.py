"""`replay push` and `replay pull`: a capsule's image through a registry, pinned by its digest."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from replay.core.share.registry import Pushed

PUSH_EPILOG = """Example:

\b
  replay push .replay/digits 127.0.0.1:5000/team/digits
  replay verify 127.0.0.1:5000/team/digits@sha256:...      (on the reviewer's machine)

Credentials come from the Docker config (docker login); none is written into the capsule."""

PULL_EPILOG = """Example:

\b
  replay pull 127.0.0.1:5000/team/digits@sha256:... -o review/digits"""


def push_cmd(
    capsule: Annotated[Path, typer.Argument(help="A capsule folder (made by `replay capture`).")],
    ref: Annotated[str, typer.Argument(help="Where to push: HOST[:PORT]/NAME[:TAG].")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")] = False,
) -> None:
    """Push a capsule's image to a registry and record the registry digest in the capsule."""
    from replay import factory, ui
    from replay.cli.state import State
    from replay.core.share.registry import push

    with ui.RichReporter(verbose=State.verbose) as reporter:
        pushed = push(capsule, ref, factory.engine(), reporter)
    if as_json:
        ui.print_json({"schema": "replay.push-result", "schema_version": 1, "ref": pushed.ref, "tag": pushed.tag,
                       "capsule": str(pushed.capsule)})
        return
    render_pushed(pushed)


def render_pushed(pushed: Pushed) -> None:
    from replay import ui

    ui.out.print(f"[green]pushed[/] {pushed.tag}")
    ui.out.print(f"verify with: replay verify {pushed.ref}", soft_wrap=True)


def pull_cmd(
    ref: Annotated[str, typer.Argument(help="A reference by digest: REPO@sha256:DIGEST.")],
    out: Annotated[Path, typer.Option("-o", "--output", help="A new capsule folder to write.")],
) -> None:
    """Pull an image by digest and make a capsule folder from the manifest it holds."""
    from replay import factory, ui
    from replay.cli.state import State
    from replay.core.share.registry import pull, write_capsule

    with ui.RichReporter(verbose=State.verbose) as reporter:
        manifest, lock = pull(ref, factory.engine(), reporter)
    write_capsule(manifest, lock, out)
    ui.out.print(f"[green]pulled[/] {manifest.name} ({manifest.image.id}) into {out}", soft_wrap=True)
