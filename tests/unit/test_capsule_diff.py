"""`replay diff`: two hand-built manifests that differ in every section."""

from __future__ import annotations

import json
from copy import deepcopy

from replay.core.capsules.diff import SECTIONS, diff_manifests
from replay.manifest import FileEntry, Package, SystemEnv, SystemPackage
from tests.unit.test_manifest import SHA_A, SHA_B, full_manifest


def test_the_same_manifest_has_no_differences() -> None:
    result = diff_manifests(full_manifest(), full_manifest())
    assert result.same and all(not changes for changes in result.sections.values())
    assert result.to_dict()["same"] is True


def test_a_capsule_from_before_system_packages_differs_by_the_packages_the_other_has() -> None:
    a, b = full_manifest(), full_manifest()
    a.system = None
    result = diff_manifests(a, b)
    assert [(c.item, c.change) for c in result.sections["system_packages"]] == [("ffmpeg", "added"),
                                                                                ("libgomp1", "added")]


def test_every_section_lists_what_differs() -> None:
    a = full_manifest()
    b = deepcopy(a)
    b.python.packages = [Package("NumPy", "2.0.0"), Package("torch", "2.13.0")]  # mylib removed
    b.image.base.ref, b.image.base.id = "python:3.12-slim", "sha256:" + SHA_B
    b.python.version = "3.12.1"
    b.data.files = [FileEntry("data/a.csv", 11, SHA_B), FileEntry("data/new.csv", 1, SHA_A)]
    b.code.commit, b.code.dirty = "f" * 40, False
    b.command.seed = 8
    b.command.env = {"WANDB_MODE": "online"}
    b.command.numerics_env = {"OMP_NUM_THREADS": "4", "TZ": "UTC"}
    b.command.argv = ["python", "train.py"]
    b.host.cores, b.host.cpu_model = 64, "Intel Xeon"
    b.outputs.files = [FileEntry("out/model.pkl", 4097, SHA_B), FileEntry("out/metrics.json", 54, SHA_B)]
    b.outputs.metrics = {"accuracy": 0.9, "eval.loss": float("nan"), "eval.f1": 0.8}
    b.system = SystemEnv([SystemPackage("libgomp1", "12.2.0-14+deb12u2"), SystemPackage("libgl1", "1.6.0-1")])

    result = diff_manifests(a, b, "cluster", "laptop")

    s = {name: {(c.item, c.change): (c.a, c.b) for c in changes} for name, changes in result.sections.items()}
    assert s["packages"] == {("numpy", "changed"): ("1.26.4", "2.0.0"), ("mylib", "removed"): ("0.1 (local-wheel)", None),
                             ("torch", "added"): (None, "2.13.0")}
    assert s["system_packages"] == {("libgomp1", "changed"): ("12.2.0-14+deb12u1", "12.2.0-14+deb12u2"),
                                    ("ffmpeg", "removed"): ("7:5.1.6-0+deb12u1", None),
                                    ("libgl1", "added"): (None, "1.6.0-1")}
    assert s["base_image"][("ref", "changed")] == ("python:3.11.7-slim", "python:3.12-slim")
    assert s["python"] == {("version", "changed"): ("3.11.7", "3.12.1")}
    assert ("data/a.csv", "changed") in s["data"] and ("data/new.csv", "added") in s["data"]
    assert ("/mnt/shared/extra.csv", "removed") in s["data"]
    assert s["code"][("dirty", "changed")] == (True, False) and ("commit", "changed") in s["code"]
    assert s["seed"] == {("seed", "changed"): (7, 8)}
    assert s["environment"] == {("WANDB_MODE", "changed"): ("offline", "online"),
                                ("HF_TOKEN", "removed"): ("(secret, read at verify)", None),
                                ("OMP_NUM_THREADS", "changed"): ("2", "4")}
    assert ("argv", "changed") in s["command"]
    assert ("cores", "changed") in s["hosts"] and ("CPU", "changed") in s["hosts"]
    assert s["outputs"] == {("out/model.pkl", "changed"): ("4096 B aaaaaaaaaaaa", "4097 B bbbbbbbbbbbb")}
    assert s["metrics"][("accuracy", "changed")] == (0.95, 0.9) and s["metrics"][("eval.f1", "added")] == (None, 0.8)
    assert s["metrics"][("eval.loss", "changed")][0] == 0.125
    doc = result.to_dict()
    assert doc["schema"] == "replay.capsule-diff" and doc["schema_version"] == 1 and doc["same"] is False
    assert list(doc["sections"]) == list(SECTIONS) and doc["a"] == "cluster"
    json.dumps(doc, allow_nan=False)  # strict JSON
    assert {"item": "eval.loss", "change": "changed", "a": 0.125, "b": "NaN"} in doc["sections"]["metrics"]


def test_the_projects_own_packages_are_diffed_with_the_locked_ones() -> None:
    from replay.manifest import ProjectPackage

    a = full_manifest()  # trainer 0.2.dev1, the project's own
    b = deepcopy(a)
    b.python.project_packages = [ProjectPackage("trainer", "0.3", ["src"]), ProjectPackage("extras", "1.0", ["extras"])]

    changes = {(c.item, c.change): (c.a, c.b) for c in diff_manifests(a, b).sections["packages"]}

    assert changes == {("trainer", "changed"): ("0.2.dev1 (project)", "0.3 (project)"),
                       ("extras", "added"): (None, "1.0 (project)")}
