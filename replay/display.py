"""How every view writes a digest and a number, so that the terminal (``replay.ui``), the verify report's
Markdown and the batch's plan, HTML and Markdown show the same: an image ID as the 12 hex characters
``replay verify`` prints, a metric to 6 significant digits. Nothing here imports the rest of the package.
"""

from __future__ import annotations


def short(digest: str | None, n: int = 12) -> str:
    """A digest without its algorithm, cut to ``n`` hex characters; "-" when there is none."""
    return digest.split(":")[-1][:n] if digest else "-"


def number(value: float | None) -> str:
    """A number to 6 significant digits; "-" when there is none."""
    return "-" if value is None else f"{value:.6g}"
