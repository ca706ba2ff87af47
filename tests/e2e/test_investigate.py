"""`replay verify --investigate` against the real engine: one scenario per class of divergence, each named
as the right cause, confirmed by experiment; and without --investigate, none of them blamed on a missing
seed wrongly."""

from __future__ import annotations

import json

import pytest

from tests.e2e.conftest import SCENARIOS

CASES = ["inv-timing-key", "inv-timing-lines", "inv-threads", "inv-hash-order", "inv-unseeded", "inv-clock",
         "inv-stale"]
RNG_BLAME = "no seed was recorded and values differ beyond noise"


def _expected(scenario: str) -> str:
    return str(json.loads((SCENARIOS / scenario / "scenario.json").read_text())["cause"])


@pytest.mark.parametrize("scenario", CASES)
def test_investigate_names_the_cause_confirmed_and_nothing_false(make_project, scenario: str) -> None:
    project = make_project(scenario)
    captured = project.capture()
    assert captured.code == 0, captured.stderr
    cause = _expected(scenario)

    plain = project.replay("verify", str(project.capsule), "--json")

    assert plain.code == 1, plain.stderr
    likely = [d for d in plain.json()["diagnosis"] if d["likely"]]
    if cause != "seed":
        assert not any(RNG_BLAME in d["message"] for d in likely), likely

    result = project.replay("verify", str(project.capsule), "--investigate", "--json")

    assert result.code == 1, result.stderr
    report = result.json()
    assert report["schema_version"] == 1
    found = report["investigation"]
    assert found["cause"] == cause and found["confirmed"] is True, found
    assert found["finding"].startswith("confirmed: ")
    assert 1 <= found["extra_replays"] <= 4 and found["experiments"][0]["name"] == "again"
    assert report["diagnosis"][0]["message"] == found["finding"]
    guesses = [d["message"] for d in report["diagnosis"][1:] if d["likely"]
               and (RNG_BLAME in d["message"] or "nondeterminism inside the command" in d["message"])]
    assert not guesses, guesses  # the confirmed cause settles the guesses
    if cause in ("seed", "threads", "hash_order"):
        last = found["experiments"][-1]
        assert last["agree"] is True and len(last["runs"]) == 2
        assert found["experiments"][0]["moved"], found  # the plain replays differed among themselves


def test_human_report_of_a_timing_only_divergence_is_calm_and_lists_the_experiments(make_project) -> None:
    project = make_project("inv-timing-key")
    assert project.capture().code == 0

    human = project.replay("verify", str(project.capsule), "--investigate-runs", "2", COLUMNS="200")  # no wrap

    assert human.code == 1, human.stderr
    assert "only in timing" in human.stdout
    assert "investigation (1 extra replays" in human.stdout and "confirmed: between two replays" in human.stdout


def test_investigate_out_of_range_is_one_line_of_bad_input(make_project) -> None:
    project = make_project("inv-clock")

    result = project.replay("verify", str(project.root / ".replay" / "nothing"), "--investigate-runs", "99")

    assert result.code == 2 and "--investigate-runs 99 is out of range" in result.stderr
    assert "Traceback" not in result.stderr
