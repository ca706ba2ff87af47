"""The batch report: outcomes, the exit-code order, the versioned JSON, and its escaped renderings."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from replay.core.batch.plan import make_plan
from replay.core.batch.render import to_html, to_junit, to_markdown
from replay.core.batch.report import Outcome, batch_exit_code, build_batch_report, outcome_of
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
                         "timings", "replay_version"]
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
    assert "<details>" in page and 'data-outcome="could_not_verify"' in page


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
