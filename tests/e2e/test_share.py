"""Sharing a capsule against the real engine: bundles (pack, verify, unpack) and a real registry (push, pull).

The registry is Debian's `docker-registry`, installed by the fixture when missing, started on 127.0.0.1
with a temporary storage folder, and stopped by its PID. This engine treats 127.0.0.0/8 as an insecure
registry, so plain HTTP works.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import BASE, new_project, track_image

REGISTRY = "/usr/bin/docker-registry"


# --- fixtures ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory, engine: Any, train_venv: Path) -> Any:
    project = new_project(tmp_path_factory.mktemp("share"), "seeded", train_venv)
    result = project.capture()
    assert result.code == 0, result.stderr
    return project


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """host:port of a registry started for this module (and stopped by PID at its end)."""
    if not os.path.exists(REGISTRY):
        subprocess.run(["apt-get", "install", "-y", "-q", "docker-registry"], check=True, capture_output=True,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"}, timeout=600)
    folder = tmp_path_factory.mktemp("registry")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = folder / "config.yml"
    config.write_text(f"version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {folder / 'data'}\n"
                      f"http:\n  addr: 127.0.0.1:{port}\n")
    proc = subprocess.Popen([REGISTRY, "serve", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=2).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError(f"the registry did not start: {proc.stderr.read() if proc.stderr else ''}")  # noqa: B904
                time.sleep(0.2)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def signing_key(tmp: Path) -> tuple[Path, Path]:
    """An SSH key and an allowed_signers file that lists it as alice@example.org."""
    key = tmp / "alice"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "alice", "-f", str(key)], check=True)
    allowed = tmp / "allowed_signers"
    allowed.write_text(f'alice@example.org namespaces="replay-bundle" {(tmp / "alice.pub").read_text().strip()}\n')
    return key, allowed


def own_base(engine: Any) -> tuple[str, str]:
    """A base that exists only for this test: the shared base plus one layer of its own (a committed file)."""
    tag = f"replay-test/base-{uuid.uuid4().hex[:8]}"
    container = engine.api.create_container(BASE, command=["sh", "-c", f"echo {tag} > /replay-test-base"])
    try:
        engine.api.start(container)
        engine.api.wait(container, timeout=60)
        image_id = engine.api.commit(container, repository=tag, tag="1")["Id"]
    finally:
        engine.api.remove_container(container, force=True)
    track_image(image_id)
    return f"{tag}:1", image_id


def remove_with_descendants(engine: Any, image_id: str) -> list[str]:
    """Remove an image this test made and every image built on it (its capture's package stage, the capsule
    image: the classic builder records them as children), leaves first. Only images of this test descend
    from its own base."""
    parents = {img["Id"]: img.get("ParentId", "") for img in engine.api.images(all=True)}
    family = [image_id]
    for candidate in family:
        family += [child for child, parent in parents.items() if parent == candidate and child not in family]
    for member in reversed(family):
        engine.remove_image(member)
    return family


def loads_during(engine: Any, since: float) -> list[str]:
    """The image IDs the engine loaded (`docker load` events) since ``since``."""
    events = engine.api.events(since=int(since), until=int(time.time()) + 1, filters={"type": "image", "event": "load"},
                               decode=True)
    return [e.get("id", "") for e in events]


def manifest_of(capsule: Path) -> dict[str, Any]:
    return json.loads((capsule / "replay.json").read_text())


# --- bundles -------------------------------------------------------------------------------------------


def test_bundle_round_trip_on_an_engine_without_the_image_or_its_base(make_project, engine, tmp_path) -> None:
    """What is proven: the capsule image and its base's own top layer are gone from the engine before the
    verify (both images removed, with their tags); the layers below come from the shared base, which other
    sessions use and which is not removed. The load brings the capsule image back under its recorded ID."""
    project = make_project("seeded")
    base_ref, base_id = own_base(engine)
    args = list(project.scenario["capture"])
    result = project.replay("capture", "--name", project.name, "--base", base_ref, *args)
    assert result.code == 0, result.stderr
    image_id = manifest_of(project.capsule)["image"]["id"]
    key, allowed = signing_key(tmp_path)
    bundle = tmp_path / "digits.replay"
    packed = project.replay("pack", str(project.capsule), "-o", str(bundle), "--with-data", "--sign", str(key))
    assert packed.code == 0, packed.stderr
    removed = remove_with_descendants(engine, base_id)
    assert image_id in removed
    assert engine.image(image_id) is None and engine.image(base_id) is None and engine.image(base_ref) is None
    reviewer = tmp_path / "reviewer"  # nothing of the project here: the data come from the bundle
    reviewer.mkdir()

    since = time.time()
    verified = project.replay_in(reviewer, "verify", str(bundle), "--allowed-signers", str(allowed), "--json")

    assert verified.code == 0, verified.stderr
    report = verified.json()
    assert report["verdict"] == "identical" and report["image_id"] == image_id
    assert report["provenance"].startswith("bundle signed by alice@example.org")
    assert engine.image(image_id) is not None and engine.image(base_id) is None  # the base is not needed
    assert image_id in loads_during(engine, since)

    again_since = time.time()
    again = project.replay_in(reviewer, "verify", f"{bundle}#{project.name}", "--allowed-signers", str(allowed))
    assert again.code == 0, again.stderr
    assert "IDENTICAL" in again.stdout and "signed by alice@example.org" in again.stdout
    # The engine had the image by ID: it was not loaded again (others sharing this engine may load their own).
    assert image_id not in loads_during(engine, again_since)


def test_two_capsules_store_their_shared_layers_once(seeded, make_project, tmp_path) -> None:
    other = make_project("seeded")
    assert other.capture().code == 0
    one, two, both = (tmp_path / n for n in ("one.replay", "two.replay", "both.replay"))
    assert seeded.replay("pack", str(seeded.capsule), "-o", str(one)).code == 0
    assert other.replay("pack", str(other.capsule), "-o", str(two)).code == 0

    result = seeded.replay("pack", str(seeded.capsule), str(other.capsule), "-o", str(both), "--json")

    assert result.code == 0, result.stderr
    assert result.json()["capsules"] == [seeded.name, other.name]
    sizes = {p.name: p.stat().st_size for p in (one, two, both)}
    assert sizes["both.replay"] < 1.1 * max(sizes["one.replay"], sizes["two.replay"]), sizes
    listing = seeded.replay("show", str(both), "--json").json()
    assert [c["name"] for c in listing["capsules"]] == [seeded.name, other.name] and not listing["signed"]


def test_a_tampered_bundle_is_refused_before_anything_runs(seeded, tmp_path) -> None:
    bundle = tmp_path / "b.replay"
    assert seeded.replay("pack", str(seeded.capsule), "-o", str(bundle)).code == 0
    raw = bytearray(bundle.read_bytes())
    raw[len(raw) // 2] ^= 0xFF  # inside a layer: the largest members are the image's
    bundle.write_bytes(bytes(raw))

    result = seeded.replay("verify", str(bundle))

    assert result.code == 2
    assert "blobs/" in result.stderr and ("altered" in result.stderr or "truncated" in result.stderr)
    assert "accuracy" not in result.stdout + result.stderr  # never ran


def test_unsigned_bundle_is_said_to_be_so_and_unpacks(seeded, engine, tmp_path) -> None:
    bundle = tmp_path / "b.replay"
    assert seeded.replay("pack", str(seeded.capsule), "-o", str(bundle)).code == 0

    verified = seeded.replay("verify", str(bundle))
    unpacked = seeded.replay("unpack", str(bundle), "-o", str(tmp_path / "out"))

    assert verified.code == 0, verified.stderr
    assert "bundle UNSIGNED" in verified.stdout
    assert unpacked.code == 0, unpacked.stderr
    assert manifest_of(tmp_path / "out" / seeded.name) == manifest_of(seeded.capsule)
    refused = seeded.replay("unpack", str(bundle), "-o", str(tmp_path / "out"))
    assert refused.code == 2 and "already exists" in refused.stderr


# --- registry ------------------------------------------------------------------------------------------


def test_push_then_verify_by_digest_with_no_local_image(seeded, engine, registry, tmp_path) -> None:
    manifest = manifest_of(seeded.capsule)
    image_id = manifest["image"]["id"]
    repo = f"{registry}/e2e/{seeded.name}"

    pushed = seeded.replay("push", str(seeded.capsule), repo, "--json")

    assert pushed.code == 0, pushed.stderr
    ref = pushed.json()["ref"]
    assert ref.startswith(f"{repo}@sha256:")
    assert manifest_of(seeded.capsule)["image"]["registry_digest"] == ref
    assert "auth" not in json.dumps(manifest_of(seeded.capsule)).lower()
    engine.remove_image(image_id)  # with its tags, the pushed one included
    assert engine.image(image_id) is None
    try:
        verified = seeded.replay("verify", ref, "--json")

        assert verified.code == 0, verified.stderr
        report = verified.json()
        assert report["verdict"] == "identical" and report["image_id"] == image_id
        assert "pulled by digest" in report["provenance"]
        pulled = seeded.replay("pull", ref, "-o", str(tmp_path / "pulled"))
        assert pulled.code == 0, pulled.stderr
        got = manifest_of(tmp_path / "pulled")
        assert got["image"]["id"] == image_id and got["image"]["registry_digest"] == ref
        assert got["data"] == manifest["data"] and got["outputs"] == manifest["outputs"]
    finally:
        if engine.image(image_id) is None:  # leave the module's capsule usable whatever happened
            with contextlib.suppress(Exception):
                engine.pull(ref)
        track_image(image_id)


def test_a_digest_the_registry_does_not_have_is_refused(seeded, registry) -> None:
    ref = f"{registry}/e2e/nothing@sha256:{'0' * 64}"

    result = seeded.replay("verify", ref)

    assert result.code == 3 and "cannot pull" in result.stderr

