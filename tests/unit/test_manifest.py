from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from replay import fsutil, manifest
from replay.errors import EXIT_BAD_INPUT, ManifestError
from replay.manifest import (
    BaseImage,
    CodeVersion,
    DataManifest,
    FileEntry,
    GpuInfo,
    HostInfo,
    ImageInfo,
    LibraryNeed,
    Manifest,
    Outputs,
    Package,
    Policy,
    ProjectPackage,
    PythonEnv,
    RunCommand,
    Stability,
    SystemEnv,
    SystemPackage,
    from_dict,
    load,
    save,
)

SHA_A = "a" * 64
SHA_B = "b" * 64


def full_manifest() -> Manifest:
    """A manifest with every field set to something other than its default."""
    return Manifest(
        name="demo",
        created="2024-05-01T12:00:00Z",
        replay_version="0.1.0",
        command=RunCommand(
            argv=["python", "train.py", "--seed", "7"],
            workdir="src",
            seed=7,
            env={"WANDB_MODE": "offline", "HF_TOKEN": None},
            numerics_env={"OMP_NUM_THREADS": "2", "TZ": "UTC"},
            auto_seed=True,
        ),
        code=CodeVersion(
            kind="git",
            snapshot_digest="sha256:" + SHA_A,
            files=12,
            commit="0123456789abcdef0123456789abcdef01234567",
            branch="main",
            remote="https://github.com/o/r.git",
            dirty=True,
            patch="code.patch",
            patch_sha256=SHA_B,
            left_out={"*.egg-info/": 6, "__pycache__/": 2},
        ),
        python=PythonEnv(
            version="3.11.7",
            implementation="CPython",
            executable="/home/u/.venv/bin/python",
            packages=[Package("numpy", "1.26.4"), Package("mylib", "0.1", source="local-wheel")],
            lock_file="requirements.lock",
            lock_sha256=SHA_A,
            project_paths=["src"],
            project_packages=[ProjectPackage("trainer", "0.2.dev1", ["src"], kind="develop")],
            replay_api=True,
        ),
        image=ImageInfo(
            id="sha256:" + SHA_B,
            tag="replay/demo:" + SHA_B[:12],
            size=123_456_789,
            base=BaseImage(ref="python:3.11.7-slim", id="sha256:" + SHA_A, digest="sha256:" + SHA_B,
                           python_version="3.11.7"),
            platform="linux/arm64",
            dockerfile_sha256=SHA_A,
        ),
        data=DataManifest(
            roots=["data", "/mnt/shared/extra.csv"],
            files=[FileEntry("data/a.csv", 10, SHA_A), FileEntry("/mnt/shared/extra.csv", 0, SHA_B)],
            digest="sha256:" + SHA_B,
        ),
        outputs=Outputs(
            roots=["out"],
            files=[FileEntry("out/model.pkl", 4096, SHA_A), FileEntry("out/metrics.json", 54, SHA_B)],
            metrics_files=["out/metrics.json"],
            metrics={"accuracy": 0.95, "eval.loss": 0.125},
            reference_dir="reference",
            stability=Stability(runs=3, unstable_outputs=["out/run.log"], unstable_metrics=["accuracy"]),
        ),
        policy=Policy(tolerances={"accuracy": "1e-6", "eval.*": "rel:1e-9"}, ignore=["out/*.log"]),
        host=HostInfo(
            os="Debian GNU/Linux 12", kernel="6.1.0", arch="x86_64", cpu_model="AMD EPYC",
            cpu_flags=["avx2", "fma"], cores=2, memory_bytes=8 * 2**30,
            gpus=[GpuInfo("NVIDIA H100", driver="550.54", memory_mb=81559)], docker_version="24.0.7",
        ),
        system=SystemEnv([SystemPackage("libgomp1", "12.2.0-14+deb12u1", [LibraryNeed("libgomp.so.1", "lightgbm")]),
                          SystemPackage("ffmpeg", "7:5.1.6-0+deb12u1", [LibraryNeed("", "--apt")])]),
    )


def raw() -> dict[str, Any]:
    return json.loads(json.dumps(full_manifest().to_dict()))


def error_of(data: Any, source: str = "replay.json") -> ManifestError:
    with pytest.raises(ManifestError) as info:
        from_dict(data, source)
    assert info.value.exit_code == EXIT_BAD_INPUT == 2
    return info.value


# --- round trip ----------------------------------------------------------------------------------------


def test_round_trip_through_json_is_unchanged() -> None:
    original = full_manifest()
    text = json.dumps(original.to_dict())
    loaded = from_dict(json.loads(text))
    assert loaded == original
    assert loaded.to_dict() == original.to_dict()
    assert loaded.command.env == {"WANDB_MODE": "offline", "HF_TOKEN": None}
    assert loaded.image.base.digest == "sha256:" + SHA_B


def test_a_manifest_without_system_packages_loads_and_writes_no_section() -> None:
    old = raw()
    del old["system"]  # capsules from before system packages, and those that need none
    loaded = from_dict(old)
    assert loaded.system is None and loaded.system_packages == []
    assert "system" not in loaded.to_dict()


@pytest.mark.parametrize(("field", "value", "message"), [
    ("name", "LibGomp", "is not a Debian package name"),
    ("name", "../x", "is not a Debian package name"),
    ("version", "", "is not a Debian version"),
    ("version", "1.0 && rm", "is not a Debian version"),
])
def test_a_bad_system_package_is_refused(field: str, value: str, message: str) -> None:
    data = raw()
    data["system"]["packages"][0][field] = value
    assert error_of(data).message == f"replay.json.system.packages[0].{field}: {value!r} {message}"


def test_schema_version_is_the_first_key() -> None:
    keys = list(full_manifest().to_dict())
    assert keys[0] == "schema_version"
    assert keys[1:] == ["name", "created", "replay_version", "command", "code", "python", "image", "data",
                        "outputs", "policy", "host", "system"]
    assert full_manifest().to_dict()["schema_version"] == manifest.SCHEMA_VERSION == 1


def test_save_writes_schema_version_first_and_load_reads_folder_and_file(tmp_path: Path) -> None:
    original = full_manifest()
    save(original, tmp_path)  # a folder: its replay.json
    target = tmp_path / "replay.json"
    text = target.read_text()
    assert text.startswith('{\n  "schema_version": 1,\n  "name": "demo",')
    assert text.endswith("}\n")
    assert load(tmp_path) == original
    assert load(target) == original


def test_save_to_a_file_path(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere.json"
    save(full_manifest(), target)
    assert sorted(os.listdir(tmp_path)) == ["elsewhere.json"]
    assert json.loads(target.read_text()) == full_manifest().to_dict()


def test_optional_fields_none_load() -> None:
    data = raw()
    data["command"]["seed"] = None
    data["code"].update(commit=None, branch=None, remote=None, patch=None, patch_sha256=None)
    data["image"]["base"]["digest"] = None
    data["outputs"]["reference_dir"] = None
    m = from_dict(data)
    assert m.command.seed is None
    assert (m.code.commit, m.code.branch, m.code.remote, m.code.patch, m.code.patch_sha256) == (None,) * 5
    assert m.image.base.digest is None
    assert m.outputs.reference_dir is None


def test_fields_with_defaults_may_be_absent() -> None:
    data = raw()
    del data["command"]["seed"], data["command"]["env"], data["code"]["dirty"], data["outputs"]["reference_dir"]
    m = from_dict(data)
    assert m.command.seed is None
    assert m.command.env == {}
    assert m.code.dirty is False
    assert m.outputs.reference_dir == "reference"


def test_seeding_fields_added_later_default_to_off_when_absent() -> None:
    # Capsules written before --auto-seed existed keep loading, with schema version 1.
    data = raw()
    del data["command"]["auto_seed"], data["python"]["replay_api"]
    m = from_dict(data)
    assert m.command.auto_seed is False and m.python.replay_api is False
    assert full_manifest().command.auto_seed is True and from_dict(raw()).python.replay_api is True


def test_float_fields_accept_ints() -> None:
    data = raw()
    data["outputs"]["metrics"] = {"accuracy": 1, "loss": 0}
    m = from_dict(data)
    assert m.outputs.metrics == {"accuracy": 1.0, "loss": 0.0}
    assert all(type(v) is float for v in m.outputs.metrics.values())


def test_float_field_refuses_bool() -> None:
    data = raw()
    data["outputs"]["metrics"]["accuracy"] = True
    assert error_of(data).message == "replay.json.outputs.metrics.accuracy: expected float, got bool"


# --- errors --------------------------------------------------------------------------------------------


def test_missing_field_names_its_path() -> None:
    data = raw()
    del data["outputs"]["files"][0]["size"]
    exc = error_of(data)
    assert exc.message == "replay.json.outputs.files[0]: missing field 'size'"
    assert exc.hint == "recapture the run"


def test_missing_top_level_field() -> None:
    data = raw()
    del data["host"]
    assert error_of(data).message == "replay.json: missing field 'host'"


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["outputs"]["files"][0].__setitem__("size", "4096"),
         "replay.json.outputs.files[0].size: expected int, got str"),
        (lambda d: d["outputs"]["files"][1].__setitem__("size", True),
         "replay.json.outputs.files[1].size: expected int, got bool"),
        (lambda d: d["image"].__setitem__("size", 1.5),
         "replay.json.image.size: expected int, got float"),
        (lambda d: d["command"].__setitem__("seed", "7"),
         "replay.json.command.seed: expected int, got str"),
        (lambda d: d["code"].__setitem__("dirty", 1),
         "replay.json.code.dirty: expected bool, got int"),
        (lambda d: d.__setitem__("command", ["python"]),
         "replay.json.command: expected an object"),
        (lambda d: d["image"].__setitem__("base", []),
         "replay.json.image.base: expected an object"),
        (lambda d: d["command"].__setitem__("argv", "python train.py"),
         "replay.json.command.argv: expected a list"),
        (lambda d: d["command"]["argv"].__setitem__(1, 3),
         "replay.json.command.argv[1]: expected str, got int"),
        (lambda d: d["command"]["env"].__setitem__("WANDB_MODE", 1),
         "replay.json.command.env.WANDB_MODE: expected str, got int"),
        (lambda d: d["policy"].__setitem__("tolerances", ["1e-6"]),
         "replay.json.policy.tolerances: expected an object"),
        (lambda d: d["host"]["gpus"][0].__setitem__("memory_mb", None),
         "replay.json.host.gpus[0].memory_mb: expected int, got NoneType"),
    ],
)
def test_wrong_type_names_its_path(mutate: Any, message: str) -> None:
    data = raw()
    mutate(data)
    assert error_of(data).message == message


def test_error_path_starts_with_the_source() -> None:
    data = raw()
    data["outputs"]["files"][0]["size"] = "x"
    assert error_of(data, "/c/replay.json").message == "/c/replay.json.outputs.files[0].size: expected int, got str"


def test_load_not_json(tmp_path: Path) -> None:
    (tmp_path / "replay.json").write_text('{"schema_version": 1,')
    with pytest.raises(ManifestError) as info:
        load(tmp_path)
    assert info.value.message.startswith(f"{tmp_path / 'replay.json'} is not valid JSON (")
    assert info.value.exit_code == 2


def test_load_not_utf8(tmp_path: Path) -> None:
    (tmp_path / "replay.json").write_bytes(b"\xff\xfe{")
    with pytest.raises(ManifestError, match="is not valid JSON"):
        load(tmp_path)


def test_load_missing_capsule(tmp_path: Path) -> None:
    with pytest.raises(ManifestError) as info:
        load(tmp_path)
    assert info.value.message == f"no capsule at {tmp_path} (no replay.json)"
    assert info.value.exit_code == 2


@pytest.mark.parametrize("data", [[], "text", 1, None])
def test_not_an_object(data: Any) -> None:
    exc = error_of(data, "x.json")
    assert exc.message == "x.json is not a JSON object"


def test_load_of_a_json_list_file(tmp_path: Path) -> None:
    (tmp_path / "replay.json").write_text("[1, 2]")
    with pytest.raises(ManifestError) as info:
        load(tmp_path / "replay.json")
    assert info.value.message == f"{tmp_path / 'replay.json'} is not a JSON object"


@pytest.mark.parametrize("version", ["absent", None, "1", True, 1.0])
def test_missing_or_malformed_schema_version(version: Any) -> None:
    data = raw()
    if version == "absent":
        del data["schema_version"]
    else:
        data["schema_version"] = version
    exc = error_of(data)
    assert exc.message == "replay.json has no schema_version"
    assert exc.hint == "is it a replay.json written by `replay capture`?"


def test_newer_schema_version_says_upgrade() -> None:
    data = raw()
    data["schema_version"] = 2
    exc = error_of(data)
    assert exc.message == "replay.json has schema version 2; this replay reads up to 1"
    assert exc.hint == "upgrade replay (pip install -U replay-capsule)"
    assert "upgrade" in exc.one_line()


@pytest.mark.parametrize("version", [0, -3])
def test_older_version_without_migration(version: int) -> None:
    data = raw()
    data["schema_version"] = version
    exc = error_of(data)
    assert exc.message == f"replay.json has unknown schema version {version}"
    assert exc.hint == "recapture the run"


# --- migrations ----------------------------------------------------------------------------------------


def test_migration_is_applied(monkeypatch: pytest.MonkeyPatch) -> None:
    """A version-1 file, where (in this made-up history) the capsule name was called 'title', read as v2."""
    calls: list[int] = []

    def one_to_two(data: dict[str, Any]) -> dict[str, Any]:
        calls.append(data["schema_version"])
        data = dict(data)
        data["name"] = data.pop("title")
        data["schema_version"] = 2
        return data

    monkeypatch.setattr(manifest, "SCHEMA_VERSION", 2)
    monkeypatch.setitem(manifest.MIGRATIONS, 1, one_to_two)
    old = raw()
    old["title"] = old.pop("name")
    assert old["schema_version"] == 1

    m = from_dict(old)
    assert calls == [1]
    assert m.name == "demo"
    assert m.schema_version == 2
    expected = full_manifest()
    expected.schema_version = 2
    assert m == expected

    current = raw()
    current["schema_version"] = 2
    assert from_dict(current).name == "demo" and calls == [1]  # already current: not migrated

    newer = raw()
    newer["schema_version"] = 3
    assert error_of(newer).message == "replay.json has schema version 3; this replay reads up to 2"


def test_migration_chain_stops_at_a_gap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(manifest, "SCHEMA_VERSION", 3)
    monkeypatch.setitem(manifest.MIGRATIONS, 1, lambda d: {**d, "schema_version": 2})
    data = raw()
    assert error_of(data).message == "replay.json has unknown schema version 2"


# --- atomic save ---------------------------------------------------------------------------------------


def test_save_replaces_whole_and_leaves_no_temp_files(tmp_path: Path) -> None:
    first = full_manifest()
    save(first, tmp_path)
    second = full_manifest()
    second.name = "second"
    second.outputs.files, second.outputs.metrics_files = [], []  # a metrics file is always one of the outputs
    save(second, tmp_path)
    assert os.listdir(tmp_path) == ["replay.json"]
    assert load(tmp_path) == second
    assert json.loads((tmp_path / "replay.json").read_text()) == second.to_dict()


def test_failed_save_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    save(full_manifest(), tmp_path)
    before = (tmp_path / "replay.json").read_bytes()

    def broken_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(fsutil.os, "replace", broken_replace)
    changed = full_manifest()
    changed.name = "changed"
    with pytest.raises(OSError, match="disk full"):
        save(changed, tmp_path)
    assert os.listdir(tmp_path) == ["replay.json"]
    assert (tmp_path / "replay.json").read_bytes() == before
