"""Bad input through the real `replay` command: one line on stderr, a documented exit code, no traceback,
nothing half-written. None of these needs a Docker engine: each fails before one would be asked."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

NO_ENGINE = "unix:///nonexistent/replay-test.sock"


def replay(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The CLI as from a shell with replay's own virtualenv active (a capture takes its python3)."""
    venv = Path(sys.executable).parent.parent
    active = {"VIRTUAL_ENV": str(venv), "PATH": f"{venv / 'bin'}:{os.environ.get('PATH', '/usr/bin:/bin')}"}
    full_env = {**os.environ, **active, "DOCKER_HOST": NO_ENGINE, "REPLAY_CACHE_DIR": str(cwd / ".cache"), **env}
    return subprocess.run([sys.executable, "-m", "replay", *args], cwd=cwd, env=full_env, capture_output=True,
                          text=True, timeout=120)


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in result.stderr, result.stderr
    errors = [ln for ln in result.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1, result.stderr
    return errors[0]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "x.csv").write_text("1,2\n")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "model.bin").write_bytes(b"\x00\x01")
    (tmp_path / "out" / "metrics.json").write_text('{"accuracy": 0.85, "eval": {"loss": 0.3}}')
    return tmp_path


CAPTURE = ["capture", "--data", "data", "--output", "out/model.bin", "--metrics", "out/metrics.json"]


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (CAPTURE, 2, "no command after --"),
        (CAPTURE[:1] + ["--data", "nope", "--output", "out/model.bin", "--", "python", "t.py"], 2, "data path nope"),
        (CAPTURE[:1] + ["--output", "out/missing.pkl", "--", "python", "t.py"], 2, "pass --run"),
        ([*CAPTURE, "--python", "/no/such/python", "--", "python", "t.py"], 2, "interpreter /no/such/python"),
        ([*CAPTURE, "--env", "API_TOKEN", "--", "python", "t.py"], 2, "--allow-secret-env"),
        ([*CAPTURE, "--env", "NOT_SET_ANYWHERE_X", "--", "python", "t.py"], 2, "is not set"),
        ([*CAPTURE, "--tolerance", "accuracy=lots", "--", "python", "t.py"], 2, "tolerance"),
        ([*CAPTURE, "--tolerance", "accuracy", "--", "python", "t.py"], 2, "--tolerance"),
        ([*CAPTURE, "--seed", "-1", "--", "python", "t.py"], 2, "seed -1 is out of range"),
        (CAPTURE[:1] + ["--data", "data", "--", "python", "t.py"], 2, "no outputs"),
        ([*CAPTURE, "--apt", "FFmpeg", "--", "python", "t.py"], 2, "--apt 'FFmpeg' is not a Debian package name"),
        ([*CAPTURE, "--", "python", "t.py"], 3, "no Docker engine answers"),
        (["capture", "--bogus"], 2, "No such option"),
        (["show", "nowhere"], 2, "no capsule at nowhere"),
        (["verify", "nowhere"], 2, "no capsule at nowhere"),
        (["check", "nowhere"], 2, "no capsule at nowhere"),
        (["check", "nowhere", "--runs", "0"], 2, "--runs 0 is out of range"),
        (["check", "nowhere", "--vary", "cwd"], 2, "--vary cwd is not offered"),
        (["check", "nowhere", "--vary", "moon"], 2, "--vary moon is not a variation"),
        (["check", "nowhere", "--timeout", "nan"], 2, "--timeout nan is not a positive number"),
        (["check", "nowhere", "--report", "."], 2, "--report . is a folder"),
        (["diff", "nowhere", "elsewhere"], 2, "no capsule at nowhere"),
        ([*CAPTURE, "--runs", "-1", "--", "python", "t.py"], 2, "--runs -1 is out of range"),
        (["manifest", "nowhere"], 2, "does not exist"),
        (["base", "build", "--python", "2.7"], 2, "Python 2.7"),
    ],
)
def test_bad_input_is_one_line_and_a_documented_code(project: Path, args: list[str], code: int, needle: str) -> None:
    result = replay(project, *args)

    assert result.returncode == code, result.stderr
    assert needle in one_error_line(result)
    assert not (project / ".replay").exists()  # nothing half-written


def test_metrics_must_be_a_json_object_of_numbers(project: Path) -> None:
    for text in ('["a list"]', '{"accuracy": "high"}', "{not json"):
        (project / "out" / "metrics.json").write_text(text)
        result = replay(project, *CAPTURE, "--", "python", "t.py")
        assert result.returncode == 2
        assert "metrics" in one_error_line(result)


def test_existing_capsule_needs_force_before_anything_runs(project: Path) -> None:
    (project / ".replay" / "proj").mkdir(parents=True)
    (project / ".replay" / "proj" / "replay.json").write_text("{}")

    result = replay(project, *CAPTURE, "--name", "proj", "--", "python", "t.py")

    assert result.returncode == 2 and "--force" in one_error_line(result)
    assert (project / ".replay" / "proj" / "replay.json").read_text() == "{}"


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("{broken", "not valid JSON"),
        ('{"schema_version": 99}', "upgrade replay"),
        ('{"name": "x"}', "no schema_version"),
        ('{"schema_version": 1, "name": "x"}', "missing field"),
        ("[]", "not a JSON object"),
    ],
)
def test_corrupt_or_unknown_manifest_is_a_clear_error(tmp_path: Path, content: str, needle: str) -> None:
    capsule = tmp_path / "capsule"
    capsule.mkdir()
    (capsule / "replay.json").write_text(content)

    for command in ("show", "verify"):
        result = replay(tmp_path, command, str(capsule))
        assert result.returncode == 2
        assert needle in one_error_line(result)


def test_pyproject_defaults_are_validated(project: Path) -> None:
    (project / "pyproject.toml").write_text("[tool.replay]\ndata = 3\n")

    result = replay(project, "capture", "--", "python", "t.py")

    assert result.returncode == 2 and "list of strings" in one_error_line(result)


def test_pyproject_defaults_fill_in_missing_options(project: Path) -> None:
    (project / "pyproject.toml").write_text(
        '[tool.replay]\ndata = ["data"]\noutputs = ["out/model.bin"]\nmetrics = ["out/metrics.json"]\n'
    )

    result = replay(project, "capture", "--", "python", "t.py")

    # Every input check passed on the defaults; only the (deliberately) missing engine stops it.
    assert result.returncode == 3 and "no Docker engine" in one_error_line(result)


def test_verbose_shows_the_traceback(tmp_path: Path) -> None:
    result = replay(tmp_path, "show", "nowhere", "--verbose")

    assert result.returncode == 2 and "Traceback" in result.stderr


def test_manifest_prints_sizes_hashes_and_digest_as_json(project: Path) -> None:
    result = replay(project, "manifest", "data", "--json")

    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["schema"] == "replay.data-manifest"
    assert doc["files"] == [{"path": "data/x.csv", "size": 4, "sha256": hashlib.sha256(b"1,2\n").hexdigest()}]
    assert doc["digest"].startswith("sha256:")


@pytest.mark.parametrize("target", ["missing-capsule", "127.0.0.1:9/x@sha256:" + "a" * 64, "nothing.replay"])
def test_a_target_that_cannot_be_opened_still_gives_one_json_report(tmp_path: Path, target: str) -> None:
    """--json promises a document on stdout: a folder that is not there, a registry that does not answer and
    a bundle that does not exist each give the verify report of an error, with the one error line."""
    result = replay(tmp_path, "verify", target, "--json")
    assert result.returncode in (2, 3), result.stderr
    doc = json.loads(result.stdout)
    assert doc["schema"] == "replay.verify-report" and doc["verdict"] == "error"
    assert doc["exit_code"] == result.returncode and doc["error"] in one_error_line(result)
