"""Where Docker and Podman differ (replay/adapters/engine_kinds.py) and how the engine is found
(replay/adapters/podman_service.py): pure functions, and real unix sockets for `answers`."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from replay import factory
from replay.adapters import podman_service
from replay.adapters.engine_kinds import DOCKER, EngineKind, adjust_host_config, is_link, loaded_ids
from replay.core.limits import RunLimits
from replay.core.ports import RunSpec
from replay.errors import BadInput, EnvironmentProblem

ROOTLESS_V1 = EngineKind(podman=True, rootless=True, cgroup_version="1")
ROOTLESS_V2 = EngineKind(podman=True, rootless=True, cgroup_version="2")
ROOTFUL = EngineKind(podman=True, rootless=False, cgroup_version="2")
ID = "sha256:" + "ab" * 32


def spec(**limits: object) -> RunSpec:
    return RunSpec(image="img", argv=["true"], workdir="/workspace", limits=RunLimits(**limits))  # type: ignore[arg-type]


LIMITED = {"NanoCpus": 10**9, "CpusetCpus": "0", "Memory": 1 << 30, "MemorySwap": 1 << 30, "PidsLimit": 512}


def test_names_say_which_engine_and_whether_rootless() -> None:
    assert (DOCKER.name, ROOTFUL.name, ROOTLESS_V1.name) == ("docker", "podman", "podman (rootless)")


def test_rootless_podman_keeps_the_reviewers_uid_and_docker_gets_nothing_more() -> None:
    for kind, added in ((ROOTLESS_V2, {"UsernsMode": "keep-id"}), (ROOTFUL, {}), (DOCKER, {})):
        config: dict[str, object] = dict(LIMITED)
        assert adjust_host_config(kind, spec(), config) == []
        assert config == {**LIMITED, **added}  # every limit kept where the engine enforces it


def test_limits_rootless_cgroup_v1_cannot_enforce_are_named_for_the_report() -> None:
    config: dict[str, object] = {**LIMITED, "ReadonlyRootfs": True}
    unenforced = adjust_host_config(ROOTLESS_V1, spec(), config)
    assert unenforced == ["cpus", "cpuset", "memory", "pids"]
    assert config == {"ReadonlyRootfs": True, "UsernsMode": "keep-id", "Tmpfs": UNWRITABLE}
    assert adjust_host_config(ROOTLESS_V1, spec(), {"ReadonlyRootfs": True}) == []  # none asked: none missing


def test_a_podman_tmpfs_is_mounted_as_dockers_empty_and_one_lent_to_the_user_is_its_own() -> None:
    tmpfs = {"/tmp": "rw,exec,nosuid,nodev,size=1024",
             "/workspace": "rw,exec,nosuid,nodev,size=1024,uid=10001,gid=10001,mode=0755"}
    for kind in (ROOTFUL, ROOTLESS_V2):
        config: dict[str, object] = {"Tmpfs": dict(tmpfs)}
        adjust_host_config(kind, spec(), config)
        assert config["Tmpfs"] == {"/tmp": "rw,exec,nosuid,nodev,size=1024,mode=1777,notmpcopyup",
                                   "/workspace": "rw,exec,nosuid,nodev,size=1024,mode=0755,U,notmpcopyup"}
    docker: dict[str, object] = {"Tmpfs": dict(tmpfs)}
    adjust_host_config(DOCKER, spec(), docker)
    assert docker == {"Tmpfs": tmpfs}  # Docker mounts a tmpfs empty and takes uid=/gid= as they are


UNWRITABLE = {t: "ro,noexec,nosuid,nodev,size=1048576,notmpcopyup" for t in ("/run", "/var/tmp")}


def test_under_a_read_only_root_podmans_writable_run_and_var_tmp_become_roots_own() -> None:
    for kind in (ROOTFUL, ROOTLESS_V2):
        config: dict[str, object] = {"ReadonlyRootfs": True}
        adjust_host_config(kind, spec(), config)
        assert config["Tmpfs"] == UNWRITABLE
        writable: dict[str, object] = {"ReadonlyRootfs": False}
        adjust_host_config(kind, spec(), writable)
        assert "Tmpfs" not in writable  # a writable root (capture's own runs) is left as it is
    docker: dict[str, object] = {"ReadonlyRootfs": True}
    adjust_host_config(DOCKER, spec(), docker)
    assert docker == {"ReadonlyRootfs": True}


def test_gpus_on_podman_are_refused() -> None:
    with pytest.raises(EnvironmentProblem, match="GPUs"):
        adjust_host_config(ROOTFUL, spec(gpus=1), {})


@pytest.mark.parametrize(("line", "ids"), [
    (f"Loaded image ID: {ID}\n", [ID]),  # Docker
    (f"Loaded image: {ID}", [ID]),  # Podman
    (f"Loaded image: {ID},{ID.replace('ab', 'cd')}", [ID, ID.replace("ab", "cd")]),
    ("Loaded image: team/digits:1", []),  # a tag, not an ID
    ("something else", []),
])
def test_loaded_ids_from_either_engine(line: str, ids: list[str]) -> None:
    assert loaded_ids(line) == ids


def test_podman_names_the_resolved_path_for_every_file_so_only_another_path_is_a_link() -> None:
    regular = {"mode": 420, "linkTarget": "/replay/replay.json"}
    assert not is_link(ROOTFUL, regular, "/replay/replay.json")
    assert is_link(ROOTFUL, {"mode": 420, "linkTarget": "/etc/shadow"}, "/replay/replay.json")
    assert is_link(DOCKER, regular, "/replay/replay.json")  # Docker names a target only for a link
    assert not is_link(DOCKER, {"mode": 420, "linkTarget": ""}, "/replay/replay.json")


def test_answers_only_when_something_listens(tmp_path: Path) -> None:
    path = str(tmp_path / "s.sock")
    assert not podman_service.answers(path)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(path)
        server.listen(1)
        assert podman_service.answers(path)
    assert not podman_service.answers(path)  # a stale socket file refuses connections


def test_docker_host_is_the_users_word_and_docker_never_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///somewhere/else.sock")
    assert podman_service.choose(None) == "unix:///somewhere/else.sock"
    assert podman_service.choose("docker") == "unix:///somewhere/else.sock"
    monkeypatch.delenv("DOCKER_HOST")
    assert podman_service.choose("docker") == f"unix://{podman_service.DOCKER_SOCKET}"


def test_a_running_podman_service_is_found_on_the_users_socket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "podman").mkdir()
    path = str(tmp_path / "podman" / "podman.sock")
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    monkeypatch.delenv("CONTAINER_HOST", raising=False)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(path)
        server.listen(1)
        assert podman_service.choose("podman") == f"unix://{path}"


def test_an_unknown_engine_is_bad_input(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(BadInput, match="--engine lxc is not an engine replay knows"):
        factory.engine("lxc")
