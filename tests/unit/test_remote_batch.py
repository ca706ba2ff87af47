"""A batch through a backend: settings merged and checked first; a task that did not run to its end becomes
error reports carrying the backend's state and node, never a verdict."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from replay.config import ProjectDefaults
from replay.core.batch_task import GroupTask, VerifyOptions
from replay.core.datacheck import scoped
from replay.core.node_task import ImageSources
from replay.core.ports import JobState, JobStatus
from replay.core.remote_batch import BackendSettings, RemoteGroup, _group_reports, default_workdir, payloads
from replay.errors import BadInput
from replay.manifest import DataManifest, FileEntry


class Handle:
    """A finished task as a backend hands it back (the JobHandle port), with or without a result."""

    def __init__(self, result: dict[str, Any] | None = None) -> None:
        self.id = "12_3"
        self._result = result

    def status(self) -> JobStatus:
        return JobStatus(JobState.DONE)

    def result(self) -> dict[str, Any] | None:
        return self._result

    def cancel(self) -> None:
        pass


def test_command_line_wins_over_the_project_table(tmp_path: Path) -> None:
    d = ProjectDefaults(backend="slurm", partition="cpu", time="30", gpus=1, workdir="work", jobs=8)
    s = BackendSettings.merge(d, tmp_path, partition="gpu", jobs=2)
    assert (s.name, s.partition, s.time_limit, s.gpus, s.jobs) == ("slurm", "gpu", "30", 1, 2)
    assert s.workdir == (tmp_path / "work").resolve()
    assert BackendSettings.merge(ProjectDefaults(), tmp_path).name == "local"


@pytest.mark.parametrize("kwargs", [{"jobs": 0}, {"partition": "gpu"}, {"time_limit": "30"}, {"gpus": 1}])
def test_slurm_options_without_slurm_or_bad_jobs_are_bad_input(kwargs, tmp_path: Path) -> None:
    with pytest.raises(BadInput):
        BackendSettings.merge(ProjectDefaults(), tmp_path, **kwargs)


def test_the_default_work_folder_is_beside_the_capsules_and_hidden(tmp_path: Path) -> None:
    s = BackendSettings.merge(ProjectDefaults(), tmp_path, backend="slurm")
    workdir = s.options([tmp_path / ".replay" / "a"])["workdir"]
    assert workdir == default_workdir([tmp_path / ".replay" / "a"]) == (tmp_path / ".replay" / ".replay-work").resolve()


def test_payloads_carry_each_groups_task_and_image_sources(tmp_path: Path) -> None:
    own = VerifyOptions(cwd="/projects/b")
    groups = [RemoteGroup([tmp_path / "a", tmp_path / "a2"]),
              RemoteGroup([tmp_path / "b"], ImageSources(archive="/shared/b.tar"), own)]
    specs = payloads(groups, VerifyOptions(cwd="/projects/a"))
    tasks = [GroupTask.from_payload(s.payload) for s in specs]
    assert [t.options.cwd for t in tasks] == ["/projects/a", "/projects/b"]
    assert tasks[0].capsules == [str((tmp_path / "a").resolve()), str((tmp_path / "a2").resolve())]
    assert ImageSources.from_payload(specs[1].payload).archive == "/shared/b.tar"


@pytest.mark.parametrize(("state", "code", "word"), [(JobState.TIMEOUT, 4, "TIMEOUT"), (JobState.FAILED, 3, "FAILED"),
                                                     (JobState.CANCELLED, 3, "CANCELLED"),
                                                     (JobState.PREEMPTED, 3, "PREEMPTED")])
def test_a_task_slurm_ended_is_an_error_with_its_state_and_node(state, code, word, tmp_path: Path) -> None:
    group = RemoteGroup([tmp_path / "a", tmp_path / "b"])
    status = JobStatus(state, "node7", f"slurm task 12_3 {word} on node node7")
    reports = _group_reports(group, Handle(), status)
    assert [(r["verdict"], r["exit_code"]) for r in reports] == [("error", code)] * 2
    assert all(f"{word} on node node7" in r["error"] and r["run"]["node"] == "node7" for r in reports)


def test_a_result_that_does_not_match_its_task_is_no_verdict(tmp_path: Path) -> None:
    group = RemoteGroup([tmp_path / "a", tmp_path / "b"])
    reports = _group_reports(group, Handle({"reports": [{"verdict": "identical"}]}), JobStatus(JobState.DONE, "n1"))
    assert [r["verdict"] for r in reports] == ["error", "error"]


def test_manifest_check_scopes_to_the_roots_asked_for() -> None:
    expected = DataManifest(roots=["data", "more"], files=[FileEntry("data/a", 1, "x"), FileEntry("more/b", 1, "y"),
                                                            FileEntry("database/c", 1, "z")])
    got = scoped(expected, ["data"])
    assert got.roots == ["data"] and [f.path for f in got.files] == ["data/a"]
