from __future__ import annotations

from pathlib import Path

import pytest

from replay.config import ProjectDefaults, load_defaults
from replay.errors import BadInput


def write(root: Path, text: str) -> Path:
    path = root / "pyproject.toml"
    path.write_text(text)
    return path


def error_of(root: Path) -> BadInput:
    with pytest.raises(BadInput) as info:
        load_defaults(root)
    assert info.value.exit_code == 2
    return info.value


def test_no_pyproject_gives_defaults(tmp_path: Path) -> None:
    defaults = load_defaults(tmp_path)
    assert defaults == ProjectDefaults()
    assert (defaults.base, defaults.python, defaults.seed, defaults.source) == (None, None, None, None)
    assert defaults.data == defaults.outputs == defaults.metrics == defaults.env == defaults.ignore == []
    assert defaults.tolerances == {}


def test_pyproject_without_table(tmp_path: Path) -> None:
    path = write(tmp_path, '[project]\nname = "x"\n\n[tool.ruff]\nline-length = 100\n')
    assert load_defaults(tmp_path) == ProjectDefaults(source=path)


def test_a_pyproject_folder_is_not_a_file(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").mkdir()
    assert load_defaults(tmp_path) == ProjectDefaults()


def test_full_table(tmp_path: Path) -> None:
    path = write(tmp_path, """
[tool.replay]
base = "replay-base/python:3.11-bookworm"
python = ".venv/bin/python"
data = ["data", "extra/labels.csv"]
outputs = ["out/model.pkl", "out/predictions.npy"]
metrics = ["out/metrics.json"]
env = ["WANDB_MODE"]
seed = 7
ignore = ["out/*.log"]
tolerances = { accuracy = "1e-6", "eval.*" = "rel:1e-9" }
""")
    assert load_defaults(tmp_path) == ProjectDefaults(
        base="replay-base/python:3.11-bookworm",
        python=".venv/bin/python",
        seed=7,
        data=["data", "extra/labels.csv"],
        outputs=["out/model.pkl", "out/predictions.npy"],
        metrics=["out/metrics.json"],
        env=["WANDB_MODE"],
        ignore=["out/*.log"],
        tolerances={"accuracy": "1e-6", "eval.*": "rel:1e-9"},
        source=path,
    )


def test_tolerances_as_subtable_and_numbers(tmp_path: Path) -> None:
    write(tmp_path, '[tool.replay.tolerances]\naccuracy = 1e-6\n"eval.loss" = "rel:1e-9"\n')
    assert load_defaults(tmp_path).tolerances == {"accuracy": "1e-06", "eval.loss": "rel:1e-9"}


def test_dotted_tolerance_keys_are_metric_names(tmp_path: Path) -> None:
    write(tmp_path, '[tool.replay.tolerances]\neval.loss = "1e-3"\neval.acc.top1 = "rel:1e-9"\n')
    assert load_defaults(tmp_path).tolerances == {"eval.loss": "1e-3", "eval.acc.top1": "rel:1e-9"}


@pytest.mark.parametrize("seed", [-1, 2**32])
def test_seed_outside_pythonhashseed_range_is_refused(tmp_path: Path, seed: int) -> None:
    write(tmp_path, f"[tool.replay]\nseed = {seed}\n")
    with pytest.raises(BadInput, match="out of range"):
        load_defaults(tmp_path)


def test_seed_zero_is_kept(tmp_path: Path) -> None:
    write(tmp_path, "[tool.replay]\nseed = 0\n")
    assert load_defaults(tmp_path).seed == 0


@pytest.mark.parametrize("key", ["data", "outputs", "metrics", "env", "ignore"])
def test_string_for_list_key_becomes_one_element_list(tmp_path: Path, key: str) -> None:
    write(tmp_path, f'[tool.replay]\n{key} = "only"\n')
    assert getattr(load_defaults(tmp_path), key) == ["only"]


def test_unknown_key_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, '[tool.replay]\noutput = ["out/model.pkl"]\nzzz = 1\n')
    exc = error_of(tmp_path)
    assert exc.message == f"{path}: unknown [tool.replay] key 'output'"  # the first, alphabetically
    assert exc.hint == ("use one of apt, backend, base, data, engine, env, gpus, ignore, investigate, jobs, metrics, "
                        "outputs, partition, python, seed, time, tolerances, workdir")


@pytest.mark.parametrize(
    ("line", "key"),
    [
        ("data = 3", "data"),
        ('outputs = ["a", 1]', "outputs"),
        ("metrics = { a = 1 }", "metrics"),
        ("env = true", "env"),
        ('ignore = [["x"]]', "ignore"),
    ],
)
def test_wrong_type_for_list_key(tmp_path: Path, line: str, key: str) -> None:
    path = write(tmp_path, f"[tool.replay]\n{line}\n")
    exc = error_of(tmp_path)
    assert exc.message == f"{path}: [tool.replay] {key} must be a list of strings"
    assert exc.hint == f'e.g. {key} = ["..."]'


@pytest.mark.parametrize("line", ['tolerances = "1e-6"', 'tolerances = ["1e-6"]', "tolerances = 0.1"])
def test_tolerances_must_be_a_table(tmp_path: Path, line: str) -> None:
    path = write(tmp_path, f"[tool.replay]\n{line}\n")
    assert error_of(tmp_path).message == f"{path}: [tool.replay] tolerances must be a table"


@pytest.mark.parametrize("line", ['seed = "7"', "seed = 7.0", "seed = [7]"])
def test_non_int_seed(tmp_path: Path, line: str) -> None:
    path = write(tmp_path, f"[tool.replay]\n{line}\n")
    exc = error_of(tmp_path)
    assert exc.message == f"{path}: [tool.replay] seed must be an integer"
    assert exc.hint == "e.g. seed = 7"


def test_replay_is_not_a_table(tmp_path: Path) -> None:
    path = write(tmp_path, 'tool = { replay = "yes" }\n')
    assert error_of(tmp_path).message == f"{path}: [tool.replay] is not a table"


@pytest.mark.parametrize(
    "text", ["[tool.replay\nseed = 7\n", "[tool.replay]\nseed = \n", "[tool.replay]\nseed = 1\nseed = 2\n"]
)
def test_invalid_toml(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, text)
    exc = error_of(tmp_path)
    assert exc.message.startswith(f"{path} is not valid TOML (")
    assert exc.hint == "fix the file or remove its [tool.replay] table"


def test_not_utf8(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_bytes(b"[tool.replay]\nbase = \"\xff\"\n")
    assert "is not valid TOML" in error_of(tmp_path).message


def test_boolean_seed_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "[tool.replay]\nseed = true\n")
    assert error_of(tmp_path).message == f"{path}: [tool.replay] seed must be an integer"


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('base = ["replay-base/python:3.11-bookworm"]', "base"),
        ("python = 3.11", "python"),
        ("[tool.replay.tolerances]\naccuracy = true", "tolerances"),
    ],
)
def test_wrong_scalar_types_are_refused(tmp_path: Path, text: str, key: str) -> None:
    body = text if text.startswith("[") else f"[tool.replay]\n{text}"
    write(tmp_path, body + "\n")
    with pytest.raises(BadInput) as info:
        load_defaults(tmp_path)
    assert key in info.value.message


@pytest.mark.parametrize("text", ["[tool.replay]\nseed = " + "9" * 5000 + "\n",
                                  "[tool.replay]\ndata = " + "[" * 100_000 + "]" * 100_000 + "\n"])
def test_hostile_toml_is_bad_input(tmp_path: Path, text: str) -> None:
    (tmp_path / "pyproject.toml").write_text(text)
    with pytest.raises(BadInput, match="is not valid TOML"):
        load_defaults(tmp_path)
def test_backend_table(tmp_path: Path) -> None:
    write(tmp_path, '[tool.replay]\nbackend = "slurm"\npartition = "gpu"\ntime = "2:00:00"\ngpus = 1\n'
                    'workdir = "/shared/replay-work"\njobs = 8\n')
    d = load_defaults(tmp_path)
    assert (d.backend, d.partition, d.time, d.gpus, d.workdir, d.jobs) == ("slurm", "gpu", "2:00:00", 1,
                                                                            "/shared/replay-work", 8)


@pytest.mark.parametrize("line", ["backend = 3", "gpus = -1", "gpus = true", "jobs = 0", 'jobs = "4"', "time = 30"])
def test_bad_backend_values_are_refused(tmp_path: Path, line: str) -> None:
    write(tmp_path, f"[tool.replay]\n{line}\n")
    assert line.split()[0] in error_of(tmp_path).message


def test_capture_options_win_over_defaults_and_tolerances_add_up(tmp_path: Path) -> None:
    from replay.config import merge_capture_options

    write(tmp_path, '[tool.replay]\ndata = ["data"]\nseed = 7\ntolerances = { acc = "1e-3", loss = "1e-2" }\n')
    d = load_defaults(tmp_path)
    merged = merge_capture_options(d, data=["other"], seed=0, tolerances=[("acc", "0")])
    assert merged["data"] == ["other"] and merged["seed"] == 0  # seed 0 is a value, not "unset"
    assert merged["tolerances"] == {"acc": "0", "loss": "1e-2"}
    assert merge_capture_options(d)["data"] == ["data"] and merge_capture_options(d)["python"] == "python3"


@pytest.mark.parametrize("engine", ["docker", "podman"])
def test_engine_is_read(tmp_path: Path, engine: str) -> None:
    write(tmp_path, f'[tool.replay]\nengine = "{engine}"\n')
    assert load_defaults(tmp_path).engine == engine


@pytest.mark.parametrize("line", ['engine = "lxc"', "engine = 1", 'engine = ["podman"]'])
def test_engine_must_be_one_replay_knows(tmp_path: Path, line: str) -> None:
    write(tmp_path, f"[tool.replay]\n{line}\n")
    exc = error_of(tmp_path)
    assert "engine must be one of docker, podman" in exc.message


# --- one ProjectDefaults, found from the project root ----------------------------------------------------


class NoGit:
    def toplevel(self, path: Path) -> Path | None:
        return None

    def inspect(self, path: Path) -> None:
        return None


class Git(NoGit):
    def __init__(self, top: Path) -> None:
        self.top = top

    def toplevel(self, path: Path) -> Path | None:
        return self.top


def test_the_root_is_the_git_top_level(tmp_path: Path) -> None:
    from replay.config import find_project_root

    sub = tmp_path / "a" / "b"
    sub.mkdir(parents=True)
    write(tmp_path / "a", '[tool.replay]\nseed = 1\n')  # a table below the top level does not make a root
    assert find_project_root(sub, Git(tmp_path)) == tmp_path


def test_outside_git_the_root_is_the_nearest_folder_with_a_replay_table(tmp_path: Path) -> None:
    from replay.config import find_project_root, project_defaults

    sub = tmp_path / "a" / "b"
    sub.mkdir(parents=True)
    path = write(tmp_path, '[tool.replay]\nseed = 3\nworkdir = "work"\n')
    write(tmp_path / "a", '[project]\nname = "inner"\n')  # a pyproject without the table is passed by
    assert find_project_root(sub, NoGit()) == tmp_path.resolve()
    defaults = project_defaults(sub, NoGit())
    assert (defaults.seed, defaults.source) == (3, path.resolve())
    assert defaults.workdir == str(tmp_path.resolve() / "work")  # relative to the project, not the subfolder


def test_without_git_or_a_table_the_root_is_the_current_folder(tmp_path: Path) -> None:
    from replay.config import find_project_root

    sub = tmp_path / "a"
    sub.mkdir()
    assert find_project_root(sub, NoGit()) == sub.resolve()


@pytest.mark.parametrize("text", ['[tool.replay]\nbackend = "nonsense"\n', "[tool.replay\nseed = 1\n"])
def test_a_bad_table_above_a_subfolder_is_refused_naming_file_and_key(tmp_path: Path, text: str) -> None:
    from replay.config import project_defaults

    sub = tmp_path / "a" / "b"
    sub.mkdir(parents=True)
    path = write(tmp_path, text)
    with pytest.raises(BadInput) as info:
        project_defaults(sub, NoGit())
    assert info.value.exit_code == 2 and str(path.resolve()) in info.value.message
    assert "backend" in info.value.message or "not valid TOML" in info.value.message


def test_an_unknown_backend_is_refused_where_it_is_read(tmp_path: Path) -> None:
    write(tmp_path, '[tool.replay]\nbackend = "nonsense"\n')
    message = error_of(tmp_path).message
    assert "pyproject.toml" in message and "backend" in message and "nonsense" in message


@pytest.mark.parametrize(("line", "expected"), [("investigate = true", True), ("investigate = 6", 6),
                                                ("investigate = false", False)])
def test_investigate_is_true_false_or_a_number_of_replays(tmp_path: Path, line: str, expected: object) -> None:
    write(tmp_path, f"[tool.replay]\n{line}\n")
    assert load_defaults(tmp_path).investigate == expected


@pytest.mark.parametrize("line", ['investigate = "yes"', "investigate = 99", "investigate = -1"])
def test_investigate_of_another_kind_is_refused(tmp_path: Path, line: str) -> None:
    write(tmp_path, f"[tool.replay]\n{line}\n")
    assert "investigate must be true, false or 0 to 20" in error_of(tmp_path).message
