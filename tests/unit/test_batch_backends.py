"""One batch path for every backend (``run_batch``), seen through a scripted remote backend: what a node is
sent, and how a task the backend ended becomes error reports carrying its state and node, never verdicts."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from replay.config import ProjectDefaults
from replay.core.batch.node import ImageSources
from replay.core.batch.plan import PlannedCapsule, make_plan
from replay.core.batch.report import build_batch_report
from replay.core.batch.run import BatchCancelled, BatchOptions, run_batch
from replay.core.batch.settings import BackendSettings, default_workdir
from replay.core.batch.task import GroupTask
from replay.core.data.check import scoped
from replay.core.limits import RunLimits
from replay.core.ports import JobState, JobStatus, TaskSpec
from replay.core.verify.options import ReplayOptions
from replay.errors import BadInput
from replay.manifest import DataManifest, FileEntry, Manifest
from tests.unit.test_manifest import full_manifest


def capsule(name: str, seed: int) -> Manifest:
    m = copy.deepcopy(full_manifest())
    m.name, m.command.seed = name, seed
    m.image.environment_id = "sha256:" + "e" * 64
    m.data = DataManifest(roots=[], files=[])  # nothing for the submitter's data check to find missing
    return m


class Job:
    def __init__(self, index: int, states: list[JobStatus], result: dict[str, Any] | None) -> None:
        self.id = f"7_{index}"
        self.states = states
        self._result = result
        self.cancelled = False

    def status(self) -> JobStatus:
        return self.states.pop(0) if len(self.states) > 1 else self.states[0]

    def result(self) -> dict[str, Any] | None:
        return self._result

    def cancel(self) -> None:
        self.cancelled = True


class Scripted:
    """A remote backend whose tasks go through the given states and hand back the given results."""

    name = "slurm"
    remote = True

    def __init__(self, script: list[tuple[list[JobStatus], dict[str, Any] | None]]) -> None:
        self.script = script
        self.tasks: list[TaskSpec] = []
        self.closed = 0

    def submit(self, tasks: list[TaskSpec], jobs: int) -> list[Any]:
        self.tasks = tasks
        return [Job(i, list(states), result) for i, (states, result) in enumerate(self.script)]

    def describe(self) -> str:
        return "slurm job 7"

    def close(self) -> None:
        self.closed += 1


def plan_of(tmp_path: Path, **extra: Any) -> Any:
    caps = [PlannedCapsule(0, "a", tmp_path / "a", "a.replay#a", capsule("a", 1), bundle=tmp_path / "a.replay"),
            PlannedCapsule(1, "b", tmp_path / "b", "REF", capsule("b", 2), pull="r/b@sha256:" + "b" * 64)]
    return make_plan(caps, tmp_path, jobs=2, **extra)


RUNNING = JobStatus(JobState.RUNNING, "node7", "slurm task 7_0 RUNNING on node node7")


def test_a_remote_batch_needs_no_engine_and_sends_checks_sources_and_gpus_to_the_nodes(tmp_path: Path) -> None:
    backend = Scripted([([JobStatus(JobState.CANCELLED, "n")], None)] * 2)
    options = BatchOptions(ReplayOptions(tmp_path, limits=RunLimits(gpus=2)), poll_s=0)
    result = run_batch(plan_of(tmp_path), options, None, backend)
    tasks = [GroupTask.from_payload(t.payload) for t in backend.tasks]
    assert [t.checks for t in tasks] == [True, True]  # the node's engine checks the image
    assert [t.options.limits.gpus for t in tasks] == [2, 2]
    sources = [ImageSources.from_payload(t.payload) for t in backend.tasks]
    assert sources[0].bundle == str(tmp_path / "a.replay") and sources[1].pull == "r/b@sha256:" + "b" * 64
    assert result.images_checked == 1 and result.backend == "slurm"  # one image group, checked on the nodes
    assert build_batch_report(result).plan.backend == "slurm"


@pytest.mark.parametrize("engine", ["podman", "docker", None])
def test_a_remote_batch_sends_the_engine_the_user_chose_and_none_when_they_chose_none(engine, tmp_path: Path) -> None:
    backend = Scripted([([JobStatus(JobState.CANCELLED, "n")], None)] * 2)
    run_batch(plan_of(tmp_path), BatchOptions(ReplayOptions(tmp_path), poll_s=0, engine=engine), None, backend)
    assert [GroupTask.from_payload(t.payload).engine for t in backend.tasks] == [engine, engine]
    assert {t.payload["schema_version"] for t in backend.tasks} == {2 if engine else 1}  # none: read as before


def test_a_local_batch_without_an_engine_is_refused(tmp_path: Path) -> None:
    backend = Scripted([])
    backend.remote = False  # type: ignore[misc]
    with pytest.raises(ValueError):
        run_batch(plan_of(tmp_path), BatchOptions(ReplayOptions(tmp_path)), None, backend)


@pytest.mark.parametrize(("state", "code", "word"), [(JobState.TIMEOUT, 4, "TIMEOUT"), (JobState.FAILED, 3, "FAILED"),
                                                     (JobState.CANCELLED, 3, "CANCELLED"),
                                                     (JobState.PREEMPTED, 3, "PREEMPTED")])
def test_a_task_the_backend_ended_is_an_error_with_its_state_and_node(state, code, word, tmp_path: Path) -> None:
    final = JobStatus(state, "node7", f"slurm task 7_0 {word} on node node7")
    backend = Scripted([([RUNNING, final], None)] * 2)
    seen: list[tuple[str, str, str]] = []
    result = run_batch(plan_of(tmp_path), BatchOptions(ReplayOptions(tmp_path), poll_s=0), None, backend,
                       observe=lambda rows: seen.extend((r.phase.value, r.node, r.backend_state) for r in rows))
    reports = [result.reports[i] for i in (0, 1)]
    assert [(r.verdict, r.exit_code) for r in reports] == [("error", code)] * 2
    assert all(f"{word} on node node7" in (r.error or "") and r.run is not None and r.run.node == "node7"
               and r.run.backend_state == state.value for r in reports)
    assert ("running", "node7", "") in seen and ("done", "node7", state.value) in seen  # the live table's rows
    batch = build_batch_report(result)
    assert [c.node for c in batch.capsules] == ["node7", "node7"] and batch.exit_code == code


def test_a_result_that_does_not_match_its_task_is_no_verdict(tmp_path: Path) -> None:
    done = JobStatus(JobState.DONE, "n1")
    backend = Scripted([([done], {"reports": []}), ([done], {"reports": [{"verdict": "identical"}]})])
    result = run_batch(plan_of(tmp_path), BatchOptions(ReplayOptions(tmp_path), poll_s=0), None, backend)
    assert [result.reports[i].verdict for i in (0, 1)] == ["error", "error"]
    assert "does not match its task" in (result.reports[0].error or "")


def test_ctrl_c_cancels_the_tasks_and_says_which(tmp_path: Path) -> None:
    class Interrupting(Scripted):
        def submit(self, tasks: list[TaskSpec], jobs: int) -> list[Any]:
            super().submit(tasks, jobs)
            raise KeyboardInterrupt

    backend = Interrupting([])
    with pytest.raises(BatchCancelled) as caught:
        run_batch(plan_of(tmp_path), BatchOptions(ReplayOptions(tmp_path), poll_s=0), None, backend)
    assert caught.value.exit_code == 130 and "cancelled slurm job 7" in caught.value.one_line()
    assert backend.closed >= 1


def test_command_line_wins_over_the_project_table(tmp_path: Path) -> None:
    d = ProjectDefaults(backend="slurm", partition="cpu", time="30", gpus=1, workdir="work", jobs=8)
    s = BackendSettings.merge(d, tmp_path, partition="gpu", jobs=2)
    assert (s.name, s.partition, s.time_limit, s.gpus, s.jobs, s.remote) == ("slurm", "gpu", "30", 1, 2, True)
    assert s.workdir == (tmp_path / "work").resolve()
    assert BackendSettings.merge(ProjectDefaults(), tmp_path).name == "local"


@pytest.mark.parametrize("kwargs", [{"jobs": 0}, {"partition": "gpu"}, {"time_limit": "30"}, {"gpus": -1},
                                    {"backend": "kubernetes"}])
def test_slurm_options_without_slurm_bad_jobs_or_an_unknown_backend_are_bad_input(kwargs, tmp_path: Path) -> None:
    with pytest.raises(BadInput):
        BackendSettings.merge(ProjectDefaults(), tmp_path, **kwargs)


def test_gpus_are_the_replays_on_the_local_backend_too(tmp_path: Path) -> None:
    assert BackendSettings.merge(ProjectDefaults(), tmp_path, gpus=2).gpus == 2
    assert BackendSettings.merge(ProjectDefaults(gpus=1), tmp_path).gpus == 1


def test_the_default_work_folder_is_beside_what_the_first_target_names(tmp_path: Path) -> None:
    (tmp_path / ".replay" / "a").mkdir(parents=True)
    (tmp_path / ".replay" / "a" / "replay.json").write_text("{}")
    (tmp_path / "b.replay").write_bytes(b"x")
    hidden = (tmp_path / ".replay" / ".replay-work").resolve()
    assert default_workdir([".replay"], tmp_path) == hidden  # a folder of capsules: inside it, hidden
    assert default_workdir([".replay/a"], tmp_path) == hidden  # a capsule: beside it
    assert default_workdir(["b.replay#exp"], tmp_path) == default_workdir(["b.replay"], tmp_path) == \
        (tmp_path / ".replay-work").resolve()
    s = BackendSettings.merge(ProjectDefaults(), tmp_path, backend="slurm")
    assert s.options([".replay"], tmp_path)["workdir"] == hidden


def test_manifest_check_scopes_to_the_roots_asked_for() -> None:
    expected = DataManifest(roots=["data", "more"], files=[FileEntry("data/a", 1, "x"), FileEntry("more/b", 1, "y"),
                                                            FileEntry("database/c", 1, "z")])
    got = scoped(expected, ["data"])
    assert got.roots == ["data"] and [f.path for f in got.files] == ["data/a"]


def test_fail_fast_on_this_machine_hands_over_no_task_before_the_previous_one_is_judged(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from replay.core.batch.result import TaskResult
    from replay.core.verify.compare import Verdict
    from replay.core.verify.report import VerifyReport
    from replay.manifest import HostInfo

    caps = [PlannedCapsule(i, n, tmp_path / n, n, capsule(n, i + 1)) for i, n in enumerate(("a", "div", "c"))]
    plan = make_plan(caps, tmp_path, jobs=1)
    verdicts = {"E1": Verdict.IDENTICAL, "E2": Verdict.DIVERGED, "E3": Verdict.IDENTICAL}

    class Local(Scripted):
        remote = False

        def __init__(self) -> None:
            super().__init__([])
            self.handed: list[list[str]] = []

        def submit(self, tasks: list[TaskSpec], jobs: int) -> list[Any]:
            self.handed.append([t.id for t in tasks])
            done = JobStatus(JobState.DONE, "here")
            # a replay.task-result as the task writes it, read back by its one reader
            return [Job(0, [done], TaskResult(t.id, "here", HostInfo(), 0.0, 0.0, [VerifyReport(
                capsule=t.id, capsule_path=t.id, verdict=verdicts[t.id], exit_code=0)]).to_dict()) for t in tasks]

    engine = SimpleNamespace(image=lambda ref: SimpleNamespace(id=caps[0].manifest.image.id, volumes=[]))  # type: ignore[union-attr]
    backend = Local()
    result = run_batch(plan, BatchOptions(ReplayOptions(tmp_path), fail_fast=True, poll_s=0), engine, backend)  # type: ignore[arg-type]
    assert backend.handed == [["E1"], ["E2"]]  # E3 was never started: E2's divergence was judged first
    assert result.stopped_early and [r.phase.value for r in result.rows] == ["done", "done", "not run"]
    assert sorted(result.reports) == [0, 1]
