"""The Slurm backend reads another program's output: tested on output recorded from a real cluster
(``slurm_outputs/``), and with hypothesis on anything such a line might hold."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from replay.adapters.slurm import (
    SlurmBackend,
    _forgotten,
    check_time_limit,
    map_state,
    parse_jobid,
    parse_scontrol,
    parse_squeue,
    record_from_scontrol,
)
from replay.core.ports import JobState
from replay.errors import BadInput, EnvironmentProblem

REC = Path(__file__).parent / "slurm_outputs"


def rec(name: str) -> str:
    return (REC / name).read_text()


def test_squeue_lists_each_array_task_with_state_node_and_reason() -> None:
    records = parse_squeue(rec("squeue_running_pending.txt"), "1")
    assert sorted(records) == [0, 1, 2, 3]
    assert (records[0].state, records[0].node) == ("RUNNING", "vm")
    assert (records[2].state, records[2].node, records[2].reason) == ("PENDING", "", "JobArrayTaskLimit")
    assert parse_squeue(rec("squeue_gone.txt"), "1") == {}
    assert parse_squeue(rec("squeue_running_pending.txt"), "12") == {}  # another job's lines are not ours


@pytest.mark.parametrize(("name", "jobid", "index", "state", "node", "exit_code", "mapped"), [
    ("scontrol_completed.txt", "1", 1, "COMPLETED", "vm", "0:0", JobState.DONE),
    ("scontrol_running.txt", "1", 0, "RUNNING", "vm", "0:0", JobState.RUNNING),
    ("scontrol_failed.txt", "5", 0, "FAILED", "vm", "3:0", JobState.FAILED),
    ("scontrol_timeout.txt", "1", 0, "TIMEOUT", "vm", "0:15", JobState.TIMEOUT),
    ("scontrol_cancelled_running.txt", "6", 0, "CANCELLED", "vm", "0:15", JobState.CANCELLED),
    ("scontrol_cancelled_pending.txt", "6", 2, "CANCELLED", "", "0:0", JobState.CANCELLED),
    ("scontrol_pending.txt", "2", 3, "PENDING", "", "0:0", JobState.PENDING),
])
def test_scontrol_gives_a_finished_tasks_state_node_and_exit(name, jobid, index, state, node, exit_code, mapped) -> None:
    record = record_from_scontrol(rec(name), jobid, index)
    assert record is not None
    assert (record.state, record.node, record.exit_code) == (state, node, exit_code)
    assert map_state(record.state) == mapped


def test_a_record_of_another_task_or_none_at_all_is_not_taken() -> None:
    assert record_from_scontrol(rec("scontrol_completed.txt"), "1", 2) is None
    assert record_from_scontrol(rec("scontrol_completed.txt"), "9", 1) is None
    assert record_from_scontrol(rec("scontrol_not_found.txt"), "4", 1) is None
    assert _forgotten(rec("scontrol_not_found.txt")) and _forgotten(rec("scontrol_invalid_stderr.txt"))
    assert not _forgotten(rec("scontrol_pending.txt"))


def test_scontrol_values_may_hold_spaces() -> None:
    fields = parse_scontrol("JobId=3 JobState=FAILED Reason=launch failed requeued held Comment=a b=c ExitCode=1:0")
    assert fields["Reason"] == "launch failed requeued held"
    assert fields["ExitCode"] == "1:0"
    assert fields["Comment"].startswith("a")


def test_sbatch_parsable_gives_the_job_id() -> None:
    assert parse_jobid(rec("sbatch_parsable.txt")) == "8"
    assert parse_jobid("123;cluster2\n") == "123"
    for bad in ("", "Submitted batch job 5", "sbatch: error: Batch job submission failed"):
        with pytest.raises(EnvironmentProblem):
            parse_jobid(bad)


@pytest.mark.parametrize(("word", "state"), [
    ("PENDING", JobState.PENDING), ("REQUEUED", JobState.PENDING), ("CONFIGURING", JobState.RUNNING),
    ("COMPLETING", JobState.RUNNING), ("COMPLETED", JobState.DONE), ("CANCELLED by 0", JobState.CANCELLED),
    ("TIMEOUT", JobState.TIMEOUT), ("PREEMPTED", JobState.PREEMPTED), ("NODE_FAIL", JobState.FAILED),
    ("OUT_OF_MEMORY", JobState.FAILED), ("BOOT_FAIL", JobState.FAILED), ("SOMETHING_NEW", JobState.FAILED),
    ("", JobState.FAILED),
])
def test_slurm_states_map_to_the_port(word: str, state: JobState) -> None:
    assert map_state(word) == state


@pytest.mark.parametrize("value", ["30", "0:30", "2:00:00", "1-0", "1-12:00", "1-12:00:00", "UNLIMITED"])
def test_slurm_time_limits_are_accepted(value: str) -> None:
    assert check_time_limit(value) == value


@pytest.mark.parametrize("value", ["", "1h", "-5", "1:2:3:4", "soon", "5 ", "1;rm -rf /"])
def test_other_time_limits_are_bad_input(value: str) -> None:
    with pytest.raises(BadInput):
        check_time_limit(value)


@pytest.mark.parametrize("kwargs", [{"partition": "a b"}, {"partition": "x;y"}, {"gpus": -1}, {"gpus": True},
                                    {"time_limit": "forever"}])
def test_bad_backend_options_are_bad_input(kwargs, tmp_path) -> None:
    with pytest.raises(BadInput):
        SlurmBackend(tmp_path, **kwargs)


@given(st.text())
def test_squeue_output_of_any_shape_parses_to_records_of_that_job(text: str) -> None:
    for index, record in parse_squeue(text, "42").items():
        assert index >= 0 and record.index == index
        assert "|" not in record.state + record.node + record.reason


keys = st.from_regex(r"[A-Z][A-Za-z]{0,8}", fullmatch=True)
values = st.text(st.characters(blacklist_characters=" =\n\r", blacklist_categories=("Cs",)), max_size=12)


@given(st.dictionaries(keys, values, min_size=1))
def test_scontrol_lines_parse_back_to_their_fields(fields: dict[str, str]) -> None:
    line = " ".join(f"{k}={v}" for k, v in fields.items())
    assert parse_scontrol(line) == fields


@given(st.text(), st.integers(min_value=0, max_value=10_000))
def test_scontrol_output_of_any_shape_gives_that_task_or_nothing(text: str, index: int) -> None:
    record = record_from_scontrol(text, "42", index)
    assert record is None or record.index == index
    map_state(record.state if record else "")
