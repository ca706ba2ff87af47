"""What a node reads from the shared folder before it runs anything: the task file and its image sources."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from replay.core.batch.node import MAX_TASK_BYTES, ImageSources, engine_choice, read_task
from replay.core.batch.task import GroupTask
from replay.core.verify.options import ReplayOptions
from replay.errors import BadInput

DIGEST = "registry.example:5000/team/exp@sha256:" + "a" * 64


def test_image_sources_round_trip() -> None:
    sources = ImageSources(archive="/shared/bundles/exp.image.tar", pull=DIGEST)
    assert ImageSources.from_payload(sources.to_payload()) == sources
    assert ImageSources.from_payload({}) == ImageSources()


@pytest.mark.parametrize("raw", [
    {"archive": "relative/image.tar"},
    {"archive": 3},
    {"pull": "team/exp:latest"},  # a tag can move: only a digest names one image
    {"pull": "team/exp@sha256:abc"},
    {"pull": "Team/exp@sha256:" + "a" * 64 + "\n"},
    {"elsewhere": "/x"},
    ["/x"],
])
def test_bad_image_sources_are_bad_input(raw: object) -> None:
    with pytest.raises(BadInput):
        ImageSources.from_payload({"image": raw})


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
                           lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner), max_leaves=10)


@given(st.dictionaries(st.sampled_from(["archive", "pull", "other"]), json_values) | json_values)
def test_any_image_sources_are_read_or_refused_as_bad_input(raw: object) -> None:
    try:
        sources = ImageSources.from_payload({"image": raw})
    except BadInput:
        return
    assert sources.archive is None or sources.archive.startswith("/")
    assert sources.pull is None or "@sha256:" in sources.pull


def test_a_task_file_is_read_as_strict_json(tmp_path: Path) -> None:
    path = tmp_path / "task.json"
    path.write_text(json.dumps({"schema": "replay.task"}))
    assert read_task(path) == {"schema": "replay.task"}


@pytest.mark.parametrize("content", [b"{\"x\": NaN}", b"not json", b"[1, 2]", b"\xff\xfe", b" " * (MAX_TASK_BYTES + 1)])
def test_a_bad_task_file_is_bad_input(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "task.json"
    path.write_bytes(content)
    with pytest.raises(BadInput):
        read_task(path)


def test_a_task_file_is_never_read_through_a_link(tmp_path: Path) -> None:
    real = tmp_path / "real.json"
    real.write_text("{}")
    link = tmp_path / "task.json"
    link.symlink_to(real)
    with pytest.raises(BadInput, match="cannot read"):
        read_task(link)
    with pytest.raises(BadInput, match="not a regular file|cannot read"):
        read_task(tmp_path)


def test_a_bundle_source_round_trips_and_must_be_absolute() -> None:
    sources = ImageSources(bundle="/shared/exp.replay", pull=DIGEST)
    assert ImageSources.from_payload(sources.to_payload()) == sources
    with pytest.raises(BadInput):
        ImageSources.from_payload({"image": {"bundle": "exp.replay"}})


def test_a_bundle_source_that_is_no_bundle_is_an_image_problem(tmp_path: Path) -> None:
    from replay.core.batch.node import ensure_image
    from replay.errors import ImageProblem

    class Empty:  # an engine that holds no image, and must not be asked to load anything
        def image(self, ref: str) -> None:
            return None

        def load(self, archive: object) -> list[str]:
            raise AssertionError("a file that is no bundle is never loaded")

    fake = tmp_path / "exp.replay"
    fake.write_bytes(b"not a bundle")
    with pytest.raises(ImageProblem, match="is not a replay bundle"):
        ensure_image(Empty(), "sha256:" + "c" * 64, ImageSources(bundle=str(fake)))  # type: ignore[arg-type]


@pytest.mark.parametrize(("named", "env", "chosen"), [("podman", "docker", "podman"), (None, "podman", "podman"),
                                                      (None, None, None), ("docker", None, "docker")])
def test_a_node_replays_on_the_engine_the_task_names_else_its_own_choice(named, env, chosen, monkeypatch) -> None:
    if env is None:
        monkeypatch.delenv("REPLAY_ENGINE", raising=False)
    else:
        monkeypatch.setenv("REPLAY_ENGINE", env)
    payload = GroupTask("t", ["/x/a"], ReplayOptions(Path("/x")), engine=named).to_payload()
    assert engine_choice(payload) == chosen  # None: the one that answers on this node


@given(st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=12), st.lists(st.text(max_size=4))))
def test_any_engine_in_a_task_is_one_replay_knows_or_bad_input(engine: object) -> None:
    payload = {**GroupTask("t", ["/x/a"], ReplayOptions(Path("/x"))).to_payload(), "schema_version": 2,
               "engine": engine}
    try:
        assert engine_choice(payload) in ("docker", "podman")
    except BadInput as exc:
        assert engine not in ("docker", "podman") and "\n" not in exc.one_line()
