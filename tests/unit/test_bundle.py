"""Bundles without an engine: the format's round trip, and every hostile bundle refused before use.

The bundles here are made by the real writer (``bundle_pack._Spool`` and ``_write``) from a small capsule
and a fake image (a config and one layer tar), or crafted byte by byte where an attack needs it.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import tarfile
from pathlib import Path

import pytest
import zstandard

from replay.adapters.ssh_keygen import SshKeygen
from replay.core.share import signing
from replay.core.share.bundle import pack as bundle_pack
from replay.core.share.bundle import target as bundle_target
from replay.core.share.bundle.format import (
    INDEX_NAME,
    SIG_NAME,
    BundleError,
    CapsuleEntry,
    CapsuleFile,
    ImageEntry,
    Index,
    Member,
    blob_name,
    parse_index,
    safe_relpath,
    tar_header,
    tar_padding,
)
from replay.core.share.bundle.image import archive_stream
from replay.core.share.bundle.read import extract, iter_blob, open_bundle
from replay.errors import EXIT_BAD_INPUT
from replay.manifest import save
from tests.tools import need
from tests.unit.test_manifest import full_manifest

LAYER = b"layer-bytes " * 1000


def _layer_tar() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("hello.txt")
        info.size = len(LAYER)
        tar.addfile(info, io.BytesIO(LAYER))
    return buf.getvalue()


def make_capsule(tmp: Path, image_id: str, data: bytes = b"data!") -> Path:
    capsule = tmp / "capsule"
    capsule.mkdir()
    m = full_manifest()
    m.name = "demo"
    m.image.id = image_id
    m.data.roots = ["data"]
    m.data.files = [type(m.data.files[0])("data/train.csv", len(data), hashlib.sha256(data).hexdigest())] \
        if m.data.files else []
    save(m, capsule)
    (capsule / "requirements.lock").write_text("numpy==1.26.4\n")
    (capsule / "reference").mkdir()
    (capsule / "reference" / "out.txt").write_text("reference output\n")
    return capsule


def make_bundle(tmp: Path, sign: object = None) -> tuple[Path, Index]:
    """A real bundle: one capsule (with its data) and a fake image whose config names its one layer."""
    layer = _layer_tar()
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    config = json.dumps({"rootfs": {"type": "layers", "diff_ids": [diff_id]}}).encode()
    image_id = "sha256:" + hashlib.sha256(config).hexdigest()
    capsule = make_capsule(tmp, image_id)
    spool_dir = tmp / "spool"
    spool_dir.mkdir()
    spool = bundle_pack._Spool(spool_dir, lambda n: None)
    files = [CapsuleFile(rel, spool.store_file(capsule / rel)) for rel in bundle_pack._capsule_files(capsule)]
    spool.store(io.BytesIO(b"data!"), 5)
    spool.store(io.BytesIO(layer), len(layer))
    spool.store(io.BytesIO(config), len(config))
    index = Index(list(spool.members.values()), [CapsuleEntry("demo", image_id, files, with_data=True)],
                  [ImageEntry(image_id, [diff_id])], created_by="test")
    index_bytes = index.to_bytes()
    signature = sign(index_bytes) if callable(sign) else None
    out = tmp / "demo.replay"
    bundle_pack._write(out, index_bytes, signature, index.members, spool_dir)
    return out, index


def raw_bundle(path: Path, members: list[tuple[str, bytes]]) -> Path:
    """A tar of exactly these (name, data) members, headers and end as the format writes them."""
    with open(path, "wb") as fh:
        for name, data in members:
            fh.write(tar_header(name, len(data)) + data + tar_padding(len(data)))
        end = fh.tell() + 1024
        fh.write(b"\0" * (1024 + (-end % 10240)))
    return path


def members_of(path: Path) -> list[tuple[str, bytes]]:
    with tarfile.open(path) as tar:
        return [(m.name, tar.extractfile(m).read()) for m in tar.getmembers()]  # type: ignore[union-attr]


def refused(path: Path, match: str) -> BundleError:
    with pytest.raises(BundleError, match=match) as caught:
        open_bundle(path)
    assert caught.value.exit_code == EXIT_BAD_INPUT
    return caught.value


# --- the round trip ----------------------------------------------------------------------------------


def test_a_bundle_is_a_plain_tar_whose_first_member_is_the_index(tmp_path: Path) -> None:
    path, index = make_bundle(tmp_path)

    names = [name for name, _ in members_of(path)]

    assert names[0] == INDEX_NAME
    assert names[1:] == [m.name for m in index.members]
    assert path.stat().st_size % 10240 == 0


def test_unpack_writes_the_capsule_and_its_data_checked(tmp_path: Path) -> None:
    path, _ = make_bundle(tmp_path)

    result = bundle_target.unpack_all(path, tmp_path / "out", None, None)

    capsule = tmp_path / "out" / "demo"
    assert result.capsules == ["demo"] and result.data
    assert (capsule / "reference" / "out.txt").read_text() == "reference output\n"
    assert (tmp_path / "out" / "_data" / "data" / "train.csv").read_bytes() == b"data!"
    assert "UNSIGNED" in result.provenance


def test_unpack_refuses_an_existing_folder(tmp_path: Path) -> None:
    path, _ = make_bundle(tmp_path)
    (tmp_path / "out").mkdir()

    with pytest.raises(Exception, match="already exists"):
        bundle_target.unpack_all(path, tmp_path / "out", None, None)


def test_the_rebuilt_archive_holds_the_layer_under_its_diff_id(tmp_path: Path) -> None:
    path, index = make_bundle(tmp_path)
    bundle = open_bundle(path)

    stream = b"".join(archive_stream(bundle, index.images[0]))

    with tarfile.open(fileobj=io.BytesIO(stream)) as tar:
        manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
        layer = tar.extractfile(manifest[0]["Layers"][0]).read()  # type: ignore[union-attr]
        config = tar.extractfile(manifest[0]["Config"]).read()  # type: ignore[union-attr]
    assert "sha256:" + hashlib.sha256(layer).hexdigest() == index.images[0].layers[0]
    assert "sha256:" + hashlib.sha256(config).hexdigest() == index.images[0].id
    assert manifest[0]["RepoTags"] is None  # loading moves no tag on the reviewer's engine


def test_the_same_content_is_stored_once(tmp_path: Path) -> None:
    spool = bundle_pack._Spool(tmp_path, lambda n: None)

    first = spool.store(io.BytesIO(b"x" * 5000), 5000)
    second = spool.store(io.BytesIO(b"x" * 5000), 5000)

    assert first == second and len(spool.members) == 1 and len(list(tmp_path.iterdir())) == 1


# --- integrity: altered, truncated, padded, reordered --------------------------------------------------


def test_an_altered_member_is_refused_and_named(tmp_path: Path) -> None:
    path, index = make_bundle(tmp_path)
    members = members_of(path)
    name, data = members[3]
    members[3] = (name, data[:-1] + bytes([data[-1] ^ 1]))

    refused(raw_bundle(tmp_path / "x.replay", members), f"member {name} does not match its sha256")


@pytest.mark.parametrize("cut", [100, 600, 2000, -20000, -10241, -1])
def test_a_truncated_bundle_is_refused(tmp_path: Path, cut: int) -> None:
    path, _ = make_bundle(tmp_path)
    raw = path.read_bytes()
    short = tmp_path / "short.replay"
    short.write_bytes(raw[:cut])

    refused(short, "truncated|does not end|not valid JSON|bad tar")


@pytest.mark.parametrize("extra", [b"garbage", b"\0" * 10752, b"\0" * 512 + b"x"])
def test_a_padded_or_appended_bundle_is_refused(tmp_path: Path, extra: bytes) -> None:
    path, _ = make_bundle(tmp_path)
    with open(path, "ab") as fh:
        fh.write(extra)

    refused(path, "data after its last member")


def test_an_appended_member_is_refused(tmp_path: Path) -> None:
    path, _ = make_bundle(tmp_path)
    members = members_of(path) + [("blobs/" + "0" * 64 + ".zst", b"extra")]

    refused(raw_bundle(tmp_path / "x.replay", members), "not listed in the index")


def test_reordered_members_are_refused(tmp_path: Path) -> None:
    path, index = make_bundle(tmp_path)
    members = members_of(path)
    members[2], members[3] = members[3], members[2]

    refused(raw_bundle(tmp_path / "x.replay", members), "reordered")


def test_an_index_that_is_not_first_is_refused(tmp_path: Path) -> None:
    path, _ = make_bundle(tmp_path)
    members = members_of(path)
    members[0], members[1] = members[1], members[0]

    refused(raw_bundle(tmp_path / "x.replay", members), "first member")


# --- safety: paths, links, devices, duplicates, bombs -----------------------------------------------------


def _index_with_files(index: Index, paths: list[str]) -> bytes:
    doc = json.loads(index.to_bytes())
    blob = doc["capsules"][0]["files"][0]["blob"]
    doc["capsules"][0]["files"] = [{"path": p, "blob": blob} for p in ["replay.json", "reference/out.txt", *paths]]
    return json.dumps(doc).encode()


@pytest.mark.parametrize("bad", ["../evil", "/etc/passwd", "a/../../evil", "a//b", "./a", "a/.", "a\\..\\b",
                                 "replay.json", "reference", "nul\0byte", ""])
def test_unsafe_or_duplicate_paths_in_the_index_are_refused(tmp_path: Path, bad: str) -> None:
    _, index = make_bundle(tmp_path)
    doc = _index_with_files(index, [bad])

    with pytest.raises(BundleError):
        parse_index(doc)


@pytest.mark.parametrize("kind", [tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.CHRTYPE, tarfile.BLKTYPE,
                                  tarfile.DIRTYPE, tarfile.FIFOTYPE])
def test_links_devices_and_folders_in_the_tar_are_refused(tmp_path: Path, kind: bytes) -> None:
    path, index = make_bundle(tmp_path)
    members = members_of(path)
    info = tarfile.TarInfo(index.members[0].name)
    info.type, info.linkname, info.mtime = kind, "/etc/passwd", 0
    header = info.tobuf(format=tarfile.GNU_FORMAT)
    with open(tmp_path / "x.replay", "wb") as fh:
        name, data = members[0]
        fh.write(tar_header(name, len(data)) + data + tar_padding(len(data)))
        fh.write(header + b"\0" * (10240 - fh.tell() % 10240 - 512))

    refused(tmp_path / "x.replay", "only regular files")


def test_a_long_name_header_is_refused(tmp_path: Path) -> None:
    """GNU long names (type L) and pax headers (x) could rename the next member: neither is accepted."""
    path, _ = make_bundle(tmp_path)
    members = members_of(path)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("blobs/" + "a" * 200)
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    with open(tmp_path / "x.replay", "wb") as fh:
        name, data = members[0]
        fh.write(tar_header(name, len(data)) + data + tar_padding(len(data)))
        fh.write(buf.getvalue())

    refused(tmp_path / "x.replay", "only regular files")


def test_extract_never_follows_a_link_in_its_target(tmp_path: Path) -> None:
    path, index = make_bundle(tmp_path)
    bundle = open_bundle(path)
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "root"
    root.mkdir()
    (root / "reference").symlink_to(outside)
    blob = index.capsules[0].files[0].blob

    with pytest.raises(BundleError, match="not a plain folder"):
        extract(bundle, blob, root, "reference/out.txt")
    (root / "plain").symlink_to(outside / "target")
    with pytest.raises(BundleError, match="already there"):
        extract(bundle, blob, root, "plain")
    assert list(outside.iterdir()) == []


def test_a_decompression_bomb_stops_at_the_declared_size(tmp_path: Path) -> None:
    declared = b"z" * 1000
    bomb = zstandard.ZstdCompressor(level=19).compress(b"z" * (50 << 20))
    raw_hex = hashlib.sha256(declared).hexdigest()
    member = Member(blob_name(raw_hex), len(bomb), hashlib.sha256(bomb).hexdigest(), len(declared), raw_hex)
    doc = json.loads(make_bundle(tmp_path)[1].to_bytes())
    doc["members"] = [vars(member)]
    doc["images"] = []
    doc["capsules"] = [{"name": "demo", "image": "sha256:" + raw_hex, "files": [{"path": "replay.json", "blob": raw_hex}]}]
    doc["images"] = [{"id": "sha256:" + raw_hex, "layers": []}]
    path = raw_bundle(tmp_path / "bomb.replay", [(INDEX_NAME, json.dumps(doc).encode()), (member.name, bomb)])
    bundle = open_bundle(path)  # every member is as the index says: the bomb is in what it decompresses to

    seen = 0
    with pytest.raises(BundleError, match="decompression bomb"):
        for chunk in iter_blob(bundle, raw_hex):
            seen += len(chunk)
    assert seen <= 1000
    with pytest.raises(BundleError):
        bundle_target.unpack_all(path, tmp_path / "out", None, None)
    assert not (tmp_path / "out").exists()


def test_a_member_that_decompresses_to_other_content_is_refused(tmp_path: Path) -> None:
    content = b"what the index says"
    other = zstandard.ZstdCompressor().compress(b"something else here")
    raw_hex = hashlib.sha256(content).hexdigest()
    member = Member(blob_name(raw_hex), len(other), hashlib.sha256(other).hexdigest(), len(content), raw_hex)
    doc = {"format": "replay-bundle", "version": 1, "members": [vars(member)],
           "images": [{"id": "sha256:" + raw_hex, "layers": []}],
           "capsules": [{"name": "demo", "image": "sha256:" + raw_hex, "files": [{"path": "replay.json", "blob": raw_hex}]}]}
    path = raw_bundle(tmp_path / "x.replay", [(INDEX_NAME, json.dumps(doc).encode()), (member.name, other)])

    with pytest.raises(BundleError, match="other content"):
        list(iter_blob(open_bundle(path), raw_hex))


# --- signatures --------------------------------------------------------------------------------------------


def _key(tmp: Path, name: str) -> tuple[Path, str]:
    need("ssh-keygen", "openssh-client")
    key = tmp / name
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(key)], check=True)
    return key, (tmp / f"{name}.pub").read_text().strip()


def _trust(allowed: Path) -> signing.Trust:
    return signing.Trust(allowed, SshKeygen())


def test_a_signed_bundle_verifies_for_a_listed_principal(tmp_path: Path) -> None:
    key, pub = _key(tmp_path, "alice")
    allowed = tmp_path / "allowed_signers"
    allowed.write_text(f'alice@example.org namespaces="replay-bundle" {pub}\n')
    path, _ = make_bundle(tmp_path, sign=signing.signer(key, SshKeygen()))

    bundle = bundle_target.checked(path, _trust(allowed))

    assert bundle.signer == "alice@example.org"
    assert "signed by alice@example.org" in bundle.provenance(allowed)
    assert "NOT checked" in bundle_target.checked(path, None).provenance(None)


def test_a_signature_by_a_key_not_in_the_allowed_signers_is_refused(tmp_path: Path) -> None:
    key, _ = _key(tmp_path, "mallory")
    _, alice = _key(tmp_path, "alice")
    allowed = tmp_path / "allowed_signers"
    allowed.write_text(f"alice@example.org {alice}\n")
    path, _ = make_bundle(tmp_path, sign=signing.signer(key, SshKeygen()))

    with pytest.raises(BundleError, match="not by a key listed"):
        bundle_target.checked(path, _trust(allowed))


def test_a_bad_signature_is_refused(tmp_path: Path) -> None:
    key, pub = _key(tmp_path, "alice")
    allowed = tmp_path / "allowed_signers"
    allowed.write_text(f"alice@example.org {pub}\n")
    path, _ = make_bundle(tmp_path, sign=signing.signer(key, SshKeygen()))
    members = members_of(path)
    assert members[1][0] == SIG_NAME
    doc = json.loads(members[0][1])
    doc["created_by"] = "someone else"  # a changed index: the members still match it, the signature does not
    members[0] = (INDEX_NAME, json.dumps(doc).encode())

    with pytest.raises(BundleError, match="does not verify|not by a key"):
        bundle_target.checked(raw_bundle(tmp_path / "x.replay", members), _trust(allowed))


def test_an_unsigned_bundle_is_refused_when_a_signature_is_required(tmp_path: Path) -> None:
    _, pub = _key(tmp_path, "alice")
    allowed = tmp_path / "allowed_signers"
    allowed.write_text(f"alice@example.org {pub}\n")
    path, _ = make_bundle(tmp_path)

    with pytest.raises(BundleError, match="not signed"):
        bundle_target.checked(path, _trust(allowed))


def test_safe_relpath_accepts_plain_paths() -> None:
    assert safe_relpath("reference/out/model.pkl", "t") == "reference/out/model.pkl"
    assert os.sep == "/"
