"""The lean ``python -m replay task FILE --result OUT`` a batch node starts per task: no typer or rich is
imported, bad input is still one error line and exit 2, and any other shape goes to the full command line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from replay.task_main import fast_args


@pytest.mark.parametrize(("argv", "expected"), [
    (["t.json", "--result", "r.json"], (Path("t.json"), Path("r.json"))),
    (["t.json", "--result=r.json"], (Path("t.json"), Path("r.json"))),
    (["--help"], None), (["t.json"], None), (["t.json", "--result"], None), (["t.json", "--result="], None),
    (["t.json", "--result", "--help"], None), (["t.json", "--result", "r.json", "-v"], None),
])
def test_only_the_shape_a_backend_writes_takes_the_lean_path(argv: list[str], expected: object) -> None:
    assert fast_args(argv) == expected


def test_a_bad_task_file_is_one_error_line_and_exit_2_without_importing_typer(tmp_path: Path) -> None:
    task = tmp_path / "task-0.json"
    task.write_text('{"schema": "something else"}')
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "replay", "task", str(task), "--result",
                           str(tmp_path / "result-0.json")], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    imported = {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    assert not {"typer", "rich", "docker"} & imported  # docker: the engine is not reached for a bad task
    errors = [line for line in proc.stderr.splitlines() if not line.startswith("import time:")]
    assert errors == ["error: not a replay task: pass a task file written by a replay batch"]
    assert not (tmp_path / "result-0.json").exists()


def test_help_still_goes_to_the_full_command_line() -> None:
    proc = subprocess.run([sys.executable, "-m", "replay", "task", "--help"], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0 and "--result" in proc.stdout
