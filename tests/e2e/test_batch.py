"""`replay verify TARGET...` as a batch, against the real engine: the plan's sharing, verdicts equal to single
verifies, the HTML report in headless Chromium, and Ctrl-C leaving no container."""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import BASE, REPO, Project, new_project

CAPSULE_LABEL = "io.replay.capsule"
ARTIFACTS = REPO / ".cache" / "artifacts"

# name -> (seed, data root, mode); a1 and a2 are the same experiment (captured twice).
CAPTURES = {
    "a1": (1, "data/a", "ok"),
    "a2": (1, "data/a", "ok"),
    "b": (2, "data/a", "ok"),
    "div": (1, "data/a", "diverge"),
    "fail": (1, "data/a", "fail"),
    "d": (1, "data/b", "ok"),  # its data changes after the capture
}
EXPECTED = {"a1": "identical", "a2": "identical", "b": "identical", "div": "diverged", "fail": "command_failed",
            "d": "could_not_verify"}


def capture_as(project: Project, name: str, seed: int, data: str, mode: str) -> Path:
    result = project.replay("capture", "--name", name, "--base", BASE, "--run", "--data", data, "--output",
                            "out/result.txt", "--seed", str(seed), "--", "python", "train.py", data, mode)
    capsule = project.root / ".replay" / name
    project.track(capsule)
    assert result.code == 0, result.stderr
    return capsule


@pytest.fixture(scope="module")
def batch_project(tmp_path_factory, engine, train_venv) -> Project:
    project = new_project(tmp_path_factory.mktemp("batch"), "batch", train_venv)
    suffix = project.name.rsplit("-", 1)[-1]
    project.name = f"e2e-batch-{suffix}"
    for name, (seed, data, mode) in CAPTURES.items():
        capture_as(project, f"{name}-{suffix}", seed, data, mode)
    (project.root / "data" / "b" / "input.txt").write_text("4 5 7\n")  # d's data changed since its capture
    return project


def names(project: Project) -> dict[str, str]:
    suffix = project.name.rsplit("-", 1)[-1]
    return {short: f"{short}-{suffix}" for short in CAPTURES}


def test_batch_gives_single_verdicts_replays_the_identical_pair_once_and_checks_shared_work_once(
        batch_project: Project) -> None:
    project = batch_project
    full = names(project)

    result = project.replay("verify", ".replay", "--json", "--jobs", "2")

    assert result.code == 1, result.stderr  # one diverged: 1 wins over 4 and 2
    doc = result.json()
    assert doc["schema"] == "replay.batch-report" and doc["schema_version"] == 1
    by_name = {c["name"]: c for c in doc["capsules"]}
    assert {short: by_name[n]["outcome"] for short, n in full.items()} == EXPECTED
    plan = doc["plan"]
    assert (plan["capsules"], plan["images"], plan["images_checked"]) == (6, 1, 1)  # one shared environment
    assert (plan["data_sets"], plan["data_sets_checked"]) == (2, 2)
    assert plan["experiments"] == 5
    assert plan["replays_run"] == 4  # a1+a2 once, b, div, fail; d stopped at its data check
    a1, a2 = by_name[full["a1"]], by_name[full["a2"]]
    assert a1["experiment"] == a2["experiment"] != by_name[full["b"]]["experiment"]
    assert a1["report"]["run"] == a2["report"]["run"]  # the one replay, compared against each one's references
    assert "out/result.txt" in by_name[full["div"]]["explanation"]
    assert doc["counts"]["identical"]["count"] == 3 and doc["rate"] == 0.5
    # The live table's last frame, on a pipe, ends its line: its summary is a line of its own.
    assert "\n" in result.stderr.rpartition("capsules verified")[2], result.stderr

    for short, name in full.items():
        single = project.replay("verify", str(project.root / ".replay" / name), "--json")
        report = single.json()
        batch_report = by_name[name]["report"]
        assert (report["verdict"], report["exit_code"]) == (batch_report["verdict"], batch_report["exit_code"]), short
        assert single.code == batch_report["exit_code"]


def test_plan_prints_the_groups_and_runs_nothing(batch_project: Project, engine) -> None:
    result = batch_project.replay("verify", ".replay", "--plan", "--json")
    assert result.code == 0, result.stderr
    doc = result.json()
    assert doc["schema"] == "replay.batch-plan"
    assert doc["counts"] == {"capsules": 6, "images": 1, "data_sets": 2, "experiments": 5}
    pair = next(e for e in doc["experiments"] if len(e["capsules"]) == 2)
    assert sorted(pair["capsules"]) == sorted([names(batch_project)["a1"], names(batch_project)["a2"]])


def test_html_report_renders_every_capsule_and_verdict_in_chromium(batch_project: Project, tmp_path) -> None:
    page = tmp_path / "report.html"
    junit, markdown = tmp_path / "r.xml", tmp_path / "r.md"
    result = batch_project.replay("verify", ".replay", "--html", str(page), "--junit", str(junit), "--markdown",
                                  str(markdown))
    assert result.code == 1, result.stderr
    assert "50.0% reproduced" in result.stdout
    html = page.read_text()
    assert "http://" not in html and "https://" not in html  # self-contained

    dom = _dom(page, tmp_path, "batch-report")
    full = names(batch_project)
    for short, name in full.items():
        assert f'data-capsule="{name}" data-outcome="{EXPECTED[short]}"' in dom, short
    assert '<span class="rate" id="rate">50.0%</span>' in dom
    assert re.search(r'<time id="created">\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC</time>', dom)
    assert f'<code id="project">{batch_project.root}</code>' in dom
    # A section for every capsule that is not identical, none for the identical ones; the divergence is
    # explained output by output, the failed command and the changed data by their errors.
    sections = dict(re.findall(r'<section class="capsule" id="capsule-\d+" data-capsule="([^"]+)" '
                               r'data-outcome="([^"]+)"', dom))
    assert sections == {full[s]: EXPECTED[s] for s in ("div", "fail", "d")}
    div = _section(dom, full["div"])
    assert "<code>out/result.txt</code></td><td>differs</td>" in div and "What changed underneath" in div
    assert "Capture host and verify host" in div
    # The image IDs are the ones the terminal prints for each capsule.
    for short in ("a1", "div"):
        single = batch_project.replay("verify", str(batch_project.root / ".replay" / full[short]))
        shown = re.search(r"\(image ([0-9a-f]{12}), exit", single.stdout)
        assert shown, single.stdout
        row = re.search(rf'data-capsule="{full[short]}".*?<code class="image"[^>]*>([0-9a-f]{{12}})</code>', dom, re.S)
        assert row and row.group(1) == shown.group(1), short
    assert "<th>CPU</th>" in dom and 'id="machines"' in dom
    assert junit.read_text().count("<testsuite ") == 6
    assert "| outcome | capsules | % |" in markdown.read_text()


def test_html_report_of_one_capsule_is_its_report_in_chromium(batch_project: Project, tmp_path) -> None:
    name = names(batch_project)["div"]
    page = tmp_path / "single.html"
    result = batch_project.replay("verify", str(batch_project.root / ".replay" / name), "--html", str(page))
    assert result.code == 1, result.stderr
    dom = _dom(page, tmp_path, "single-report")
    assert f"<title>replay verify {name}: diverged</title>" in dom
    section = _section(dom, name)
    assert "<code>out/result.txt</code></td><td>differs</td>" in section
    assert "line 1:" in section and re.search(r"captured 20\d\d-\d\d-\d\d \d\d:\d\d:\d\d UTC", section)
    assert '<span class="rate" id="verdict">DIVERGED</span>' in dom  # the verdict, as the terminal's banner
    assert "Capture host and verify host" in section and 'id="counts"' not in dom
    fail = names(batch_project)["fail"]
    page = tmp_path / "fail.html"
    assert batch_project.replay("verify", str(batch_project.root / ".replay" / fail), "--html", str(page)).code == 4
    section = _section(_dom(page, tmp_path, "single-failed-report"), fail)
    assert "The command&#39;s last log lines" in section or "The command's last log lines" in section


def _dom(page: Path, tmp_path: Path, artifact: str) -> str:
    """The page as headless Chromium built it (scripts run), and a screenshot kept as a test artifact."""
    chromium = _chromium()
    profile = tmp_path / f"profile-{artifact}"
    flags = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", "--window-size=1280,2400"]
    dom = subprocess.run([*flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    shot = tmp_path / f"{artifact}.png"
    subprocess.run([*flags, f"--screenshot={shot}", page.as_uri()], capture_output=True, timeout=120, check=True)
    assert shot.stat().st_size > 10_000
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(shot, ARTIFACTS / f"{artifact}.png")
    shutil.copy(page, ARTIFACTS / f"{artifact}.html")
    return dom.stdout


def _section(dom: str, name: str) -> str:
    start = dom.index(f'data-capsule="{name}" data-outcome', dom.index("<section"))
    return dom[start:dom.index("</section>", start)]


def _chromium() -> str:
    found = shutil.which("chromium")
    if found is None:
        subprocess.run(["bash", str(REPO / "scripts" / "ensure-chromium.sh")], check=True, timeout=1200)
        found = shutil.which("chromium")
    assert found, "scripts/ensure-chromium.sh did not install chromium"
    return found


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_or_sigterm_during_a_parallel_batch_stops_all_and_leaves_no_container(
        make_project, engine, signum: int, code: int) -> None:
    project = make_project("sleeper")
    assert project.capture().code == 0
    other = f"{project.name}-b"
    args = list(project.scenario["capture"])
    second = project.replay("capture", "--name", other, "--base", BASE, "--seed", "2", *args)
    project.track(project.root / ".replay" / other)
    assert second.code == 0, second.stderr
    labels = [{"label": f"{CAPSULE_LABEL}={n}"} for n in (project.name, other)]

    proc = subprocess.Popen([sys.executable, "-m", "replay", "verify", ".replay", "--jobs", "2"], cwd=project.root,
                            env=project.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not all(engine.api.containers(filters=f) for f in labels) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert all(engine.api.containers(filters=f) for f in labels), "both replays never ran at once"
    time.sleep(1)
    proc.send_signal(signum)
    _, stderr = proc.communicate(timeout=120)

    assert proc.returncode == code and "interrupted" in stderr, stderr
    assert not any(engine.api.containers(all=True, filters=f) for f in labels)
    assert "Traceback" not in stderr


def test_json_of_a_batch_is_one_document_even_with_a_broken_capsule(batch_project: Project, tmp_path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "replay.json").write_text("{not json")
    full = names(batch_project)
    capsule = str(batch_project.root / ".replay" / full["a1"])
    result = batch_project.replay("verify", capsule, str(broken), "--json")
    assert result.code == 2, result.stderr
    doc = json.loads(result.stdout)
    assert [c["outcome"] for c in doc["capsules"]] == ["identical", "could_not_verify"]


def test_fail_fast_stops_at_the_first_divergence(batch_project: Project) -> None:
    full = names(batch_project)
    order = [full[n] for n in ("a1", "b", "div", "fail")]  # one at a time, in this order
    result = batch_project.replay("verify", *(f".replay/{n}" for n in order), "--jobs", "1", "--fail-fast",
                                  "--json")
    assert result.code == 1, result.stderr
    doc = result.json()
    assert [c["outcome"] for c in doc["capsules"]] == ["identical", "identical", "diverged", "not_run"]
    assert doc["plan"]["stopped_early"] is True
