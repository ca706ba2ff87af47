"""A capsule through a registry: `replay push` records the digest, `REF@sha256:D` is pulled and verified.

Trust runs through the digest the reviewer is given: the registry manifest it names pins the image config
by digest, and the config's digest is the image ID, which the engine checks on pull. The image carries its
own manifest (``/replay/replay.json``, written into it at capture, so it cannot name the image's own ID:
that is taken from the pulled image) and the lock; both are validated like any hostile input.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from replay import jsonio
from replay.core.events import PULLING, NullReporter, Reporter
from replay.core.ports import Engine
from replay.errors import BadInput, ImageProblem, ManifestError
from replay.fsutil import atomic_write_bytes, staged_dir
from replay.manifest import IMAGE_MANIFEST_PATH, LOCK_NAME, MANIFEST_NAME, Manifest, from_dict, load, save

DIGEST_REF = re.compile(r"^(?P<repo>[a-z0-9][a-z0-9._:/-]*[a-z0-9])@(?P<digest>sha256:[0-9a-f]{64})$")
REPO_REF = re.compile(r"^[a-z0-9][a-z0-9._:/-]*[a-z0-9]$")
MAX_MANIFEST = 64 << 20
IMAGE_LOCK_PATH = f"/replay/{LOCK_NAME}"


@dataclass
class Pushed:
    ref: str  # REPO@sha256:DIGEST, what a reviewer verifies
    tag: str  # REPO:TAG that was pushed
    capsule: Path


def push(capsule: Path, ref: str, engine: Engine, reporter: Reporter | None = None) -> Pushed:
    """Push the capsule's image as ``ref`` (REPO or REPO:TAG) and record its registry digest in the capsule."""
    rep = reporter or NullReporter()
    m = load(capsule)
    if "@" in ref:
        raise BadInput(f"{ref} names a digest", "push to a repository (REPO or REPO:TAG): the registry gives the digest")
    last = ref.rsplit("/", 1)[-1]
    repo, tag = (ref.rsplit(":", 1) if ":" in last else (ref, m.image.id[7:19]))
    if not REPO_REF.match(repo) or "/" not in repo:
        raise BadInput(f"{ref} is not a registry repository",
                       "write it as HOST[:PORT]/NAME[:TAG], e.g. 127.0.0.1:5000/team/digits")
    if engine.image(m.image.id) is None:
        raise ImageProblem(f"image {m.image.id[:19]} of capsule {m.name} is not in this engine",
                           "push from the machine that captured it (or load its bundle first)")
    engine.tag(m.image.id, repo, tag)
    rep.stage(f"pushing {repo}:{tag}")
    digest = engine.push(f"{repo}:{tag}", lambda done, total: rep.progress("pushing", done, total))
    pushed = f"{repo}@{digest}"
    m.image.registry_digest = pushed
    save(m, capsule)
    return Pushed(pushed, f"{repo}:{tag}", capsule)


def parse_digest_ref(ref: str) -> tuple[str, str] | None:
    match = DIGEST_REF.match(ref)
    return (match.group("repo"), match.group("digest")) if match else None


def pull(ref: str, engine: Engine, reporter: Reporter | None = None) -> tuple[Manifest, bytes | None]:
    """Pull ``REPO@sha256:D`` and read its manifest (and lock) from the image itself, checked."""
    rep = reporter or NullReporter()
    parsed = parse_digest_ref(ref)
    if parsed is None:
        raise BadInput(f"{ref} is not a reference by digest", "write it as REPO@sha256:DIGEST (what `replay push` printed)")
    repo, digest = parsed
    rep.stage(f"pulling {ref}")
    record = engine.pull(ref, lambda done, total: rep.progress(PULLING, done, total))
    if not any(d.endswith("@" + digest) for d in record.repo_digests):
        raise ImageProblem(f"the engine pulled {record.id[:19]} for {ref} but does not list that digest for it", "")
    if record.volumes:
        raise BadInput(f"{ref} declares VOLUME {', '.join(record.volumes)[:200]}: a replay could write outside its "
                       "output folder there", "do not trust this image; `replay capture` never declares volumes")
    raw = engine.read_file(record.id, IMAGE_MANIFEST_PATH, MAX_MANIFEST)
    if raw is None:
        raise ManifestError(f"{ref} holds no {IMAGE_MANIFEST_PATH}", "it is not an image made by `replay capture`")
    try:
        doc = jsonio.loads(raw)
    except jsonio.JSONInputError as exc:  # invalid, not UTF-8, nested too deeply, a 5,000-digit number
        raise ManifestError(f"{IMAGE_MANIFEST_PATH} in {ref} is not a JSON document replay reads ({exc})",
                            "do not trust this image") from None
    m = from_dict(doc, f"{ref}:{IMAGE_MANIFEST_PATH}")
    if m.image.id not in ("", record.id):  # written before the image existed, it can only be empty
        raise ManifestError(f"{IMAGE_MANIFEST_PATH} in {ref} names image {m.image.id[:19]}, not {record.id[:19]}",
                            "do not trust this image")
    lock = engine.read_file(record.id, IMAGE_LOCK_PATH, MAX_MANIFEST)
    if lock is not None and m.python.lock_sha256 and hashlib.sha256(lock).hexdigest() != m.python.lock_sha256:
        raise ManifestError(f"the lock in {ref} does not match its manifest's lock_sha256", "do not trust this image")
    m.image.id, m.image.tag, m.image.size, m.image.registry_digest = record.id, "", record.size, ref
    return m, lock


def write_capsule(m: Manifest, lock: bytes | None, out: Path) -> Path:
    """A capsule folder (replay.json and the lock) made from a pulled image, in one rename."""
    if out.exists() or out.is_symlink():
        raise BadInput(f"-o {out} already exists", "pass a new folder")
    with staged_dir(out) as stage:
        save(m, stage / MANIFEST_NAME)
        if lock is not None:
            atomic_write_bytes(stage / LOCK_NAME, lock)
    return out
