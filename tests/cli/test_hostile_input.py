"""A capsule or arguments made to harm: through the real `replay` command, each case ends on exit 2 (or 3)
with one `error:` line, no traceback, and nothing created. None needs a Docker engine: DOCKER_HOST points
at a socket that does not exist, so a capsule that passes every check ends at exit 3."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from replay import manifest
from tests.cli.test_bad_input import CAPTURE, one_error_line, replay
from tests.unit.test_manifest import full_manifest

# Passed through show, verify and manifest --check alike.
LOADERS = (("show",), ("verify",), ("manifest", "--check"))


def plain_manifest() -> dict[str, Any]:
    """A manifest that verify accepts up to the engine (no secret to read from the environment)."""
    m = full_manifest()
    m.command.env = {"WANDB_MODE": "offline"}
    return json.loads(json.dumps(m.to_dict()))


def write_capsule(folder: Path, doc: Any) -> Path:
    capsule = folder / "capsule"
    capsule.mkdir(exist_ok=True)
    text = doc if isinstance(doc, str) else json.dumps(doc)
    (capsule / "replay.json").write_text(text)
    return capsule


def run_loader(cwd: Path, command: tuple[str, ...], capsule: Path) -> Any:
    if command[0] == "manifest":
        (cwd / "data").mkdir(exist_ok=True)
        return replay(cwd, "manifest", "data", "--check", str(capsule))
    return replay(cwd, *command, str(capsule))


def test_a_plain_capsule_reaches_the_engine(tmp_path: Path) -> None:
    capsule = write_capsule(tmp_path, plain_manifest())
    result = replay(tmp_path, "verify", str(capsule))
    assert result.returncode == 3 and "no Docker engine" in one_error_line(result)


HOSTILE_EDITS = [
    ("output-dotdot", lambda d: d["outputs"]["files"][0].__setitem__("path", "../../etc/x"), "has a '..' segment"),
    ("output-root-dotdot", lambda d: d["outputs"]["roots"].append("../../tmp/evil"), "has a '..' segment"),
    ("output-absolute", lambda d: d["outputs"].__setitem__("roots", ["/tmp/evil"]), "is absolute"),
    ("metrics-file-escape", lambda d: d["outputs"].__setitem__("metrics_files", ["../../m.json"]), "'..' segment"),
    ("data-root-dotdot", lambda d: d["data"]["roots"].append("/mnt/../etc"), "has a '..' segment"),
    ("workdir-escape", lambda d: d["command"].__setitem__("workdir", "../.."), "command.workdir"),
    ("numerics-ld-preload", lambda d: d["command"]["numerics_env"].__setitem__("LD_PRELOAD", "/tmp/x.so"),
     "is not a numerics variable"),
    ("carried-env-path", lambda d: d["command"]["env"].__setitem__("PATH", "/tmp/bin"), "steers the loader"),
    ("empty-argv", lambda d: d["command"].__setitem__("argv", []), "there is no command to replay"),
    ("seed-out-of-range", lambda d: d["command"].__setitem__("seed", 2**32), "command.seed"),
    ("huge-int-metric", lambda d: d["outputs"]["metrics"].__setitem__("accuracy", 10**400), "too large for a number"),
    ("lock-file-elsewhere", lambda d: d["python"].__setitem__("lock_file", "/etc/shadow"), "python.lock_file"),
    ("markup-in-a-path", lambda d: d["outputs"]["files"][0].__setitem__("path", "out/[/x]/../../y"), "'..' segment"),
]


# Every edit through verify; show and manifest --check share the loader, so two edits each suffice there.
CASES = [(*case, ("verify",)) for case in HOSTILE_EDITS] + [
    (*case, command) for case in HOSTILE_EDITS[:1] + HOSTILE_EDITS[6:7] for command in LOADERS if command[0] != "verify"
]


@pytest.mark.parametrize(("name", "edit", "needle", "command"), CASES, ids=[f"{c[0]}-{c[3][0]}" for c in CASES])
def test_hostile_manifest_is_refused_on_load(tmp_path: Path, name: str, edit: Any, needle: str,
                                            command: tuple[str, ...]) -> None:
    doc = plain_manifest()
    edit(doc)
    capsule = write_capsule(tmp_path, doc)

    result = run_loader(tmp_path, command, capsule)

    assert result.returncode == 2, result.stderr
    assert needle in one_error_line(result)
    assert not (tmp_path / "etc").exists() and not Path("/tmp/evil").exists()


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ('{"schema_version": 1, "size": ' + "7" * 5000 + "}", "holds a number it cannot read"),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ('{"a": ' * 100_000 + "1" + "}" * 100_000, "nested too deeply"),
    ],
    ids=["5000-digit-int", "deep-list", "deep-object"],
)
@pytest.mark.parametrize("command", LOADERS, ids=lambda c: " ".join(c))
def test_hostile_json_is_refused(tmp_path: Path, content: str, needle: str, command: tuple[str, ...]) -> None:
    capsule = write_capsule(tmp_path, content)
    result = run_loader(tmp_path, command, capsule)
    assert result.returncode == 2 and needle in one_error_line(result)


@pytest.mark.parametrize("command", LOADERS, ids=lambda c: " ".join(c))
def test_replay_json_that_is_a_folder(tmp_path: Path, command: tuple[str, ...]) -> None:
    (tmp_path / "capsule" / "replay.json").mkdir(parents=True)
    result = run_loader(tmp_path, command, tmp_path / "capsule")
    assert result.returncode == 2 and "is a folder, not a file" in one_error_line(result)


def test_capsule_text_is_never_read_as_markup(tmp_path: Path) -> None:
    doc = plain_manifest()
    doc["created"] = "[/x] [bold]"
    doc["command"]["argv"] = ["python", "[/]", "[red]x"]
    doc["host"]["cpu_model"] = "[/cpu]"
    capsule = write_capsule(tmp_path, doc)

    result = replay(tmp_path, "show", str(capsule))

    assert result.returncode == 0, result.stderr
    assert "[/x] [bold]" in result.stdout and "[red]x" in result.stdout


def test_json_output_is_strict(tmp_path: Path) -> None:
    doc = plain_manifest()
    doc["outputs"]["metrics"] = {"loss": "NaN", "up": "Infinity"}
    capsule = write_capsule(tmp_path, doc)

    result = replay(tmp_path, "show", str(capsule), "--json")

    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout, parse_constant=_refuse)
    assert shown["outputs"]["metrics"] == {"loss": "NaN", "up": "Infinity"}
    assert math.isnan(manifest.from_dict(shown).outputs.metrics["loss"])


def _refuse(name: str) -> None:
    raise AssertionError(f"{name} is not strict JSON")


# --- arguments -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--memory", "lots"], "--memory lots is not a size"),
        (["--memory", "1"], "below the engine's minimum"),
        (["--cpus", "-1"], "--cpus -1 is not a positive number"),
        (["--cpus", "0"], "--cpus 0 is not a positive number"),
        (["--cpus", "999"], "--cpus 999 is outside what this machine can give"),
        (["--cpus", "nan"], "--cpus nan"),
        (["--timeout", "0"], "--timeout 0"),
        (["--timeout", "inf"], "--timeout inf"),
        (["--timeout", "1e10"], "--timeout 1e+10 is longer than"),  # threading.Timer overflowed, too late
        (["--report", "{dir}"], "is a folder"),
        (["--junit", "{dir}"], "is a folder"),
        (["--markdown", "{dir}"], "is a folder"),
        (["--report", "missing/dir/x.json"], "missing/dir does not exist"),
        (["--junit", "{file}/x.xml"], "is not a folder"),
        (["--keep", "{file}"], "--keep"),
    ],
)
def test_bad_arguments_stop_verify_before_the_capsule_is_opened(tmp_path: Path, args: list[str], needle: str) -> None:
    (tmp_path / "a-dir").mkdir()
    (tmp_path / "a-file").write_text("mine\n")
    filled = [a.format(dir=tmp_path / "a-dir", file=tmp_path / "a-file") for a in args]

    # No capsule at all: an argument error must come first, before the manifest or the engine is asked.
    result = replay(tmp_path, "verify", "no-capsule-here", *filled)

    assert result.returncode == 2, result.stderr
    assert needle in one_error_line(result)
    assert not (tmp_path / "missing").exists()
    assert (tmp_path / "a-file").read_text() == "mine\n" and not any((tmp_path / "a-dir").iterdir())


def test_report_destinations_are_checked_before_the_run(tmp_path: Path) -> None:
    """With a capsule that would run, a bad report path is exit 2 before the engine (exit 3) is asked."""
    capsule = write_capsule(tmp_path, plain_manifest())
    (tmp_path / "a-dir").mkdir()
    result = replay(tmp_path, "verify", str(capsule), "--json", "--report", str(tmp_path / "a-dir"))
    assert result.returncode == 2 and "is a folder" in one_error_line(result)


def test_capsule_tolerance_that_does_not_parse_stops_verify_before_the_engine(tmp_path: Path) -> None:
    doc = plain_manifest()
    doc["policy"]["tolerances"]["accuracy"] = "lots"
    result = replay(tmp_path, "verify", str(write_capsule(tmp_path, doc)))
    assert result.returncode == 2 and "tolerance 'lots' is not valid" in one_error_line(result)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "x.csv").write_text("1,2\n")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "model.bin").write_bytes(b"\x00\x01")
    (tmp_path / "out" / "metrics.json").write_text('{"accuracy": 0.85}')
    return tmp_path


@pytest.mark.parametrize(
    ("extra", "env", "needle"),
    [
        (["--python", "/bin/true"], {}, "did not answer like a Python interpreter"),
        (["--env", "PATH"], {}, "--env PATH steers the loader"),
        (["--env", "LD_PRELOAD"], {"LD_PRELOAD": ""}, "--env LD_PRELOAD steers the loader"),
        (["--env", "PYTHONPATH"], {"PYTHONPATH": "/tmp"}, "--env PYTHONPATH steers the loader"),
        ([], {"OMP_NUM_THREADS": "lots"}, "OMP_NUM_THREADS='lots' in this environment is not a positive thread count"),
    ],
)
def test_capture_refuses_what_verify_would_refuse(project: Path, extra: list[str], env: dict[str, str],
                                                  needle: str) -> None:
    result = replay(project, *CAPTURE, *extra, "--", "python", "t.py", **env)
    assert result.returncode == 2, result.stderr
    assert needle in one_error_line(result)
    assert not (project / ".replay").exists()


@pytest.mark.parametrize("text", ['{"accuracy": ' + "9" * 400 + "}", '{"accuracy": ' + "9" * 5000 + "}",
                                  '{"a": ' * 100_000 + "1" + "}" * 100_000])
def test_capture_of_hostile_metrics_is_bad_input(project: Path, text: str) -> None:
    (project / "out" / "metrics.json").write_text(text)
    result = replay(project, *CAPTURE, "--", "python", "t.py")
    assert result.returncode == 2 and "metrics file" in one_error_line(result)
