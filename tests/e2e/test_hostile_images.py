"""Hostile images against the real engine: what `replay pull` (and so registry verify) reads from an image,
what a task's image archive and a bundle may load, and what is left in the engine afterwards. The pulls and
the bundles run on Docker and on rootless Podman (conftest's ``verifier``); the task archive (a batch node's
`docker load`) and the adapter's own containers are Docker's, tested as root.

Every image here is made by the test (``FROM scratch`` plus one file, a few KB) and removed by it; the victim
tag is the test's own, on an image the test made; the registry is test_share's, started for this module.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import tarfile
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.cli.test_hostile_input import plain_manifest
from tests.e2e.conftest import BASE, clean_env, track_image
from tests.e2e.test_share import (
    loads_during,
    registry,  # noqa: F401 - the module's registry fixture
    signing_key,
)


def build(engine: Any, files: dict[str, bytes], extra: str = "", tag: str | None = None) -> str:
    """A ``FROM scratch`` image holding ``files`` (and ``extra`` Dockerfile lines); its ID, tracked."""
    dockerfile = "FROM scratch\n" + "".join(f"COPY {name} /{name}\n" for name in files) + extra
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in {"Dockerfile": dockerfile.encode(), **files}.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    image_id = ""
    for chunk in engine.api.build(fileobj=buf, custom_context=True, rm=True, forcerm=True, decode=True, tag=tag,
                                  network_mode="none", labels={"replay-test": "hostile-images"}):
        assert "error" not in chunk, chunk
        if isinstance(chunk.get("aux"), dict):
            image_id = chunk["aux"]["ID"]
    assert image_id
    track_image(image_id)
    return image_id


def replay(cwd: Path, *args: str, timeout: float = 180, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "replay", *args], cwd=cwd, env=clean_env(**env), capture_output=True,
                          text=True, timeout=timeout)


def one_error(proc: Any) -> str:
    assert "Traceback" not in proc.stderr, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, proc.stderr
    return errors[0]


def volumes(engine: Any) -> set[str]:
    return {v["Name"] for v in engine.api.volumes().get("Volumes") or []}


def push(engine: Any, registry: str, image_id: str) -> str:  # noqa: F811
    repo = f"{registry}/hostile/{uuid.uuid4().hex[:8]}"
    engine.api.tag(image_id, repo, tag="1")
    digest = ""
    for chunk in engine.api.push(repo, tag="1", stream=True, decode=True):
        assert "error" not in chunk, chunk
        if isinstance(chunk.get("aux"), dict) and chunk["aux"].get("Digest"):
            digest = chunk["aux"]["Digest"]
    engine.api.remove_image(f"{repo}:1")  # the only name the image had: the pull must fetch it by digest
    return f"{repo}@{digest}"


def remove(engine: Any, ref: str) -> None:
    from docker.errors import NotFound

    with contextlib.suppress(NotFound):
        engine.api.remove_image(ref, force=True)


MANIFEST = json.dumps(plain_manifest()).encode()
PULLS = [
    ("volume", {"replay/replay.json": MANIFEST}, "VOLUME /vol\n", 2, "declares VOLUME /vol"),
    ("5000-digit", {"replay/replay.json": b'{"schema_version": ' + b"7" * 5000 + b"}"}, "", 2, "cannot read"),
    ("deep", {"replay/replay.json": b"[" * 100_000 + b"]" * 100_000}, "", 2, "nested too deeply"),
    ("65-MiB", {"replay/replay.json": b" " * (65 << 20) + b"{}"}, "", 2, "not a regular file of at most"),
]


@pytest.mark.parametrize(("files", "extra", "code", "needle"), [p[1:] for p in PULLS], ids=[p[0] for p in PULLS])
def test_a_hostile_image_is_pulled_to_one_line_and_leaves_nothing(engine: Any, registry: str, verifier: Any,  # noqa: F811
                                                                  files: dict[str, bytes], extra: str, code: int,
                                                                  needle: str) -> None:
    """On Docker as root and on rootless Podman as an ordinary user (conftest's ``verifier``)."""
    image_id = build(engine, files, extra)
    ref = push(engine, registry, image_id)
    remove(engine, image_id)
    verifier.trust_registry(registry)
    work = verifier.folder("pull")
    verifier.hand(work)
    before = verifier.volumes()
    try:
        proc = verifier.replay(work, "pull", ref, "-o", str(work / "out"), timeout=120)
        assert proc.code == code, proc.stderr
        assert needle in one_error(proc)
        assert not (work / "out").exists()
        assert not verifier.volumes() - before, "the pull left a volume"
        assert not verifier.containers("io.replay.owner=read")
    finally:
        remove(engine, image_id)


# --- a task's image archive ------------------------------------------------------------------------------


def poisoned_archive(engine: Any, image_id: str, tags: list[str], out: Path) -> None:
    """``docker save`` of the image, with RepoTags (and the legacy repositories file) naming ``tags``."""
    raw = b"".join(engine.api.get_image(image_id))
    with tarfile.open(fileobj=io.BytesIO(raw)) as src, tarfile.open(out, "w") as dst:
        for info in src.getmembers():
            data = src.extractfile(info).read() if info.isreg() else None  # type: ignore[union-attr]
            if info.name == "manifest.json" and data is not None:
                doc = json.loads(data)
                doc[0]["RepoTags"] = tags
                data = json.dumps(doc).encode()
                info.size = len(data)
            dst.addfile(info, io.BytesIO(data) if data is not None else None)
        repos = json.dumps({t.rsplit(":", 1)[0]: {t.rsplit(":", 1)[1]: image_id[7:]} for t in tags}).encode()
        info = tarfile.TarInfo("repositories")
        info.size = len(repos)
        dst.addfile(info, io.BytesIO(repos))


def task_file(tmp_path: Path, recorded: str, archive: Path) -> Path:
    doc = plain_manifest()
    doc["image"]["id"], doc["image"]["tag"] = recorded, ""
    doc["data"]["roots"], doc["data"]["files"] = [], []
    capsule = tmp_path / "capsule"
    capsule.mkdir()
    (capsule / "replay.json").write_text(json.dumps(doc))
    task = tmp_path / "task-0.json"
    task.write_text(json.dumps({"schema": "replay.task", "schema_version": 1, "id": "t0", "capsules": [str(capsule)],
                                "options": {"cwd": str(tmp_path)}, "image": {"archive": str(archive)}}))
    task.chmod(0o600)
    return task


@pytest.mark.parametrize("recorded", ["attacker", "another"])
def test_a_task_archive_moves_no_tag_and_keeps_no_other_image(engine: Any, tmp_path: Path, recorded: str) -> None:
    victim_tag = f"replay-test/victim-{uuid.uuid4().hex[:8]}"
    victim = build(engine, {"victim.txt": b"the reviewer's own image\n"}, tag=f"{victim_tag}:1")
    attacker = build(engine, {"attacker.txt": uuid.uuid4().hex.encode()})
    added = f"replay-test/added-{uuid.uuid4().hex[:8]}:1"
    archive = tmp_path / "image.tar"
    poisoned_archive(engine, attacker, [f"{victim_tag}:1", added], archive)
    engine.api.remove_image(attacker, force=True)  # the node's engine lacks it: the task says load the archive
    wanted = attacker if recorded == "attacker" else "sha256:" + "e" * 64
    try:
        proc = replay(tmp_path, "task", str(task_file(tmp_path, wanted, archive)), "--result",
                      str(tmp_path / "result.json"))
        assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
        assert engine.api.inspect_image(f"{victim_tag}:1")["Id"] == victim, "the victim's tag was moved"
        assert not engine.api.images(name=added.split(":")[0]), "the archive added a tag"
        kept = [i["Id"] for i in engine.api.images(all=True) if i["Id"] == attacker]
        if recorded == "another":  # an archive that does not hold the recorded image loads nothing
            assert not kept
            report = json.loads((tmp_path / "result.json").read_text())["reports"][0]
            assert "not only the recorded" in report["error"]
    finally:
        for ref in (f"{victim_tag}:1", attacker):
            remove(engine, ref)


def test_a_task_file_others_can_write_is_refused(engine: Any, tmp_path: Path) -> None:
    task = task_file(tmp_path, "sha256:" + "e" * 64, tmp_path / "none.tar")
    os.chmod(task, 0o666)
    proc = replay(tmp_path, "task", str(task), "--result", str(tmp_path / "result.json"))
    assert proc.returncode == 2 and "can be written by every user" in one_error(proc)
    assert not (tmp_path / "result.json").exists()


# --- bundles: sizes and the signature before anything is loaded ------------------------------------------


def test_a_bundle_image_declared_too_large_is_refused_before_a_byte_is_loaded(engine: Any, verifier: Any) -> None:
    from tests.unit.test_bundle import make_bundle, members_of, raw_bundle

    work = verifier.folder("bomb")
    path, index = make_bundle(work)  # a capsule whose image (a fake one) this engine does not have
    members = members_of(path)
    doc = json.loads(members[0][1])
    layer = index.images[0].layers[0][7:]
    for member in doc["members"]:
        if member["raw_sha256"] == layer:
            member["raw_size"] = 1 << 50  # a 1 PiB layer, declared by a bundle of a few KB
    bomb = raw_bundle(work / "bomb.replay", [("index.json", json.dumps(doc).encode()), *members[1:]])
    verifier.hand(work)
    images = verifier.images() if verifier.rootless else set()
    since = time.time()

    proc = verifier.replay(work, "verify", str(bomb), HF_TOKEN="not-a-secret")

    assert proc.code == 2 and "over the 256 GiB an image may have" in one_error(proc)
    if verifier.rootless:
        assert verifier.images() == images
    else:
        assert not loads_during(engine, since)


def test_with_allowed_signers_a_forged_bundle_is_refused_before_its_index_is_read(verifier: Any) -> None:
    from tests.unit.test_bundle import raw_bundle

    work = verifier.folder("forged")
    _, allowed = signing_key(work)
    bomb = b"[" * 100_000 + b"]" * 100_000
    forged = raw_bundle(work / "forged.replay", [("index.json", bomb), ("index.sig", b"-----BEGIN SSH SIGNATURE-----")])
    verifier.hand(work)
    proc = verifier.replay(work, "verify", str(forged), "--allowed-signers", str(allowed))
    assert proc.code == 2 and "index.sig" in one_error(proc)


# --- the adapter: every container it creates goes with its anonymous volumes ------------------------------


def test_every_container_the_engine_adapter_creates_leaves_no_volume(engine: Any) -> None:
    """Verify and pull refuse a VOLUME image first; the adapter removes anonymous volumes anyway, on every
    path that creates a container (read a file, probe, run), should anything reach it."""
    from replay.core.ports import RunSpec

    dockerfile = (f"FROM {BASE}\nRUN mkdir -p /replay /vol && chmod 777 /vol && echo '{{}}' > /replay/replay.json\n"
                  "VOLUME /vol /scratch\n")  # the volume starts as the image's /vol: writable by the replay's user
    image_id = ""
    for chunk in engine.api.build(fileobj=io.BytesIO(dockerfile.encode()), rm=True, forcerm=True, decode=True,
                                  network_mode="none", labels={"replay-test": "hostile-images"}):
        assert "error" not in chunk, chunk
        if isinstance(chunk.get("aux"), dict):
            image_id = chunk["aux"]["ID"]
    track_image(image_id)
    before = volumes(engine)
    try:
        assert engine.read_file(image_id, "/replay/replay.json", 1024) == b"{}\n"
        assert engine.probe(image_id, ["python3", "-c", "print(1)"]).strip() == "1"
        spec = RunSpec(image=image_id, argv=["python3", "-c", "open('/vol/x', 'w').write('x')"], workdir="/")
        assert engine.run(spec, lambda line: None).exit_code == 0
        assert not volumes(engine) - before, "a container's anonymous volume was left"
    finally:
        remove(engine, image_id)
        for name in volumes(engine) - before:  # only on failure: what this test's containers left
            with contextlib.suppress(Exception):  # in use by another's container: not ours
                engine.api.remove_volume(name)
