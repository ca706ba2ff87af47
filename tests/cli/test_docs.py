"""Every command has help text with an example and is documented in the README, with the exit codes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()
COMMANDS = ["capture", "verify", "check", "diff", "show", "manifest", "pack", "unpack", "push", "pull", "base build",
            "task"]


def help_text(*args: str) -> str:
    result = subprocess.run([sys.executable, "-m", "replay", *args, "--help"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize("command", COMMANDS)
def test_command_has_help_with_an_example_and_a_readme_section(command: str) -> None:
    text = help_text(*command.split())
    assert "Example" in text and f"replay {command}" in text
    assert f"### `replay {command}" in README


def test_every_registered_command_is_listed() -> None:
    import typer.main

    from replay.cli import app

    group = typer.main.get_command(app)
    names = set(group.commands)  # type: ignore[attr-defined]
    assert names == {c.split()[0] for c in COMMANDS}


def test_exit_codes_are_documented_in_help_and_readme() -> None:
    text = help_text()
    for code in ("0", "1", "2", "3", "4", "130"):
        assert f"| {code} |" in README
    assert "Exit codes" in text and "diverged" in text


def test_readme_first_screen_gives_demo_and_test() -> None:
    first_screen = "\n".join(README.splitlines()[:25])
    assert "make demo" in first_screen and "make test" in first_screen
