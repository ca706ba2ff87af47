from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET

import pytest

from replay import __version__
from replay.core.verify.compare import MetricResult, OutputResult, Verdict
from replay.core.verify.diagnose import Finding
from replay.core.verify.explanation import TextExplanation
from replay.core.verify.report import DataCheck, DataStatus, Hosts, RunOutcome, VerifyReport, to_junit, to_markdown
from replay.errors import ManifestError
from replay.manifest import GpuInfo, HostInfo

# The contract: changing this list or the version breaks every CI job that reads --json. Bump
# schema_version (and the module docstring) on purpose, never by accident.
TOP_LEVEL_KEYS = [
    "schema",
    "schema_version",
    "capsule",
    "capsule_path",
    "image_id",
    "verdict",
    "exit_code",
    "outputs",
    "metrics",
    "data",
    "run",
    "diagnosis",
    "hosts",
    "timings",
    "replay_version",
    "error",
    "provenance",
    "investigation",
]
OUTPUT_KEYS = [
    "path",
    "reference_sha256",
    "replayed_sha256",
    "reference_size",
    "replayed_size",
    "status",
    "ignored",
    "explanation",
    "tolerance",
]
METRIC_KEYS = ["name", "reference", "replayed", "abs_diff", "rel_diff", "tolerance", "status"]

EXPLANATION = TextExplanation(
    kind="text",
    reference_size=5,
    replayed_size=5,
    first_byte_offset=2,
    first_differing_line=1,
    reference_line="0.85",
    replayed_line="0.86",
)


def _report(**overrides: object) -> VerifyReport:
    fields: dict[str, object] = {
        "capsule": "mnist",
        "capsule_path": "capsules/mnist",
        "image_id": "sha256:" + "ab" * 32,
        "verdict": Verdict.DIVERGED,
        "exit_code": 1,
        "outputs": [
            OutputResult("out/model.bin", "a" * 64, "a" * 64, 7, 7, "identical"),
            OutputResult("out/result.txt", "b" * 64, "c" * 64, 5, 5, "differs", explanation=EXPLANATION),
            OutputResult("out/run.log", "d" * 64, "e" * 64, 3, 3, "ignored", ignored=True),
            OutputResult("out/preds.npy", "f" * 64, "0" * 64, 9, 9, "within_tolerance", tolerance="abs 0.001"),
            OutputResult("out/gone.bin", "1" * 64, None, 4, None, "missing"),
        ],
        "metrics": [
            MetricResult("acc", 0.85, 0.86, 0.01, 0.0117, "exact", "diverged"),
            MetricResult("loss", math.nan, math.nan, 0.0, 0.0, "exact", "identical"),
            MetricResult("f1", 0.5, math.inf, math.inf, math.inf, "abs 0.1", "diverged"),
        ],
        "data": DataCheck(DataStatus.VERIFIED, files=3, bytes=1024),
        "run": RunOutcome(exit_code=0, duration_s=12.5, timed_out=False, oom_killed=False, log_tail=""),
        "diagnosis": [Finding("hardware", "CPU differs | AVX-512 missing", True)],
        "hosts": Hosts(
            capture=HostInfo(os="Debian 12", cores=16, cpu_flags=["avx2", "avx512f"], gpus=[GpuInfo("A100")]),
            verify=HostInfo(os="Debian 12", cores=8, cpu_flags=["avx2"]),
        ),
        "timings": {"run": 12.5, "total": 14.0},
    }
    fields.update(overrides)
    return VerifyReport(**fields)  # type: ignore[arg-type]


def test_json_contract_top_level_keys_and_version() -> None:
    raw = json.loads(_report().to_json())
    assert list(raw) == TOP_LEVEL_KEYS
    assert raw["schema"] == "replay.verify-report"
    assert raw["schema_version"] == 1
    assert raw["replay_version"] == __version__
    assert list(raw["outputs"][0]) == OUTPUT_KEYS
    assert list(raw["metrics"][0]) == METRIC_KEYS
    assert raw["hosts"]["capture"]["gpus"][0]["name"] == "A100"
    assert raw["error"] is None


def test_json_is_strict_non_finite_numbers_become_strings() -> None:
    text = _report().to_json()
    # json.loads would accept bare NaN; strict parsers (jq, browsers) do not.
    raw = json.loads(text, parse_constant=lambda c: pytest.fail(f"bare {c} in JSON"))
    metrics = {m["name"]: m for m in raw["metrics"]}
    assert metrics["loss"]["reference"] == "NaN"
    assert metrics["f1"]["replayed"] == "Infinity"


def test_round_trip_through_json() -> None:
    report = _report()
    back = VerifyReport.from_dict(json.loads(report.to_json()))
    assert back.outputs == report.outputs
    assert math.isnan(back.metrics[1].reference or 0.0) and back.metrics[2].replayed == math.inf
    assert back.to_json() == report.to_json()
    # Read back typed, not as dicts: statuses are enums, hosts are HostInfo, findings are Findings.
    assert back.verdict is Verdict.DIVERGED and back.data == report.data and back.run == report.run
    assert back.hosts == report.hosts and back.diagnosis == report.diagnosis


def test_a_report_with_wrong_types_is_one_clear_error() -> None:
    for bad in ({"verdict": "maybe"}, {"data": {"status": "fine"}}, {"hosts": {"capture": {"cores": "many"}}},
                {"diagnosis": [{"kind": "seed"}]}):
        with pytest.raises(ManifestError, match="not a valid verify report"):
            VerifyReport.from_dict({**_report().to_dict(), **bad})


def test_an_error_report_writes_empty_data_and_run_objects() -> None:
    raw = _report(verdict=Verdict.ERROR, exit_code=3, data=None, run=None, outputs=[], metrics=[]).to_dict()
    assert raw["data"] == {} and raw["run"] == {} and raw["error"] is None


def test_round_trip_refuses_other_documents() -> None:
    report = _report()
    with pytest.raises(ManifestError, match="not a replay verify report"):
        VerifyReport.from_dict({"schema": "other"})
    with pytest.raises(ManifestError, match="schema version 2"):
        VerifyReport.from_dict({**report.to_dict(), "schema_version": 2})


def test_error_report() -> None:
    report = _report(verdict="error", exit_code=3, outputs=[], metrics=[], error="no Docker engine answers")
    raw = json.loads(report.to_json())
    assert raw["verdict"] == "error" and raw["error"] == "no Docker engine answers"
    suite = ET.fromstring(to_junit(report)).find("testsuite")
    assert suite is not None and suite.get("errors") == "1" and suite.get("failures") == "0"


def test_junit_counts_failures() -> None:
    root = ET.fromstring(to_junit(_report()))
    assert root.tag == "testsuites"
    suite = root.find("testsuite")
    assert suite is not None
    assert suite.get("name") == "replay verify mnist"
    cases = suite.findall("testcase")
    # run + 5 outputs + 3 metrics
    assert suite.get("tests") == str(len(cases)) == "9"
    failed = {(c.get("classname"), c.get("name")) for c in cases if c.find("failure") is not None}
    assert failed == {
        ("outputs", "out/result.txt"),
        ("outputs", "out/gone.bin"),
        ("metrics", "acc"),
        ("metrics", "f1"),
    }
    assert suite.get("failures") == "4" and suite.get("errors") == "0" and suite.get("skipped") == "0"
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["verdict"] == "diverged" and props["image_id"] == "sha256:" + "ab" * 32

    by_name = {c.get("name"): c for c in cases}
    failure = by_name["out/result.txt"].find("failure")
    assert failure is not None and "line 1: '0.85' vs '0.86'" in (failure.get("message") or "")
    ignored = by_name["out/run.log"]
    assert ignored.find("failure") is None and ignored.find("skipped") is None
    assert "ignored" in (ignored.findtext("system-out") or "")


def test_junit_all_passing() -> None:
    report = _report(verdict="identical", exit_code=0, outputs=[_report().outputs[0]], metrics=[], diagnosis=[])
    suite = ET.fromstring(to_junit(report)).find("testsuite")
    assert suite is not None and suite.get("failures") == "0" and suite.get("tests") == "2"


def test_markdown_tables() -> None:
    text = to_markdown(_report())
    lines = text.splitlines()
    assert "**Verdict: diverged** (exit 1)" in text
    assert "| Path | Reference | Replayed | Status |" in lines
    assert "| `out/result.txt` | `bbbbbbbbbbbb` | `cccccccccccc` | differs |" in lines
    assert "| `out/gone.bin` | `111111111111` | - | missing |" in lines
    assert "| Name | Reference | Replayed | Abs diff | Tolerance | Status |" in lines
    assert "| `acc` | 0.85 | 0.86 | 0.01 | exact | diverged |" in lines
    assert "| `f1` | 0.5 | inf | inf | abs 0.1 | diverged |" in lines
    assert "- `out/result.txt`: differs at byte 2 (sizes 5 vs 5); line 1: '0.85' vs '0.86'" in lines
    # A pipe inside a message must not split a table row or bullet.
    assert "- **likely** hardware: CPU differs \\| AVX-512 missing" in lines
    assert "| Cores | **16** | **8** |" in lines
    assert "| OS | Debian 12 | Debian 12 |" in lines
    assert any(line.startswith("| CPU flags |") and "lacks avx512f" in line for line in lines)


def test_markdown_without_diagnosis_has_no_host_table() -> None:
    text = to_markdown(_report(verdict="identical", exit_code=0, diagnosis=[]))
    assert "**Verdict: identical**" in text and "#### Hosts" not in text and "#### Diagnosis" not in text


def test_markdown_long_output_list_shows_only_what_differs() -> None:
    outputs = [OutputResult(f"out/{i:03d}.bin", "a" * 64, "a" * 64, 1, 1, "identical") for i in range(60)]
    outputs.append(OutputResult("out/zz.bin", "a" * 64, "b" * 64, 1, 1, "differs"))
    text = to_markdown(_report(outputs=outputs))
    assert "`out/000.bin`" not in text and "`out/zz.bin`" in text
    assert "60 identical outputs not listed." in text


def test_investigation_is_null_unless_one_ran_and_round_trips() -> None:
    assert json.loads(_report().to_json())["investigation"] is None
    found = {"budget": 4, "extra_replays": 1, "seconds": 2.5, "cause": "clock", "confirmed": True,
             "finding": "confirmed: ...", "experiments": [{"name": "again", "changed": "nothing", "runs": ["replay 2"],
                                                           "agree": False, "moved": [], "error": None}]}
    raw = json.loads(_report(investigation=found).to_json())
    assert raw["investigation"] == found and raw["schema_version"] == 1
    assert VerifyReport.from_dict(raw).investigation == found
