"""`replay pack` and `replay unpack`: capsules and their images in one bundle file, and back."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from replay.core.share.bundle.pack import PackResult

PACK_EPILOG = """Example:

\b
  replay pack .replay/digits -o digits.replay --with-data --sign ~/.ssh/id_ed25519
  replay verify digits.replay --allowed-signers allowed_signers     (on the reviewer's machine)

Several capsules in one bundle store each shared layer and each shared data file once."""

UNPACK_EPILOG = """Example:

\b
  replay unpack digits.replay -o review/ --allowed-signers allowed_signers --load"""


def pack_cmd(
    capsules: Annotated[list[Path], typer.Argument(help="Capsule folders (made by `replay capture`).")],
    out: Annotated[Path, typer.Option("-o", "--output", help="The bundle file to write.")],
    with_data: Annotated[bool, typer.Option("--with-data", help="Put the capsules' data files in the bundle.")] = False,
    sign: Annotated[Path | None, typer.Option("--sign", help="Sign the index with this SSH private key.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")] = False,
) -> None:
    """Pack capsules, their images (and with --with-data their data) into one bundle file."""
    from replay import factory, ui
    from replay.cli.state import State
    from replay.core.share import signing
    from replay.core.share.bundle.pack import PackRequest, pack
    from replay.errors import BadInput

    if out.exists() and out.is_dir():
        raise BadInput(f"-o {out} is a folder", "pass the bundle's file name, e.g. -o digits.replay")
    signer = signing.signer(sign, factory.signature_tool()) if sign else None
    with ui.RichReporter(verbose=State.verbose) as reporter:
        result = pack(PackRequest(capsules, out, Path.cwd(), with_data, signer), factory.engine(), reporter)
    if as_json:
        ui.print_json({"schema": "replay.pack-result", "schema_version": 1, "path": str(result.path),
                       "size": result.size, "capsules": result.capsules, "images": result.images,
                       "members": result.members, "raw_bytes": result.raw_bytes, "signed": result.signed,
                       "seconds": result.seconds})
        return
    render_packed(result)


def render_packed(result: PackResult) -> None:
    from replay import ui

    ui.out.print(f"[green]packed[/] {', '.join(result.capsules)} into {result.path}: {ui.human_bytes(result.size)} "
                 f"({ui.human_bytes(result.raw_bytes)} of content, {result.images} image(s), {result.members} members, "
                 f"{'signed' if result.signed else 'unsigned'}) in {result.seconds:.1f} s")


def unpack_cmd(
    bundle: Annotated[Path, typer.Argument(help="A bundle file (made by `replay pack`).")],
    out: Annotated[Path, typer.Option("-o", "--output", help="A new folder to unpack into.")],
    allowed_signers: Annotated[
        Path | None, typer.Option("--allowed-signers", help="Require a valid signature by a principal listed here.")
    ] = None,
    load: Annotated[bool, typer.Option("--load", help="Also load the images the engine lacks.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")] = False,
) -> None:
    """Check a bundle, then write its capsule folders (and data) into a new folder."""
    from replay import factory, ui
    from replay.cli.state import State
    from replay.core.share.bundle.target import unpack_all
    from replay.core.share.signing import Trust

    engine = factory.engine() if load else None
    trust = Trust(allowed_signers, factory.signature_tool()) if allowed_signers is not None else None
    with ui.RichReporter(verbose=State.verbose) as reporter:
        result = unpack_all(bundle, out, trust, engine, reporter)
    if as_json:
        ui.print_json({"schema": "replay.unpack-result", "schema_version": 1, "folder": str(out),
                       "capsules": result.capsules, "data": result.data, "loaded": result.loaded,
                       "provenance": result.provenance})
        return
    ui.err.print(result.provenance)
    for name in result.capsules:
        ui.out.print(f"[green]unpacked[/] {out / name}")
    if result.data:
        ui.out.print(f"data under {out / '_data'}: verify with --data RECORDED={out / '_data'}/RECORDED")
    for image_id in result.loaded:
        ui.out.print(f"loaded image {image_id}")
