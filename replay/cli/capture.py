"""`replay capture`: parse options, merge [tool.replay] defaults, call core.capture, render the result."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from replay.core.capture.pipeline import CaptureResult

EPILOG = """Example:

\b
  replay capture --data data --output out/model.pkl --metrics out/metrics.json --seed 7 -- python train.py --seed 7
  replay capture --run --auto-seed --output out/weights.npy -- python train.py     (a script that never seeds)

The capsule lands in .replay/NAME (replay.json, requirements.lock, Dockerfile, code.patch, reference/),
and the image is tagged replay/NAME:SHORT-ID. Defaults for every option can live in pyproject.toml under
[tool.replay]."""

CAPTURE_SUMMARY_SCHEMA = "replay.capture-summary"
CAPTURE_SUMMARY_VERSION = 1


def capture_cmd(
    ctx: typer.Context,
    command: Annotated[list[str] | None, typer.Argument(help="The training command, after --.", show_default=False)] = None,
    data: Annotated[list[str] | None, typer.Option("--data", help="Input file or folder (repeatable).")] = None,
    output: Annotated[list[str] | None, typer.Option("--output", help="Output file or folder (repeatable).")] = None,
    metrics: Annotated[list[str] | None, typer.Option("--metrics", help="JSON file of metrics (repeatable).")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed: replay sets REPLAY_SEED and PYTHONHASHSEED.")] = None,
    auto_seed: Annotated[bool, typer.Option(
        "--auto-seed", help="Seed random, NumPy, PyTorch, TensorFlow at interpreter start-up [seed: --seed, else 0].",
    )] = False,
    python: Annotated[str | None, typer.Option(help="Interpreter that ran training [default: python3 on PATH].")] = None,
    requirements: Annotated[Path | None, typer.Option(
        help="Lock file to take as it is (requirements.txt with --hash lines, uv.lock, poetry.lock, Pipfile.lock), "
             "or a requirements file to lock from instead of the interpreter.",
    )] = None,
    relock: Annotated[bool, typer.Option(
        "--relock", help="Ignore lock files in the project root: lock from the interpreter with pip-compile.",
    )] = False,
    base: Annotated[str | None, typer.Option(help="Base image [default: python:X.Y.Z-slim].")] = None,
    apt: Annotated[list[str] | None, typer.Option(
        "--apt", help="Debian package to install in the image (repeatable), beyond the libraries found by scanning.",
    )] = None,
    env: Annotated[list[str] | None, typer.Option("--env", help="Environment variable to carry (repeatable).")] = None,
    allow_secret_env: Annotated[bool, typer.Option(help="Allow --env names that look secret.")] = False,
    allow_secret_files: Annotated[
        bool, typer.Option(help="Ship code files that look like secrets (.env, *.pem, keys); listed in the manifest.")
    ] = False,
    include_untracked: Annotated[list[str] | None, typer.Option(
        "--include-untracked", help="Untracked file or folder over 1 MiB or binary to ship in the code (repeatable).",
    )] = None,
    tolerance: Annotated[list[str] | None, typer.Option("--tolerance", help="NAME=SPEC: 1e-3 or rel:1e-6.")] = None,
    ignore: Annotated[list[str] | None, typer.Option("--ignore", help="Glob of outputs not byte-compared.")] = None,
    name: Annotated[str | None, typer.Option(help="Capsule name [default: the project folder's].")] = None,
    into: Annotated[Path | None, typer.Option(help="Capsule folder [default: .replay/NAME].")] = None,
    run: Annotated[bool, typer.Option("--run", help="Run the command here first, then capture.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing capsule folder.")] = False,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Relock and rebuild every image layer.")] = False,
    runs: Annotated[int, typer.Option("--runs", help="Replay N times once built; record what varied.")] = 0,
    verify: Annotated[bool, typer.Option(
        "--verify", help="Replay once in the built image and record whether the capsule reproduces its capture.",
    )] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON summary on stdout.")] = False,
) -> None:
    """Snapshot a finished training run into a capsule and a pinned image."""
    _require_dashes(ctx, list(command or []))
    from replay import factory, ui
    from replay.cli.state import State
    from replay.config import merge_capture_options, project_defaults
    from replay.core.capture.pipeline import CaptureRequest, capture
    from replay.core.verify.compare import parse_assignment

    cwd = Path.cwd()
    merged = merge_capture_options(
        project_defaults(cwd, factory.source_control()), data=data, outputs=output, metrics=metrics,
        seed=seed, python=python, base=base, env=env, ignore=ignore,
        tolerances=[parse_assignment(t, "--tolerance") for t in tolerance or []], apt=apt)
    req = CaptureRequest(
        command=list(command or []),
        cwd=cwd,
        requirements=requirements,
        relock=relock,
        allow_secret_env=allow_secret_env,
        allow_secret_files=allow_secret_files,
        include_untracked=list(include_untracked or []),
        name=name,
        into=into,
        force=force,
        run=run,
        no_cache=no_cache,
        runs=runs,
        verify=verify,
        **merged,
        auto_seed=auto_seed,
    )
    with ui.RichReporter(verbose=State.verbose) as reporter:
        result = capture(req, factory.engine(), factory.toolchain(), reporter)
    m = result.manifest
    counts = {
        "data_files": len(m.data.files),
        "data_bytes": m.data.total_bytes,
        "outputs": len(m.outputs.files),
        "metrics": len(m.outputs.metrics),
        "packages": len(m.python.packages),
        "code_files": m.code.files,
    }
    if as_json:
        ui.print_json({
            "schema": CAPTURE_SUMMARY_SCHEMA,
            "schema_version": CAPTURE_SUMMARY_VERSION,
            "capsule": str(result.capsule),
            "name": m.name,
            "image_id": m.image.id,
            "image_tag": m.image.tag,
            "image_size": m.image.size,
            "counts": counts,
            "timings": result.timings,
            "stability": _stability(m),
            "self_check": _self_check(m),
            "warnings": reporter.warnings,
        })
        return
    render_captured(result, counts, cwd)


def render_captured(result: CaptureResult, counts: dict[str, int], cwd: Path) -> None:
    """The human summary of a capture: the capsule, its image and base, code, data, outputs, packages."""
    from rich.table import Table

    from replay import ui

    m = result.manifest
    table = Table(show_header=False, box=None, padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")  # digests and IDs are shown whole, folded rather than cut
    table.add_row("capsule", str(result.capsule))
    table.add_row("image", f"{m.image.tag}  ({ui.short(m.image.id)}, {ui.human_bytes(m.image.size)})")
    table.add_row("base", f"{m.image.base.ref}  pinned {ui.short(m.image.base.digest or m.image.base.id, 19)}")
    code = m.code
    version = f"{(code.commit or '')[:12]}{' + uncommitted changes' if code.dirty else ''}" if code.kind == "git" \
        else f"tree {ui.short(code.snapshot_digest)} (not a git repository)"
    table.add_row("code", f"{version}  ({ui.count(code.files, 'file')})")
    table.add_row("data", f"{ui.count(counts['data_files'], 'file')}, {ui.human_bytes(counts['data_bytes'])}")
    table.add_row("outputs", f"{ui.count(counts['outputs'], 'file')}, {ui.count(counts['metrics'], 'metric')}")
    table.add_row("packages", f"{counts['packages']} pinned with hashes")
    if m.system_packages:
        table.add_row("system", ", ".join(f"{p.name} {p.version}" for p in m.system_packages))
    if m.outputs.stability is not None:
        st = m.outputs.stability
        varied = [*st.unstable_outputs, *st.unstable_metrics]
        table.add_row("stability", f"{st.runs} runs compared; " + (f"varied: {', '.join(varied)}" if varied
                                                                     else "every output and metric the same"))
    check = m.outputs.self_check
    if check is not None:
        table.add_row("self-check", f"{check.verdict} (exit {check.exit_code})"
                      + (f"; differed: {', '.join(check.differed)}" if check.differed else ""))
    ui.out.print("[green]captured[/] " + m.name)
    ui.out.print(table)
    if result.timings:
        ui.out.print("[dim]" + "  ".join(f"{k} {v:.2f}s" for k, v in result.timings.items()) + "[/]")
    ui.out.print(f"verify with: replay verify {_shown(result.capsule, cwd)}")


def _stability(m: object) -> dict[str, object] | None:
    from dataclasses import asdict

    from replay.manifest import Manifest

    assert isinstance(m, Manifest)
    return asdict(m.outputs.stability) if m.outputs.stability is not None else None


def _self_check(m: object) -> dict[str, object] | None:
    from dataclasses import asdict

    from replay.manifest import Manifest

    assert isinstance(m, Manifest)
    return asdict(m.outputs.self_check) if m.outputs.self_check is not None else None


def _shown(path: Path, cwd: Path) -> str:
    try:
        return str(path.relative_to(cwd))
    except ValueError:
        return str(path)


def _require_dashes(ctx: typer.Context, command: list[str]) -> None:
    """A command given without ``--`` is refused: its own options (``--seed 7``) would silently become replay's.
    The line to type puts ``--`` before the first word that is no replay option nor an option's value."""
    import shlex

    from replay.cli.state import State
    from replay.errors import BadInput

    args = State.argv
    if not command or args is None or "--" in args:
        return
    rest = args[args.index("capture") + 1:] if "capture" in args else args
    takes_value = {name for p in ctx.command.params if p.param_type_name == "option" and not getattr(p, "is_flag", False)
                   for name in p.opts}
    i = 0
    while i < len(rest) and rest[i].startswith("-") and rest[i] != "-":
        i += 2 if rest[i] in takes_value else 1
    line = shlex.join(["replay", "capture", *rest[:i], "--", *rest[i:]])
    raise BadInput("the training command must follow -- (without it, the command's own options are taken as "
                   "replay's)", f"type: {line}")
