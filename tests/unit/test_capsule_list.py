"""Finding and listing capsules, and the last-verify record: no engine needed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from replay.core.capsules.list import find_capsules, last_verify, list_capsules, record_verify
from replay.manifest import save
from tests.unit.test_manifest import full_manifest


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("REPLAY_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def capsule(folder: Path, name: str = "run") -> Path:
    folder.mkdir(parents=True)
    m = full_manifest()
    m.name = name
    save(m, folder / "replay.json")
    return folder


def test_capsules_are_found_under_hidden_replay_folders_but_not_through_links_or_virtualenvs(tmp_path: Path) -> None:
    a = capsule(tmp_path / "p" / ".replay" / "a")
    b = capsule(tmp_path / "p" / "runs" / "b")
    capsule(tmp_path / "p" / ".git" / "c")
    capsule(tmp_path / "p" / ".venv" / "lib" / "d")
    (tmp_path / "p" / ".venv" / "pyvenv.cfg").write_text("home = /usr\n")
    capsule(tmp_path / "elsewhere" / "e")
    os.symlink(tmp_path / "elsewhere", tmp_path / "p" / "link")

    assert find_capsules([tmp_path / "p"]) == [a, b]
    assert find_capsules([a, tmp_path / "p"]) == [a, b]  # a capsule folder itself counts, once


def test_an_unreadable_capsule_is_a_row_with_its_error(tmp_path: Path) -> None:
    capsule(tmp_path / "good")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "replay.json").write_text("{broken")

    rows = list_capsules([tmp_path], None)

    assert [(r.path.name, r.manifest is None) for r in rows] == [("bad", True), ("good", False)]
    assert "not valid JSON" in rows[0].error and rows[1].image_present is None
    assert rows[1].to_dict()["capsule_bytes"] > 0 and rows[1].to_dict()["last_verify"] is None


def test_the_last_verify_is_shown_only_for_the_same_folder_and_image(tmp_path: Path, cache: Path) -> None:
    folder = capsule(tmp_path / "run")
    image = full_manifest().image.id
    record_verify(folder, image, "identical", 0)

    assert last_verify(folder, image) is not None and last_verify(folder, image).verdict == "identical"  # type: ignore[union-attr]
    assert last_verify(folder, "sha256:" + "f" * 64) is None  # recaptured: a new image, no stale verdict
    assert last_verify(capsule(tmp_path / "other"), image) is None
    (record,) = (cache / "verdicts").iterdir()
    record.write_text('{"verdict": ["not", "text"]}')  # a damaged record is no verdict, and no crash
    assert last_verify(folder, image) is None
