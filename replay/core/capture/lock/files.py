"""Existing lock files, parsed: a requirements file with ``--hash`` lines, ``poetry.lock``, ``Pipfile.lock``,
and the requirements text ``uv export`` makes of a ``uv.lock``.

Pure parsing of untrusted-ish input: whatever the text, a parser returns entries or raises one ``BadInput``
whose message names the file (and line) and what is wrong; never another exception. Markers are kept on the
entries (``LockedRequirement.marker``) but not evaluated: which entries the image gets is decided against
the installed interpreter (``replay.core.capture.lock.source``), not by the markers.
"""

from __future__ import annotations

import enum
import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from replay.core.pyenv import LockedRequirement, normalize
from replay.errors import BadInput


class LockKind(enum.StrEnum):
    REQUIREMENTS = "requirements.txt"  # a requirements file whose every pin carries --hash
    UV = "uv.lock"
    POETRY = "poetry.lock"
    PIPFILE = "Pipfile.lock"


BY_NAME = {"uv.lock": LockKind.UV, "poetry.lock": LockKind.POETRY, "Pipfile.lock": LockKind.PIPFILE}

_NAME = r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?"
_PIN = re.compile(rf"^({_NAME})(?:\[[^\]]*\])?\s*===?\s*([A-Za-z0-9][A-Za-z0-9.+!_-]*)\s*$")
_DIRECT = re.compile(rf"^({_NAME})(?:\[[^\]]*\])?\s*@\s*(\S+)\s*$")
_HASH_OPT = re.compile(r"(?:^|\s)--hash[=\s]\s*([A-Za-z0-9]+):([0-9A-Fa-f]+)")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.+!_-]*$")
# Options a requirements file may hold that do not name a package (where pip looks, how it installs).
_OPTIONS = ("-i", "--index-url", "--extra-index-url", "-f", "--find-links", "--trusted-host", "--no-index",
            "--prefer-binary", "--only-binary", "--no-binary", "--require-hashes", "--pre", "--use-feature")
_NESTED = ("-r", "-c", "--requirement", "--constraint")
_EDITABLE = ("-e", "--editable")
_LOCAL_SOURCES = {"directory", "file", "git", "url"}  # poetry: not from an index; the interpreter decides


def has_hashes(text: str) -> bool:
    """Whether a requirements file pins with hashes (then it is a lock, taken as it is)."""
    return any(_HASH_OPT.search(_strip_comment(line)) for line in text.splitlines())


def kind_of(path: Path, text: str) -> LockKind | None:
    """Which lock ``path`` is, by its name and then its content; None for a requirements file without hashes."""
    if path.name in BY_NAME:
        return BY_NAME[path.name]
    return LockKind.REQUIREMENTS if has_hashes(text) else None


def parse(kind: LockKind, text: str, source: str) -> list[LockedRequirement]:
    """The entries of a lock of ``kind`` (for ``UV``: ``uv export``'s requirements text)."""
    if kind is LockKind.POETRY:
        return parse_poetry_lock(text, source)
    if kind is LockKind.PIPFILE:
        return parse_pipfile_lock(text, source)
    return parse_requirements_lock(text, source, local_lines=kind is LockKind.UV)


def parse_requirements_lock(text: str, source: str, *, local_lines: bool = False) -> list[LockedRequirement]:
    """Every pin of a requirements file with hashes, with its marker. ``local_lines``: drop editable and path
    lines (``uv export`` writes workspace members so) instead of refusing them."""
    reqs: list[LockedRequirement] = []
    for number, line in _logical_lines(text):
        head = line.split(None, 1)[0]
        if head in _NESTED or head.startswith(("-r", "-c")) and not head.startswith("--"):
            raise BadInput(f"{source}: line {number} refers to other files ({_cut(line)})",
                           "pass one flattened lock (pip-compile --generate-hashes or `uv export` output)")
        if head in _EDITABLE or head.startswith((".", "/", "file:")):
            if local_lines:
                continue  # the project's own code or a local path: the interpreter's installs decide
            raise BadInput(f"{source}: line {number} installs a local path ({_cut(line)}), which a lock by hash "
                           "cannot hold", "remove the line: replay finds local installs in the interpreter itself")
        if head.startswith("-"):
            if head.split("=", 1)[0] in _OPTIONS:
                continue
            raise BadInput(f"{source}: line {number} has an option replay does not know ({_cut(line)})",
                           "pass a plain lock: pins with --hash lines")
        reqs.append(_requirement_line(line, number, source))
    if not reqs:
        raise BadInput(f"{source} pins no package", "pass a lock with pins and --hash lines, or leave it out")
    return reqs


def parse_poetry_lock(text: str, source: str) -> list[LockedRequirement]:
    """``[[package]]`` entries of a poetry.lock with the sha256 of their ``files`` (or, in lock files of Poetry
    1.0, of ``[metadata.files]``); packages from a folder, file, URL or git are left to the interpreter."""
    try:
        doc = tomllib.loads(text)
    except (tomllib.TOMLDecodeError, ValueError, RecursionError) as exc:
        raise BadInput(f"{source} is not valid TOML ({_cut(str(exc))})",
                       "pass the poetry.lock `poetry lock` wrote") from None
    packages = doc.get("package", [])
    metadata = doc.get("metadata", {})
    legacy = metadata.get("files", {}) if isinstance(metadata, dict) else {}
    if not isinstance(packages, list) or not isinstance(legacy, dict):
        raise BadInput(f"{source} is not a poetry lock ([[package]] entries)", "pass the poetry.lock `poetry lock` wrote")
    reqs = []
    for index, pkg in enumerate(packages):
        where = f"{source}: package {index + 1}"
        if not isinstance(pkg, dict):
            raise BadInput(f"{where} is not a table", "pass the poetry.lock `poetry lock` wrote")
        name, version = _name_version(pkg.get("name"), pkg.get("version"), where)
        origin = pkg.get("source")
        if isinstance(origin, dict) and origin.get("type") in _LOCAL_SOURCES:
            continue
        files = pkg.get("files", legacy.get(name, legacy.get(normalize(name), [])))
        if not isinstance(files, list):
            raise BadInput(f"{where} ({name}) has no list of files", "pass the poetry.lock `poetry lock` wrote")
        hashes = [_sha256_of(f.get("hash") if isinstance(f, dict) else None, f"{where} ({name})") for f in files]
        reqs.append(_entry(name, version, hashes, _marker(pkg.get("markers")), where))
    return reqs


def parse_pipfile_lock(text: str, source: str) -> list[LockedRequirement]:
    """The ``default`` section of a Pipfile.lock, then ``develop`` (a package in both: default's pin), with
    their markers; editable, path, file and git entries are left to the interpreter."""
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise BadInput(f"{source} is not valid JSON ({_cut(str(exc))})",
                       "pass the Pipfile.lock `pipenv lock` wrote") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("default", {}), dict) \
            or not isinstance(doc.get("develop", {}), dict):
        raise BadInput(f"{source} is not a Pipfile.lock (no default section)", "pass the Pipfile.lock `pipenv lock` wrote")
    reqs: dict[str, LockedRequirement] = {}
    for section in ("default", "develop"):
        for name, pkg in doc.get(section, {}).items():
            where = f"{source}: {section}.{name}"
            if not isinstance(pkg, dict):
                raise BadInput(f"{where} is not an object", "pass the Pipfile.lock `pipenv lock` wrote")
            if any(k in pkg for k in ("editable", "path", "file", "git")):
                continue
            version = pkg.get("version")
            if not isinstance(version, str) or not version.startswith("=="):
                raise BadInput(f"{where} is not pinned to one version ({_cut(repr(version))})",
                               "run `pipenv lock` again to pin every package")
            name_, version_ = _name_version(name, version[2:].lstrip("="), where)
            hashes = pkg.get("hashes")
            if not isinstance(hashes, list):
                raise BadInput(f"{where} has no hashes", "run `pipenv lock` again to hash every package")
            entry = _entry(name_, version_, [_sha256_of(h, where) for h in hashes], _marker(pkg.get("markers")), where)
            reqs.setdefault(entry.key, entry)
    return list(reqs.values())


def render(reqs: list[LockedRequirement], header: list[str]) -> str:
    """A requirements lock pip installs with --require-hashes: ``header`` as comments, then each pin (no
    marker: only what the interpreter has installed is kept) with its hashes."""
    lines = [f"# {line}".rstrip() for line in header]
    for req in sorted(reqs, key=lambda r: r.key):
        hashes = " \\\n    ".join(f"--hash=sha256:{h}" for h in req.hashes)
        lines.append(f"{req.spec} \\\n    {hashes}")
    return "\n".join(lines) + "\n"


# --- helpers ----------------------------------------------------------------------------------------------


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """(first line number, text) of each requirement, continuations joined and comments dropped."""
    out: list[tuple[int, str]] = []
    buffer, start = "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        if not buffer:
            start = number
        line = _strip_comment(raw)
        if line.endswith("\\"):
            buffer += line[:-1] + " "
            continue
        buffer += line
        if buffer.strip():
            out.append((start, buffer.strip()))
        buffer = ""
    if buffer.strip():
        out.append((start, buffer.strip()))
    return out


def _strip_comment(line: str) -> str:
    if line.lstrip().startswith("#"):
        return ""
    return re.split(r"\s#", line, maxsplit=1)[0].rstrip()


def _requirement_line(line: str, number: int, source: str) -> LockedRequirement:
    where = f"{source}: line {number}"
    hashes = []
    for algo, digest in _HASH_OPT.findall(line):
        if algo.lower() == "sha256":
            hashes.append(_sha256_of(f"sha256:{digest}", where))
    rest = _HASH_OPT.sub(" ", line).strip()
    if re.search(r"(?:^|\s)--", rest):
        raise BadInput(f"{where} has an option after its requirement ({_cut(line)})", "keep only --hash options on a pin")
    spec, _, marker = rest.partition(";")
    spec = spec.strip()
    pin, direct = _PIN.match(spec), _DIRECT.match(spec)
    if pin:
        req = _entry(pin.group(1), pin.group(2), hashes, marker.strip(), where)
    elif direct:
        if not hashes:
            raise BadInput(f"{where} ({direct.group(1)}) has no sha256 hash",
                           "hash every pin (pip-compile --generate-hashes)")
        req = LockedRequirement(direct.group(1), "", hashes, url=direct.group(2), marker=marker.strip())
    else:
        raise BadInput(f"{where} is not pinned to one version ({_cut(spec)})",
                       "a lock pins NAME==VERSION with --hash lines: lock it (pip-compile --generate-hashes), or pass "
                       "a requirements file without hashes to have replay lock it")
    return req


def _entry(name: str, version: str, hashes: list[str], marker: str, where: str) -> LockedRequirement:
    if not hashes:
        raise BadInput(f"{where} ({name}=={version}) has no sha256 hash",
                       "a lock pins every package with hashes: regenerate it with hashes, or pass --relock")
    return LockedRequirement(name, version, list(dict.fromkeys(hashes)), marker=marker)


def _name_version(name: Any, version: Any, where: str) -> tuple[str, str]:
    if not isinstance(name, str) or not re.fullmatch(_NAME, name):
        raise BadInput(f"{where} has no valid package name ({_cut(repr(name))})", "pass the lock file its tool wrote")
    if not isinstance(version, str) or not _VERSION.match(version):
        raise BadInput(f"{where} ({name}) has no valid version ({_cut(repr(version))})", "pass the lock file its tool wrote")
    return name, version


def _sha256_of(value: Any, where: str) -> str:
    if isinstance(value, str) and value.startswith("sha256:") and _SHA256.match(value[7:].lower()):
        return value[7:].lower()
    raise BadInput(f"{where} has a hash that is not sha256:HEX ({_cut(repr(value))})",
                   "replay matches wheels by sha256: regenerate the lock with sha256 hashes")


def _marker(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _cut(text: str, limit: int = 120) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass
class TakenLock:
    """The existing lock a capture takes, as read and checked (``source.take_lock``)."""

    kind: LockKind
    file: str  # as recorded: relative to the project root, else as given
    text: str  # what becomes the capsule's requirements.lock
    reqs: list[LockedRequirement]
    left_out: list[str] = field(default_factory=list)  # lock entries for packages not installed here
