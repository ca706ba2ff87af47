"""The pure parts of issue 17's items 3, 4 and 6: the scratch tree's plan and log listing, what the code
snapshot leaves out, what capture notices about written and stale files, the write-refused diagnosis and
the report's undeclared writes."""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from replay.adapters.scratch_tree import ScratchRun, _filter, _tree_dirs, _wrap
from replay.core.capture import hygiene
from replay.core.capture.codefilter import CAPSULE_FOLDER, REPORT, LeaveOut
from replay.core.capture.secrets import scan
from replay.core.ports import RunSpec
from replay.core.verify.diagnose import diagnose, write_refused
from replay.core.verify.report import RunOutcome, Verdict, VerifyReport, to_junit, to_markdown
from replay.errors import BadInput
from replay.manifest import HostInfo

# --- the scratch tree (adapters/scratch_tree.py) -------------------------------------------------------


def test_every_folder_between_the_tree_and_a_mount_gets_its_own_tmpfs() -> None:
    dirs = _tree_dirs("/workspace", ["/workspace/runs/exp/out", "/workspace/data"])
    assert dirs == ["/workspace", "/workspace/runs", "/workspace/runs/exp"]


def test_the_listing_is_taken_out_of_the_log_and_made_relative() -> None:
    run = ScratchRun(RunSpec("img", ["python"], "/workspace"), "@@replay-ab12", "/workspace")
    assert run.take("epoch 1 loss 0.3") == "epoch 1 loss 0.3"
    assert run.take("@@replay-ab12 file /workspace/runs/logs/events.0") is None
    assert run.take("progress 99%@@replay-ab12 file /workspace/a b.txt") == "progress 99%"
    assert run.take("@@replay-ab12 count 2") is None
    assert (run.written, run.count) == (["runs/logs/events.0", "a b.txt"], 2)


def _tar(members: list[tuple[str, bytes | None, bytes]]) -> io.BytesIO:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, data, kind in members:
            info = tarfile.TarInfo(name)
            info.type = kind
            if kind == tarfile.SYMTYPE:
                info.linkname = "/etc/shadow"
            info.size = len(data or b"")
            tar.addfile(info, io.BytesIO(data) if data else None)
    raw.seek(0)
    return raw


def test_the_image_tree_is_copied_without_links_climbs_or_mounted_places(tmp_path: Path) -> None:
    raw = _tar([("workspace", None, tarfile.DIRTYPE), ("workspace/train.py", b"print(1)\n", tarfile.REGTYPE),
                ("workspace/link", None, tarfile.SYMTYPE), ("workspace/out/old.bin", b"x", tarfile.REGTYPE),
                ("workspace/../etc/passwd", b"x", tarfile.REGTYPE), ("elsewhere/f", b"x", tarfile.REGTYPE)])
    assert _filter(raw, "workspace", ["out"], 1 << 20, tmp_path / "t.tar")
    with tarfile.open(tmp_path / "t.tar") as tar:
        assert tar.getnames() == ["train.py"]
    raw.seek(0)
    assert not _filter(raw, "workspace", [], 4, tmp_path / "small.tar")  # larger than the tree may hold


def test_the_wrapper_is_valid_sh_and_prunes_the_mounts() -> None:
    argv = _wrap(["python", "train.py"], "/workspace", "/workspace/src", "@@replay-ab", ["/workspace/out[1]"])
    assert argv[:2] == ["/bin/sh", "-c"] and argv[-2:] == ["python", "train.py"]
    assert "-path '/workspace/out\\[1\\]'" in argv[2]
    assert subprocess.run(["sh", "-n", "-c", argv[2]], check=False).returncode == 0


# --- what the snapshot leaves out (core/capture/codefilter.py) -----------------------------------------


def test_capsule_folders_reports_and_declared_paths_are_left_out(tmp_path: Path) -> None:
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "replay.json").write_text('{"schema_version": 1, "replay_version": "0.1.0"}')
    (tmp_path / "old" / "x.txt").write_text("x")
    (tmp_path / "report.json").write_text('{"schema": "replay.verify-report"}')
    (tmp_path / "config.json").write_text('{"lr": 0.1}')
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.csv").write_text("1")
    rules = LeaveOut(tmp_path, ["data"])
    files = ["config.json", "data/a.csv", "old/replay.json", "old/x.txt", "report.json"]
    assert rules(files, []) == ["data", "old", "report.json"]
    assert rules.counts() == {CAPSULE_FOLDER: 2, REPORT: 1}


def test_large_or_binary_untracked_files_are_refused_unless_named(tmp_path: Path) -> None:
    (tmp_path / "big.txt").write_bytes(b"a" * ((1 << 20) + 1))
    (tmp_path / "model.bin").write_bytes(b"\0\1")
    (tmp_path / "ok.py").write_text("x = 1\n")
    with pytest.raises(BadInput) as caught:
        LeaveOut(tmp_path, [])(["big.txt", "model.bin", "ok.py"], ["big.txt", "model.bin", "ok.py"])
    assert "big.txt (1.0 MiB)" in caught.value.message and "model.bin (binary)" in caught.value.message
    assert LeaveOut(tmp_path, [], ["big.txt", "model.bin"])(["big.txt"], ["big.txt", "model.bin"]) == []


def test_a_private_key_is_found_anywhere_in_any_file(tmp_path: Path) -> None:
    key = b"-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n"
    (tmp_path / "blob.bin").write_bytes(b"\0" * 100 + key)  # a binary: tokens are not looked for, keys are
    (tmp_path / "late.txt").write_bytes(b"a" * (3 << 20) + key)  # past the first MiB
    (tmp_path / "clean.bin").write_bytes(b"\0AKIAABCDEFGHIJKLMNOP")
    found = {f.path for f in scan(tmp_path, ["blob.bin", "late.txt", "clean.bin"])}
    assert found == {"blob.bin", "late.txt"}


# --- what capture notices (core/capture/hygiene.py) ----------------------------------------------------


def test_files_written_outside_the_declared_paths_are_named(tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text("x")
    (tmp_path / "out").mkdir()
    (tmp_path / ".git").mkdir()
    before = hygiene.tree_state(tmp_path, ["out"])
    (tmp_path / "runs" / "logs").mkdir(parents=True)
    (tmp_path / "runs" / "logs" / "events").write_text("e")
    (tmp_path / "out" / "model.pkl").write_text("m")  # declared: not named
    (tmp_path / ".git" / "index").write_text("i")  # never the run's
    (tmp_path / "train.py").write_text("changed")
    written = hygiene.written_between(before, hygiene.tree_state(tmp_path, ["out"]))
    assert (written.created, written.changed) == (["runs/logs/events"], ["train.py"])
    assert "--output" in (written.warning() or "")


def test_an_output_older_than_its_code_or_data_is_stale(tmp_path: Path) -> None:
    for name, mtime in (("out/model.pkl", 100), ("train.py", 200), ("data/a.csv", 50), ("out2/m.pkl", 300)):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
        os.utime(tmp_path / name, (mtime, mtime))
    stale = hygiene.stale_outputs(tmp_path, ["out", "out2/m.pkl"], ["train.py"], ["data/a.csv"])
    assert [(s.path, s.newer, s.kind) for s in stale] == [("out", "train.py", "code")]
    assert "--run" in (hygiene.stale_warning(stale) or "")


# --- the diagnosis and the report -----------------------------------------------------------------------


def test_a_refused_write_in_the_log_is_the_likely_cause_never_the_seed() -> None:
    tail = "epoch 3\ncould not write logs: [Errno 30] Read-only file system: '/opt/runs'\n"
    findings = diagnose(HostInfo(), HostInfo(), seed=None, diverged=True, log_tail=tail)
    assert findings[0].kind == "command" and findings[0].likely and "EROFS" in findings[0].message
    assert not [f for f in findings if f.kind == "seed" and f.likely]
    assert write_refused("PermissionError: [Errno 13] Permission denied: 'x'") is not None
    assert write_refused("all good") is None


def test_undeclared_writes_are_in_every_report_format() -> None:
    run = RunOutcome(exit_code=0, log_tail="done", undeclared_writes=["runs/logs/a", "runs/logs/b"],
                     undeclared_count=12)
    report = VerifyReport(capsule="c", capsule_path="/c", verdict=Verdict.IDENTICAL, exit_code=0, run=run)
    doc = json.loads(report.to_json())
    assert doc["schema_version"] == 1
    assert doc["run"]["undeclared_count"] == 12 and doc["run"]["undeclared_writes"] == ["runs/logs/a", "runs/logs/b"]
    assert VerifyReport.from_dict(doc).run == run
    line = "wrote 12 files outside the declared outputs: runs/logs/a, runs/logs/b (and 10 more)"
    assert line in to_markdown(report)
    case = ET.fromstring(to_junit(report)).find(".//testcase[@name='run']")
    assert case is not None and line in (case.findtext("system-out") or "")
    plain = VerifyReport(capsule="c", capsule_path="/c", verdict=Verdict.IDENTICAL, exit_code=0,
                         run=RunOutcome(exit_code=0, log_tail=""))
    assert "undeclared_writes" not in json.loads(plain.to_json())["run"]  # absent where nothing was watched
