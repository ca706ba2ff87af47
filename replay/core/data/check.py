"""`replay manifest PATH... --check CAPSULE`: which part of a capsule's data manifest the asked paths answer for."""

from __future__ import annotations

from replay.manifest import DataManifest


def scoped(expected: DataManifest, asked_roots: list[str]) -> DataManifest:
    """Only the recorded roots that were asked for take part: a check of one folder says nothing of others."""
    asked = set(asked_roots)
    return DataManifest(roots=[r for r in expected.roots if r in asked],
                        files=[f for f in expected.files if any(_under(f.path, r) for r in asked)])


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")
