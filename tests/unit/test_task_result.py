"""The replay.task-result document: read back by its one reader to the same JSON, and refused when it is not one."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from replay import jsonio
from replay.core.batch.result import TaskResult
from replay.core.verify.hostinfo import collect_host
from replay.core.verify.pipeline import error_report
from replay.errors import ImageProblem, ManifestError


def _result(tmp_path: Path) -> dict[str, Any]:
    """A result as ``task_result`` writes it: every capsule's report, and where they were made."""
    reports = [error_report(tmp_path / name, ImageProblem("image sha256:ab is not here", "load it")).to_dict()
               for name in ("a", "b")]
    return {"schema": "replay.task-result", "schema_version": 1, "id": "e1", "node": "node-7",
            "host": asdict(collect_host("")), "started": 1764800000.25, "duration_s": 0.0, "reports": reports}


def test_a_result_reads_back_to_the_same_json(tmp_path: Path) -> None:
    raw = json.loads(jsonio.dumps(_result(tmp_path)))
    result = TaskResult.from_dict(raw, "task e1")
    assert (result.id, result.node, len(result.reports)) == ("e1", "node-7", 2)
    assert result.reports[0].verdict == "error" and result.reports[0].exit_code == ImageProblem.exit_code
    assert jsonio.dumps(result.to_dict()) == jsonio.dumps(raw)


@pytest.mark.parametrize("change", [
    {"schema": "replay.task"},
    {"schema_version": 2},
    {"reports": {"a": 1}},
    {"reports": [{"schema": "replay.verify-report"}]},
    {"host": "a host"},
    {"node": None},
    {"started": "yesterday"},
])
def test_what_is_not_a_result_is_refused(tmp_path: Path, change: dict[str, Any]) -> None:
    with pytest.raises(ManifestError):
        TaskResult.from_dict({**_result(tmp_path), **change}, "task e1")


@pytest.mark.parametrize("raw", [None, [], "result", 3])
def test_a_result_that_is_no_object_is_refused(raw: object) -> None:
    with pytest.raises(ManifestError, match="not a replay task result"):
        TaskResult.from_dict(raw)
