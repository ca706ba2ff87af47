"""Every command has help text with an example and is documented in the README, with the exit codes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()
COMMANDS = ["capture", "verify", "check", "diff", "show", "manifest", "pack", "unpack", "push", "pull", "base build",
            "task", "list", "gc"]


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


def _development_map() -> str:
    section = README.split("## Development", 1)[1]
    return section.split("```", 2)[1]


def test_the_readme_development_map_is_the_tree() -> None:
    """Every package and module of replay/ stands in the map under its own folder, and the map names nothing
    that is not there: the map is the tree, so it cannot drift from it."""
    root = Path(__file__).resolve().parents[2]
    tree = _development_map()
    listed: dict[str, set[str]] = {}
    folder = ""
    for line in tree.splitlines():
        name = line.strip().split("  ", 1)[0]
        if not line.startswith(" "):  # a folder: replay/... is checked, templates/ and tests/ are not
            folder = name.rstrip("/") if name.startswith("replay") else ""
            if folder:
                listed.setdefault(folder, set())
        elif folder and name:
            listed[folder].update(n.strip() for n in name.split(",") if n.strip())
    actual: dict[str, set[str]] = {}
    for path in sorted((root / "replay").rglob("*.py")):
        rel = path.relative_to(root).parent.as_posix()
        if path.name != "__init__.py":
            actual.setdefault(rel, set()).add(path.stem)
        else:
            actual.setdefault(rel, set())
    assert set(listed) == set(actual), "folders in the README's map differ from replay/'s packages"
    for rel, modules in actual.items():
        assert listed[rel] == modules, f"{rel}/ in the README's map: {sorted(listed[rel])}; the tree: {sorted(modules)}"


def test_readme_first_screen_says_how_to_install_replay_outside_the_training_environment() -> None:
    first_screen = "\n".join(README.splitlines()[:25])
    assert "## Install" in first_screen and "pipx install ." in first_screen
    assert "make install" in first_screen and ".venv/bin/replay" in first_screen
