"""`replay verify TARGET...` with more than one capsule: plan, run in parallel with a live table, report."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from replay.core.events import NullReporter

if TYPE_CHECKING:
    from replay.core.batch.plan import Plan
    from replay.core.batch.report import BatchReport
    from replay.core.batch.run import ExperimentRow
    from replay.core.batch.settings import BackendSettings
    from replay.core.share.targets import ResolvedCapsule
    from replay.core.verify.options import ReplayOptions

PLAN_SCHEMA = "replay.batch-plan"


def batch_cmd(found: list[ResolvedCapsule], options: ReplayOptions, *, jobs: int | None, plan_only: bool,
              fail_fast: bool, chosen: BackendSettings, targets: list[str], as_json: bool, report: Path | None,
              junit: Path | None, markdown: Path | None, html: Path | None) -> None:
    from replay import factory, ui
    from replay.core.batch.plan import load_capsules, make_plan
    from replay.core.batch.report import build_batch_report
    from replay.core.batch.run import BatchOptions, run_batch
    from replay.core.verify.tolerance import parse_tolerance

    for spec in options.tolerances.values():
        parse_tolerance(spec)
    for destination, flag in ((report, "--report"), (junit, "--junit"), (markdown, "--markdown"), (html, "--html")):
        if destination is not None:
            _check_destination(destination, flag)
    cwd = options.cwd
    plan = make_plan(load_capsules(found, cwd), cwd, options.data_map, chosen.jobs if chosen.remote else jobs)
    if plan_only:
        if as_json:
            ui.print_json({"schema": PLAN_SCHEMA, "schema_version": 1, **plan.to_dict()})
        else:
            _render_plan(plan)
        raise typer.Exit(0)
    # --data is in the plan, per capsule; the engine chosen here is the one a remote task's node uses
    batch_options = BatchOptions(options.with_data({}), fail_fast=fail_fast, engine=factory.engine_choice())
    engine = None
    if chosen.remote:  # the nodes' engines check the images: this machine may have none
        backend = factory.backend(chosen.name, **chosen.options(targets, cwd))
    else:
        engine = factory.engine()
        engine.version()  # no engine: one clear error before anything starts
        backend = factory.backend(chosen.name, engine=engine)
    with _LiveTable(plan) as live:
        result = run_batch(plan, batch_options, engine, backend, observe=live.update, reporter=live)
    from replay.config import find_project_root

    batch = build_batch_report(result, project=str(find_project_root(cwd, factory.source_control())))
    from replay.core.capsules.list import record_report

    for index, done in result.reports.items():
        if index < len(found) and found[index].local:
            record_report(found[index].path, done)
    _write(batch, as_json, report, junit, markdown, html)
    if not as_json:
        render(batch)
    raise typer.Exit(batch.exit_code)


def _check_destination(path: Path, flag: str) -> None:
    from replay.errors import BadInput

    if path.is_dir():
        raise BadInput(f"{flag} {path} is a folder", "pass a file name")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise BadInput(f"{flag} {path}: folder {parent} does not exist", "create it first, or write elsewhere")


def _write(batch: BatchReport, as_json: bool, report: Path | None, junit: Path | None, markdown: Path | None,
           html: Path | None) -> None:
    from replay import ui
    from replay.core.batch.render import to_html, to_junit, to_markdown
    from replay.fsutil import atomic_write_text

    if as_json:
        import json

        ui.print_json(json.loads(batch.to_json()))  # strict JSON: NaN and Infinity as strings
    if report:
        atomic_write_text(report, batch.to_json() + "\n")
    if junit:
        atomic_write_text(junit, to_junit(batch))
    if markdown:
        atomic_write_text(markdown, to_markdown(batch))
    if html:
        atomic_write_text(html, to_html(batch))


def _render_plan(plan: Plan) -> None:
    from rich.table import Table

    from replay import ui
    from replay.ui import escape

    counts = plan.counts()
    table = Table(title="batch plan", title_justify="left")
    for col in ("experiment", "capsules", "image", "data", "command"):
        table.add_column(col, overflow="fold")
    for e in plan.experiments:
        first = plan.capsules[e.members[0]]
        table.add_row(e.id, "\n".join(escape(plan.capsules[i].name) for i in e.members), first.image_group,
                      first.data_group, escape(e.label))
    ui.out.print(table)
    for c in plan.unreadable:
        ui.out.print(f"[yellow]cannot read[/] {escape(c.name)}: {escape(c.error.one_line() if c.error else '')}",
                     soft_wrap=True)
    ui.out.print(f"{counts['capsules']} capsules: {counts['images']} images to check, {counts['data_sets']} data "
                 f"sets to check, {counts['experiments']} replays to run, {plan.jobs} at a time")


class _LiveTable(NullReporter):
    """One row per experiment on stderr (queued, checking, running on NODE with elapsed time, verdicts; the
    backend's state and words for a task it ended, e.g. Slurm's TIMEOUT), and a summary line with the rate."""

    def __init__(self, plan: Plan) -> None:
        self._plan = plan
        self._rows: list[ExperimentRow] = []
        self._live: Any = None
        self._bytes: tuple[str, float, float | None] | None = None  # an image being brought in, under the table

    def __enter__(self) -> _LiveTable:
        from rich.live import Live

        from replay import ui

        self._live = Live(get_renderable=self._table, console=ui.err, refresh_per_second=4, transient=False)
        self._live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._bytes = None  # the last frame (the one a pipe gets) shows no transfer
        if self._live is not None:
            self._live.stop()
            from replay import ui

            if not ui.err.is_terminal:
                ui.err.line()  # rich leaves the last frame on a pipe or file without its newline

    def update(self, rows: list[ExperimentRow]) -> None:
        self._rows = list(rows)

    # The core's Reporter, for the bytes of an image brought in while the images are checked; the rest is
    # the table's.
    def progress(self, task: str, completed: float, total: float | None = None) -> None:
        self._bytes = None if total is not None and completed >= total else (task, completed, total)

    def stage(self, name: str) -> None:
        self._bytes = None

    def _table(self) -> Any:
        from rich.table import Table

        from replay.core.batch.run import Phase
        from replay.ui import escape, human_bytes

        table = Table(title="replay verify: batch", title_justify="left")
        for col in ("experiment", "capsules", "state", "time", "verdicts"):
            table.add_column(col, overflow="fold")
        done = reproduced = 0
        for row in self._rows:
            state = row.phase.value
            if row.phase is Phase.RUNNING:
                state = f"[cyan]running on {escape(row.node)}[/]" if row.node else "[cyan]running[/]"
            elif row.backend_state:
                state = f"[red]{row.backend_state}[/]" + (f" on {escape(row.node)}" if row.node else "")
            elapsed = f"{row.elapsed_s:.1f}s" if row.started is not None else ""
            verdicts = ", ".join(row.verdicts) + (f"\n[dim]{escape(row.detail)}[/]" if row.detail else "")
            table.add_row(row.id, str(len(row.capsules)), state, elapsed, verdicts)
            done += len(row.verdicts)
            reproduced += sum(1 for v in row.verdicts if v.reproduced)
        total = len(self._plan.capsules)
        rate = f"{100 * reproduced / done:.0f}%" if done else "-"
        table.caption = f"{done}/{total} capsules verified, {reproduced} reproduced (rate so far {rate})"
        if self._bytes is not None:
            task, moved, size = self._bytes
            of = f" / {human_bytes(size)}" if size else ""
            table.caption += f"\n{escape(task)} {human_bytes(moved)}{of}"
        return table


def render(batch: BatchReport) -> None:
    """The human report on stdout: rate banner, counts, one line per capsule, explanations, work saved."""
    from rich.panel import Panel
    from rich.table import Table

    from replay import ui
    from replay.core.batch.render import view
    from replay.ui import escape

    v = view(batch)
    out = ui.out
    out.print(Panel(f"[bold {v.banner_style}]{v.rate} reproduced[/]  {v.reproduced} of {v.total} capsules "
                    f"(exit {v.exit_code})", expand=False))
    out.print("  ".join(f"[{c.style}]{c.label}[/] {c.count} ({c.percent:.0f}%)" for c in v.counts), soft_wrap=True)
    remote = batch.plan.backend != "local"  # then where each ran is worth a column
    table = Table(title="capsules", title_justify="left")
    for col in ("capsule", "verdict", "experiment", "image", "data", "commit", *(["node"] if remote else [])):
        table.add_column(col, overflow="fold", no_wrap=col == "verdict")
    for r in v.rows:
        table.add_row(escape(r.name), f"[{r.style}]{r.label}[/]", r.experiment, r.image, r.data, escape(r.commit),
                      *([escape(r.node)] if remote else []))
    out.print(table)
    for r in v.rows:
        if r.explanation:
            out.print(f"[bold]{escape(r.name)}[/] ({r.label}): {escape(r.explanation)}", soft_wrap=True,
                      highlight=False)
    out.print("[dim]" + "; ".join(f"{what}: {done}" for what, done in v.work) + "[/]", soft_wrap=True)
