"""Progress a person can trust: a bundle's image load tells its bytes of the archive's exact size, bringing an
image in is a step of its own in the timings, a build names its step, and the event log is bounded."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from replay import ui
from replay.adapters.engine_progress import counted
from replay.core.batch.run import _timings
from replay.core.capture.pipeline import build_steps
from replay.core.events import LOADING, RecordingReporter
from replay.core.ports import ImageRecord, ImageSource
from replay.core.share.bundle import target as bundle_target
from replay.core.share.bundle.image import archive_size, archive_stream
from replay.core.share.bundle.read import open_bundle
from replay.core.verify.options import ReplayOptions
from replay.core.verify.pipeline import Replayer
from replay.manifest import Manifest
from tests.unit.test_bundle import make_bundle


class _Progress(RecordingReporter):
    def __init__(self) -> None:
        super().__init__()
        self.events: list[tuple[str, float, float | None]] = []
        self.statuses: list[tuple[str, str]] = []

    def progress(self, task: str, completed: float, total: float | None = None) -> None:
        self.events.append((task, completed, total))

    def status(self, task: str, detail: str) -> None:
        self.statuses.append((task, detail))


class _LoadingEngine:
    """Consumes a load's stream as the Docker adapter does (``counted``), and then holds the image."""

    def __init__(self) -> None:
        self.images: dict[str, ImageRecord] = {}
        self.fed = b""

    def free_bytes(self) -> int | None:
        return None

    def load(self, archive: Any, on_bytes: Any = None) -> list[str]:
        self.fed = b"".join(counted(archive, on_bytes))
        return list(self.images)

    def image(self, ref: str) -> ImageRecord | None:
        return self.images.get(ref)


def test_the_archive_size_is_what_the_stream_yields(tmp_path: Path) -> None:
    path, index = make_bundle(tmp_path)
    bundle = open_bundle(path)

    assert archive_size(bundle, index.images[0]) == len(b"".join(archive_stream(bundle, index.images[0])))


def test_loading_a_bundles_image_tells_the_bytes_fed_up_to_the_archives_size(tmp_path: Path) -> None:
    path, index = make_bundle(tmp_path)
    bundle = open_bundle(path)
    image_id = index.images[0].id
    engine = _LoadingEngine()
    engine.images[image_id] = ImageRecord(image_id, [], [], 1, {})
    rep = _Progress()

    bundle_target._load(bundle, image_id, engine, rep)  # type: ignore[arg-type]

    loads = [e for e in rep.events if e[0] == LOADING]
    assert loads and loads[-1] == (LOADING, len(engine.fed), len(engine.fed))
    assert [done for _, done, _ in loads] == sorted(done for _, done, _ in loads)
    assert rep.stages == ["loading the image from the bundle"]


class _EmptyEngine:
    def __init__(self, manifest: Manifest) -> None:
        self.m = manifest
        self.present = False

    def image(self, ref: str) -> ImageRecord | None:
        if self.present and ref == self.m.image.id:
            return ImageRecord(ref, [], [], 1, {})
        return None


def test_an_image_brought_in_is_a_step_of_its_own_in_the_timings(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    path, index = make_bundle(tmp_path / "b")
    entry = index.capsules[0]
    m = bundle_target.unpack_capsule(open_bundle(path), entry, tmp_path / "unpacked")
    m.image.tag = ""
    engine = _EmptyEngine(m)
    heard: list[Any] = []

    def fetch(e: Any, reporter: Any) -> None:
        heard.append(reporter)
        engine.present = True

    rep = _Progress()
    replayer = Replayer(engine, ReplayOptions(cwd=tmp_path), rep)  # type: ignore[arg-type]
    replayer.check_image(m, ImageSource("load", fetch))

    assert list(replayer.watch.timings) == ["load", "image"]
    assert heard == [rep]  # the fetch gets the verify's own reporter, for its bytes
    assert rep.stages == ["checking the image", "checking the image"]


def test_batch_timings_name_the_pull_and_the_load_and_count_them_in_the_total() -> None:
    class _Plan:
        capsules = [type("C", (), {"timings": {"pull": 2.0}})(), type("C", (), {"timings": {}})()]

    t = _timings(_Plan(), {"load": 1.5}, 10.0, 12.0, 13.0, 20.0)  # type: ignore[arg-type]

    assert list(t) == ["pull", "load", "images", "data", "replays", "total"]
    assert (t["images"], t["total"]) == (0.5, 12.0)


def test_a_build_names_its_step_beside_its_bar() -> None:
    rep = _Progress()

    build_steps(rep)(4, 9, "RUN pip install --no-index numpy")

    assert rep.events == [("build", 4, 9)]
    assert rep.statuses == [("build", "step 4/9 RUN pip install --no-index numpy")]


def test_the_event_log_writes_stages_and_about_a_hundred_progress_lines(tmp_path: Path) -> None:
    log = ui.EventLog(str(tmp_path / "events.jsonl"))
    log.stage("pulling \x1b[2J ref")
    for done in range(0, 100_001, 7):
        log.progress("pulling the image", done, 100_000)
    log.progress("pulling the image", 100_000, 100_000)
    log.close()

    events = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]

    assert events[0] == {"event": "stage", "name": "pulling \x1b[2J ref"}  # JSON-escaped, never raw in the file
    progress = [e for e in events if e["event"] == "progress"]
    assert 50 <= len(progress) <= 102
    assert progress[-1] == {"event": "progress", "task": "pulling the image", "completed": 100_000, "total": 100_000}
    assert "\x1b" not in (tmp_path / "events.jsonl").read_text()


def test_a_build_step_gets_its_own_elapsed_time_and_its_name_beside_the_bar() -> None:
    clock = [100.0]
    with ui.RichReporter() as rep:
        assert rep._progress is not None
        rep._progress.get_time = lambda: clock[0]  # type: ignore[method-assign]  # a clock the test moves
        rep.stage("building the environment image")
        rep.progress("build", 3, 9)
        rep.status("build", "step 3/9 RUN python3 -m venv /opt/venv")
        clock[0] = 130.0
        rep.progress("build", 4, 9)
        rep.status("build", "step 4/9 RUN pip install \x1b[2J numpy")
        clock[0] = 138.0
        rep.status("build", "step 4/9 RUN pip install \x1b[2J numpy")  # the same step again: its timer goes on
        build = next(t for t in rep._progress.tasks if t.id == rep._tasks["build"])
        stage = next(t for t in rep._progress.tasks if t.id == rep._tasks[""])

        assert build.description == "build: step 4/9 RUN pip install \\x1b[2J numpy"  # neutralized
        assert (build.completed, build.total) == (4, 9)
        assert (build.start_time, build.elapsed) == (130.0, 8.0)  # the step's own time
        assert stage.start_time == 100.0  # the stage's spinner keeps the whole build's


def test_the_batch_table_shows_an_image_loading_under_it_until_it_is_loaded() -> None:
    from replay.cli.batch import _LiveTable
    from replay.core.batch.plan import Plan

    table = _LiveTable(Plan(capsules=[], images=[], data_sets=[], experiments=[], jobs=1))
    table.stage("loading the image from the bundle")
    table.progress(LOADING, 300 << 20, 447 << 20)

    assert table._table().caption.endswith("\nloading the image 300.0 MiB / 447.0 MiB")

    table.progress(LOADING, 447 << 20, 447 << 20)
    assert "\n" not in table._table().caption  # loaded: the caption is the rate again
