"""Stability over repeated runs: statuses, spreads and suggestions; and --vary's names."""

from __future__ import annotations

from pathlib import Path

import pytest

from replay.core.check import vary
from replay.core.check.stability import RunOutputs, metric_stability, output_stability
from replay.core.ports import RunSpec
from replay.errors import BadInput


def _runs(tmp_path: Path, contents: list[dict[str, str]], metrics: list[dict[str, float]]) -> list[RunOutputs]:
    runs = []
    for i, (files, values) in enumerate(zip(contents, metrics, strict=True)):
        root = tmp_path / f"r{i}"
        for path, text in files.items():
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            (root / path).write_text(text)
        runs.append(RunOutputs("capture" if i == 0 else f"run {i}", root, {p: str(hash(t)) for p, t in files.items()},
                               values))
    return runs


def test_statuses_spreads_and_suggestions(tmp_path: Path) -> None:
    log = "step 1 in {} sec\ndone\n"
    contents = [{"out/log.txt": log.format(0.17), "out/w.txt": "1\n", "out/s.txt": f"{s} at 2026-01-01 10:00:0{s}\n",
                 "out/cap.txt": "a\n" if i == 0 else "b\n"} for i, s in enumerate((1, 2, 3))]
    contents[1]["out/log.txt"] = log.format(0.2)
    contents[2]["out/log.txt"] = log.format(0.25)
    metrics = [{"acc": 0.9, "n": 3.0}, {"acc": 0.9 + 1e-12, "n": 3.0}, {"acc": 0.9 - 2e-12, "n": 3.0}]
    runs = _runs(tmp_path, contents, metrics)

    outputs = {o.path: o for o in output_stability(runs, [], reference_first=True)}

    assert outputs["out/w.txt"].status == "stable" and outputs["out/w.txt"].suggestion is None
    assert outputs["out/cap.txt"].status == "differs_from_capture"
    log_row = outputs["out/log.txt"]
    assert log_row.status == "unstable" and log_row.classes == {"timing": 1}
    assert log_row.max_rel == pytest.approx(0.08 / 0.17)
    assert log_row.suggestion is not None and log_row.suggestion.argument == "--tolerance out/log.txt=rel:0.6"
    stamped = outputs["out/s.txt"]
    assert stamped.suggestion is not None and stamped.suggestion.argument == "--ignore out/s.txt"
    assert stamped.to_dict()["suggestion"]["suggestion"] is True

    rows = {m.name: m for m in metric_stability(runs)}
    assert rows["n"].status == "stable" and rows["n"].suggestion is None
    acc = rows["acc"]
    assert acc.status == "unstable" and acc.largest_diff == pytest.approx(3e-12)
    assert acc.suggestion is not None and acc.suggestion.value == "acc=abs:4e-12"


def test_vary_names() -> None:
    assert vary.parse(["timezone,cpus", "tz", "user_group"]) == ["timezone", "user", "cpus"]
    assert vary.parse(["all"]) == list(vary.NAMES)
    with pytest.raises(BadInput, match="not offered"):
        vary.parse(["cwd"])
    with pytest.raises(BadInput, match="not a variation"):
        vary.parse(["moon"])


def test_vary_plans_change_only_their_own_thing() -> None:
    control = RunSpec(image="i", argv=["python", "train.py"], workdir="/workspace", env={"OMP_NUM_THREADS": "2"})
    plans = {v.name: v for v in vary.plan(list(vary.NAMES), control, lambda argv: None)}
    assert plans["timezone"].adjust(control).env["TZ"] == vary.SHIFTED_TZ
    assert plans["time"].adjust(control).env["SOURCE_DATE_EPOCH"] == vary.SHIFTED_EPOCH
    assert "libfaketime is not installed" in plans["time"].note
    assert plans["hostname"].adjust(control).hostname == vary.OTHER_HOST
    assert plans["cpus"].adjust(control).env["OMP_NUM_THREADS"] == "1"
    assert plans["umask"].adjust(control).argv[-2:] == ["python", "train.py"]
    assert plans["locale"].adjust(control).env["LC_ALL"] == "C"
    with_faketime = vary.plan(["time"], control, lambda argv: vary.FAKETIME_LIBS[0] + "\n")[0]
    assert with_faketime.adjust(control).env["LD_PRELOAD"] == vary.FAKETIME_LIBS[0]
    assert control.env == {"OMP_NUM_THREADS": "2"}  # the control spec itself is never changed


def test_a_cpu_pin_the_engine_could_not_enforce_is_said_in_the_variation_note() -> None:
    control = RunSpec(image="i", argv=["python", "train.py"], workdir="/workspace")
    plans = {v.name: v for v in vary.plan(["cpus", "timezone"], control, lambda argv: None)}
    assert "only the thread counts changed" in vary.shortfall(plans["cpus"], ["memory", "cpuset", "cpus"])
    assert vary.shortfall(plans["cpus"], []) == ""  # pinned as asked
    assert vary.shortfall(plans["timezone"], ["cpuset"]) == ""  # not a CPU variation
