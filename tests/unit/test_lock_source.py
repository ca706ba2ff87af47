"""Which lock a capture takes (replay.core.capture.lock.source): found by --requirements or in the project root,
checked against the installed interpreter, entries not installed left out; pip-compile never runs for it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from replay.core.capture.lock.environment import lock_environment
from replay.core.capture.lock.files import LockKind
from replay.core.capture.lock.source import take_lock
from replay.core.events import RecordingReporter
from replay.core.pyenv import InstalledPackage
from replay.errors import BadInput, EnvironmentProblem, LockMismatch
from tests.unit.test_environment import TARGET, RecordingLocker, interpreter


def h(char: str) -> str:
    return char * 64


HASHED = f"""numpy==2.4.6 \\
    --hash=sha256:{h("a")}
scikit-learn==1.9.1 --hash=sha256:{h("b")}
"""
INTERP = interpreter(InstalledPackage("numpy", "2.4.6"), InstalledPackage("scikit_learn", "1.9.1"))


class FakeExporter:
    def __init__(self, text: str = "", present: bool = True) -> None:
        self.text, self.present, self.calls = text, present, 0

    def export_uv(self, project: Path) -> str:
        self.calls += 1
        return self.text

    def has_uv(self) -> bool:
        return self.present


def test_a_hashed_requirements_file_is_the_lock_as_it_is(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text(HASHED)
    locker = RecordingLocker()

    taken = take_lock(INTERP, tmp_path, None, False, None, RecordingReporter())
    assert taken is not None and taken.kind is LockKind.REQUIREMENTS and taken.file == "requirements.txt"
    env = lock_environment(INTERP, tmp_path, tmp_path, TARGET, locker, taken=taken)

    assert "requirements_in" not in locker.calls  # pip-compile did not run
    assert (tmp_path / "requirements.lock").read_text() == HASHED
    assert locker.calls["fetched"] == [("numpy", "2.4.6"), ("scikit-learn", "1.9.1")]
    assert [p.name for p in env.packages] == ["numpy", "scikit-learn"]


def test_entries_not_installed_are_left_out_and_said(tmp_path: Path) -> None:
    lock = tmp_path / "reqs.txt"
    lock.write_text(HASHED + f"pywin32==306 ; sys_platform == 'win32' --hash=sha256:{h('c')}\n"
                    f"setuptools==80.0 --hash=sha256:{h('d')}\n")
    reporter = RecordingReporter()

    taken = take_lock(INTERP, tmp_path, lock, False, None, reporter)

    assert taken is not None and taken.left_out == ["pywin32 (sys_platform == 'win32')"]
    assert "pywin32" not in taken.text.split("\n", 2)[2] and "setuptools==80.0" in taken.text
    assert taken.text.startswith("# Taken by replay capture from reqs.txt")
    assert "pywin32" in reporter.warnings[0] and "left out" in reporter.warnings[0]


def test_a_lock_that_does_not_match_is_a_table_before_anything_is_built(tmp_path: Path) -> None:
    (tmp_path / "Pipfile.lock").write_text(json.dumps({"default": {
        "numpy": {"version": "==2.0.0", "hashes": [f"sha256:{h('a')}"]}}}))

    with pytest.raises(LockMismatch) as caught:
        take_lock(INTERP, tmp_path, None, False, None, RecordingReporter())

    assert caught.value.exit_code == 2 and "--relock" in caught.value.hint
    assert caught.value.message.startswith("Pipfile.lock does not match the training interpreter: 2 of its 2")
    assert caught.value.rows == [("numpy", "2.0.0", "2.4.6"), ("scikit_learn", "not in the lock", "1.9.1")]


def test_the_projects_own_code_and_local_paths_are_not_asked_of_the_lock(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    own = InstalledPackage("mytrainer", "0.1", {"url": f"file://{tmp_path / 'pkg'}", "dir_info": {"editable": True}})
    (tmp_path / "requirements.txt").write_text(HASHED)
    taken = take_lock(interpreter(*INTERP.packages, own), tmp_path, None, False, None, RecordingReporter())
    assert taken is not None and [r.name for r in taken.reqs] == ["numpy", "scikit-learn"]


def test_relock_and_plain_requirements_leave_locking_to_pip_compile(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text(HASHED)
    plain = tmp_path / "plain.txt"
    plain.write_text("numpy==2.4.6\n")
    assert take_lock(INTERP, tmp_path, None, True, None, RecordingReporter()) is None
    assert take_lock(INTERP, tmp_path, tmp_path / "requirements.txt", True, None, RecordingReporter()) is None
    assert take_lock(INTERP, tmp_path, plain, False, None, RecordingReporter()) is None
    (tmp_path / "poetry.lock").write_text("")
    with pytest.raises(BadInput, match="--relock cannot relock poetry.lock"):
        take_lock(INTERP, tmp_path, tmp_path / "poetry.lock", True, None, RecordingReporter())


def test_uv_lock_goes_through_the_exporter_and_is_skipped_without_uv(tmp_path: Path) -> None:
    (tmp_path / "uv.lock").write_text("version = 1\n")
    exporter = FakeExporter(f"-e .\n{HASHED}")
    taken = take_lock(INTERP, tmp_path, None, False, exporter, RecordingReporter())
    assert taken is not None and taken.kind is LockKind.UV and exporter.calls == 1
    assert "through `uv export --frozen" in taken.text

    reporter = RecordingReporter()
    assert take_lock(INTERP, tmp_path, None, False, FakeExporter(present=False), reporter) is None
    assert reporter.warnings == [
        "uv.lock found, but uv is not installed: locking from the interpreter with pip-compile instead "
        "(`pip install uv` to take uv.lock as the lock; --relock to silence this)"]
    with pytest.raises(EnvironmentProblem):
        take_lock(INTERP, tmp_path, tmp_path / "uv.lock", False, None, RecordingReporter())


def test_the_first_lock_in_the_root_wins_in_a_fixed_order(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text(HASHED)
    (tmp_path / "Pipfile.lock").write_text(json.dumps({"default": {
        "numpy": {"version": "==2.4.6", "hashes": [f"sha256:{h('a')}"]},
        "scikit-learn": {"version": "==1.9.1", "hashes": [f"sha256:{h('b')}"]}}}))
    taken = take_lock(INTERP, tmp_path, None, False, None, RecordingReporter())
    assert taken is not None and taken.kind is LockKind.PIPFILE
