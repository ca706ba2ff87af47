"""The training command comes after ``--``: without it, its options would silently become replay's."""

from __future__ import annotations

from pathlib import Path

from tests.cli.test_bad_input import CAPTURE, one_error_line, project, replay

__all__ = ["project"]  # the fixture, shared with the bad-input tests


def test_a_command_without_dashes_is_refused_with_the_line_to_type(project: Path) -> None:
    result = replay(project, *CAPTURE, "--seed", "3", "python", "train.py", "--seed", "7")

    line = one_error_line(result)
    assert result.returncode == 2, result.stderr
    assert "must follow --" in line
    assert line.endswith("type: replay capture --data data --output out/model.bin --metrics out/metrics.json "
                         "--seed 3 -- python train.py --seed 7")
    assert not (project / ".replay").exists()


def test_flags_and_option_values_with_equals_stay_on_replays_side(project: Path) -> None:
    result = replay(project, "capture", "--run", "--data=data", "--output", "out/model.bin", "python", "t.py", "-q")

    assert result.returncode == 2, result.stderr
    line = one_error_line(result)
    assert "No such option: -q" in line and "go after --" in line  # click stops at the command's own option


def test_a_command_without_its_own_options_is_refused_too(project: Path) -> None:
    result = replay(project, "capture", "--run", "--data=data", "--output", "out/model.bin", "python", "t.py")

    assert result.returncode == 2
    assert one_error_line(result).endswith("type: replay capture --run --data=data --output out/model.bin -- python t.py")
