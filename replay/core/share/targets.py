"""What a TARGET on the command line names, resolved to capsule folders on disk.

A target is a capsule folder (or its replay.json), a folder that holds capsules (``.replay/``), and, through
resolvers that other modules register (``register``), a bundle file (``FILE``, ``FILE#NAME``) or a registry
reference (``REF@sha256:DIGEST``). Each resolves to ``ResolvedCapsule``s: a folder that ``verify`` reads like
any other, plus what its source brings (data shipped in a bundle, a way to load the image).

Resolvers are tried in order; the first that claims a target (returns a list) wins, ``None`` passes it on.
A resolver that claims a target but finds it bad raises ``BadInput`` naming it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from replay.core.events import Reporter
from replay.core.ports import Engine, ImageSource
from replay.errors import BadInput
from replay.manifest import MANIFEST_NAME

if TYPE_CHECKING:
    from replay.core.share.signing import Trust


@dataclass
class ResolvedCapsule:
    name: str  # how reports name it: the folder's name, or FILE#NAME for a capsule in a bundle
    path: Path  # a capsule folder on disk (for a bundle: its checked, unpacked copy in a scratch folder)
    source: str  # the target as the user wrote it
    # Recorded data root -> where its files are here, when the source ships them (a bundle --with-data).
    data_map: dict[str, Path] = field(default_factory=dict)
    # Makes the capsule's image present in ``engine`` when it is not (load from a bundle).
    ensure_image: ImageSource | None = None
    # One line on where it comes from, for reports: a bundle's signature status, a registry digest.
    provenance: str = ""
    # Where another machine (a Slurm node) can get the image: the bundle file (absolute), a REF@sha256.
    bundle: Path | None = None
    pull: str | None = None
    # Seconds of the steps taken while resolving, before any verify (a registry reference's "pull"): its
    # verify's timings start with them.
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def local(self) -> bool:
        """A capsule folder the user named, not a scratch copy out of a bundle or a registry."""
        return self.bundle is None and self.pull is None and not self.provenance


@dataclass
class ResolveContext:
    cwd: Path
    scratch: Path  # a fresh folder the caller owns and removes: unpacked bundles go here
    trust: Trust | None = None  # a bundle must then carry a valid signature by a principal it allows
    engine: Engine | None = None  # for targets that need one to resolve (a registry reference is pulled)
    reporter: Reporter | None = None  # hears what resolving does (a pull's bytes); None: nobody


Resolver = Callable[[str, ResolveContext], "list[ResolvedCapsule] | None"]
_RESOLVERS: list[Resolver] = []


def register(resolver: Resolver) -> None:
    """Add a resolver, tried before the folder resolvers (bundles and references are not folders)."""
    if resolver not in _RESOLVERS:
        _RESOLVERS.append(resolver)


def resolve(targets: list[str], ctx: ResolveContext) -> list[ResolvedCapsule]:
    """Every capsule the targets name, in the order given; a capsule named twice is kept once."""
    _load_builtin_resolvers()
    out: list[ResolvedCapsule] = []
    seen: set[Path] = set()
    for target in targets:
        found = next((r for r in (res(target, ctx) for res in _RESOLVERS) if r is not None), None)
        if found is None:
            found = _folder(target, ctx)
        for capsule in found:
            key = (capsule.path if capsule.path.is_absolute() else ctx.cwd / capsule.path).resolve()
            if key not in seen:
                seen.add(key)
                out.append(capsule)
    return out


def _folder(target: str, ctx: ResolveContext) -> list[ResolvedCapsule]:
    # Paths stay as the user wrote them (reports show them so); only the checks look from ctx.cwd.
    path = Path(target)
    full = path if path.is_absolute() else ctx.cwd / path
    if full.name == MANIFEST_NAME and not full.is_dir():
        return [ResolvedCapsule(full.parent.name, path.parent, target)]
    if full.is_dir() and (full / MANIFEST_NAME).exists():
        return [ResolvedCapsule(full.resolve().name, path, target)]
    if full.is_dir() and not full.is_symlink():
        inner = sorted((p.name for p in full.iterdir() if p.is_dir() and not p.is_symlink()
                        and not p.name.startswith(".") and (p / MANIFEST_NAME).exists()), key=natural_key)
        if inner:
            return [ResolvedCapsule(name, path / name, target) for name in inner]
    # Not a capsule: the manifest loader gives the one clear error ("no capsule at ...").
    return [ResolvedCapsule(full.name or target, path, target)]


def _load_builtin_resolvers() -> None:
    """Import the modules that register resolvers for bundles and registry references, when present."""
    import importlib

    for module in ("replay.core.share.bundle.target", "replay.core.share.registry_target"):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise


def one(targets: list[ResolvedCapsule], target: str) -> ResolvedCapsule:
    """The single capsule a target must name (for commands that take exactly one)."""
    if len(targets) != 1:
        names = ", ".join(t.name for t in targets[:5])
        raise BadInput(f"{target} holds {len(targets)} capsules ({names})", "name one of them, e.g. FILE#NAME")
    return targets[0]


def natural_key(name: str) -> list[str | int]:
    """Sort key for names with numbers in them: e2 before e10 (plain text order puts e10 first)."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]
