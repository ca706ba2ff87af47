"""The batch report rendered for people: Markdown, JUnit XML and one self-contained HTML page.

Every renderer reads the same view model (``view``), built from a ``BatchReport``; the rich table of the CLI
reads it too. Capsule names, paths and explanations come from capsules (untrusted): the HTML template is
rendered with jinja2 autoescape on, JUnit goes through ElementTree, Markdown cells are escaped.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass

from replay.core.batch.details import DetailView, MachinesView, details, machines, when
from replay.core.batch.report import OUTCOMES, BatchReport, CapsuleLine, Outcome
from replay.core.verify.report import junit_suite
from replay.display import short
from replay.textsafe import md_code, md_text, neutral, xml_text

# Colours shared by the HTML page (and named after rich's, which the CLI uses).
STYLE = {
    Outcome.IDENTICAL: "green", Outcome.EQUIVALENT: "cyan", Outcome.DIVERGED: "red",
    Outcome.COMMAND_FAILED: "magenta", Outcome.COULD_NOT_VERIFY: "yellow", Outcome.NOT_RUN: "grey",
}


@dataclass
class CountView:
    outcome: str  # the enum value
    label: str
    count: int
    percent: float
    style: str


@dataclass
class RowView:
    name: str
    outcome: str
    label: str
    style: str
    exit_code: str
    experiment: str
    image: str  # the capsule's image, 12 hex characters: what `replay verify` prints
    data: str
    commit: str
    explanation: str
    rank: int  # sort key: the outcome's order
    node: str = ""  # where it was replayed (a Slurm node; this host locally)
    image_group: str = ""  # I1, I2, ...: capsules sharing an environment image
    anchor: str = ""  # the id of its section in the HTML page; "" for an identical capsule (none)


@dataclass
class GroupView:
    kind: str
    id: str
    label: str
    capsules: int
    reproduced: int
    rate: str
    counts: list[int]


@dataclass
class View:
    title: str
    rate: str
    reproduced: int
    total: int
    exit_code: int
    banner_style: str
    counts: list[CountView]
    rows: list[RowView]
    groups: list[GroupView]
    work: list[tuple[str, str]]  # (what, "done / against")
    outcome_labels: list[str]
    created: str = ""  # "2026-12-04 22:31:07 UTC"
    project: str = ""
    details: list[DetailView] | None = None  # every capsule not identical
    machines: MachinesView | None = None
    version: str = ""  # the replay that verified

    @property
    def single(self) -> bool:
        """One capsule: the page is that capsule's report (its verdict in the banner, no batch tables)."""
        return len(self.rows) == 1


def view(report: BatchReport) -> View:
    counts = [CountView(o.value, o.label, report.counts[o], report.percent(o), STYLE[o]) for o in OUTCOMES]
    # Capsule strings neutralized once here (control characters shown escaped), for the page and the Markdown.
    rows = [RowView(neutral(_name(c)), c.outcome.value, c.outcome.label, STYLE[c.outcome],
                    "-" if c.exit_code is None else str(c.exit_code), neutral(c.experiment), short(c.image_id),
                    neutral(c.data), neutral(c.commit), neutral(c.explanation), OUTCOMES.index(c.outcome),
                    neutral(c.node), neutral(c.image)) for c in report.capsules]
    groups = [GroupView(kind, g.id, neutral(g.label), g.total, g.reproduced, f"{100 * g.rate:.0f}%",
                        [g.counts.get(o, 0) for o in OUTCOMES])
              for kind, lines in report.groups.items() for g in lines]
    p = report.plan
    n = p.capsules
    work = [
        ("images checked", f"{p.images_checked} for {n} capsules"),
        ("data sets checked", f"{p.data_sets_checked} for {n} capsules"),
        ("replays run", f"{p.replays_run} for {n} capsules ({p.experiments} distinct experiments)"),
        ("parallel jobs", str(p.jobs)),
        ("backend", p.backend),
    ]
    rate = f"{100 * report.rate:.1f}%"
    style = "green" if report.exit_code == 0 else "red" if report.counts[Outcome.DIVERGED] else "yellow"
    explained = details(report, STYLE)
    for n, r in enumerate(r for r in rows if r.outcome != Outcome.IDENTICAL.value):
        r.anchor = f"capsule-{n + 1}"  # details() lists the same capsules in the same order
    title = f"replay: {report.reproduced} of {len(report.capsules)} capsules reproduced"
    if len(rows) == 1:
        title = f"replay verify {rows[0].name}: {rows[0].label}"
    return View(title, rate, report.reproduced, len(report.capsules), report.exit_code, style, counts, rows, groups,
                work, [o.label for o in OUTCOMES], when(report.created) or "unknown", neutral(report.project),
                explained, machines(report), neutral(report.replay_version))



def _name(line: CapsuleLine) -> str:
    """A capsule as it names itself (its manifest's name, the JSON report's "capsule"), not by its folder."""
    return line.report.capsule if line.report is not None and line.report.capsule else line.name


# --- Markdown ------------------------------------------------------------------------------------------


def to_markdown(report: BatchReport) -> str:
    v = view(report)
    lines = [f"## {_cell(v.title)}: {v.rate} (exit {v.exit_code})", "",
             f"Verified {_cell(v.created)} from {md_code(v.project or '-', False)}.", "",
             "| outcome | capsules | % |", "|---|---:|---:|"]
    lines += [f"| {c.label} | {c.count} | {c.percent:.1f} |" for c in v.counts]
    lines += ["", "| capsule | verdict | experiment | image | data | commit |", "|---|---|---|---|---|---|"]
    lines += [f"| {_cell(r.name)} | **{r.label}** | {_cell(r.experiment)} | {_cell(r.image)} | {_cell(r.data)} "
              f"| {md_code(r.commit)} |"
              for r in v.rows]
    explained = [r for r in v.rows if r.explanation]
    if explained:
        lines += ["", "### Why not reproduced", ""]
        lines += [f"- **{_cell(r.name)}** ({r.label}): {_cell(r.explanation)}" for r in explained]
    lines += ["", "### Per group", "", "| group | what | capsules | reproduced | rate |", "|---|---|---:|---:|---:|"]
    lines += [f"| {g.kind} {g.id} | {_cell(g.label)} | {g.capsules} | {g.reproduced} | {g.rate} |" for g in v.groups]
    lines += ["", "### Work the plan saved", ""]
    lines += [f"- {what}: {done}" for what, done in v.work]
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return md_text(text)


# --- JUnit ---------------------------------------------------------------------------------------------


def to_junit(report: BatchReport) -> str:
    """One testsuite per capsule (a case per output and metric, as a single verify writes), in one file."""
    root = ET.Element("testsuites", name="replay verify batch")
    for line in report.capsules:
        if line.report is not None:  # the element itself: never a string parsed back
            suite = junit_suite(line.report)
            suite.set("name", xml_text(f"replay verify {line.name}", False))
            root.append(suite)
            continue
        suite = ET.SubElement(root, "testsuite", name=xml_text(f"replay verify {line.name}", False), tests="1",
                              failures="0", errors="0", skipped="1", time="0")
        case = ET.SubElement(suite, "testcase", classname="replay", name="run")
        ET.SubElement(case, "skipped", message=xml_text(line.explanation, False))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


# --- HTML ----------------------------------------------------------------------------------------------


def to_html(report: BatchReport) -> str:
    """One self-contained page (inline CSS and JS, no external asset): banner, sortable table, explanations."""
    import jinja2

    from replay.assets import templates_dir

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        undefined=jinja2.StrictUndefined,
        autoescape=True,  # every string may come from a hostile capsule
        keep_trailing_newline=True,
    )
    return str(env.get_template("batch_report.html.j2").render(v=view(report)))
