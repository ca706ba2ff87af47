"""`replay manifest PATH... --check CAPSULE` in core: a typed result the CLI renders, its JSON document and the
error a failed check exits with."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from replay.core.data.check import check_against
from replay.core.data.hashing import hash_paths
from replay.errors import DataMismatch, ManifestError
from replay.manifest import save
from tests.unit.test_manifest import full_manifest


def capsule_of(root: Path, *paths: str) -> Path:
    m = full_manifest()
    m.data = hash_paths([root / p for p in paths], root)
    capsule = root / "capsule"
    capsule.mkdir()
    save(m, capsule)
    return capsule


@pytest.fixture
def root(tmp_path: Path) -> Path:
    for name, text in (("data/a.csv", "1\n"), ("data/b.csv", "2\n"), ("labels/l.txt", "x\n")):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(text)
    return tmp_path


def test_unchanged_data_checks_out_and_other_roots_are_not_asked(root: Path) -> None:
    capsule = capsule_of(root, "data", "labels")

    result = check_against(capsule, [root / "data"], root)

    assert result.ok and result.capsule == capsule
    assert [f.path for f in result.actual.files] == ["data/a.csv", "data/b.csv"]
    doc = result.to_dict()
    assert list(doc)[:3] == ["schema", "schema_version", "ok"] and doc["schema"] == "replay.data-check"
    assert (doc["ok"], doc["missing"], doc["changed"], doc["extra"]) == (True, [], [], [])


def test_changed_missing_and_extra_files_are_found(root: Path) -> None:
    capsule = capsule_of(root, "data")
    (root / "data" / "a.csv").write_text("changed\n")
    (root / "data" / "b.csv").unlink()
    (root / "data" / "c.csv").write_text("new\n")

    result = check_against(capsule, [root / "data"], root)

    assert not result.ok
    doc = json.loads(json.dumps(result.to_dict()))
    assert [d["path"] for d in doc["changed"]] == ["data/a.csv"]
    assert [d["path"] for d in doc["missing"]] == ["data/b.csv"]
    assert [d["path"] for d in doc["extra"]] == ["data/c.csv"]
    error = result.mismatch()
    assert isinstance(error, DataMismatch) and error.exit_code == 2
    assert error.message == "data differs from the capsule: 1 missing, 1 changed, 1 extra"


def test_a_bad_capsule_is_refused_before_anything_is_hashed(root: Path) -> None:
    with pytest.raises(ManifestError):
        check_against(root / "nowhere", [root / "no-such-data"], root)
