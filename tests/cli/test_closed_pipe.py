"""A closed pipe (``replay show C | head``) ends quietly: no message, no traceback, the command's own code."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from replay.manifest import save
from tests.cli.test_bad_input import NO_ENGINE
from tests.unit.test_manifest import full_manifest


def into_closed_pipe(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run replay with stdout a pipe whose reading end is already closed: its first write meets EPIPE."""
    read, write = os.pipe()
    os.close(read)
    try:
        return subprocess.run([sys.executable, "-m", "replay", *args], cwd=cwd, stdout=write, stderr=subprocess.PIPE,
                              text=True, timeout=120, env={**os.environ, "DOCKER_HOST": NO_ENGINE})
    finally:
        os.close(write)


@pytest.mark.parametrize("args", [["show", "cap"], ["show", "cap", "--json"], ["diff", "cap", "cap"],
                                  ["diff", "cap", "cap", "--json"], ["manifest", "cap/replay.json"],
                                  ["manifest", "cap/replay.json", "--json"]])
def test_a_closed_pipe_ends_quietly_with_the_commands_code(tmp_path: Path, args: list[str]) -> None:
    (tmp_path / "cap").mkdir()
    save(full_manifest(), tmp_path / "cap" / "replay.json")

    result = into_closed_pipe(tmp_path, *args)

    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and "error" not in result.stderr.lower()
    assert "BrokenPipe" not in result.stderr


def test_an_error_still_says_so_on_stderr_when_stdout_is_closed(tmp_path: Path) -> None:
    result = into_closed_pipe(tmp_path, "show", "nowhere")

    assert result.returncode == 2 and "no capsule at nowhere" in result.stderr
