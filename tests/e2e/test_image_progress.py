"""Progress while an image is pulled or loaded inside verify, against the real engine and a real registry.

What is asserted is what the run recorded, never what a live display happened to show: the pull or load is a
step of its own in the `--json` timings, and the progress events (REPLAY_EVENT_LOG) carried byte counts, the
last of a load equal to the whole archive fed to the engine.
"""

from __future__ import annotations

import contextlib
import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import new_project, track_image
from tests.e2e.test_share import manifest_of, registry  # noqa: F401 - the registry fixture, for this module too


@pytest.fixture(scope="module")
def captured(tmp_path_factory: pytest.TempPathFactory, engine: Any, train_venv: Path) -> Any:
    project = new_project(tmp_path_factory.mktemp("progress"), "seeded", train_venv)
    result = project.capture()
    assert result.code == 0, result.stderr
    return project


def events_of(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines()]


def test_a_verify_by_digest_times_its_pull_and_tells_its_bytes(captured, engine, registry, tmp_path) -> None:  # noqa: F811
    image_id = manifest_of(captured.capsule)["image"]["id"]
    pushed = captured.replay("push", str(captured.capsule), f"{registry}/e2e/progress-{captured.name}", "--json")
    assert pushed.code == 0, pushed.stderr
    ref = pushed.json()["ref"]
    engine.remove_image(image_id)  # with its tags: the verify must pull it
    assert engine.image(image_id) is None
    log = tmp_path / "events.jsonl"
    try:
        verified = captured.replay("verify", ref, "--json", REPLAY_EVENT_LOG=str(log))

        assert verified.code == 0, verified.stderr
        report = verified.json()
        assert report["verdict"] == "identical" and report["image_id"] == image_id
        assert list(report["timings"])[0] == "pull" and report["timings"]["pull"] > 0
        assert "load" not in report["timings"]
        events = events_of(log)
        assert {"event": "stage", "name": f"pulling {ref}"} in events
        pulled = [e for e in events if e["event"] == "progress" and e["task"] == "pulling the image"]
        assert pulled, events
        last = pulled[-1]
        assert last["completed"] > 0 and last["total"] is not None and last["completed"] <= last["total"]

        engine.remove_image(image_id)  # and once more as a batch (--jobs 1): its timings name the pull too
        batch = captured.replay("verify", ref, "--jobs", "1", "--json")
        assert batch.code == 0, batch.stderr
        assert list(batch.json()["timings"])[0] == "pull" and batch.json()["timings"]["pull"] > 0
    finally:
        if engine.image(image_id) is None:
            with contextlib.suppress(Exception):
                engine.pull(ref)
        track_image(image_id)


def test_a_verify_of_a_bundle_times_its_load_and_tells_the_bytes_fed(captured, engine, tmp_path) -> None:
    image_id = manifest_of(captured.capsule)["image"]["id"]
    bundle = tmp_path / "progress.replay"
    packed = captured.replay("pack", str(captured.capsule), "-o", str(bundle), "--with-data")
    assert packed.code == 0, packed.stderr
    engine.remove_image(image_id)
    assert engine.image(image_id) is None
    reviewer = tmp_path / "reviewer"
    reviewer.mkdir()
    log = tmp_path / "events.jsonl"
    try:
        verified = captured.replay_in(reviewer, "verify", str(bundle), REPLAY_EVENT_LOG=str(log))

        assert verified.code == 0, verified.stderr
        shown = " ".join(verified.stdout.split())  # the timings line, wherever the console wrapped it
        assert re.search(r"manifest [0-9.]+s load [0-9.]+s image [0-9.]+s", shown), verified.stdout
        events = events_of(log)
        assert {"event": "stage", "name": "loading the image from the bundle"} in events
        loaded = [e for e in events if e["event"] == "progress" and e["task"] == "loading the image"]
        assert loaded, events
        assert loaded[-1]["completed"] == loaded[-1]["total"] > 0  # every byte of the archive fed
        assert all(a["completed"] <= b["completed"] for a, b in zip(loaded, loaded[1:], strict=False))
        assert engine.image(image_id) is not None

        engine.remove_image(image_id)  # and once more as a batch (--jobs 1): its timings name the load too
        batch = captured.replay_in(reviewer, "verify", str(bundle), "--jobs", "1", "--json")
        assert batch.code == 0, batch.stderr
        assert batch.json()["timings"]["load"] > 0 and batch.json()["timings"]["total"] >= batch.json()["timings"]["load"]
    finally:
        track_image(image_id)
