"""`replay show`: a readable summary of a capsule."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

EPILOG = """Example:

\b
  replay show .replay/digits          (or --json for the whole manifest)"""


def show_cmd(
    target: Annotated[Path, typer.Argument(help="A capsule folder or its replay.json.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the manifest as JSON on stdout.")] = False,
) -> None:
    """Summarize a capsule: command, seed, code, image, packages, data, outputs and metrics."""
    from rich.table import Table

    from replay import ui
    from replay.manifest import load

    m = load(target)
    if as_json:
        ui.print_json(m.to_dict())
        return
    out = ui.out
    cmd = m.command
    out.print(f"[bold]{m.name}[/]  captured {m.created} with replay {m.replay_version} (schema {m.schema_version})")
    facts = Table(show_header=False, box=None, padding=(0, 2))
    facts.add_column(style="bold", no_wrap=True)
    facts.add_column(overflow="fold")  # digests and IDs are shown whole, folded rather than cut
    facts.add_row("command", " ".join(cmd.argv))
    facts.add_row("workdir", cmd.workdir)
    seed = "not recorded" if cmd.seed is None else str(cmd.seed)
    if cmd.auto_seed:
        seed += "  (auto-seed: applied at interpreter start-up by a hook in the image)"
    facts.add_row("seed", seed)
    if cmd.env:
        facts.add_row("env", ", ".join(k if v is None else f"{k}={v}" for k, v in cmd.env.items()))
    facts.add_row("numerics env", " ".join(f"{k}={v}" for k, v in cmd.numerics_env.items()) or "-")
    code = m.code
    if code.kind == "git":
        facts.add_row("code", f"git {code.commit or '(no commit)'} on {code.branch or '(detached)'}"
                      + (" + uncommitted changes (code.patch)" if code.dirty else ""))
        if code.remote:
            facts.add_row("remote", code.remote)
    else:
        facts.add_row("code", f"not a git repository; tree digest {code.snapshot_digest}")
    facts.add_row("python", f"{m.python.implementation} {m.python.version} ({len(m.python.packages)} packages)")
    facts.add_row("image", f"{m.image.tag}  {m.image.id}  {ui.human_bytes(m.image.size)}")
    base = m.image.base
    facts.add_row("base", f"{base.ref}  {base.digest or base.id}  (Python {base.python_version})")
    roots = ", ".join(m.data.roots) or "none"
    size = ui.human_bytes(m.data.total_bytes)
    facts.add_row("data", f"{roots}: {len(m.data.files)} files, {size}, digest {m.data.digest}")
    host = m.host
    facts.add_row("captured on", f"{host.cpu_model}, {host.cores} cores, {host.os}, Docker {host.docker_version}")
    if m.policy.tolerances or m.policy.ignore:
        facts.add_row("policy", "; ".join([*(f"{k}={v}" for k, v in m.policy.tolerances.items()),
                                           *(f"ignore {g}" for g in m.policy.ignore)]))
    out.print(facts)

    packages = Table(title="packages", title_justify="left")
    packages.add_column("name")
    packages.add_column("version")
    packages.add_column("source")
    for p in m.python.packages:
        packages.add_row(p.name, p.version, p.source)
    if m.python.packages:
        out.print(packages)

    shown = 20  # a dataset can hold millions of files: the first few say enough, `--json` has them all
    data = Table(title=f"data ({len(m.data.files)} files)", title_justify="left")
    data.add_column("path")
    data.add_column("size", justify="right")
    data.add_column("sha256")
    for f in m.data.files[:shown]:
        data.add_row(f.path, ui.human_bytes(f.size), ui.short(f.sha256, 16))
    if len(m.data.files) > shown:
        data.add_row(f"... and {len(m.data.files) - shown} more", "", "")
    if m.data.files:
        out.print(data)

    outputs = Table(title="reference outputs", title_justify="left")
    outputs.add_column("path")
    outputs.add_column("size", justify="right")
    outputs.add_column("sha256")
    for f in m.outputs.files:
        outputs.add_row(f.path, ui.human_bytes(f.size), ui.short(f.sha256, 16))
    out.print(outputs)
    if m.outputs.metrics:
        metrics = Table(title="reference metrics", title_justify="left")
        metrics.add_column("metric")
        metrics.add_column("value", justify="right")
        for key, value in sorted(m.outputs.metrics.items()):
            metrics.add_row(key, repr(value))
        out.print(metrics)
