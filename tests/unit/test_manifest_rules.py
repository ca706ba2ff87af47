"""What a replay.json's values may be beyond their types (replay.manifest_rules), checked on load.

Each case is a hand edit someone could make to a capsule before handing it over; every one must be a
ManifestError (exit 2) naming the field, never a capsule that loads and then steers the verifier.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import pytest

from replay import manifest, typedjson
from replay.errors import EXIT_BAD_INPUT, ManifestError
from replay.manifest import from_dict, load
from replay.manifest_rules import numerics_value_problem, path_problem, refused_env_name
from tests.unit.test_manifest import full_manifest


def raw() -> dict[str, Any]:
    return json.loads(json.dumps(full_manifest().to_dict()))


def refused(change: Any) -> str:
    data = raw()
    change(data)
    with pytest.raises(ManifestError) as info:
        from_dict(data)
    assert info.value.exit_code == EXIT_BAD_INPUT
    return info.value.message


def test_the_full_manifest_passes_every_rule() -> None:
    assert from_dict(raw()) == full_manifest()


# --- paths ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "absolute", "problem"),
    [
        ("out/model.bin", False, None),
        (".", False, None),
        ("a b/[x].csv", False, None),
        ("/mnt/data", True, None),
        ("", False, "is empty"),
        ("out/\0x", False, "holds a NUL byte"),
        ("/etc/x", False, "is absolute"),
        ("/", True, "is the root folder"),
        ("../../etc/x", False, "has a '..' segment"),
        ("out/../../x", False, "has a '..' segment"),
        ("..", False, "has a '..' segment"),
        ("/mnt/../etc", True, "has a '..' segment"),
        ("out/./x", False, "is not normalized"),
        ("./out", False, "is not normalized"),
        ("out//x", False, "is not normalized"),
        ("out/", False, "is not normalized"),
        ("/mnt/data/", True, "is not normalized"),
        ("out/..x/y..", False, None),
    ],
)
def test_path_problem(path: str, absolute: bool, problem: str | None) -> None:
    assert path_problem(path, absolute) == problem


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        (lambda d: d["outputs"]["files"][0].__setitem__("path", "../../etc/x"),
         "outputs.files[0]: '../../etc/x' has a '..'"),
        (lambda d: d["outputs"]["roots"].append("../../etc"), "outputs.roots[1]: '../../etc' has a '..' segment"),
        (lambda d: d["outputs"].__setitem__("roots", ["/tmp/evil"]), "outputs.roots[0]: '/tmp/evil' is absolute"),
        (lambda d: d["outputs"]["files"].append({"path": "/etc/passwd", "size": 1, "sha256": "a" * 64}),
         "outputs.files[2]: '/etc/passwd' is absolute"),
        (lambda d: d["outputs"]["files"].append({"path": "elsewhere/x", "size": 1, "sha256": "a" * 64}),
         "outputs.files[2]: 'elsewhere/x' is not under any of the recorded roots"),
        (lambda d: d["outputs"]["files"].append({"path": "outside", "size": 1, "sha256": "a" * 64}),
         "is not under any"),  # "out" is a root; "outside" only shares its first letters
        (lambda d: d["outputs"].__setitem__("metrics_files", ["../metrics.json"]), "has a '..' segment"),
        (lambda d: d["outputs"].__setitem__("metrics_files", ["out/other.json"]),
         "outputs.metrics_files[0]: 'out/other.json' is not one of the outputs"),
        (lambda d: d["data"]["roots"].append("/mnt/../etc"), "data.roots[2]: '/mnt/../etc' has a '..' segment"),
        (lambda d: d["data"]["roots"].append("/"), "data.roots[2]: '/' is the root folder"),
        (lambda d: d["data"]["roots"].append("data/"), "is not normalized"),
        (lambda d: d["data"]["files"][0].__setitem__("path", "data/../../x"), "data.files[0]"),
        (lambda d: d["data"]["files"][0].__setitem__("path", "/etc/shadow"), "is not under any of the recorded roots"),
        (lambda d: d["command"].__setitem__("workdir", "../.."), "command.workdir: '../..' has a '..' segment"),
        (lambda d: d["command"].__setitem__("workdir", "/etc"), "command.workdir: '/etc' is absolute"),
        (lambda d: d["python"].__setitem__("project_paths", ["../lib"]), "python.project_paths[0]"),
    ],
)
def test_paths_that_escape_or_are_not_normalized_are_refused(change: Any, needle: str) -> None:
    assert needle in refused(change)


def test_data_files_may_be_absolute_under_an_absolute_root() -> None:
    data = raw()
    data["data"]["roots"].append("/mnt/set")
    data["data"]["files"].append({"path": "/mnt/set/a/b.csv", "size": 3, "sha256": "c" * 64})
    m = from_dict(data)
    assert "/mnt/set" in m.data.roots and m.data.files[-1].path == "/mnt/set/a/b.csv"


def test_a_dot_root_holds_every_relative_path() -> None:
    data = raw()
    data["data"]["roots"] = ["."]
    data["data"]["files"] = [{"path": "anything/x.csv", "size": 1, "sha256": "a" * 64}]
    assert from_dict(data).data.roots == ["."]


# --- fields that steer the replay ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        (lambda d: d["command"]["numerics_env"].__setitem__("LD_PRELOAD", "/tmp/x.so"),
         "command.numerics_env.LD_PRELOAD: '/tmp/x.so' is not a numerics variable"),
        (lambda d: d["command"]["numerics_env"].__setitem__("PATH", "/tmp"), "numerics_env.PATH"),
        (lambda d: d["command"]["numerics_env"].__setitem__("OMP_NUM_THREADS", "0"), "is not a positive thread count"),
        (lambda d: d["command"]["numerics_env"].__setitem__("OMP_NUM_THREADS", "-1"), "is not a positive thread count"),
        (lambda d: d["command"]["numerics_env"].__setitem__("OMP_NUM_THREADS", ""), "is not a positive thread count"),
        (lambda d: d["command"]["numerics_env"].__setitem__("TZ", "UTC; rm -rf /"), "holds characters"),
        (lambda d: d["command"]["numerics_env"].__setitem__("LANG", "C\nX=1"), "holds characters"),
        (lambda d: d["command"]["env"].__setitem__("LD_PRELOAD", "/tmp/x.so"), "command.env.LD_PRELOAD"),
        (lambda d: d["command"]["env"].__setitem__("PATH", "/tmp"), "steers the loader"),
        (lambda d: d["command"]["env"].__setitem__("PYTHONPATH", "/tmp"), "steers the loader"),
        (lambda d: d["command"]["env"].__setitem__("PYTHONSTARTUP", "/tmp/x.py"), "steers the loader"),
        (lambda d: d["command"]["env"].__setitem__("HOME", "/root"), "steers the loader"),
        (lambda d: d["command"]["env"].__setitem__("BASH_ENV", "/tmp/x"), "steers the loader"),
        (lambda d: d["command"]["env"].__setitem__("DYLD_INSERT_LIBRARIES", "x"), "steers the loader"),
        (lambda d: d["command"]["env"].__setitem__("REPLAY_SEED", "1"), "steers the loader"),
        (lambda d: d["command"]["env"].__setitem__("1BAD", "1"), "is not a variable name"),
        (lambda d: d["command"]["env"].__setitem__("A=B", "1"), "is not a variable name"),
        (lambda d: d["command"].__setitem__("argv", []), "command.argv: [] is empty"),
        (lambda d: d["command"].__setitem__("argv", [""]), "is empty"),
        (lambda d: d["command"]["argv"].__setitem__(1, "a\0b"), "holds a NUL byte"),
        (lambda d: d["command"].__setitem__("seed", 4294967296), "command.seed: 4294967296 is out of range"),
        (lambda d: d["command"].__setitem__("seed", -1), "command.seed"),
    ],
)
def test_fields_that_steer_the_replay_take_only_documented_values(change: Any, needle: str) -> None:
    assert needle in refused(change)


def test_thread_counts_and_conservative_values_are_kept() -> None:
    data = raw()
    data["command"]["numerics_env"] = {"OMP_NUM_THREADS": "4,2", "MKL_NUM_THREADS": "16", "TZ": "<+0330>-3:30",
                                       "LANG": "de_DE.UTF-8@euro", "CUBLAS_WORKSPACE_CONFIG": ":4096:8",
                                       "MKL_CBWR": "AUTO,STRICT", "LC_ALL": ""}
    data["command"]["env"] = {"WANDB_MODE": "offline", "HF_TOKEN": None, "path_like": "x"}
    m = from_dict(data)
    assert m.command.numerics_env["TZ"] == "<+0330>-3:30"
    assert m.command.env["path_like"] == "x"


@pytest.mark.parametrize("name", ["LD_LIBRARY_PATH", "ld_preload", "PATH", "PYTHONHASHSEED", "REPLAY_ANYTHING",
                                  "ENV", "IFS", "HOME", "not-a-name", ""])
def test_refused_env_names(name: str) -> None:
    assert refused_env_name(name) is not None


@pytest.mark.parametrize("name", ["WANDB_MODE", "HF_HOME", "CUDA_VISIBLE_DEVICES", "_X", "MY_PATH"])
def test_training_settings_may_be_carried(name: str) -> None:
    assert refused_env_name(name) is None


def test_numerics_value_problem() -> None:
    assert numerics_value_problem("OMP_NUM_THREADS", "8") is None
    assert numerics_value_problem("OMP_NUM_THREADS", "1e3") is not None
    assert numerics_value_problem("TZ", "Europe/Paris") is None
    assert numerics_value_problem("TZ", "$(id)") is not None


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        (lambda d: d["python"].__setitem__("lock_file", "../../etc/passwd"),
         "python.lock_file: '../../etc/passwd' may only"),
        (lambda d: d["code"].__setitem__("patch", "/etc/passwd"),
         "code.patch: '/etc/passwd' may only be null or 'code.patch'"),
        (lambda d: d["outputs"].__setitem__("reference_dir", ".."), "outputs.reference_dir"),
        (lambda d: d.__setitem__("name", "../x"), "name: '../x' is not a capsule name"),
        (lambda d: d.__setitem__("name", "[/x]"), "is not a capsule name"),
    ],
)
def test_fixed_name_fields_take_only_their_documented_value(change: Any, needle: str) -> None:
    assert needle in refused(change)


# --- numbers -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        (lambda d: d["outputs"]["metrics"].__setitem__("accuracy", 10**400),
         "outputs.metrics.accuracy: an integer of 1329 bits is too large for a number"),
        (lambda d: d["outputs"]["files"][0].__setitem__("size", 10**400), "outputs.files[0].size: an integer of"),
        (lambda d: d["outputs"]["files"][0].__setitem__("size", -1), "outputs.files[0].size: -1 is out of range"),
        (lambda d: d["image"].__setitem__("size", 1 << 63), "image.size: 9223372036854775808 is out of range"),
        (lambda d: d["outputs"]["files"][0].__setitem__("sha256", "xyz"), "outputs.files[0].sha256: is not 64"),
        (lambda d: d["outputs"]["metrics"].__setitem__("accuracy", "high"), "expected float, got str"),
        (lambda d: d["image"].__setitem__("tag", "a\0b"), "image.tag: holds a NUL byte"),
    ],
)
def test_numbers_and_strings_out_of_range_are_refused(change: Any, needle: str) -> None:
    assert needle in refused(change)


def test_non_finite_metrics_are_written_as_strings_and_read_back() -> None:
    m = full_manifest()
    m.outputs.metrics = {"loss": math.nan, "up": math.inf, "down": -math.inf, "ok": 0.5}
    text = json.dumps(m.to_dict())  # what the dataclass holds
    assert "NaN" in text
    doc = json.loads(json.dumps(json.loads(manifest_text(m)), allow_nan=False))
    assert doc["outputs"]["metrics"] == {"loss": "NaN", "up": "Infinity", "down": "-Infinity", "ok": 0.5}
    back = from_dict(doc).outputs.metrics
    assert math.isnan(back["loss"]) and back["up"] == math.inf and back["down"] == -math.inf and back["ok"] == 0.5


def manifest_text(m: manifest.Manifest) -> str:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        manifest.save(m, Path(folder))
        return (Path(folder) / "replay.json").read_text()


def test_saved_manifest_is_strict_json(tmp_path: Path) -> None:
    m = full_manifest()
    m.outputs.metrics["loss"] = math.nan
    manifest.save(m, tmp_path)

    def refuse(name: str) -> None:
        raise AssertionError(f"bare {name} in replay.json")

    json.loads((tmp_path / "replay.json").read_text(), parse_constant=refuse)
    assert math.isnan(load(tmp_path).outputs.metrics["loss"])


def test_bare_nan_written_by_older_replays_still_loads(tmp_path: Path) -> None:
    data = raw()
    data["outputs"]["metrics"]["loss"] = math.nan
    (tmp_path / "replay.json").write_text(json.dumps(data))
    assert math.isnan(load(tmp_path).outputs.metrics["loss"])


# --- files that are not JSON documents -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ('{"schema_version": 1, "x": ' + "1" * 5000 + "}", "holds a number it cannot read"),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ('{"a": ' * 100_000 + "1" + "}" * 100_000, "nested too deeply"),
    ],
)
def test_hostile_json_is_a_manifest_error(tmp_path: Path, content: str, needle: str) -> None:
    (tmp_path / "replay.json").write_text(content)
    with pytest.raises(ManifestError, match=needle):
        load(tmp_path)


def test_replay_json_that_is_a_folder(tmp_path: Path) -> None:
    (tmp_path / "replay.json").mkdir()
    with pytest.raises(ManifestError, match="is a folder, not a file"):
        load(tmp_path)


def test_unreadable_replay_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "replay.json"
    target.write_text("{}")

    def denied(folder: Path, name: str, *args: object, **kwargs: object) -> bytes:
        raise PermissionError(13, "Permission denied")

    # As root nothing is unreadable by its mode: make the capsule-safe reader refuse instead.
    monkeypatch.setattr("replay.safefs.read_bytes", denied)
    with pytest.raises(ManifestError, match="cannot read .*Permission denied"):
        load(tmp_path)


# --- the loader stays generic --------------------------------------------------------------------------


def test_new_optional_fields_with_defaults_just_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """A field added later (here a made-up bool and a list of dataclasses) loads with no loader change."""
    from dataclasses import dataclass, field, make_dataclass

    @dataclass
    class Extra:
        path: str
        inside: bool = False

    command_type = make_dataclass(
        "RunCommand", [("auto_seed", bool, field(default=False)), ("extras", list[Extra], field(default_factory=list))],
        bases=(manifest.RunCommand,),
    )
    built = typedjson.build(command_type, {"argv": ["python"], "auto_seed": True, "extras": [{"path": "x"}]}, "c")
    assert built.auto_seed is True and built.extras == [Extra("x")]
    assert typedjson.build(command_type, {"argv": ["python"]}, "c").auto_seed is False


def test_unknown_keys_are_ignored() -> None:
    data = raw()
    data["command"]["from_the_future"] = 1
    data["data"]["files"][0]["mtime"] = 5  # the fast path falls back, and still builds the entry
    assert from_dict(data) == full_manifest()


@pytest.mark.parametrize(("mutate", "field"), [
    (lambda d: d["python"]["project_packages"][0].__setitem__("paths", ["../elsewhere"]),
     "python.project_packages[0].paths[0]"),
    (lambda d: d["python"]["project_packages"][0].__setitem__("name", "../x"), "python.project_packages[0].name"),
    (lambda d: d["python"]["project_packages"][0].__setitem__("version", "1/../../x"),
     "python.project_packages[0].version"),
    # A console script's name becomes a file in the image's bin/, its reference an import in a script.
    (lambda d: d["python"]["project_packages"][0].__setitem__("entry_points", {"console_scripts": {"../x": "a:b"}}),
     "python.project_packages[0].entry_points.console_scripts"),
    (lambda d: d["python"]["project_packages"][0].__setitem__(
        "entry_points", {"console_scripts": {"x": "os:system('id')"}}),
     "python.project_packages[0].entry_points.console_scripts.x"),
    (lambda d: d["python"]["project_packages"][0].__setitem__("entry_points", {"[x]\n": {"x": "a:b"}}),
     "python.project_packages[0].entry_points"),
])
def test_a_project_package_that_would_leave_its_folders_is_refused(mutate: Any, field: str) -> None:
    data = json.loads(json.dumps(full_manifest().to_dict()))
    mutate(data)
    with pytest.raises(ManifestError, match=re.escape(field)):
        from_dict(data)
