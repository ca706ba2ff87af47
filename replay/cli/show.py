"""`replay show`: a readable summary of a capsule."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from rich.text import Text

    from replay.core.share.bundle.format import Index
    from replay.manifest import Manifest

EPILOG = """Example:

\b
  replay show .replay/digits          (or --json for the whole manifest)
  replay show digits.replay           (the capsules in a bundle; digits.replay#NAME for one of them)"""


def show_cmd(
    target: Annotated[str, typer.Argument(help="A capsule folder or its replay.json, a bundle FILE or FILE#NAME.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the manifest as JSON on stdout.")] = False,
) -> None:
    """Summarize a capsule: command, seed, code, image, packages, data, outputs and metrics."""
    import tempfile

    from replay.core.share.bundle import target as bundle_target
    from replay.manifest import load

    found = bundle_target.split_target(target, Path.cwd())
    if found is not None and found[1] is None:
        _show_bundle(found[0], as_json, target)
        return
    with tempfile.TemporaryDirectory(prefix="replay-show-") as scratch:
        path = Path(target)
        if found is not None:
            bundle = bundle_target.checked(found[0], None)
            path = Path(scratch) / "capsule"
            bundle_target.unpack_capsule(bundle, bundle.index.capsule(str(found[1])), path)
        _show_capsule(load(path), as_json)


def _show_bundle(path: Path, as_json: bool, shown: str) -> None:

    from replay import ui
    from replay.core.share.bundle import target as bundle_target

    bundle = bundle_target.checked(path, None)
    index = bundle.index
    if as_json:
        ui.print_json({"schema": "replay.bundle-listing", "schema_version": 1, "path": str(path),
                       "signed": bundle.signature is not None, "created_by": index.created_by,
                       "capsules": [{"name": c.name, "image": c.image, "files": len(c.files), "with_data": c.with_data}
                                    for c in index.capsules],
                       "images": [{"id": i.id, "layers": len(i.layers)} for i in index.images],
                       "members": len(index.members), "raw_bytes": sum(m.raw_size for m in index.members),
                       "size": path.stat().st_size})
        return
    render_bundle(path.name, path.stat().st_size, index, bundle.provenance(None), shown)


def render_bundle(name: str, size: int, index: Index, provenance: str, shown: str) -> None:
    """A checked bundle's listing: its size and members, who packed it, its provenance, its capsules."""
    from rich.table import Table

    from replay import ui
    from replay.ui import escape

    # Names and the packer's words come from the bundle: shown as text, never read as rich markup.
    ui.out.print(f"[bold]{escape(name)}[/]  {ui.human_bytes(size)}, {len(index.members)} members, "
                 f"made by {escape(index.created_by or 'an unknown packer')}; every member checked")
    ui.out.print(escape(provenance), soft_wrap=True)
    table = Table(title=f"capsules ({len(index.capsules)})", title_justify="left")
    for col in ("name", "image", "files", "data"):
        table.add_column(col, overflow="fold")
    for c in index.capsules:
        table.add_row(escape(c.name), escape(c.image), str(len(c.files)), "yes" if c.with_data else "no")
    ui.out.print(table)
    ui.out.print(f"show one with: replay show {escape(shown)}#NAME", soft_wrap=True)


def _show_capsule(m: Manifest, as_json: bool) -> None:
    import shlex

    from rich.table import Table

    from replay import ui
    from replay.ui import escape

    if as_json:
        ui.print_json(m.to_dict())
        return
    out = ui.out
    cmd = m.command
    out.print(f"[bold]{escape(m.name)}[/]  captured {escape(m.created)} with replay {escape(m.replay_version)} "
              f"(schema {m.schema_version})")
    facts = Table(show_header=False, box=None, padding=(0, 2))
    facts.add_column(style="bold", no_wrap=True)
    facts.add_column(overflow="fold")  # digests and IDs are shown whole, folded rather than cut
    facts.add_row(*_text("command", shlex.join(cmd.argv)))
    facts.add_row(*_text("workdir", cmd.workdir))
    seed = "not recorded" if cmd.seed is None else str(cmd.seed)
    if cmd.auto_seed:
        seed += "  (auto-seed: applied at interpreter start-up by a hook in the image)"
    facts.add_row(*_text("seed", seed))
    if cmd.env:
        facts.add_row(*_text("env", ", ".join(k if v is None else f"{k}={v}" for k, v in cmd.env.items())))
    facts.add_row(*_text("numerics env", " ".join(f"{k}={v}" for k, v in cmd.numerics_env.items()) or "-"))
    code = m.code
    if code.kind == "git":
        facts.add_row(*_text("code", f"git {code.commit or '(no commit)'} on {code.branch or '(detached)'}"
                      + (" + uncommitted changes (code.patch)" if code.dirty else "")))
        if code.remote:
            facts.add_row(*_text("remote", code.remote))
    else:
        facts.add_row(*_text("code", f"not a git repository; tree digest {code.snapshot_digest}"))
    from replay.core.capture.leftovers import PATTERNS

    built = {k: n for k, n in code.left_out.items() if k in PATTERNS}
    if built:
        counts = ", ".join(f"{pattern} {n}" for pattern, n in built.items())
        facts.add_row(*_text("left out", f"{sum(built.values())} build-leftover files, never code ({counts})"))
    others = {k: n for k, n in code.left_out.items() if k not in PATTERNS}
    if others:
        facts.add_row(*_text("left out", "; ".join(f"{n} files: {why}" for why, n in others.items())))
    facts.add_row(*_text("python", f"{m.python.implementation} {m.python.version} ({len(m.python.packages)} packages)"))
    facts.add_row(*_text("image", f"{m.image.tag}  {m.image.id}  {ui.human_bytes(m.image.size)}"))
    base = m.image.base
    facts.add_row(*_text("base", f"{base.ref}  {base.digest or base.id}  (Python {base.python_version})"))
    roots = ", ".join(m.data.roots) or "none"
    size = ui.human_bytes(m.data.total_bytes)
    facts.add_row(*_text("data", f"{roots}: {len(m.data.files)} files, {size}, digest {m.data.digest}"))
    host = m.host
    engine = f"{_engine_name(host.engine)} {host.docker_version}"
    facts.add_row(*_text("captured on", f"{host.cpu_model}, {host.cores} cores, {host.os}, {engine}"))
    if m.policy.tolerances or m.policy.ignore:
        facts.add_row(*_text("policy", "; ".join([*(f"{k}={v}" for k, v in m.policy.tolerances.items()),
                                           *(f"ignore {g}" for g in m.policy.ignore)])))
    out.print(facts)

    packages = Table(title="packages", title_justify="left")
    packages.add_column("name")
    packages.add_column("version")
    packages.add_column("source")
    for p in m.python.packages:
        packages.add_row(*_text(p.name, p.version, p.source))
    for own in m.python.project_packages:  # the project's own code, imported from the snapshot
        packages.add_row(*_text(own.name, own.version, f"project ({own.kind}: {', '.join(own.paths)})"))
    if m.python.packages or m.python.project_packages:
        out.print(packages)

    if m.system_packages:
        system = Table(title="system packages (beyond the base image)", title_justify="left")
        system.add_column("name")
        system.add_column("version")
        system.add_column("needed by")
        for sp in m.system_packages:
            needs = ", ".join(n.package if not n.library else f"{n.library} ({n.package})" for n in sp.needed_by)
            system.add_row(*_text(sp.name, sp.version, needs or "a dependency of the above"))
        out.print(system)

    _show_snapshot(m)
    shown = 20  # a dataset can hold millions of files: the first few say enough, `--json` has them all
    data = Table(title=f"data ({len(m.data.files)} files)", title_justify="left")
    data.add_column("path")
    data.add_column("size", justify="right")
    data.add_column("sha256")
    for f in m.data.files[:shown]:
        data.add_row(*_text(f.path, ui.human_bytes(f.size), ui.short(f.sha256, 16)))
    if len(m.data.files) > shown:
        data.add_row(*_text(f"... and {len(m.data.files) - shown} more", "", ""))
    if m.data.files:
        out.print(data)

    outputs = Table(title="reference outputs", title_justify="left")
    outputs.add_column("path")
    outputs.add_column("size", justify="right")
    outputs.add_column("sha256")
    for f in m.outputs.files:
        outputs.add_row(*_text(f.path, ui.human_bytes(f.size), ui.short(f.sha256, 16)))
    out.print(outputs)
    _show_output_notes(m)
    if m.outputs.metrics:
        metrics = Table(title="reference metrics", title_justify="left")
        metrics.add_column("metric")
        metrics.add_column("value", justify="right")
        for key, value in sorted(m.outputs.metrics.items()):
            metrics.add_row(*_text(key, repr(value)))
        out.print(metrics)


def _show_snapshot(m: Manifest, shown: int = 40) -> None:
    """What the code snapshot holds (the image's code/, and code.patch's files): every file up to ``shown``."""
    from rich.table import Table

    from replay import ui

    files = m.code.snapshot_files
    if not files:
        return
    table = Table(title=f"code snapshot ({len(files)} files; data, outputs, capsules and reports never in it)",
                  title_justify="left")
    table.add_column("path")
    for rel in files[:shown]:
        table.add_row(*_text(rel))
    if len(files) > shown:
        table.add_row(*_text(f"... and {len(files) - shown} more (replay show --json lists them all)"))
    ui.out.print(table)


def _show_output_notes(m: Manifest) -> None:
    from rich.markup import escape

    from replay import ui

    for stale in m.outputs.stale or []:
        ui.out.print(f"[yellow]stale[/] {escape(stale.path)} was older than the {escape(stale.kind)} it could come "
                     f"from ({escape(stale.newer)}) at capture", soft_wrap=True)
    check = m.outputs.self_check
    if check is not None:
        style = "green" if check.verdict in ("identical", "equivalent") else "red"
        differed = f"; differed: {', '.join(check.differed)}" if check.differed else ""
        ui.out.print(f"[bold]self-check[/] (capture --verify): [{style}]{escape(check.verdict)}[/]"
                     f"{escape(differed)}{escape('; ' + check.message if check.message else '')}", soft_wrap=True)


def _text(*cells: str) -> list[Text]:
    """Cells as plain text: a capsule's strings ("[/x]" in a path) are never read as markup."""
    from rich.text import Text

    from replay.textsafe import neutral

    return [Text(neutral(cell)) for cell in cells]


def _engine_name(engine: str) -> str:
    """How the capture host's engine reads in a sentence; capsules made before replay knew Podman say none."""
    names = {"": "Docker", "docker": "Docker", "podman": "Podman", "podman (rootless)": "Podman (rootless)"}
    return names.get(engine, engine)
