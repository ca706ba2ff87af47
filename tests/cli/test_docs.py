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


# --- the README's sample outputs: rendered by replay's renderers (scripts/readme_samples.py) -------------------

ROOT = Path(__file__).resolve().parents[2]
SAMPLES_SCRIPT = ROOT / "scripts" / "readme_samples.py"


def _check(readme: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SAMPLES_SCRIPT), "--check", str(readme)], capture_output=True,
                          text=True, timeout=60)


def test_the_readme_samples_are_what_the_renderers_print() -> None:
    """A README sample that differs from what replay's renderers print fails here, with the diff."""
    result = _check(ROOT / "README.md")
    assert result.returncode == 0, f"README samples are stale (make docs rewrites them):\n{result.stdout}{result.stderr}"


def test_every_sample_marker_in_the_readme_has_a_fenced_block() -> None:
    opened = README.count("<!-- sample: ")
    assert opened >= 7 and opened == README.count("<!-- /sample -->")
    assert "<!-- sample: verify-unseeded -->\n```text\n" in README


def test_an_edited_sample_fails_the_check_with_its_diff(tmp_path: Path) -> None:
    """The check is not vacuous: one cell of the unseeded sample changed by hand is caught and shown."""
    start = README.index("<!-- sample: verify-unseeded -->")
    edited_line = next(line for line in README[start:].splitlines() if line.startswith("│ accuracy"))
    changed = edited_line.replace("exact", "abs 1", 1)
    assert changed != edited_line
    readme = tmp_path / "README.md"
    readme.write_text(README[:start] + README[start:].replace(edited_line, changed, 1))
    result = _check(readme)
    assert result.returncode == 1
    assert f"-{changed}" in result.stdout and f"+{edited_line}" in result.stdout
    assert "make docs" in result.stdout


def test_a_sample_whose_text_lies_outside_the_renderer_fails_the_check(tmp_path: Path) -> None:
    """A line added inside a block (a hand-written "(table left out)") is stale too, and --write removes it."""
    marker = "<!-- sample: podman-session -->\n```console\n"
    readme = tmp_path / "README.md"
    readme.write_text(README.replace(marker, marker + "(metrics table left out)\n", 1))
    assert _check(readme).returncode == 1
    written = subprocess.run([sys.executable, str(SAMPLES_SCRIPT), "--write", str(readme)], capture_output=True,
                             text=True, timeout=60)
    assert written.returncode == 0, written.stderr
    assert readme.read_text() == README


def test_a_marker_without_a_renderer_is_refused(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(README + "\n<!-- sample: no-such-sample -->\n```text\nx\n```\n<!-- /sample -->\n")
    result = _check(readme)
    assert result.returncode != 0 and "no-such-sample" in result.stderr


def test_recorded_renders_plain_text_at_its_width_and_gives_the_consoles_back() -> None:
    """The samples' seam: both consoles into one buffer, no colour or cursor codes, and the real ones restored
    even when the drawing fails."""
    from replay import ui

    before = ui.out, ui.err
    with pytest.raises(RuntimeError), ui.recorded(width=40) as buffer:
        ui.out.print("[green]identical[/] " + "x" * 60)
        ui.error("a line from \x1b[2Jelsewhere")
        raise RuntimeError("drawing failed")
    assert (ui.out, ui.err) == before
    text = buffer.getvalue()
    assert "\x1b[" not in text and "identical" in text and "error: a line from" in text
    assert max(len(line) for line in text.splitlines()) <= 40
