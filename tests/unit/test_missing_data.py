"""Missing data says where it was looked for: the folder under the current one, or the --data mapping."""

from __future__ import annotations

from pathlib import Path

import pytest

from replay.core.data.hashing import hash_paths
from replay.core.events import NullReporter
from replay.core.verify.options import ReplayOptions
from replay.core.verify.pipeline import check_inputs
from replay.errors import DataMismatch
from tests.unit.test_manifest import full_manifest


@pytest.fixture
def manifest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "x.csv").write_text("1,2\n")
    m = full_manifest()
    m.data = hash_paths([Path("data")], tmp_path)
    return m


def test_missing_data_names_the_folder_searched(manifest, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    elsewhere = tmp_path / "review"
    elsewhere.mkdir()
    with pytest.raises(DataMismatch) as caught:
        check_inputs(manifest, ReplayOptions(cwd=elsewhere), None, NullReporter())
    line = caught.value.one_line()
    assert "data/x.csv missing" in line and f"looked for in {elsewhere / 'data'}" in line


def test_missing_data_under_a_mapping_names_the_mapping(manifest, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    req = ReplayOptions(cwd=tmp_path, data_map={"data": tmp_path / "copy"})
    with pytest.raises(DataMismatch) as caught:
        check_inputs(manifest, req, None, NullReporter())
    assert f"looked for in data -> {tmp_path / 'copy'}" in caught.value.one_line()


def test_changed_data_that_is_there_names_no_search(manifest, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "data" / "x.csv").write_text("3,4\n")
    with pytest.raises(DataMismatch) as caught:
        check_inputs(manifest, ReplayOptions(cwd=tmp_path), None, NullReporter())
    assert "changed" in caught.value.one_line() and "looked for" not in caught.value.one_line()
