"""`replay verify`: replay a capsule, render the verdict, write the report files, exit with its code."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from replay.cli.backend_options import BackendOpt, GpusOpt, JobsOpt, PartitionOpt, TimeOpt, WorkdirOpt
from replay.cli.limit_options import with_limits
from replay.core.limits import RunLimits  # at run time: typer evaluates the signature

if TYPE_CHECKING:
    from replay.core.verify.report import VerifyReport

EPILOG = """Example:

\b
  replay verify .replay/digits --junit verify.xml --markdown verify.md
  replay verify digits.replay --allowed-signers allowed_signers
  replay verify 127.0.0.1:5000/team/digits@sha256:...
  replay verify .replay/ --jobs 2 --html report.html

With more than one capsule (several TARGETs, or a folder of capsules such as .replay/) it is a batch: each
distinct image and data set is checked once, each distinct experiment replayed once (--plan shows the plan
and runs nothing), and the report gives the reproducibility rate. A batch exits 0 when every capsule
reproduced, 1 when any diverged, otherwise with the highest-priority failure: 4, then 3, then 2.

Verdicts and exit codes: identical (0): every output byte-identical; equivalent (0): the differences are all
in ignored outputs or within tolerances; diverged (1); could not verify (2): bad manifest, arguments, or
missing/changed data (the command is not run); environment problem (3): no engine, image missing or another
image under its tag; the replayed command failed (4): non-zero exit, killed for memory, timed out."""


@with_limits
def verify_cmd(
    target: Annotated[list[str], typer.Argument(
        help="Capsule folders (made by `replay capture`), folders of capsules (.replay/), bundle FILEs or "
             "FILE#NAME, registry references REPO@sha256:DIGEST.", metavar="TARGET...")],
    data: Annotated[
        list[str] | None, typer.Option("--data", help="RECORDED=LOCAL: where a recorded data path is here.")
    ] = None,
    tolerance: Annotated[list[str] | None, typer.Option("--tolerance", help="NAME=SPEC, added to the capsule's.")] = None,
    ignore: Annotated[list[str] | None, typer.Option("--ignore", help="Glob of outputs not byte-compared.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the whole report as JSON on stdout.")] = False,
    report: Annotated[Path | None, typer.Option(help="Write the JSON report to this file.")] = None,
    junit: Annotated[Path | None, typer.Option(help="Write a JUnit XML report (one case per output and metric).")] = None,
    markdown: Annotated[Path | None, typer.Option(help="Write a Markdown summary (PR comment, job summary).")] = None,
    keep: Annotated[Path | None, typer.Option(help="Keep the replayed outputs in this folder.")] = None,
    allowed_signers: Annotated[Path | None, typer.Option(
        "--allowed-signers", help="A bundle must be signed by a principal of this ssh-keygen allowed_signers file.")
    ] = None,
    backend: BackendOpt = None,
    jobs: JobsOpt = None,
    partition: PartitionOpt = None,
    time_limit: TimeOpt = None,
    gpus: GpusOpt = None,
    workdir: WorkdirOpt = None,
    plan: Annotated[bool, typer.Option("--plan", help="Batch: print the plan (groups, counts) and run nothing.")] = False,
    fail_fast: Annotated[bool, typer.Option("--fail-fast", help="Batch: stop at the first divergence.")] = False,
    html: Annotated[Path | None, typer.Option(help="Batch: write one self-contained HTML report page.")] = None,
    investigate: Annotated[bool, typer.Option(
        "--investigate", help="On a divergence, replay again in fresh containers, each time changing one thing "
                              "(nothing, the seed, the hash seed, one CPU and thread), and name the cause with its "
                              "evidence.")] = False,
    strict: Annotated[bool, typer.Option(
        "--strict", help="Do not accept the noise `capture --runs` measured: every difference decides.")] = False,
    investigate_runs: Annotated[int | None, typer.Option(
        "--investigate-runs", metavar="N", help="At most N extra replays for --investigate (default 4); implies it.")
    ] = None,
    *,
    limits: RunLimits,
) -> None:
    """Replay capsules in fresh, isolated containers and diff their outputs byte for byte and metric-wise."""
    from replay import factory, ui
    from replay.cli.state import State
    from replay.core.batch.mode import choose_mode
    from replay.core.share import targets
    from replay.core.share.signing import Trust
    from replay.core.verify.compare import parse_assignment
    from replay.core.verify.investigate import check_budget, verify_investigated
    from replay.core.verify.options import ReplayOptions
    from replay.core.verify.pipeline import VerifyRequest, error_report, verify
    from replay.errors import BadInput, DataMismatch, ReplayError

    cwd = Path.cwd()
    data_map = data_mappings(data or [], cwd)
    tolerances = dict(parse_assignment(t, "--tolerance") for t in tolerance or [])
    # Every argument is checked before the capsule is opened or an engine asked, and the report files'
    # places too: a complete run must never lose its verdict to a report it cannot write.
    for option, dest in (("--report", report), ("--junit", junit), ("--markdown", markdown)):
        if dest is not None:
            check_destination(dest, option)
    if keep is not None and keep.exists() and not keep.is_dir():
        raise BadInput(f"--keep {keep} is a file", "pass a new or empty folder to keep the replayed outputs in")
    if investigate_runs is not None:
        check_budget(investigate_runs)
    engine = factory.engine()  # the client is made on first use: a Slurm batch never asks it for images
    from replay.cli import backend_options

    chosen = backend_options.settings(cwd, backend, jobs, partition, time_limit, gpus, workdir)
    options = ReplayOptions(cwd=cwd, data_map=data_map, tolerances=tolerances, ignore=list(ignore or []),
                            limits=replace(limits, gpus=chosen.gpus), strict=strict)
    with backend_options.scratch(chosen, list(target), cwd) as scratch:
        trust = Trust(allowed_signers, factory.signature_tool()) if allowed_signers is not None else None
        with ui.RichReporter(verbose=State.verbose) as resolving:  # a registry reference is pulled here
            ctx = targets.ResolveContext(cwd, Path(scratch), trust=trust, engine=engine, reporter=resolving)
            try:
                found = targets.resolve(list(target), ctx)
            except ReplayError as exc:  # one target that could not be opened, pulled or loaded: still a report
                if len(target) == 1 and (as_json or report or junit or markdown):
                    _write_reports(error_report(Path(target[0]), exc), as_json, report, junit, markdown)
                raise
        mode = choose_mode(found, backend=chosen.name, remote=chosen.remote, plan=plan, html=html is not None,
                           jobs=jobs, fail_fast=fail_fast, keep=keep is not None)
        if mode.batch:
            from replay.cli.batch import batch_cmd

            batch_cmd(found, options, jobs=jobs, plan_only=plan, fail_fast=fail_fast, chosen=chosen, targets=list(target),
                      as_json=as_json, report=report, junit=junit, markdown=markdown, html=html)
            return
        resolved = found[0]
        req = VerifyRequest(target=resolved.path, options=options.with_data({**resolved.data_map, **data_map}),
                            keep=keep, ensure_image=resolved.ensure_image, timings=dict(resolved.timings))
        budget = _budget(investigate, investigate_runs, cwd)
        with ui.RichReporter(verbose=State.verbose) as reporter:
            try:
                result = verify_investigated(req, engine, budget, reporter) if budget else verify(req, engine, reporter)
            except ReplayError as exc:
                if as_json or report or junit or markdown:
                    failed = error_report(req.target, exc)
                    failed.provenance = resolved.provenance or None
                    _write_reports(failed, as_json, report, junit, markdown)
                if isinstance(exc, DataMismatch) and not as_json:
                    _render_data_problems(exc.problems)
                raise
    from replay.core.capsules.list import record_report

    if resolved.local:
        record_report(resolved.path, result)
    result.provenance = resolved.provenance or None
    _write_reports(result, as_json, report, junit, markdown)
    if not as_json:
        render(result)
    raise typer.Exit(result.exit_code)


def _budget(flag: bool, runs: int | None, cwd: Path) -> int:
    """Extra replays for an investigation: --investigate-runs, --investigate (4), or under [tool.replay]
    ``investigate = true`` (4) or a number; 0: none."""
    from replay.config import load_defaults
    from replay.core.verify.investigate import DEFAULT_BUDGET

    if runs is not None or flag:
        return runs if runs is not None else DEFAULT_BUDGET
    value = load_defaults(cwd).investigate
    return DEFAULT_BUDGET if value is True else int(value or 0)


def data_mappings(items: list[str], cwd: Path) -> dict[str, Path]:
    """``--data RECORDED=LOCAL`` options: recorded data root -> where it is here."""
    from replay.core.verify.compare import parse_assignment

    mapping = {}
    for item in items:
        recorded, local = parse_assignment(item, "--data", "RECORDED=LOCAL", "data=/scratch/digits (RECORDED: a data "
                                           "path `replay show CAPSULE` lists; LOCAL: where that data is here)")
        mapping[recorded.rstrip("/")] = (cwd / local).resolve()
    return mapping


def check_destination(path: Path, option: str) -> None:
    """A report file can be written at ``path``: not a folder, and in a folder that exists."""
    from replay.errors import BadInput

    if path.is_dir():
        raise BadInput(f"{option} {path} is a folder", f"pass a file path, e.g. {option} {path / 'verify.out'}")
    parent = path.parent
    if not parent.is_dir():
        what = "is not a folder" if parent.exists() else "does not exist"
        raise BadInput(f"{option} {path}: {parent} {what}", "create the folder first, or pass a path in an existing one")


def _write_reports(result: VerifyReport, as_json: bool, report: Path | None, junit: Path | None,
                   markdown: Path | None) -> None:
    from replay import ui
    from replay.core.verify.report import to_junit, to_markdown
    from replay.fsutil import atomic_write_text

    if as_json:
        ui.print_json(result.to_dict())
    if report:
        atomic_write_text(report, result.to_json() + "\n")
    if junit:
        atomic_write_text(junit, to_junit(result))
    if markdown:
        atomic_write_text(markdown, to_markdown(result))


def render(result: VerifyReport) -> None:
    """The human report: banner, outputs, metrics, explanations, diagnosis and hosts."""
    from rich.panel import Panel
    from rich.table import Table

    from replay import ui
    from replay.core.verify.diagnose import host_table
    from replay.core.verify.noise import collect_evidence
    from replay.ui import escape

    style = {"identical": "green", "equivalent": "cyan", "diverged": "red"}.get(result.verdict, "yellow")
    verdict = result.verdict.upper()
    if result.verdict == "diverged" and collect_evidence(result.outputs, result.metrics).timing_only:
        style, verdict = "yellow", f"{verdict}[/] [yellow]only in timing"  # a clock moved, nothing else
    out = ui.out
    out.print(Panel(f"[bold {style}]{verdict}[/]  {escape(result.capsule)}  "
                    f"(image {ui.short(result.image_id)}, exit {result.exit_code})", expand=False))
    if result.provenance:
        out.print(escape(result.provenance), soft_wrap=True)
    if result.run and result.run.unenforced:
        out.print(f"[yellow]the engine could not enforce these limits: {escape(', '.join(result.run.unenforced))}[/] "
                  "(rootless Podman on a cgroup v1 host)", soft_wrap=True)
    status_style = {"identical": "green", "within_tolerance": "cyan", "ignored": "dim", "differs": "red",
                    "missing": "red", "unexpected": "yellow", "diverged": "red"}
    table = Table(title="outputs", title_justify="left")
    for col in ("path", "reference", "replayed", "status"):  # paths fold; hashes and statuses are never cut
        table.add_column(col, overflow="fold", no_wrap=col != "path")
    for o in result.outputs:
        st = status_style.get(o.status, "white")
        label = o.status + (" (ignored)" if o.ignored and o.status != "ignored" else "")
        table.add_row(escape(o.path), ui.short(o.reference_sha256), ui.short(o.replayed_sha256), f"[{st}]{label}[/]")
    out.print(table)
    if result.metrics:
        mt = Table(title="metrics", title_justify="left")
        # Numbers and statuses are never cut: in a narrow terminal the differences get two-line headers,
        # and metric names and tolerances fold.
        diff = "\n" if out.width < 100 else " "
        for col in ("metric", "reference", "replayed", f"abs{diff}diff", f"rel{diff}diff", "tolerance", "status"):
            mt.add_column(
                col,
                justify="right" if col not in ("metric", "tolerance", "status") else "left",
                overflow="fold",
                no_wrap=col not in ("metric", "tolerance"),
                min_width=max(len(word) for word in col.split()),
            )
        for r in result.metrics:
            st = status_style.get(r.status, "white")
            mt.add_row(escape(r.name), ui.number(r.reference), ui.number(r.replayed), ui.number(r.abs_diff),
                       ui.number(r.rel_diff),
                       escape(r.tolerance),
                       f"[{st}]{r.status}[/]")
        out.print(mt)
    explained = [o for o in result.outputs if o.explanation]
    for o in explained:
        out.print(f"[bold]{escape(o.path)}[/]: {escape(o.explanation.summary() if o.explanation else '')}", soft_wrap=True)
    written = result.run.undeclared_line() if result.run else None
    if written:
        out.print(f"[yellow]note[/] {escape(written)}", soft_wrap=True)
    if result.diagnosis:
        out.print("[bold]what changed underneath[/]")
        for f in result.diagnosis:
            mark = "[cyan]noise[/]" if f.kind == "noise" else "[red]likely[/]" if f.likely else \
                "[dim]ruled out / unlikely[/]"
            kind = escape(f"[{f.kind}]")
            out.print(f"  {mark} {kind} {escape(f.message)}", soft_wrap=True)
        cap, ver = result.hosts.capture, result.hosts.verify
        if cap is not None and ver is not None:
            ht = Table(title="capture host vs this host", title_justify="left")
            for col in ("", "capture", "verify"):
                ht.add_column(col)
            for label, a, b, differs in host_table(cap, ver):
                ht.add_row(escape(label), escape(a), f"[red]{escape(b)}[/]" if differs else escape(b))
            out.print(ht)
    if result.investigation:
        _render_investigation(result.investigation)
    t = result.timings
    if t:
        out.print("[dim]" + "  ".join(f"{k} {v:.2f}s" for k, v in t.items()) + "[/]")


def _render_investigation(found: dict[str, object]) -> None:
    from rich.markup import escape

    from replay import ui
    from replay.core.verify.investigate import experiment_lines

    ui.out.print(f"[bold]investigation[/] ({found.get('extra_replays')} extra replays, {found.get('seconds')} s)")
    for line in experiment_lines(found):
        ui.out.print(f"  {escape(line)}", soft_wrap=True)


def _render_data_problems(problems: list[dict[str, object]]) -> None:
    from rich.table import Table

    from replay import ui
    from replay.ui import escape

    table = Table(title="data that differs from the capture", title_justify="left")
    for col in ("path", "problem", "expected", "found"):
        table.add_column(col)
    for p in problems:
        expected = f"{p.get('expected_size', '-')} B {ui.short(str(p.get('expected_sha256') or ''))}"
        found = f"{p.get('actual_size', '-')} B {ui.short(str(p.get('actual_sha256') or ''))}"
        table.add_row(escape(str(p.get("path"))), str(p.get("problem")), expected, found)
    ui.err.print(table)

