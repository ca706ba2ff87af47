"""Where replay's own files are: the templates folder, in a wheel or in a checkout."""

from __future__ import annotations

from pathlib import Path


def templates_dir() -> Path:
    """``replay/templates`` in an installed wheel; the checkout's top-level ``templates/`` in development."""
    here = Path(__file__).resolve().parent  # replay/
    for candidate in (here / "templates", here.parent / "templates"):
        if (candidate / "Dockerfile.j2").exists():
            return candidate
    raise FileNotFoundError("replay's templates folder is missing from this installation")  # pragma: no cover
