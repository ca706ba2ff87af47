"""TARGETs that are registry references by digest: ``REPO@sha256:DIGEST``, pulled and read from the image."""

from __future__ import annotations

from replay.core.events import Stopwatch
from replay.core.share import targets
from replay.core.share.bundle.format import check_capsule_name
from replay.core.share.registry import parse_digest_ref, pull, write_capsule
from replay.errors import BadInput


def resolve(target: str, ctx: targets.ResolveContext) -> list[targets.ResolvedCapsule] | None:
    if parse_digest_ref(target) is None or (ctx.cwd / target).exists():
        return None
    if ctx.engine is None:
        raise BadInput(f"{target} is a registry reference, and this command has no engine to pull it with", "")
    watch = Stopwatch()
    manifest, lock = pull(target, ctx.engine, ctx.reporter)
    watch.lap("pull")
    folder = ctx.scratch / f"registry-{len(list(ctx.scratch.glob('registry-*')))}" / check_capsule_name(manifest.name)
    write_capsule(manifest, lock, folder)
    return [targets.ResolvedCapsule(
        name=target, path=folder, source=target,
        provenance=f"image pulled by digest {target.split('@', 1)[1][:19]}: the digest pins its config, i.e. its ID",
        pull=target, timings=watch.timings,
    )]


targets.register(resolve)
