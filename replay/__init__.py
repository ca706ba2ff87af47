"""replay: capture a finished ML training run into a pinned image, and verify it later byte for byte."""

from __future__ import annotations

__version__ = "0.1.0"

# The seeding API, loaded on first use: `import replay` (and so `replay --help`) stays as light as before,
# importing nothing at all (not even typing; type checkers read the import below).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from replay.seeding import SeedRecord, seed_everything

_LAZY = {"seed_everything": "replay.seeding", "SeedRecord": "replay.seeding"}
__all__ = ["SeedRecord", "__version__", "seed_everything"]


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'replay' has no attribute {name!r}")
