"""What never enters the code snapshot (the image's code/ and ``code.patch``), whatever git ignores or not:
the declared data and outputs, capsule folders (``.replay/`` and any folder holding a capsule's replay.json),
replay's own reports, and untracked files over 1 MiB or binary unless ``--include-untracked`` names them
(those are refused, listed, so that nothing large leaves the machine by accident). Build leftovers have their
own rules (``replay.core.capture.leftovers``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from replay.errors import BadInput

UNTRACKED_MAX_BYTES = 1 << 20
SNIFF_BYTES = 8192
# What replay's own documents start with: a verify report or a summary (JSON), JUnit, Markdown, HTML.
_REPORT_MARKS = (b'"schema": "replay.', b'"schema":"replay.', b'<testsuite name="replay verify', b"### replay verify `",
                 b"<title>replay batch")
_REPORT_SUFFIXES = {".json", ".xml", ".md", ".html", ".htm"}
CAPSULE_FOLDER = "capsule folder (holds a capsule's replay.json)"
REPORT = "replay report"
DECLARED = "declared data, outputs and capsule"


@dataclass
class LeaveOut:
    """The rules for one project; ``__call__`` is what ``SourceControl.inspect`` asks (files, untracked)."""

    root: Path
    exclude: list[str]  # declared data and outputs, the capsule: relative paths (files or folders)
    include_untracked: list[str] = field(default_factory=list)
    left_out: dict[str, list[str]] = field(default_factory=dict)  # why -> the files left out

    def __call__(self, files: list[str], untracked: list[str]) -> list[str]:
        """The paths (files or folders) the snapshot and the patch leave out; refuses large or binary
        untracked files that ``--include-untracked`` does not name."""
        self.left_out = {}
        declared = [PurePosixPath(e) for e in self.exclude if e and not e.startswith("/") and e != "."]
        capsules = {str(PurePosixPath(f).parent) for f in files if PurePosixPath(f).name == "replay.json"
                    and _is_capsule_manifest(self.root / f)}
        # Folders are named as folders (a short pathspec for git), single files as themselves.
        out: set[str] = set()
        left: set[str] = set()
        for rel in files:
            found = self._why(rel, declared, capsules)
            if found:
                why, where = found
                self.left_out.setdefault(why, []).append(rel)
                out.add(where)
                left.add(rel)
        self._refuse_bulky([f for f in untracked if f not in left])
        return sorted(out)

    def _why(self, rel: str, declared: list[PurePosixPath], capsules: set[str]) -> tuple[str, str] | None:
        path = PurePosixPath(rel)
        for d in declared:
            if path == d or path.is_relative_to(d):
                return DECLARED, str(d)
        for c in capsules:
            if c == "." and rel == "replay.json" or c != "." and path.is_relative_to(c):
                return CAPSULE_FOLDER, rel if c == "." else c
        if path.suffix.lower() in _REPORT_SUFFIXES and _is_report(self.root / rel):
            return REPORT, rel
        return None

    def _refuse_bulky(self, untracked: list[str]) -> None:
        named = [PurePosixPath(p) for p in self.include_untracked]
        bulky = []
        for rel in untracked:
            if any(PurePosixPath(rel) == n or PurePosixPath(rel).is_relative_to(n) for n in named):
                continue
            what = _bulky(self.root / rel)
            if what:
                bulky.append(f"{rel} ({what})")
        if bulky:
            more = f" and {len(bulky) - 5} more" if len(bulky) > 5 else ""
            raise BadInput(
                f"untracked files too large or binary to go into the code snapshot: {', '.join(bulky[:5])}{more}",
                "declare data with --data and outputs with --output, add them to .gitignore, commit them, or pass "
                "--include-untracked PATH to ship one in the image and code.patch",
            )

    def counts(self) -> dict[str, int]:
        return {why: len(files) for why, files in sorted(self.left_out.items()) if why != DECLARED}


def _head(path: Path, size: int = SNIFF_BYTES) -> bytes:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return b""
    try:
        return os.read(fd, size)
    except OSError:
        return b""
    finally:
        os.close(fd)


def _bulky(path: Path) -> str | None:
    try:
        st = path.lstat()
    except OSError:
        return None
    if st.st_size > UNTRACKED_MAX_BYTES:
        return f"{st.st_size / (1 << 20):.1f} MiB"
    if b"\0" in _head(path):
        return "binary"
    return None


def _is_report(path: Path) -> bool:
    head = _head(path, 4096).lstrip()
    return any(mark in head[:512] for mark in _REPORT_MARKS)


def _is_capsule_manifest(path: Path) -> bool:
    head = _head(path, 4096)
    return b'"schema_version"' in head and b'"replay_version"' in head
