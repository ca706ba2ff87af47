"""`replay gc`: the images and cache entries replay made that no capsule under the given folders needs.

Only images replay built are ever candidates, known by the labels replay puts on them: a capsule image
(``io.replay.name``), an environment image (``io.replay.stage=environment``: base + virtualenv + code, shared
by captures of the same code and packages) and a build stage (``io.replay.stage=packages``: the untagged
0.5-1.8 GB image where the virtualenv was filled; only a cache for the next build of the same lock). Base
images (``replay base build``) and every image without those labels are never touched. A capsule needs its
image and its environment image; an image that another image is built on (the builder's intermediate layers)
goes with that image, never on its own. Removal is never forced: the engine keeps an image a container uses.

Cache entries: base-image probe records of images the engine no longer has, and last-verify records of
capsule folders that are gone. Locks and wheels (``locks/``, ``wheels/``) are kept: an offline capture
needs them.
"""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from replay import jsonio
from replay.core.capsules.list import VERDICT_BYTES, find_capsules
from replay.core.ports import Engine, ImageRecord
from replay.errors import BadInput, ReplayError
from replay.fsutil import cache_root
from replay.manifest import load
from replay.safefs import read_bytes

NAME_LABEL = "io.replay.name"
STAGE_LABEL = "io.replay.stage"
KINDS = {"environment": "environment", "packages": "build stage"}
ORDER = ("capsule image", "environment", "build stage")  # children before what they are built on


@dataclass
class GcItem:
    id: str
    kind: str  # "capsule image", "environment", "build stage", "cache"
    size: int
    tags: list[str] = field(default_factory=list)
    name: str = ""  # a capsule image's capsule name; a cache entry's path

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "size": self.size, "tags": list(self.tags), "name": self.name}


@dataclass
class GcPlan:
    capsules: int  # capsules found under the folders
    needed: int  # replay's images that one of them needs (kept)
    remove: list[GcItem] = field(default_factory=list)

    @property
    def image_bytes(self) -> int:
        return sum(i.size for i in self.remove if i.kind != "cache")


@dataclass
class GcResult:
    removed: list[GcItem] = field(default_factory=list)
    kept: list[tuple[GcItem, str]] = field(default_factory=list)  # what the engine refused to remove, and why


def plan_gc(folders: list[Path], engine: Engine, names: list[str] | None = None) -> GcPlan:
    """What ``run_gc`` would remove. ``names`` (globs) restrict it to the capsule images of those names."""
    needed: set[str] = set()
    capsules = find_capsules(folders)
    for path in capsules:
        try:
            m = load(path)
        except ReplayError as exc:
            raise BadInput(f"cannot tell which image {path} needs: {exc.message}",
                           "repair or move that capsule folder, then run gc again") from None
        needed.update(i for i in (m.image.id, m.image.environment_id) if i)
    images = {r.id: r for key in (NAME_LABEL, STAGE_LABEL) for r in engine.labelled_images(key)}
    parents = {r.parent for r in images.values() if r.parent}
    plan = GcPlan(len(capsules), len(needed & set(images)))
    for record in images.values():
        kind = _kind(record)
        if kind is None or record.id in needed or record.id in parents:
            continue
        if names is not None and not (kind == "capsule image" and _matches(record, names)):
            continue
        plan.remove.append(GcItem(record.id, kind, record.size, sorted(record.tags), record.labels.get(NAME_LABEL, "")))
    plan.remove.sort(key=lambda i: (ORDER.index(i.kind), i.name, i.id))
    if names is None:
        plan.remove.extend(_stale_cache(engine))
    return plan


def _kind(record: ImageRecord) -> str | None:
    if record.labels.get(NAME_LABEL):
        return "capsule image"
    return KINDS.get(record.labels.get(STAGE_LABEL, ""))


def _matches(record: ImageRecord, names: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(record.labels.get(NAME_LABEL, ""), pattern) for pattern in names)


def _stale_cache(engine: Engine) -> list[GcItem]:
    """Probe records of base images the engine no longer has; last-verify records of folders that are gone."""
    root = cache_root()
    stale: list[GcItem] = []
    for entry in _files(root / "bases"):
        image_id = entry.stem.replace("-", ":", 1)
        if entry.suffix == ".json" and engine.image(image_id) is None:
            stale.append(GcItem(entry.name, "cache", _size(entry), name=str(entry)))
    for entry in _files(root / "verdicts"):
        try:
            raw = jsonio.loads(read_bytes(entry.parent, entry.name, limit=VERDICT_BYTES))
        except (OSError, ValueError):
            raw = None
        capsule = raw.get("capsule") if isinstance(raw, dict) else None
        if not (isinstance(capsule, str) and os.path.isdir(capsule)):
            stale.append(GcItem(entry.name, "cache", _size(entry), name=str(entry)))
    return stale


def _files(folder: Path) -> list[Path]:
    try:
        return sorted(Path(e.path) for e in os.scandir(folder) if e.is_file(follow_symlinks=False))
    except OSError:
        return []


def _size(path: Path) -> int:
    try:
        return os.lstat(path).st_size
    except OSError:
        return 0


def run_gc(plan: GcPlan, engine: Engine) -> GcResult:
    """Remove what ``plan`` lists, capsule images first; what the engine keeps is reported, never forced."""
    result = GcResult()
    for item in plan.remove:
        if item.kind == "cache":
            try:
                Path(item.name).unlink()
            except FileNotFoundError:
                pass
            except OSError as exc:
                result.kept.append((item, exc.strerror or str(exc)))
                continue
            result.removed.append(item)
            continue
        why = engine.remove_unused_image(item.id)
        if why is None:
            result.removed.append(item)
        else:
            result.kept.append((item, why))
    return result
