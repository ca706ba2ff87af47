"""What the HTML report says about each capsule that is not identical, and about the machines involved.

Structured, never one paragraph: the outputs and metrics that differ (each with its own explanation), the
findings once each (likely, noise, ruled out), the capture host beside the verify host, notes on undeclared
writes and unenforced limits, the investigation's experiments. Built from the typed ``VerifyReport``s the
batch report carries; every string is neutralized here (the page escapes it again, as HTML).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from replay.core.batch.report import BatchReport, CapsuleLine, Outcome
from replay.core.verify.diagnose import UNKNOWN, host_facts, host_table
from replay.core.verify.investigate import experiment_lines
from replay.core.verify.report import VerifyReport
from replay.display import number, short
from replay.manifest import HostInfo
from replay.textsafe import neutral


@dataclass
class OutputView:
    path: str
    status: str
    explanation: str


@dataclass
class MetricView:
    name: str
    reference: str
    replayed: str
    abs_diff: str
    tolerance: str
    status: str


@dataclass
class FindingView:
    mark: str  # "likely", "noise", "ruled out / unlikely": the terminal's words
    kind: str
    message: str


@dataclass
class HostRow:
    field: str
    capture: str
    verify: str
    differs: bool


@dataclass
class DetailView:
    name: str
    outcome: str
    label: str
    style: str
    exit_code: str
    image: str  # the short ID the terminal prints
    captured: str
    summary: str
    outputs: list[OutputView] = field(default_factory=list)
    metrics: list[MetricView] = field(default_factory=list)
    findings: list[FindingView] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    hosts: list[HostRow] = field(default_factory=list)
    investigation: list[str] = field(default_factory=list)
    log: str = ""  # the last lines of the replayed command's log, when the command failed


# The log shown for a failed command: its last lines, each cut, as the terminal shows them.
LOG_LINES = 30
LOG_LINE_CHARS = 500


@dataclass
class HostColumn:
    label: str  # "capture", "verify", "verify 2", ...
    capsules: int
    values: list[str]


@dataclass
class MachinesView:
    fields: list[str]
    columns: list[HostColumn]
    differs: list[bool]  # per field: the columns disagree (an unknown value never counts)


def details(report: BatchReport, styles: dict[Outcome, str]) -> list[DetailView]:
    """One view per capsule that is not identical, in the report's order."""
    return [_detail(line, styles[line.outcome]) for line in report.capsules if line.outcome is not Outcome.IDENTICAL]


def machines(report: BatchReport) -> MachinesView:
    """Every distinct capture host and verify host, one column each, with how many capsules it served."""
    columns: list[HostColumn] = []
    for role in ("capture", "verify"):
        seen: dict[str, tuple[HostInfo, int]] = {}
        for line in report.capsules:
            host = _host(line.report, role)
            if host is not None:
                key = repr(asdict(host))
                seen[key] = (host, seen[key][1] + 1 if key in seen else 1)
        for n, (host, count) in enumerate(seen.values(), start=1):
            label = role if len(seen) == 1 else f"{role} {n}"
            columns.append(HostColumn(label, count, [neutral(v) for _, v in host_facts(host)]))
    names = [label for label, _ in host_facts(HostInfo())]
    differs = [len({c.values[i] for c in columns} - {UNKNOWN}) > 1 for i in range(len(names))]
    return MachinesView(names, columns, differs)


def _host(report: VerifyReport | None, role: str) -> HostInfo | None:
    if report is None:
        return None
    return report.hosts.capture if role == "capture" else report.hosts.verify


def _detail(line: CapsuleLine, style: str) -> DetailView:
    r = line.report
    view = DetailView(neutral(r.capsule if r is not None and r.capsule else line.name), line.outcome.value,
                      line.outcome.label, style, "-" if line.exit_code is None else str(line.exit_code),
                      short(line.image_id), when(line.captured), _text(_summary(line)))
    if r is None:
        return view
    if line.outcome is Outcome.COMMAND_FAILED and r.run is not None and r.run.log_tail:
        view.log = _text("\n".join(x[:LOG_LINE_CHARS] for x in r.run.log_tail.splitlines()[-LOG_LINES:]))
    view.outputs = [OutputView(neutral(o.path), o.status.value + (" (ignored)" if o.ignored else ""),
                               _text(o.explanation.summary() if o.explanation else ""))
                    for o in r.outputs if o.status != "identical"]
    view.metrics = [MetricView(neutral(m.name), number(m.reference), number(m.replayed), number(m.abs_diff),
                               neutral(m.tolerance), m.status.value)
                    for m in r.metrics if m.status != "identical"]
    seen: set[tuple[str, str]] = set()
    for f in r.diagnosis:  # each finding once, however many steps named it
        if (f.kind, f.message) not in seen:
            seen.add((f.kind, f.message))
            mark = "noise" if f.kind == "noise" else "likely" if f.likely else "ruled out / unlikely"
            view.findings.append(FindingView(mark, f.kind, _text(f.message)))
    if r.run is not None:
        written = r.run.undeclared_line()
        view.notes += [_text(written)] if written else []
        if r.run.unenforced:
            view.notes.append(_text("the engine could not enforce these limits: " + ", ".join(r.run.unenforced)))
    if r.provenance:
        view.notes.append(_text(r.provenance))
    cap, ver = r.hosts.capture, r.hosts.verify
    if cap is not None and ver is not None:
        view.hosts = [HostRow(label, neutral(a), neutral(b), differs) for label, a, b, differs in host_table(cap, ver)]
    view.investigation = _investigation(r.investigation)
    return view


def when(iso: str) -> str:
    """An ISO 8601 time as people read it, in UTC ("2026-12-04 22:31:07 UTC"); "" stays ""; anything that is
    not a time is shown as it is (neutralized)."""
    if not iso:
        return ""
    try:
        moment = datetime.fromisoformat(iso)
    except ValueError:
        return neutral(iso)
    if moment.tzinfo is None:
        return neutral(iso)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _summary(line: CapsuleLine) -> str:
    r = line.report
    if r is None or line.outcome in (Outcome.COMMAND_FAILED, Outcome.COULD_NOT_VERIFY, Outcome.NOT_RUN):
        return line.explanation or line.outcome.label
    outputs = sum(1 for o in r.outputs if o.status != "identical" and not o.ignored)
    metrics = sum(1 for m in r.metrics if m.status != "identical")
    what = f"{outputs} output{'s' * (outputs != 1)} and {metrics} metric{'s' * (metrics != 1)} differ"
    if line.outcome is Outcome.EQUIVALENT:
        return f"reproduced within tolerance: {what}, each within its tolerance"
    beyond = sum(1 for o in r.outputs if not o.settled) + sum(1 for m in r.metrics if not m.status.settled)
    return f"{what}; {beyond} beyond tolerance"


def _investigation(found: dict[str, Any] | None) -> list[str]:
    if not found:
        return []
    cause = "confirmed" if found.get("confirmed") else "suspected"
    head = (f"cause {cause}: {found.get('cause')} ({found.get('extra_replays')} extra replays, "
            f"{found.get('seconds')} s)")
    return [_text(line) for line in (head, *experiment_lines(found))]


def _text(text: str) -> str:
    """A sentence or a quoted line of a log: control characters escaped, newlines and tabs kept (the page
    shows them as they are, in a pre-wrapped block)."""
    return neutral(text, keep_newlines=True)

