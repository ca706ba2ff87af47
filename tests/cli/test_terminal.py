"""What a reviewer's terminal shows, through a terminal emulator (pyte): no string from a capsule or a
replay (CPU model, branch, metric and output names, file names with newlines, a log) can clear
the screen, set the window title, make a link, overwrite a line or repaint the verdict banner."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pyte
import pytest

from replay import ui
from replay.core.verify.compare import MetricResult, OutputResult
from replay.core.verify.diagnose import Finding
from replay.core.verify.report import Hosts, RunOutcome, VerifyReport
from replay.manifest import HostInfo
from tests.cli.test_bad_input import replay
from tests.cli.test_hostile_input import plain_manifest, write_capsule

# Clear screen, cursor home, a fake green banner, window title, OSC 8 link, carriage return, cursor up.
REPAINT = ("\x1b[2J\x1b[H\x1b[32m IDENTICAL (exit 0) \x1b[0m\x1b]0;all good\x07"
           "\x1b]8;;http://evil.example\x1b\\link\x1b]8;;\x1b\\\rIDENTICAL\x1b[1A\x1b[10D\nIDENTICAL (exit 0)")
WIDTH, HEIGHT = 160, 400


def screen_of(output: str) -> pyte.Screen:
    screen = pyte.Screen(WIDTH, HEIGHT)
    pyte.Stream(screen).feed(output.replace("\n", "\r\n"))
    return screen


def faked(screen: pyte.Screen) -> list[str]:
    """Lines that start with the fake verdict: what a payload that moved the cursor would have left."""
    return [line for line in screen.display if line.strip().lstrip("│╭╰ ").startswith("IDENTICAL")]


def hostile_report() -> VerifyReport:
    host = HostInfo(os="Debian 12", cpu_model=REPAINT, cores=8, docker_version=REPAINT)
    return VerifyReport(
        capsule=REPAINT, capsule_path=REPAINT, image_id="sha256:" + "ab" * 32, verdict="diverged", exit_code=1,
        outputs=[OutputResult(f"out/{REPAINT}", "a" * 64, "b" * 64, 3, 3, "differs")],
        metrics=[MetricResult(REPAINT, 0.5, 0.6, 0.1, 0.2, "exact", "diverged")],
        run=RunOutcome(exit_code=0, duration_s=1.0, log_tail=REPAINT),
        diagnosis=[Finding("hardware", REPAINT, True)],
        hosts=Hosts(capture=HostInfo(os="Debian 12", cpu_model="Xeon"), verify=host),
        provenance=REPAINT,
    )


def test_the_verify_banner_cannot_be_repainted(monkeypatch: pytest.MonkeyPatch) -> None:
    from replay.cli.verify import render

    sink = io.StringIO()
    terminal = ui._SafeConsole(file=sink, force_terminal=True, color_system="truecolor", width=WIDTH, highlight=False)
    monkeypatch.setattr(ui, "out", terminal)
    render(hostile_report())

    screen = screen_of(sink.getvalue())
    shown = "\n".join(screen.display)
    assert "DIVERGED" in shown and screen.title == "" and not faked(screen)
    assert "\\x1b[2J" in shown  # the payload is there, shown as text
    assert shown.index("DIVERGED") < shown.index("\\x1b[2J")  # nothing above the banner was written


def hostile_capsule(tmp_path: Path) -> Path:
    doc: dict[str, Any] = plain_manifest()
    doc["host"]["cpu_model"] = REPAINT
    doc["code"]["branch"] = REPAINT
    doc["outputs"]["metrics"] = {REPAINT: 0.5}
    doc["outputs"]["files"][0]["path"] = "out/a\nIDENTICAL (exit 0)"
    doc["name"] = "demo"
    return write_capsule(tmp_path, doc)


@pytest.mark.parametrize("command", ["show", "diff"])
def test_show_and_diff_print_no_control_character(tmp_path: Path, command: str) -> None:
    capsule = hostile_capsule(tmp_path)
    args = [str(capsule)]
    if command == "diff":
        (tmp_path / "b").mkdir()
        args.append(str(write_capsule(tmp_path / "b", plain_manifest())))
    result = replay(tmp_path, command, *args, COLUMNS=str(WIDTH))

    assert result.returncode in (0, 1), result.stderr
    assert "\x1b" not in result.stdout and "\r" not in result.stdout and "\x07" not in result.stdout
    screen = screen_of(result.stdout)
    assert screen.title == "" and not faked(screen)
    assert "\\x1b[2J" in "\n".join(screen.display)


SIGTERM_WHILE_TAIL = """
import os, signal
from replay import cli, ui
from replay.errors import CommandFailed

shown = ui.err.print
def print_then_stop(*args, **kwargs):
    shown(*args, **kwargs)
    if "last lines of the log" in str(args[0]):
        os.kill(os.getpid(), signal.SIGTERM)  # delivered before the tail below is printed
ui.err.print = print_then_stop

@cli.app.command("fail")
def fail() -> None:
    raise CommandFailed("the command exited 1", "see its log", log_tail=TAIL)

cli.main(["fail"])
"""


def test_sigterm_while_the_log_tail_is_shown_exits_143_without_a_traceback(tmp_path: Path) -> None:
    import subprocess
    import sys

    tail = json.dumps("\n".join(f"step {i}" for i in range(200)) + REPAINT)
    proc = subprocess.run([sys.executable, "-c", SIGTERM_WHILE_TAIL.replace("TAIL)", f"{tail})")],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert proc.returncode == 143, proc.stderr
    assert "Traceback" not in proc.stderr and "interrupted (SIGTERM)" in proc.stderr
    assert "\x1b" not in proc.stderr
