"""`replay gc`: remove the images and cache entries replay made that no capsule under some folders needs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

EPILOG = """Example:

\b
  replay gc ~/projects --dry-run      (list what would go: look first)
  replay gc ~/projects                (then remove it)
  replay gc . --name 'sweep-*'        (only the capsule images of these names)

Only images replay built are candidates (labels io.replay.name, io.replay.stage): capsule images, environment
images, and the untagged build-stage images (io.replay.stage=packages, 0.5-1.8 GB each: the build cache of a
virtualenv, rebuilt on the next capture that needs it). Kept: every image a capsule under FOLDERS needs, base
images, every image replay did not build, and an image a container uses. Capsules in other folders are not
looked at: their images go too, so name every folder that holds capsules you keep."""

GC_SCHEMA = "replay.gc"
GC_VERSION = 1


def gc_cmd(
    folders: Annotated[list[Path] | None, typer.Argument(help="Folders whose capsules' images are kept [default: .].",
                                                         show_default=False)] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List what would be removed; remove nothing.")] = False,
    name: Annotated[list[str] | None, typer.Option("--name", help="Only capsule images of this name (glob, "
                                                                  "repeatable); environments and caches stay.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print what was (or would be) removed as JSON.")] = False,
) -> None:
    """Remove images, build stages and cache entries replay made that no capsule under FOLDERS needs."""
    from replay import factory, ui
    from replay.core.capsules.gc import plan_gc, run_gc
    from replay.errors import BadInput
    from replay.ui import escape

    chosen = list(folders or [Path(".")])
    for folder in chosen:
        if not folder.is_dir():
            raise BadInput(f"{folder} is not a folder", "pass the folders that hold the capsules to keep")
    engine = factory.engine()
    plan = plan_gc(chosen, engine, names=list(name) if name else None)
    result = None if dry_run else run_gc(plan, engine)
    removed = plan.remove if result is None else result.removed
    if as_json:
        ui.print_json({"schema": GC_SCHEMA, "schema_version": GC_VERSION, "dry_run": dry_run,
                       "capsules": plan.capsules, "images_kept_for_capsules": plan.needed,
                       "removed" if result else "would_remove": [i.to_dict() for i in removed],
                       "kept": [] if result is None else [{**i.to_dict(), "why": why} for i, why in result.kept]})
        return
    verb = "would remove" if dry_run else "removed"
    for item in removed:
        what = ", ".join(item.tags) or item.name or "untagged"
        size = f"  {ui.human_bytes(item.size)}" if item.kind != "cache" else ""
        ui.out.print(f"{verb} {item.kind} {ui.short(item.id) if item.kind != 'cache' else ''} "
                     f"{escape(what)}{size}".replace("  ", " ", 1), soft_wrap=True)
    for item, why in result.kept if result else []:
        ui.warn(f"kept {item.kind} {ui.short(item.id)}: {why}")
    images = sum(1 for i in removed if i.kind != "cache")
    ui.err.print(f"{plan.capsules} capsules under {escape(', '.join(str(f) for f in chosen))} keep {plan.needed} "
                 f"images; {verb} {images} images ({ui.human_bytes(sum(i.size for i in removed if i.kind != 'cache'))}"
                 f", layers shared with kept images stay) and {len(removed) - images} cache entries", soft_wrap=True)
