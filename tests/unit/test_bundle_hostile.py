"""Bombs before the signature and poisoned archives, without an engine: the signature is checked before the
index is parsed, the index's path check is the same as comparing every pair (and linear), declared sizes
are refused before a byte is loaded, hostile JSON is one BundleError, and an image archive loses its tags."""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from replay.adapters.ssh_keygen import SshKeygen
from replay.core.share import signing
from replay.core.share.archive import ArchiveRefused, untagged
from replay.core.share.bundle import target as bundle_target
from replay.core.share.bundle.format import INDEX_NAME, BundleError, first_clash, parse_index
from replay.core.share.bundle.image import MAX_IMAGE_BYTES, check_room
from replay.core.share.bundle.read import open_bundle
from tests.unit.test_bundle import _index_with_files, _key, make_bundle, members_of, raw_bundle


def _pairwise(paths: list[str]) -> bool:
    """The old check, every pair compared: a path twice, or a path that is a folder of another."""
    seen: list[str] = []
    for p in paths:
        if p in seen or any(q.startswith(p + "/") or p.startswith(q + "/") for q in seen):
            return True
        seen.append(p)
    return False


@given(st.lists(st.lists(st.sampled_from(["a", "b", "a-b", "a.b", "c"]), min_size=1, max_size=4).map("/".join),
                max_size=12))
def test_the_sorted_path_check_agrees_with_comparing_every_pair(paths: list[str]) -> None:
    assert (first_clash(paths) is not None) == _pairwise(paths)


def test_forty_thousand_paths_are_checked_in_one_pass(tmp_path: Path) -> None:
    _, index = make_bundle(tmp_path)
    paths = [f"reference/out/{i // 200}/file-{i}.bin" for i in range(40_000)]
    parsed = parse_index(_index_with_files(index, paths))  # 310 s with the pairwise check; see benchmarks/
    assert len(parsed.capsules[0].files) == 40_002
    with pytest.raises(BundleError, match="twice"):
        parse_index(_index_with_files(index, [*paths, "reference/out/7"]))


@pytest.mark.parametrize("content", [b'{"format": "replay-bundle", "version": ' + b"7" * 5000 + b"}",
                                     b"[" * 100_000 + b"]" * 100_000, b'{"a": ' * 100_000 + b"1" + b"}" * 100_000])
def test_hostile_json_in_the_index_is_one_bundle_error(content: bytes) -> None:
    with pytest.raises(BundleError, match="not a JSON document replay reads"):
        parse_index(content)


def test_the_signature_is_checked_before_the_index_is_parsed(tmp_path: Path) -> None:
    _, pub = _key(tmp_path, "alice")
    allowed = tmp_path / "allowed_signers"
    allowed.write_text(f"alice@example.org {pub}\n")
    key, _ = _key(tmp_path, "mallory")
    bomb = b"[" * 100_000 + b"]" * 100_000  # would be refused as JSON, if it were ever parsed
    path = raw_bundle(tmp_path / "bomb.replay", [(INDEX_NAME, bomb), ("index.sig", signing.signer(key, SshKeygen())(bomb))])

    with pytest.raises(BundleError, match="not by a key listed"):
        bundle_target.checked(path, signing.Trust(allowed, SshKeygen()))
    with pytest.raises(BundleError, match="not signed"):
        bundle_target.checked(raw_bundle(tmp_path / "unsigned.replay", [(INDEX_NAME, bomb)]),
                              signing.Trust(allowed, SshKeygen()))
    with pytest.raises(BundleError, match="not a JSON document"):
        open_bundle(path)  # without signers the index is parsed, and refused


def test_members_declared_larger_than_the_file_are_refused_before_reading_them(tmp_path: Path) -> None:
    path, _ = make_bundle(tmp_path)
    members = members_of(path)
    doc = json.loads(members[0][1])
    doc["members"][0]["size"] = 1 << 40
    members[0] = (INDEX_NAME, json.dumps(doc).encode())
    with pytest.raises(BundleError, match="more than the file"):
        open_bundle(raw_bundle(tmp_path / "big.replay", members))


class _Engine:
    """Only what check_room asks; loading anything fails the test."""

    def __init__(self, free: int | None) -> None:
        self.free = free

    def free_bytes(self) -> int | None:
        return self.free

    def load(self, archive: Any, on_bytes: Any = None) -> list[str]:
        raise AssertionError("nothing is loaded past a size check")


def _declared(tmp_path: Path, raw_size: int) -> tuple[Any, Any]:
    tmp_path.mkdir()
    path, _ = make_bundle(tmp_path)
    bundle = open_bundle(path)
    entry = bundle.index.images[0]
    bundle.index.by_blob[entry.layers[0][7:]].raw_size = raw_size  # what a hostile index may declare
    return bundle, entry


def test_an_image_declared_over_the_limit_or_the_free_space_is_refused_before_loading(tmp_path: Path) -> None:
    bundle, entry = _declared(tmp_path / "a", MAX_IMAGE_BYTES + 1)
    with pytest.raises(BundleError, match="over the"):
        check_room(bundle, entry, _Engine(None))  # type: ignore[arg-type]
    bundle, entry = _declared(tmp_path / "b", 1 << 30)
    with pytest.raises(Exception, match="MiB free") as caught:
        check_room(bundle, entry, _Engine(1 << 20))  # type: ignore[arg-type]
    assert getattr(caught.value, "exit_code", None) == 3
    check_room(bundle, entry, _Engine(2 << 30))  # type: ignore[arg-type]


# --- image archives (docker save) ------------------------------------------------------------------------

IMAGE = "sha256:" + "ab" * 32
OTHER = "sha256:" + "cd" * 32


def save_tar(configs: list[str], tags: list[str], layout: str = "legacy") -> bytes:
    """A docker-save-shaped tar: manifest.json with RepoTags, the legacy repositories file, an OCI index."""
    manifest = [{"Config": f"{c[7:]}.json" if layout == "legacy" else f"blobs/sha256/{c[7:]}",
                 "RepoTags": tags, "Layers": ["l/layer.tar"]} for c in configs]
    files = {"l/layer.tar": b"x" * 3000, "manifest.json": json.dumps(manifest).encode(),
             "repositories": json.dumps({"probe-victim/base": {"1": configs[0][7:]}}).encode(),
             "index.json": json.dumps({"manifests": [{"annotations": {"io.containerd.image.name": tags[0] if tags
                                                                       else "", "other": "kept"}}]}).encode()}
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _chunks(data: bytes, n: int = 777) -> list[bytes]:
    return [data[i:i + n] for i in range(0, len(data), n)]


@pytest.mark.parametrize("layout", ["legacy", "oci"])
def test_an_archive_loses_every_tag_and_keeps_its_layers(layout: str) -> None:
    out = b"".join(untagged(_chunks(save_tar([IMAGE], ["probe-victim/base:1", "evil:2"], layout)), IMAGE, "a.tar"))
    with tarfile.open(fileobj=io.BytesIO(out)) as tar:
        names = tar.getnames()
        manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
        index = json.loads(tar.extractfile("index.json").read())  # type: ignore[union-attr]
        layer = tar.extractfile("l/layer.tar").read()  # type: ignore[union-attr]
    assert "repositories" not in names and manifest[0]["RepoTags"] is None
    assert index["manifests"][0]["annotations"] == {"other": "kept"}
    assert layer == b"x" * 3000


@pytest.mark.parametrize("configs", [[OTHER], [IMAGE, OTHER]])
def test_an_archive_with_another_image_is_refused(configs: list[str]) -> None:
    with pytest.raises(ArchiveRefused, match="not only the recorded"):
        b"".join(untagged(_chunks(save_tar(configs, ["x:1"])), IMAGE, "a.tar"))


def test_an_archive_that_is_not_a_tar_is_refused() -> None:
    with pytest.raises(ArchiveRefused):
        b"".join(untagged([b"\x01" * 2048], IMAGE, "a.tar"))


def test_files_that_together_exceed_the_free_space_are_refused_before_one_is_written(tmp_path: Path) -> None:
    path, _ = make_bundle(tmp_path)
    bundle = open_bundle(path)
    entry = bundle.index.capsules[0]
    free = os.statvfs(tmp_path).f_bavail * os.statvfs(tmp_path).f_frsize
    for f in entry.files:  # each alone fits; all of them do not
        bundle.index.by_blob[f.blob].raw_size = free // 2 + 1
    with pytest.raises(BundleError, match="more than the free space"):
        bundle_target.unpack_capsule(bundle, entry, tmp_path / "out")
    assert not any((tmp_path / "out").iterdir())


def test_the_id_mismatch_hint_never_advises_tagging_the_capsule_image() -> None:
    from replay.core.ports import ImageRecord
    from replay.core.verify.pipeline import check_image
    from replay.errors import ImageProblem
    from tests.unit.test_manifest import full_manifest

    m = full_manifest()
    m.image.tag = "replay-base/python:3.11-bookworm"  # a name the reviewer trusts

    class Engine:
        def image(self, ref: str) -> ImageRecord:
            trusted = "sha256:" + "1" * 64
            return ImageRecord(trusted if ref == m.image.tag else m.image.id, [], [], 0, {})

    with pytest.raises(ImageProblem) as caught:
        check_image(Engine(), m)  # type: ignore[arg-type]
    assert "docker tag" not in caught.value.one_line() and "never tag an image" in caught.value.one_line()


def test_an_image_with_volumes_is_refused_by_verify() -> None:
    from replay.core.ports import ImageRecord
    from replay.core.verify.pipeline import check_image
    from replay.errors import BadInput
    from tests.unit.test_manifest import full_manifest

    m = full_manifest()

    class Engine:
        def image(self, ref: str) -> ImageRecord:
            return ImageRecord(m.image.id, [], [], 0, {}, volumes=["/vol"])

    with pytest.raises(BadInput, match="declares VOLUME /vol"):
        check_image(Engine(), m)  # type: ignore[arg-type]
