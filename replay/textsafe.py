"""Text from elsewhere (a capsule, a bundle, a replay's outputs and log) made safe to show: one neutralizer
for the terminal (``replay.ui``) and for every report format (Markdown, HTML, JUnit XML).

``neutral`` writes every control character as an escape the reader can see (``\\x1b``, ``\\n``, ``\\u202e``):
C0 and C1 controls (ESC starts the sequences that clear a screen, move the cursor, set a window title or
make an OSC 8 link; CR and backspace overwrite a line), DEL, the Unicode line separators, the bidirectional
overrides that reorder what is shown, and the code points XML cannot hold (lone surrogates, U+FFFE/U+FFFF).
Nothing else changes. Each format then escapes its own syntax: ``md_text``/``md_code`` (no raw HTML, a
code span fenced longer than any backtick run inside), ``html_text``, ``xml_text``. Nothing here imports the
rest of the package.
"""

from __future__ import annotations

import html
import re

_CONTROL = ("\x00-\x08\x0b-\x1f\x7f-\x9f"  # C0 but tab and newline, DEL, C1
            "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"  # bidirectional marks and overrides
            "\u2028\u2029\ufeff\ufff9-\ufffb\ufffe\uffff\ud800-\udfff")  # separators, BOM, not XML
_ALL = re.compile(f"[\t\n{_CONTROL}]")
_KEEP_LINES = re.compile(f"[{_CONTROL}]")  # keeps tab and newline
_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}
_MD_PUNCT = re.compile(r"([\\`*_\[\]|~])")  # emphasis, code, links, cells, strikethrough


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def neutral(text: str, keep_newlines: bool = False) -> str:
    """``text`` with every control character shown as an escape; newlines and tabs too unless ``keep_newlines``
    (one line is the default: a name with a newline in it must not start a line of its own)."""
    return (_KEEP_LINES if keep_newlines else _ALL).sub(_escape, text)


def md_text(text: str) -> str:
    """Plain text in a Markdown line or table cell: no HTML, no emphasis, link, code span or cell break."""
    safe = html.escape(neutral(text), quote=False)
    return _MD_PUNCT.sub(r"\\\1", safe)


def md_code(text: str, in_table: bool = True) -> str:
    """``text`` as one Markdown code span: fenced by more backticks than any run inside, so none closes it.

    In a table a pipe still ends the cell inside a code span (GFM), so it is written ``\\|``, which GFM shows
    as ``|``. A code span shows ``<script>`` as text: no HTML is ever read inside one.
    """
    body = neutral(text)
    if in_table:
        body = body.replace("|", "\\|")
    longest = max((len(run) for run in re.findall(r"`+", body)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if body.startswith(("`", " ")) or body.endswith(("`", " ")) or not body else ""
    return f"{fence}{pad}{body}{pad}{fence}"


def html_text(text: str) -> str:
    """Text for HTML content or an attribute (quotes escaped too)."""
    return html.escape(neutral(text), quote=True)


def xml_text(text: str, keep_newlines: bool = True) -> str:
    """Text ElementTree may write into an element or attribute and still give well-formed XML: every code
    point XML 1.0 forbids (and every other control) shown as an escape; ElementTree escapes ``<&>"``."""
    return neutral(text, keep_newlines=keep_newlines)
