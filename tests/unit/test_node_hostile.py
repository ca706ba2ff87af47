"""`replay task FILE` on a node, with a task file from a shared folder: refused unless only this user can
write it, data checks always on whatever the payload says, data only under the node's own roots, and a
timeout a timer can hold."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from replay.core.batch import node
from replay.core.batch.node import DATA_ROOTS_ENV, check_data_paths, read_task, run_node_task
from replay.core.batch.task import GroupTask
from replay.core.verify.options import ReplayOptions
from replay.errors import BadInput
from tests.unit.test_manifest import full_manifest


def _task_file(tmp_path: Path, mode: int = 0o644) -> Path:
    path = tmp_path / "task-0.json"
    path.write_text('{"schema": "replay.task"}')
    path.chmod(mode)
    return path


@pytest.mark.parametrize(("mode", "who"), [(0o664, "group"), (0o646, "every user"), (0o666, "every user")])
def test_a_task_file_others_can_write_is_refused(tmp_path: Path, mode: int, who: str) -> None:
    with pytest.raises(BadInput, match=f"can be written by {who}"):
        read_task(_task_file(tmp_path, mode))


def test_a_task_file_owned_by_another_user_is_refused(tmp_path: Path) -> None:
    path = _task_file(tmp_path)
    if os.getuid() != 0:
        pytest.skip("only root can give a file to another user")
    os.chown(path, os.getuid() + 4242, -1)
    with pytest.raises(BadInput, match="its owner"):
        read_task(path)


def test_a_task_file_only_its_owner_writes_is_read(tmp_path: Path) -> None:
    assert read_task(_task_file(tmp_path, 0o600)) == {"schema": "replay.task"}


def _task(cwd: Path, data_map: dict[str, str] | None = None) -> GroupTask:
    mapped = {k: Path(v) for k, v in (data_map or {}).items()}
    return GroupTask("t", [str(cwd / "capsule")], ReplayOptions(cwd=cwd, data_map=mapped))


def test_data_outside_the_task_folder_and_the_node_roots_is_refused(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    m = full_manifest()
    m.data.roots = ["data"]
    monkeypatch.delenv(DATA_ROOTS_ENV, raising=False)
    check_data_paths(_task(tmp_path), [m])  # data under the task's own folder
    secret = tmp_path.parent / "secrets"
    with pytest.raises(BadInput, match="outside the folders this node allows"):
        check_data_paths(_task(tmp_path / "project", {"data": str(secret)}), [m])
    with pytest.raises(BadInput, match="outside"):
        check_data_paths(_task(tmp_path / "project", {"data": str(tmp_path / "project" / ".." / "secrets")}), [m])
    monkeypatch.setenv(DATA_ROOTS_ENV, f"/nowhere:{tmp_path.parent}")
    check_data_paths(_task(tmp_path / "project", {"data": str(secret)}), [m])  # the node's own configuration


def test_a_link_out_of_the_allowed_folder_is_followed_to_where_it_leads(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    m = full_manifest()
    m.data.roots = ["data"]
    monkeypatch.delenv(DATA_ROOTS_ENV, raising=False)
    (tmp_path / "data").symlink_to("/etc")
    with pytest.raises(BadInput, match="at /etc"):
        check_data_paths(_task(tmp_path), [m])


def test_a_payload_cannot_turn_the_node_checks_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[dict[str, Any]] = []
    monkeypatch.setattr(node, "run_task", lambda payload, engine: seen.append(payload) or {})
    payload = _task(tmp_path).to_payload()
    payload["options"]["checks"] = False
    run_node_task(payload, engine=None)  # type: ignore[arg-type]  # no capsule opens: no image is asked for
    assert seen[0]["options"]["checks"] is True


def test_a_task_timeout_no_timer_can_hold_is_a_per_task_error(tmp_path: Path) -> None:
    class NoEngine:
        def version(self) -> str:
            return ""

        def name(self) -> str:
            return "docker"

        def host_gpus(self) -> list:
            return []

    payload = _task(tmp_path).to_payload()
    payload["options"]["timeout_s"] = 1e10
    result = run_node_task(payload, NoEngine())  # type: ignore[arg-type]
    assert "is longer than" in result["reports"][0]["error"]


def test_a_pulled_image_that_is_not_the_recorded_one_is_not_kept() -> None:
    from replay.core.batch.node import ImageSources, ensure_image
    from replay.core.ports import ImageRecord
    from replay.errors import ImageProblem

    removed: list[str] = []
    other = "sha256:" + "d" * 64

    class Engine:
        def image(self, ref: str) -> None:
            return None

        def pull(self, ref: str) -> ImageRecord:
            return ImageRecord(other, [], [], 0, {})

        def remove_image(self, ref: str) -> None:
            removed.append(ref)

    ref = "registry.example/x@sha256:" + "f" * 64
    with pytest.raises(ImageProblem, match="not kept"):
        ensure_image(Engine(), "sha256:" + "c" * 64, ImageSources(pull=ref))  # type: ignore[arg-type]
    assert removed == [other]
