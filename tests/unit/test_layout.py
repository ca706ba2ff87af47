from __future__ import annotations

import re
from pathlib import Path

import pytest

from replay.core.capture.secrets import looks_secret
from replay.core.layout import (
    capsule_name,
    check_seed,
    container_path,
    local_path,
    output_mount_dirs,
    record_path,
    reference_copy,
    seed_environment,
)
from replay.errors import BadInput
from replay.manifest import FileEntry, Outputs

# A Docker repository path component (distribution/reference): lowercase alphanumerics joined by
# one of ".", "_", "__" or a run of "-".
DOCKER_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")


# --- record_path / local_path / container_path / reference_copy ----------------------------------------


def test_record_path_inside_root_is_relative_posix(tmp_path: Path) -> None:
    assert record_path(tmp_path / "out" / "model.pkl", tmp_path) == "out/model.pkl"
    assert record_path(tmp_path / "a" / ".." / "b" / "c.txt", tmp_path) == "b/c.txt"


def test_record_path_of_the_root_itself(tmp_path: Path) -> None:
    assert record_path(tmp_path, tmp_path) == "."
    assert record_path(tmp_path / "x" / "..", tmp_path) == "."


def test_record_path_outside_root_is_absolute(tmp_path: Path) -> None:
    root = tmp_path / "project"
    root.mkdir()
    outside = tmp_path / "shared" / "data.csv"
    assert record_path(outside, root) == outside.resolve().as_posix()
    assert record_path(outside, root).startswith("/")
    # A sibling whose name starts like the root is still outside.
    assert record_path(tmp_path / "project2" / "f", root) == (tmp_path / "project2" / "f").resolve().as_posix()


def test_record_path_relative_to_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    assert record_path(Path("data/x.csv"), tmp_path) == "sub/data/x.csv"
    assert record_path(Path("../out"), tmp_path) == "out"


def test_record_path_through_a_symlinked_root(tmp_path: Path) -> None:
    real = tmp_path / "real"
    (real / "data").mkdir(parents=True)
    link = tmp_path / "link"
    link.symlink_to(real)
    assert record_path(real / "data", link) == "data"
    assert record_path(link / "data", real) == "data"


def test_local_path(tmp_path: Path) -> None:
    assert local_path("data/a.csv", tmp_path) == tmp_path / "data" / "a.csv"
    assert local_path("/mnt/a.csv", tmp_path) == Path("/mnt/a.csv")


@pytest.mark.parametrize(
    ("recorded", "expected"),
    [
        ("out/model.pkl", "/workspace/out/model.pkl"),
        ("data", "/workspace/data"),
        (".", "/workspace"),
        ("a/./b/../c", "/workspace/a/c"),
        ("/mnt/data/x.csv", "/mnt/data/x.csv"),
    ],
)
def test_container_path(recorded: str, expected: str) -> None:
    assert container_path(recorded) == expected


@pytest.mark.parametrize(
    ("recorded", "expected"),
    [
        ("out/model.pkl", "reference/out/model.pkl"),
        ("out", "reference/out"),
        ("/tmp/run/pred.npy", "reference/_abs/tmp/run/pred.npy"),
    ],
)
def test_reference_copy(recorded: str, expected: str) -> None:
    assert reference_copy(recorded) == expected


def test_seed_environment() -> None:
    assert seed_environment(None) == {}
    assert seed_environment(0) == {"REPLAY_SEED": "0", "PYTHONHASHSEED": "0"}
    assert seed_environment(7) == {"REPLAY_SEED": "7", "PYTHONHASHSEED": "7"}
    assert seed_environment(7, auto_seed=True) == {"REPLAY_SEED": "7", "PYTHONHASHSEED": "7", "REPLAY_AUTO_SEED": "1"}


@pytest.mark.parametrize("seed", [-1, 2**32])
def test_a_seed_python_cannot_take_as_hash_seed_is_refused(seed: int) -> None:
    # Python refuses to start with PYTHONHASHSEED outside 0..4294967295: such a seed would kill every replay.
    with pytest.raises(BadInput, match="out of range"):
        check_seed(seed)


@pytest.mark.parametrize("seed", [0, 4294967295])
def test_seeds_at_the_ends_of_the_range_are_kept(seed: int) -> None:
    assert check_seed(seed) == seed


# --- output_mount_dirs ---------------------------------------------------------------------------------


def outputs(roots: list[str], files: list[str]) -> Outputs:
    return Outputs(roots=roots, files=[FileEntry(f, 1, "0" * 64) for f in files])


def test_file_outputs_mount_their_parent_folder() -> None:
    outs = outputs(["out/model.pkl", "out/predictions.npy", "logs/train/run.log"],
                   ["out/model.pkl", "out/predictions.npy", "logs/train/run.log"])
    assert output_mount_dirs(outs) == ["logs/train", "out"]


def test_folder_outputs_mount_themselves() -> None:
    outs = outputs(["out/models", "results"], ["out/models/a.pkl", "out/models/b/c.pkl", "results/r.json"])
    assert output_mount_dirs(outs) == ["out/models", "results"]


def test_empty_folder_output_mounts_itself() -> None:
    assert output_mount_dirs(outputs(["out"], [])) == ["out"]


def test_nested_folders_collapse_to_the_outermost() -> None:
    outs = outputs(["out/a/b", "out", "out/a/file.txt", "out/c"], ["out/a/file.txt", "out/x.bin"])
    assert output_mount_dirs(outs) == ["out"]


def test_collapse_is_by_path_component_not_prefix() -> None:
    outs = outputs(["out", "output/x.bin", "out2/deep"], ["output/x.bin"])
    assert output_mount_dirs(outs) == ["out", "out2/deep", "output"]


def test_no_outputs() -> None:
    assert output_mount_dirs(Outputs()) == []


@pytest.mark.parametrize(
    ("roots", "files"),
    [
        (["model.pkl"], ["model.pkl"]),  # a file in the project's top folder
        (["."], ["a.txt"]),  # the project folder itself
        (["out/m.pkl", "metrics.json"], ["out/m.pkl", "metrics.json"]),
    ],
)
def test_output_in_top_folder_is_refused(roots: list[str], files: list[str]) -> None:
    with pytest.raises(BadInput) as info:
        output_mount_dirs(outputs(roots, files))
    assert info.value.message == "an output sits in the project's top folder"
    assert info.value.exit_code == 2
    assert "out/" in info.value.hint


@pytest.mark.parametrize(
    ("roots", "files", "named"),
    [
        (["/tmp/run/pred.npy"], ["/tmp/run/pred.npy"], "/tmp/run"),
        (["/srv/out"], ["/srv/out/a"], "/srv/out"),
    ],
)
def test_absolute_output_is_refused(roots: list[str], files: list[str], named: str) -> None:
    with pytest.raises(BadInput) as info:
        output_mount_dirs(outputs(roots, files))
    assert info.value.message == f"output {named} is outside the project"


# --- capsule_name --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("My Project!", "my-project"),
        ("", "capsule"),
        ("!!!", "capsule"),
        ("---", "capsule"),
        ("demo", "demo"),
        ("my_project.v2", "my_project.v2"),
        ("a..b__c--d", "a-b-c-d"),
        ("._-lead and trail-_.", "lead-and-trail"),
        ("Über Modell 3", "ber-modell-3"),
        ("UPPER", "upper"),
        ("a/b:c@d", "a-b-c-d"),
    ],
)
def test_capsule_name(text: str, expected: str) -> None:
    assert capsule_name(text) == expected


@pytest.mark.parametrize(
    "text",
    ["My Project!", "", "x", "..", "a._b", "a_-_b", "9lives", "tab\tand\nnewline", "ünïcödé", "a" + "-" * 5 + "b",
     "__init__", "name.", "-x-", "a.-b", "C++ model (final)", "日本語"],
)
def test_capsule_name_is_a_valid_docker_component(text: str) -> None:
    name = capsule_name(text)
    assert DOCKER_COMPONENT.match(name), (text, name)
    assert capsule_name(name) == name  # stable: sanitising twice changes nothing


# --- looks_secret --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["GITHUB_TOKEN", "hf_token", "AWS_SECRET_ACCESS_KEY", "DB_PASSWORD", "MYSQL_PASSWD", "API_KEY",
     "GOOGLE_APPLICATION_CREDENTIALS", "AUTH_HEADER", "Wandb_Api_Key"],
)
def test_looks_secret(name: str) -> None:
    assert looks_secret(name) is True


@pytest.mark.parametrize(
    "name", ["OMP_NUM_THREADS", "HOME", "PATH", "LANG", "CUDA_VISIBLE_DEVICES", "WANDB_MODE", "SEED", ""],
)
def test_does_not_look_secret(name: str) -> None:
    assert looks_secret(name) is False


@pytest.mark.parametrize("recorded", ["..", "../etc", "a/../../x", "out/../../../etc/passwd", "a\0b"])
def test_container_path_never_leaves_the_workspace(recorded: str) -> None:
    with pytest.raises(BadInput, match="leaves the container's workspace"):
        container_path(recorded)
