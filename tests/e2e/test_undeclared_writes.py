"""Writes outside the declared outputs: they succeed in the replay (in a throw-away tree, never on the host)
and every report names them; capture --run names them too."""

from __future__ import annotations

import json
import subprocess
import xml.etree.ElementTree as ET


def test_a_project_writing_logs_to_an_undeclared_folder_verifies_identical_and_lists_them(make_project,
                                                                                         tmp_path) -> None:
    project = make_project("writes-logs")
    captured = project.capture()
    assert captured.code == 0, captured.stderr
    assert "runs/logs/events.0" in captured.stderr  # capture --run named what the command wrote undeclared
    assert "--output" in captured.stderr
    before = sorted(p.relative_to(project.root).as_posix() for p in (project.root / "runs").rglob("*"))
    report, junit, markdown = (tmp_path / n for n in ("r.json", "r.xml", "r.md"))

    result = project.replay("verify", str(project.capsule), "--report", str(report), "--junit", str(junit),
                            "--markdown", str(markdown))

    assert result.code == 0, result.stdout + result.stderr
    doc = json.loads(report.read_text())
    assert doc["verdict"] == "identical"
    assert doc["schema_version"] == 1
    assert doc["run"]["undeclared_count"] == 4
    assert sorted(doc["run"]["undeclared_writes"]) == [
        "runs/exp/notes.txt", "runs/logs/events.0", "runs/logs/events.1", "runs/logs/events.2"]
    assert "wrote 4 files outside the declared outputs" in result.stdout
    assert "runs/logs/events" in markdown.read_text()
    run_case = ET.parse(junit).getroot().find(".//testcase[@name='run']")
    assert run_case is not None and "outside the declared outputs" in (run_case.findtext("system-out") or "")
    # Nothing the replay wrote reached the project on the host.
    after = sorted(p.relative_to(project.root).as_posix() for p in (project.root / "runs").rglob("*"))
    assert after == before
    status = subprocess.run(["git", "status", "--porcelain"], cwd=project.root, capture_output=True, text=True)
    assert status.returncode == 0
