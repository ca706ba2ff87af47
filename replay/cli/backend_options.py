"""`replay verify --backend slurm ...`: the backend options, and the submit-wait-merge run with its live table.

Kept apart from ``replay/cli/verify.py`` so the verify command only declares these options and hands over
when a batch backend other than the in-process one is chosen (here or under ``[tool.replay]``).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from replay.core.batch_task import VerifyOptions
    from replay.core.ports import JobStatus
    from replay.core.remote_batch import BackendSettings, RemoteGroup

BackendOpt = Annotated[str | None, typer.Option(
    "--backend", help="Where the batch runs: local, or slurm (one job array on the cluster). Default: [tool.replay].")]
JobsOpt = Annotated[int | None, typer.Option("--jobs", help="At most N tasks at once (Slurm: the array's %N).")]
PartitionOpt = Annotated[str | None, typer.Option("--partition", help="Slurm partition for the array.")]
TimeOpt = Annotated[str | None, typer.Option("--time", help="Slurm time limit per task, e.g. 30 or 2:00:00.")]
GpusOpt = Annotated[int | None, typer.Option("--gpus", help="GPUs per Slurm task.")]
WorkdirOpt = Annotated[Path | None, typer.Option(
    "--workdir", help="Shared folder for task and result files (default: .replay-work beside the capsules).")]


def settings(cwd: Path, backend: str | None, jobs: int | None, partition: str | None, time_limit: str | None,
             gpus: int | None, workdir: Path | None) -> BackendSettings:
    from replay.config import load_defaults
    from replay.core.remote_batch import BackendSettings

    return BackendSettings.merge(load_defaults(cwd), cwd, backend, jobs, partition, time_limit, gpus, workdir)


def verify_on_backend(chosen: BackendSettings, targets: list[str], options: VerifyOptions, as_json: bool,
                      report: Path | None, junit: Path | None, markdown: Path | None) -> None:
    """Resolve, group, submit, wait with a live table, merge; print the per-capsule verdicts; exit."""
    from replay import factory
    from replay.core import targets as targets_mod
    from replay.core.remote_batch import group_by_experiment, run_remote

    cwd = Path(options.cwd)
    with tempfile.TemporaryDirectory(prefix="replay-target-") as scratch:
        resolved = targets_mod.resolve(targets, targets_mod.ResolveContext(cwd, Path(scratch)))
        paths = [(c.path if c.path.is_absolute() else cwd / c.path).resolve() for c in resolved]
        groups = group_by_experiment(paths)
        backend = factory.backend(chosen.name, **chosen.options(paths))
        with _LiveTable(groups, enabled=not as_json) as live:
            reports = run_remote(backend, groups, options, chosen.jobs, on_status=live.update)
    _write(reports, chosen.name, as_json, report, junit, markdown)
    if not as_json:
        _render(reports)
    raise typer.Exit(batch_exit_code(reports))


def batch_exit_code(reports: list[dict[str, Any]]) -> int:
    """0 when every capsule reproduced; else the highest code among them (error over diverged)."""
    codes = [int(r.get("exit_code", 2)) for r in reports]
    return max(codes, default=0)


class _LiveTable:
    """pending / running on NODE / done, one row per task, on stderr (results go to stdout)."""

    def __init__(self, groups: list[RemoteGroup], enabled: bool) -> None:
        self.groups = groups
        self.rows: dict[int, tuple[str, str]] = {i: ("pending", "") for i in range(len(groups))}
        self.enabled = enabled
        self.live: Any = None

    def __enter__(self) -> _LiveTable:
        if self.enabled:
            from rich.live import Live

            from replay import ui

            self.live = Live(self._table(), console=ui.err, refresh_per_second=4, transient=False)
            self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.__exit__(*exc)

    def update(self, index: int, group: RemoteGroup, status: JobStatus) -> None:
        word = {"running": f"running on {status.node}" if status.node else "running",
                "done": "done"}.get(status.state.value, status.state.value)
        detail = status.detail if status.state.final and status.state.value != "done" else ""
        self.rows[index] = (word, detail)
        if self.live is not None:
            self.live.update(self._table())

    def _table(self) -> Any:
        from rich.table import Table

        table = Table(title="batch", title_justify="left")
        for col in ("task", "capsules", "state", "detail"):
            table.add_column(col, overflow="fold")
        for i, group in enumerate(self.groups):
            word, detail = self.rows[i]
            style = "green" if word == "done" else "yellow" if word.startswith(("pending", "running")) else "red"
            table.add_row(str(i), ", ".join(p.name for p in group.capsules), f"[{style}]{word}[/]", detail)
        return table


def _write(reports: list[dict[str, Any]], backend: str, as_json: bool, report: Path | None, junit: Path | None,
           markdown: Path | None) -> None:
    import xml.etree.ElementTree as ET

    from replay import jsonio, ui
    from replay.core.report import VerifyReport, to_junit, to_markdown
    from replay.fsutil import atomic_write_text

    document = {"schema": "replay.batch-report", "schema_version": 1, "backend": backend,
                "exit_code": batch_exit_code(reports), "reports": reports}
    if as_json:
        ui.print_json(document)
    if report:
        atomic_write_text(report, jsonio.dumps(document) + "\n")
    typed = [VerifyReport.from_dict(r) for r in reports] if junit or markdown else []
    if junit:
        suites = ET.Element("testsuites", name="replay verify batch")
        for r in typed:
            suites.append(ET.fromstring(to_junit(r).encode()))
        atomic_write_text(junit, ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n")
    if markdown:
        atomic_write_text(markdown, "\n".join(to_markdown(r) for r in typed))


def _render(reports: list[dict[str, Any]]) -> None:
    from rich.table import Table

    from replay import ui

    table = Table(title="verdicts", title_justify="left")
    for col in ("capsule", "verdict", "exit", "node", "error"):
        table.add_column(col, overflow="fold", no_wrap=col in ("verdict", "exit"))
    style = {"identical": "green", "equivalent": "cyan", "diverged": "red"}
    for r in reports:
        verdict = str(r.get("verdict"))
        node = str((r.get("run") or {}).get("node", ""))
        table.add_row(str(r.get("capsule")), f"[{style.get(verdict, 'yellow')}]{verdict}[/]", str(r.get("exit_code")),
                      node, str(r.get("error") or ""))
    ui.out.print(table)
