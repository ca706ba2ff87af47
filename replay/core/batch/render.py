"""The batch report rendered for people: Markdown, JUnit XML and one self-contained HTML page.

Every renderer reads the same view model (``view``), built from a ``BatchReport``; the rich table of the CLI
reads it too. Capsule names, paths and explanations come from capsules (untrusted): the HTML template is
rendered with jinja2 autoescape on, JUnit goes through ElementTree, Markdown cells are escaped.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass

from replay.core.batch.report import OUTCOMES, BatchReport, CapsuleLine, Outcome
from replay.core.verify.report import junit_suite
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
    image: str
    data: str
    commit: str
    explanation: str
    rank: int  # sort key: the outcome's order
    node: str = ""  # where it was replayed (a Slurm node; this host locally)


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


def view(report: BatchReport) -> View:
    counts = [CountView(o.value, o.label, report.counts[o], report.percent(o), STYLE[o]) for o in OUTCOMES]
    # Capsule strings neutralized once here (control characters shown escaped), for the page and the Markdown.
    rows = [RowView(neutral(_name(c)), c.outcome.value, c.outcome.label, STYLE[c.outcome],
                    "-" if c.exit_code is None else str(c.exit_code), neutral(c.experiment), neutral(c.image),
                    neutral(c.data), neutral(c.commit), neutral(c.explanation), OUTCOMES.index(c.outcome),
                    neutral(c.node)) for c in report.capsules]
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
    return View(f"replay: {report.reproduced} of {len(report.capsules)} capsules reproduced", rate,
                report.reproduced, len(report.capsules), report.exit_code, style, counts, rows, groups, work,
                [o.label for o in OUTCOMES])


def _name(line: CapsuleLine) -> str:
    """A capsule as it names itself (its manifest's name, the JSON report's "capsule"), not by its folder."""
    return line.report.capsule if line.report is not None and line.report.capsule else line.name


# --- Markdown ------------------------------------------------------------------------------------------


def to_markdown(report: BatchReport) -> str:
    v = view(report)
    lines = [f"## {_cell(v.title)}: {v.rate} (exit {v.exit_code})", "",
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
