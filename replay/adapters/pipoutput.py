"""Reading what pip-compile and pip print: what is being resolved (for the progress line), how many bytes
came down, and why a lock or a download failed, in pip's own words and never a traceback's last line.

Pure functions over text, tested on recorded outputs (tests/unit/pip_outputs/).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_NAME = r"[A-Za-z0-9][A-Za-z0-9._-]*"
_RESOLVING = re.compile(r"^\s*(?:Collecting|Processing|Obtaining)\s+(\S+)")
_HASHING = re.compile(r"^\s{4}Hashing\s+(\S+)")
_HASH_GROUP = re.compile(rf"^\s{{2}}({_NAME})\s*$")
_PROGRESS = re.compile(r"^Progress (\d+) of (\d+)\s*$")
_SAVED = re.compile(r"^Saved (.+?)\s*$")
_NO_VERSION = re.compile(rf"Could not find a version that satisfies the requirement ({_NAME})\s*([^\s(]*)"
                         r"(?:\s*\(from versions: ([^)]*)\))?")
_NO_DIST = re.compile(rf"No matching distribution found for ({_NAME})\s*(\S*)")
_CONFLICT = re.compile(r"Cannot install (.+?) because these package versions have conflicting dependencies")
_SKIP_SDIST = re.compile(rf"Skipping link: No sources permitted for ({_NAME})")
_SKIP_TAGS = re.compile(r"Skipping link: none of the wheel's tags \(([^)]*)\) are compatible")
_METADATA = re.compile(r"Preparing metadata \(([^)]*)\)")
_EXC_LINE = re.compile(r"^[A-Za-z_][\w.]*(?:Error|Exception|Impossible|NotFound|Conflicted|Failed)\b:?")


class LineReader:
    """Turns pip-compile's verbose lines into a short "what now": ``resolving NAME`` or ``hashing NAME``."""

    def __init__(self) -> None:
        self.hashing = False

    def status(self, line: str) -> str | None:
        if line.startswith("Generating hashes"):
            self.hashing = True
            return "hashing"
        match = _RESOLVING.match(line)
        if match:
            return f"resolving {_dist_name(match.group(1))}"
        if self.hashing:
            group = _HASH_GROUP.match(line)
            if group:
                return f"hashing {group.group(1)}"
        return None


@dataclass
class ByteCounter:
    """Bytes pip download has written: finished files plus the current file's ``Progress X of Y`` lines."""

    done: int = 0
    current: int = 0

    def feed(self, line: str, size_of: object = None) -> bool:
        """Read one line; True when the count changed. ``size_of``: a callable giving a saved file's size."""
        progress = _PROGRESS.match(line)
        if progress:
            self.current = int(progress.group(1))
            return True
        saved = _SAVED.match(line)
        if saved and callable(size_of):
            size = size_of(saved.group(1))
            self.done += int(size) if isinstance(size, int) else self.current
            self.current = 0
            return True
        return False

    @property
    def total(self) -> int:
        return self.done + self.current


@dataclass
class Failure:
    """Why pip failed: the package it names (or ""), its reason, and whether only files that do not fit exist."""

    package: str
    reason: str
    kind: str = "other"  # "no-version", "conflict", "metadata", "other"


def compile_failure(output: str) -> Failure:
    """The package and pip's own reason from a failed pip-compile's (merged) output."""
    lines = [ln.rstrip() for ln in output.splitlines()]
    conflict = next((_CONFLICT.search(ln) for ln in lines if _CONFLICT.search(ln)), None)
    if conflict:
        causes = _block_after(lines, "The conflict is caused by:")
        names = _conflicting_names(causes)
        reason = "conflicting pins: " + ("; ".join(causes) if causes else conflict.group(0))
        return Failure(names, reason, "conflict")
    for line in lines:
        found = _NO_VERSION.search(line)
        if found:
            name, spec, versions = found.group(1), found.group(2), (found.group(3) or "").strip()
            offered = f"the index has {_some(versions)}" if versions and versions != "none" \
                else "the index has no version of it"
            return Failure(name, f"no version of {name} matches {spec or 'the pin'} ({offered})", "no-version")
    for line in lines:
        found = _NO_DIST.search(line)
        if found:
            return Failure(found.group(1), f"no matching distribution for {found.group(1)}{found.group(2)}", "no-version")
    metadata = next((i for i, ln in enumerate(lines) if _METADATA.search(ln) and "error" in ln), None)
    if metadata is not None:
        name = _last_processed(lines[:metadata])
        detail = _subprocess_error(lines[metadata:])
        return Failure(name, f"building the metadata of {name or 'a package'} from its source failed"
                       + (f" ({detail})" if detail else ""), "metadata")
    return Failure("", plain_error(output))


def download_failure(output: str) -> Failure:
    """The package pip download could not find a fitting file for (the image's platform and Python)."""
    for line in output.splitlines():
        found = _NO_DIST.search(line) or _NO_VERSION.search(line)
        if found:
            return Failure(found.group(1), f"{found.group(1)}{found.group(2)}", "no-version")
    return Failure("", plain_error(output))


def skipped_files(output: str) -> tuple[bool, list[str]]:
    """From ``pip download -vvv``: whether a source distribution was skipped, and the tags of skipped wheels."""
    sdist = any(_SKIP_SDIST.search(line) for line in output.splitlines())
    tags = [m.group(1) for line in output.splitlines() if (m := _SKIP_TAGS.search(line))]
    return sdist, list(dict.fromkeys(tags))


def plain_error(output: str) -> str:
    """pip's own ERROR line, else the last line that is neither a traceback frame nor an exception's repr."""
    lines = [ln.strip() for ln in output.splitlines()]
    errors = [ln.removeprefix("ERROR: ") for ln in lines if ln.startswith("ERROR:")]
    if errors:
        return errors[0][:240]
    kept, in_traceback = [], False
    for raw in output.splitlines():
        stripped = raw.strip()
        if raw.startswith("Traceback"):
            in_traceback = True
            continue
        if in_traceback:
            if raw.startswith(" ") or not stripped:
                continue  # frames and their source lines ("raise error from e")
            in_traceback = False
            continue  # the exception the traceback ends with
        if stripped and not _EXC_LINE.match(stripped) and "is ignored" not in stripped \
                and not stripped.startswith("The above exception"):
            kept.append(stripped)
    return (kept or ["pip printed no reason"])[-1][:240]


def _some(versions: str, keep: int = 5) -> str:
    """The newest few of pip's "from versions" list (oldest first), and how many more there are."""
    listed = [v.strip() for v in versions.split(",") if v.strip()]
    if len(listed) <= keep + 1:
        return ", ".join(listed)
    return f"{', '.join(listed[-keep:])} and {len(listed) - keep} older"


def _block_after(lines: list[str], heading: str) -> list[str]:
    out: list[str] = []
    for index, line in enumerate(lines):
        if line.strip() == heading:
            for follow in lines[index + 1:]:
                if not follow.strip():
                    break
                out.append(follow.strip())
            break
    return out


def _conflicting_names(causes: list[str]) -> str:
    """The package every cause names a requirement on (``The user requested okpkg==1.0``; ``x 1.0 depends on
    okpkg==2.0``): that is the one with conflicting pins."""
    names = []
    for cause in causes:
        found = re.search(rf"(?:requested|depends on)\s+({_NAME}?)(?:[=<>!~ \[;]|$)", cause)
        if found:
            names.append(_dist_name(found.group(1)))
    return names[0] if names and all(n.lower() == names[0].lower() for n in names) else ", ".join(dict.fromkeys(names))


def _last_processed(lines: list[str]) -> str:
    for line in reversed(lines):
        match = _RESOLVING.match(line)
        if match:
            return _dist_name(match.group(1))
    return ""


def _subprocess_error(lines: list[str]) -> str:
    """The build backend's own last error line (``RuntimeError: fatal error: Python.h: ...``)."""
    detail = ""
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("note: This error originates"):
            break
        found = re.match(r"^[A-Za-z_][\w.]*(?:Error|Exception): (.+)$", stripped)
        if found:
            detail = found.group(1)
    return detail[:160]


def _dist_name(token: str) -> str:
    """``numpy``, from ``numpy``, ``numpy==2.4.6``, or a file name ``numpy-2.4.6-cp311-....whl``/``x-1.0.tar.gz``."""
    name = re.split(r"[=<>!~ \[(;@]", token.rsplit("/", 1)[-1], maxsplit=1)[0]
    if name.endswith((".whl", ".tar.gz", ".zip")):
        name = re.split(r"-\d", name, maxsplit=1)[0]
    return name
