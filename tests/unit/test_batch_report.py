"""The batch report: outcomes, the exit-code order, the versioned JSON, and its escaped renderings."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from replay.core.batch.plan import make_plan
from replay.core.batch.render import to_html, to_junit, to_markdown
from replay.core.batch.report import BatchReport, Outcome, batch_exit_code, build_batch_report, outcome_of
from replay.core.batch.run import BatchResult, ExperimentRow
from replay.core.verify.compare import MetricResult, OutputResult
from replay.core.verify.report import VerifyReport
from tests.unit.test_plan import capture, planned

HOSTILE = '<script>alert("x")</script>&<b>|'


def report(name: str, verdict: str, exit_code: int, error: str | None = None) -> VerifyReport:
    r = VerifyReport(capsule=name, capsule_path=f"/c/{name}", verdict=verdict, exit_code=exit_code, error=error)
    if verdict == "diverged":
        r.outputs = [OutputResult(path="out/model.pkl", reference_sha256="sha256:" + "a" * 64,
                                  replayed_sha256="sha256:" + "b" * 64, reference_size=10, replayed_size=10,
                                  status="differs")]
        r.metrics = [MetricResult(name="accuracy", reference=0.9, replayed=float("nan"), abs_diff=None, rel_diff=None,
                                  tolerance="exact", status="diverged")]
    return r


def batch(tmp_path: Path, verdicts: list[VerifyReport | None], names: list[str] | None = None) -> BatchResult:
    names = names or [f"c{i}" for i in range(len(verdicts))]
    plan = make_plan(planned([capture(n, seed=i) for i, n in enumerate(names)], tmp_path), tmp_path, cores=2)
    reports = {i: r for i, r in enumerate(verdicts) if r is not None}
    return BatchResult(plan, reports, [ExperimentRow("E1", "x", names)], images_checked=1, data_sets_checked=1,
                       replays_run=len(reports), timings={"total": 1.0})


def test_outcomes_of_verify_reports() -> None:
    assert outcome_of(report("a", "identical", 0)) is Outcome.IDENTICAL
    assert outcome_of(report("a", "equivalent", 0)) is Outcome.EQUIVALENT
    assert outcome_of(report("a", "diverged", 1)) is Outcome.DIVERGED
    assert outcome_of(report("a", "error", 4, "exited 3")) is Outcome.COMMAND_FAILED
    assert outcome_of(report("a", "error", 3, "no image")) is Outcome.COULD_NOT_VERIFY
    assert outcome_of(report("a", "error", 2, "data changed")) is Outcome.COULD_NOT_VERIFY
    assert outcome_of(None) is Outcome.NOT_RUN


@pytest.mark.parametrize("codes,expected", [
    ([0, 0], 0),
    ([0, 1, 4, 3, 2], 1),  # any divergence wins
    ([0, 2, 3, 4], 4),     # then a failed command
    ([0, 2, 3], 3),        # then an environment problem
    ([0, 2], 2),
])
def test_exit_code_order(codes: list[int], expected: int) -> None:
    verdict = {0: "identical", 1: "diverged"}
    reports: list[VerifyReport | None] = [report("a", verdict.get(c, "error"), c) for c in codes]
    assert batch_exit_code(reports) == expected


def test_json_is_versioned_strict_and_counts_every_outcome(tmp_path: Path) -> None:
    result = batch(tmp_path, [report("c0", "identical", 0), report("c1", "diverged", 1),
                              report("c2", "error", 4, "the replayed command exited with status 3"), None])
    doc = json.loads(build_batch_report(result).to_json())
    assert doc["schema"] == "replay.batch-report" and doc["schema_version"] == 1
    assert list(doc) == ["schema", "schema_version", "exit_code", "rate", "counts", "groups", "plan", "capsules",
                         "timings", "replay_version", "created", "project"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", doc["created"])
    assert doc["exit_code"] == 1 and doc["rate"] == 0.25
    assert doc["counts"]["identical"] == {"count": 1, "percent": 25.0}
    assert doc["counts"]["not_run"]["count"] == 1 and doc["counts"]["equivalent"]["count"] == 0
    assert set(doc["groups"]) == {"image", "data", "commit"}
    assert doc["plan"]["capsules"] == 4 and doc["plan"]["replays_run"] == 3
    diverged = doc["capsules"][1]
    assert diverged["outcome"] == "diverged" and "out/model.pkl" in diverged["explanation"]
    assert "accuracy" in diverged["explanation"]
    assert diverged["report"]["metrics"][0]["replayed"] == "NaN"  # strict JSON
    assert doc["capsules"][3]["report"] is None and doc["capsules"][3]["outcome"] == "not_run"


def test_html_escapes_hostile_names_and_is_self_contained(tmp_path: Path) -> None:
    bad = report(HOSTILE, "error", 2, f"data differs: {HOSTILE}")
    page = to_html(build_batch_report(batch(tmp_path, [report("ok", "identical", 0), bad], ["ok", HOSTILE])))
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page
    assert page.count("<script>") == 1  # only the page's own sorting script
    assert "http://" not in page and "https://" not in page and "<link" not in page and " src=" not in page
    assert '<section class="capsule" id="capsule-1"' in page and 'data-outcome="could_not_verify"' in page


def test_junit_has_a_suite_per_capsule(tmp_path: Path) -> None:
    xml = to_junit(build_batch_report(batch(tmp_path, [report("c0", "identical", 0), report("c1", "diverged", 1),
                                                       None])))
    root = ET.fromstring(xml.split("\n", 1)[1])
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == ["replay verify c0", "replay verify c1", "replay verify c2"]
    assert suites[1].get("failures") == "2"
    assert suites[2].find("testcase/skipped") is not None


def test_markdown_escapes_table_cells(tmp_path: Path) -> None:
    md = to_markdown(build_batch_report(batch(tmp_path, [report("a", "identical", 0), report("b|c", "diverged", 1)],
                                              ["a", "b|c"])))
    assert "| b\\|c | **diverged** |" in md
    assert "50.0%" in md and "### Why not reproduced" in md and "replays run: 2 for 2 capsules" in md


def _page_report(tmp_path: Path) -> BatchReport:
    from datetime import UTC, datetime

    from replay.core.verify.diagnose import Finding
    from replay.core.verify.report import Hosts
    from replay.manifest import HostInfo

    same = HostInfo(os="Debian 12", cpu_model="Xeon", cores=2, engine="docker")
    equivalent = report("eq", "equivalent", 0)
    equivalent.metrics = [MetricResult(name="loss", reference=0.5, replayed=0.5000001, abs_diff=1e-7, rel_diff=2e-7,
                                       tolerance="rel 1e-6", status="within_tolerance")]
    diverged = report("dv", "diverged", 1)
    diverged.image_id = "sha256:" + "c" * 64
    noise = Finding("noise", "line 3 differs only in a timing\tvalue", True)
    diverged.diagnosis = [noise, Finding("seed", "no seed recorded", False), noise]  # named twice: shown once
    diverged.hosts = Hosts(capture=same, verify=HostInfo(os="Debian 12", cpu_model="EPYC", cores=2, engine="docker"))
    for r in (equivalent,):
        r.hosts = Hosts(capture=same, verify=same)
    result = batch(tmp_path, [report("ok", "identical", 0), equivalent, diverged], ["ok", "eq", "dv"])
    return build_batch_report(result, project="/home/a/digits", created=datetime(2026, 12, 4, 22, 31, 7, tzinfo=UTC))


def test_html_page_carries_date_project_and_the_terminals_short_image_ids(tmp_path: Path) -> None:
    batch_report = _page_report(tmp_path)
    page = to_html(batch_report)
    assert '<time id="created">2026-12-04 22:31:07 UTC</time>' in page
    assert '<code id="project">/home/a/digits</code>' in page
    assert f'<code class="image" title="environment I1">{"c" * 12}</code>' in page  # what `replay verify` prints
    doc = json.loads(batch_report.to_json())
    assert doc["created"] == "2026-12-04T22:31:07Z" and doc["project"] == "/home/a/digits"
    assert doc["capsules"][2]["image_id"] == "sha256:" + "c" * 64


def test_every_capsule_not_identical_gets_a_structured_section_and_findings_appear_once(tmp_path: Path) -> None:
    from replay.core.batch.details import details
    from replay.core.batch.render import STYLE

    shown = details(_page_report(tmp_path), STYLE)
    assert [d.name for d in shown] == ["eq", "dv"]  # the identical one has none
    eq, dv = shown
    assert eq.summary.startswith("reproduced within tolerance") and [m.name for m in eq.metrics] == ["loss"]
    assert [o.path for o in dv.outputs] == ["out/model.pkl"] and dv.metrics[0].status == "diverged"
    assert [f.mark for f in dv.findings] == ["noise", "ruled out / unlikely"]
    assert dv.findings[0].message == "line 3 differs only in a timing\tvalue"  # a tab kept, not shown as \\t
    assert [h.field for h in dv.hosts if h.differs] == ["CPU"]
    page = to_html(_page_report(tmp_path))
    assert page.count("line 3 differs only in a timing") == 1
    assert 'href="#capsule-2"' in page and 'id="capsule-2" data-capsule="dv"' in page


def test_machines_has_one_column_per_distinct_host(tmp_path: Path) -> None:
    from replay.core.batch.details import machines

    m = machines(_page_report(tmp_path))
    assert [(c.label, c.capsules) for c in m.columns] == [("capture", 2), ("verify 1", 1), ("verify 2", 1)]
    assert [f for f, d in zip(m.fields, m.differs, strict=True) if d] == ["CPU"]


def test_a_page_of_one_capsule_has_its_verdict_in_the_banner_and_no_batch_tables(tmp_path: Path) -> None:
    from replay.core.verify.report import Hosts
    from replay.manifest import HostInfo

    one = report("solo", "identical", 0)
    one.hosts = Hosts(capture=HostInfo(os="Debian 12"), verify=HostInfo(os="Debian 12"))
    page = to_html(build_batch_report(batch(tmp_path, [one], ["solo"])))
    assert '<span class="rate" id="verdict">IDENTICAL</span>' in page
    assert "<title>replay verify solo: identical</title>" in page
    assert "Per group" not in page and "Work the plan saved" not in page
    assert 'id="machines"' in page  # an identical capsule has no section: its hosts are in this table
