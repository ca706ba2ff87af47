"""TARGETs that are bundle files: ``FILE`` (every capsule in it) and ``FILE#NAME`` (one of them).

Claiming a target checks the whole bundle first (``open_bundle``) and its signature when the caller asks
for one; then each capsule's files are unpacked into a fresh folder under the caller's scratch folder, and
its data too when the bundle carries them (``data_map``). The image is loaded only when verify finds the
engine lacks it (``ensure_image``: the "load" step of its timings, its bytes told to the reporter).
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

from replay.core.events import LOADING, NullReporter, Reporter
from replay.core.ports import Engine, ImageSource
from replay.core.share import targets
from replay.core.share.bundle.format import BundleError, CapsuleEntry, data_relpath
from replay.core.share.bundle.image import load_image
from replay.core.share.bundle.read import Bundle, extract, is_bundle, open_bundle
from replay.core.share.signing import Trust
from replay.manifest import Manifest, load


def split_target(target: str, cwd: Path) -> tuple[Path, str | None] | None:
    """(bundle file, capsule name or None) when ``target`` names a bundle, else None."""
    whole = cwd / target
    if whole.is_file() and is_bundle(whole):
        return whole, None
    path, sep, name = target.rpartition("#")
    if sep and path and (cwd / path).is_file() and is_bundle(cwd / path):
        return cwd / path, name
    return None


def checked(path: Path, trust: Trust | None, reporter: Reporter | None = None) -> Bundle:
    """The bundle with every member checked, and its signature when ``trust`` asks for one."""
    if not path.is_file():
        raise BundleError(f"{path}: no such bundle file", "pass a file made by `replay pack`")
    if not is_bundle(path):
        raise BundleError(f"{path} is not a replay bundle (it does not start with index.json)",
                          "pass a file made by `replay pack`")
    if trust is None:
        return open_bundle(path, reporter)

    def check_signature(index_bytes: bytes, signature: bytes | None) -> str:
        if signature is None:
            raise BundleError(f"{path.name} is not signed, and --allowed-signers asks for a signature",
                              "ask its author for a signed bundle (replay pack --sign KEY)")
        return trust.check(index_bytes, signature)

    # The signature before anything else: an index from a stranger is not even parsed.
    return open_bundle(path, reporter, check_signature)


def unpack_capsule(bundle: Bundle, entry: CapsuleEntry, dest: Path) -> Manifest:
    """The capsule's files into ``dest`` (a new folder), its manifest loaded and matched with the index."""
    dest.mkdir(parents=True)
    check_room(bundle, [f.blob for f in entry.files], dest)
    for f in entry.files:
        extract(bundle, f.blob, dest, f.path)
    manifest = load(dest)
    if manifest.image.id != entry.image:
        raise BundleError(f"capsule {entry.name}: its replay.json names image {manifest.image.id[:19]}, the index "
                          f"{entry.image[:19]}")
    return manifest


def unpack_data(bundle: Bundle, entry: CapsuleEntry, manifest: Manifest, dest: Path) -> dict[str, Path]:
    """The capsule's data files under ``dest`` (shared by capsules: a file already there is kept); root -> path."""
    if not entry.with_data:
        return {}
    dest.mkdir(parents=True, exist_ok=True)
    for f in manifest.data.files:
        if f.sha256 not in bundle.index.by_blob:
            raise BundleError(f"capsule {entry.name}: data file {f.path} is not in the bundle")
    check_room(bundle, [f.sha256 for f in manifest.data.files], dest)
    for f in manifest.data.files:
        rel = data_relpath(f.path)
        if not (dest / rel).is_file():
            extract(bundle, f.sha256, dest, rel)
    return {root: dest / data_relpath(root) for root in manifest.data.roots}


def check_room(bundle: Bundle, blobs: list[str], dest: Path) -> None:
    """All the files about to be unpacked, by their declared sizes, against the free space under ``dest``:
    a few KB of zstd may declare gigabytes each, and each file alone may fit where all of them do not."""
    need = sum(bundle.index.by_blob[b].raw_size for b in set(blobs) if b in bundle.index.by_blob)
    st = os.statvfs(dest)
    if need > st.f_bavail * st.f_frsize:
        raise BundleError(f"the bundle's files declare {need} bytes, more than the free space under {dest}",
                          "free some space, or do not trust this bundle")


def resolve(target: str, ctx: targets.ResolveContext) -> list[targets.ResolvedCapsule] | None:
    found = split_target(target, ctx.cwd)
    if found is None:
        return None
    path, name = found
    bundle = checked(path, ctx.trust)
    entries = [bundle.index.capsule(name)] if name else bundle.index.capsules
    shown = target.rpartition("#")[0] if name else target
    folder = ctx.scratch / f"bundle-{len(list(ctx.scratch.glob('bundle-*')))}"
    out = []
    for entry in entries:
        manifest = unpack_capsule(bundle, entry, folder / "capsules" / entry.name)
        data_map = unpack_data(bundle, entry, manifest, folder / "data")
        out.append(targets.ResolvedCapsule(
            name=f"{shown}#{entry.name}", path=folder / "capsules" / entry.name, source=target, data_map=data_map,
            ensure_image=ImageSource("load", functools.partial(_load, bundle, entry.image)),
            provenance=bundle.provenance(_signers(ctx.trust)),
            bundle=path.resolve(),
        ))
    return out


def _load(bundle: Bundle, image_id: str, engine: Engine, reporter: Reporter | None = None) -> None:
    rep = reporter or NullReporter()
    if bundle.index.image(image_id) is None:
        raise BundleError("the bundle does not hold the capsule's image")
    rep.stage("loading the image from the bundle")
    load_image(bundle, image_id, engine, lambda done, total: rep.progress(LOADING, done, total))


targets.register(resolve)


@dataclass
class Unpacked:
    capsules: list[str]
    data: bool
    loaded: list[str]
    provenance: str


def unpack_all(path: Path, out: Path, trust: Trust | None, engine: Engine | None,
               reporter: Reporter | None = None) -> Unpacked:
    """Every capsule of a checked bundle into ``out/NAME`` and its data into ``out/_data``, in one rename;
    with an engine, the images it lacks are loaded too."""
    from replay.errors import BadInput
    from replay.fsutil import staged_dir

    if out.exists() or out.is_symlink():
        raise BadInput(f"-o {out} already exists", "pass a new folder: unpack never writes into an existing one")
    bundle = checked(path, trust)
    loaded = []
    with staged_dir(out) as stage:
        data = False
        for entry in bundle.index.capsules:
            manifest = unpack_capsule(bundle, entry, stage / entry.name)
            data = bool(unpack_data(bundle, entry, manifest, stage / "_data")) or data
        for image in bundle.index.images:
            if engine is not None and engine.image(image.id) is None:
                _load(bundle, image.id, engine, reporter)
                loaded.append(image.id)
    return Unpacked([c.name for c in bundle.index.capsules], data, loaded, bundle.provenance(_signers(trust)))


def _signers(trust: Trust | None) -> Path | None:
    return trust.allowed_signers if trust is not None else None
