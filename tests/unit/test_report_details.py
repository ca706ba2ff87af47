"""Reports as a reader meets them: commands quoted so they run as printed, JUnit suites with their real
seconds, capsules in natural order and named as they name themselves."""

from __future__ import annotations

import shlex
import xml.etree.ElementTree as ET
from pathlib import Path

from replay.core.batch.plan import make_plan
from replay.core.batch.render import to_html, to_markdown
from replay.core.batch.report import build_batch_report
from replay.core.batch.run import BatchResult, ExperimentRow
from replay.core.share.targets import ResolveContext, natural_key, resolve
from replay.core.verify.report import VerifyReport, to_junit
from replay.manifest import save
from tests.unit.test_manifest import full_manifest
from tests.unit.test_plan import capture, planned


def test_an_experiments_command_is_quoted_so_it_runs_as_printed(tmp_path: Path) -> None:
    m = capture("a")
    m.command.argv = ["sh", "-c", "mkdir -p out && python train.py"]
    plan = make_plan(planned([m], tmp_path), tmp_path, cores=2)
    label = plan.experiments[0].label
    assert label == "sh -c 'mkdir -p out && python train.py'" and shlex.split(label) == m.command.argv


def test_a_junit_suite_carries_the_verifys_seconds() -> None:
    report = VerifyReport(capsule="a", capsule_path="/c/a", verdict="identical", exit_code=0,
                          timings={"manifest": 0.1, "image": 0.2, "data": 0.3, "run": 2.0, "container_start": 0.5,
                                   "compare": 0.4})
    suite = ET.fromstring(to_junit(report)).find("testsuite")
    assert suite is not None and suite.get("time") == "3.000"  # the stages; the start is part of "run"
    report.timings["total"] = 9.5
    assert ET.fromstring(to_junit(report)).find("testsuite").get("time") == "9.500"  # type: ignore[union-attr]


def test_names_with_numbers_sort_naturally(tmp_path: Path) -> None:
    assert sorted(["E10", "E2", "e1", "E1b"], key=natural_key) == ["e1", "E1b", "E2", "E10"]
    for name in ("exp10", "exp2", "exp1"):
        (tmp_path / "runs" / name).mkdir(parents=True)
        save(full_manifest(), tmp_path / "runs" / name / "replay.json")
    found = resolve(["runs"], ResolveContext(tmp_path, tmp_path / "scratch"))
    assert [c.name for c in found] == ["exp1", "exp2", "exp10"]


def test_the_batch_pages_name_a_capsule_by_its_own_name_not_its_folder(tmp_path: Path) -> None:
    plan = make_plan(planned([capture("folder-name")], tmp_path), tmp_path, cores=2)
    verdict = VerifyReport(capsule="digits-seed7", capsule_path=str(tmp_path / "folder-name"), verdict="identical",
                           exit_code=0)
    batch = build_batch_report(BatchResult(plan, {0: verdict}, [ExperimentRow("E1", "x", ["folder-name"])]))
    page, markdown = to_html(batch), to_markdown(batch)
    assert 'data-capsule="digits-seed7"' in page and "<td>folder-name</td>" not in page
    assert "| digits-seed7 |" in markdown
    assert "natural.compare" in page  # the page sorts its columns in natural order too
