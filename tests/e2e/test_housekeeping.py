"""`replay list` and `replay gc` against the real engine. The engine is shared with other test sessions: the
removing gc is limited (--name) to the one capsule image this test made for it; the dry run only looks."""

from __future__ import annotations

import shutil

import pytest

from tests.e2e.conftest import BASE, new_project


@pytest.fixture(scope="module")
def two(tmp_path_factory, engine, train_venv):
    """One project with two capsules of the same run: ``kept`` (the project's name) and ``gone``."""
    project = new_project(tmp_path_factory.mktemp("housekeeping"), "seeded", train_venv)
    assert project.capture().code == 0
    gone = f"{project.name}-gone"
    second = project.replay("capture", "--name", gone, "--base", BASE, *project.scenario["capture"])
    project.track(project.root / ".replay" / gone)
    assert second.code == 0, second.stderr
    return project, gone


def test_list_shows_each_capsule_with_its_image_sizes_and_last_verify(two) -> None:
    project, gone = two
    assert project.replay("verify", str(project.capsule)).code == 0

    doc = project.replay("list", "--json").json()

    assert doc["schema"] == "replay.capsule-list" and doc["schema_version"] == 1
    rows = {r["name"]: r for r in doc["capsules"]}
    assert set(rows) == {project.name, gone}
    kept = rows[project.name]
    assert kept["last_verify"]["verdict"] == "identical" and kept["last_verify"]["exit_code"] == 0
    assert rows[gone]["last_verify"] is None  # never verified
    assert all(r["image_present"] is True and r["image_bytes"] > 0 and r["data_bytes"] > 0 and r["capsule_bytes"] > 0
               for r in rows.values())
    human = project.replay("list")
    assert human.code == 0 and "IDENTICAL" in human.stdout and project.name[:12] in human.stdout


def test_gc_dry_run_lists_only_replays_images_no_capsule_needs_and_removes_nothing(two, engine) -> None:
    project, gone = two
    gone_image = _by_name(engine, gone)
    kept_image = project.replay("show", str(project.capsule), "--json").json()["image"]
    shutil.rmtree(project.root / ".replay" / gone)  # its capsule is gone: its image is no longer needed

    result = project.replay("gc", str(project.root), "--dry-run", "--json")

    assert result.code == 0, result.stderr
    doc = result.json()
    listed = {i["id"] for i in doc["would_remove"] if i["kind"] != "cache"}
    assert gone_image.id in listed
    assert kept_image["id"] not in listed and kept_image["environment_id"] not in listed
    for image_id in listed:  # every candidate is an image replay built, by its labels
        record = engine.image(image_id)
        assert record is None or "io.replay.name" in record.labels or "io.replay.stage" in record.labels
    assert engine.image(gone_image.id) is not None  # a dry run removes nothing


def test_gc_removes_the_image_no_capsule_needs_and_keeps_the_one_that_is(two, engine) -> None:
    project, gone = two
    shutil.rmtree(project.root / ".replay" / gone, ignore_errors=True)  # gone already when the dry run ran first
    gone_image = _by_name(engine, gone)
    kept = project.replay("show", str(project.capsule), "--json").json()["image"]["id"]

    result = project.replay("gc", str(project.root), "--name", gone, "--json")

    assert result.code == 0, result.stderr
    assert [i["id"] for i in result.json()["removed"]] == [gone_image.id]
    assert engine.image(gone_image.id) is None and engine.image(kept) is not None
    again = project.replay("gc", str(project.root), "--name", project.name, "--json")
    assert again.json()["removed"] == [] and engine.image(kept) is not None  # its capsule still needs it


def _by_name(engine, name: str):
    found = [r for r in engine.labelled_images("io.replay.name") if r.labels.get("io.replay.name") == name and r.tags]
    assert len(found) == 1, found
    return found[0]
