"""`replay pack/unpack/show/verify/push/pull` on bad input, through the real command and with no engine:
each fails before one would be asked (a bundle is checked whole before anything is used)."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

from tests.cli.test_bad_input import one_error_line, replay
from tests.unit.test_bundle import make_bundle, make_capsule, members_of, raw_bundle


def test_verify_refuses_an_altered_bundle_naming_the_member(tmp_path: Path) -> None:
    path, index = make_bundle(tmp_path)
    members = members_of(path)
    name, data = members[2]
    members[2] = (name, data[:-1] + bytes([data[-1] ^ 1]))
    raw_bundle(tmp_path / "bad.replay", members)

    result = replay(tmp_path, "verify", "bad.replay")

    assert result.returncode == 2
    assert name in one_error_line(result) and "altered" in result.stderr


def test_verify_of_a_name_the_bundle_lacks_lists_what_it_holds(tmp_path: Path) -> None:
    make_bundle(tmp_path)

    result = replay(tmp_path, "verify", "demo.replay#other")

    assert result.returncode == 2 and "it holds: demo" in one_error_line(result)


def test_unpack_refuses_a_path_outside_its_folder_and_writes_nothing(tmp_path: Path) -> None:
    path, _ = make_bundle(tmp_path)
    members = members_of(path)
    doc = json.loads(members[0][1])
    doc["capsules"][0]["files"].append({"path": "../../escaped", "blob": doc["capsules"][0]["files"][0]["blob"]})
    members[0] = ("index.json", json.dumps(doc).encode())
    raw_bundle(tmp_path / "evil.replay", members)

    result = replay(tmp_path, "unpack", "evil.replay", "-o", "out")

    assert result.returncode == 2 and "unsafe path" in one_error_line(result)
    assert not (tmp_path / "out").exists() and not (tmp_path.parent / "escaped").exists()


def test_show_lists_the_capsules_of_a_bundle_and_shows_one(tmp_path: Path) -> None:
    make_bundle(tmp_path)

    listing = replay(tmp_path, "show", "demo.replay")
    one = replay(tmp_path, "show", "demo.replay#demo", "--json")

    assert listing.returncode == 0, listing.stderr
    assert "demo" in listing.stdout and "UNSIGNED" in listing.stdout
    assert one.returncode == 0, one.stderr
    assert json.loads(one.stdout)["name"] == "demo"


def test_unpack_writes_capsule_folders(tmp_path: Path) -> None:
    make_bundle(tmp_path)

    result = replay(tmp_path, "unpack", "demo.replay", "-o", "out", "--json")

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["capsules"] == ["demo"]
    assert (tmp_path / "out" / "demo" / "replay.json").is_file()


def test_a_file_that_is_not_a_bundle_is_not_taken_for_one(tmp_path: Path) -> None:
    with tarfile.open(tmp_path / "plain.tar", "w") as tar:
        tar.add(__file__, arcname="x.py")

    result = replay(tmp_path, "unpack", "plain.tar", "-o", "out")

    assert result.returncode == 2 and "index.json" in one_error_line(result)


def test_push_refuses_a_digest_reference(tmp_path: Path) -> None:
    capsule = make_capsule(tmp_path, "sha256:" + "a" * 64)

    result = replay(tmp_path, "push", str(capsule), "127.0.0.1:5000/x@sha256:" + "b" * 64)

    assert result.returncode == 2 and "names a digest" in one_error_line(result)


def test_pull_refuses_a_reference_without_digest(tmp_path: Path) -> None:
    result = replay(tmp_path, "pull", "127.0.0.1:5000/x:latest", "-o", "out")

    assert result.returncode == 2 and "by digest" in one_error_line(result)


def test_pack_refuses_a_folder_that_is_not_a_capsule(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()

    result = replay(tmp_path, "pack", "empty", "-o", "x.replay")

    assert result.returncode == 2 and "no capsule" in one_error_line(result)
    assert not (tmp_path / "x.replay").exists()
