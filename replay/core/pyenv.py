"""The Python environment as core sees it: the training interpreter's packages, the image's target platform,
and a lock's pinned requirements. Plain data and pure parsing; the adapters that ask a real interpreter,
pip-tools or pip (``replay.adapters.interpreter``, ``replay.adapters.piptools``) fill and consume it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

from replay.core.data.hashing import hash_file

_LINE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\;]+)")
_DIRECT = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)\s*@\s*([^\s\\;]+)")  # name @ https://.../x.whl
_HASH = re.compile(r"--hash=sha256:([0-9a-f]{64})")


def normalize(name: str) -> str:
    """A distribution name as pip compares it (PEP 503, with '.' and '_' alike)."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass
class InstalledPackage:
    name: str
    version: str
    direct_url: dict[str, object] | None = None
    location: str | None = None  # the metadata folder the interpreter found (a .dist-info or .egg-info)
    # Local code only (an editable install, or metadata found outside site-packages): the folders its
    # top-level names are imported from, as the probe read them; None when the probe did not look.
    import_roots: list[str] | None = None
    # Top-level names an editable finder maps to a folder of another name (setuptools' package_dir): no
    # sys.path folder can express them.
    remapped: dict[str, str] | None = None
    entry_points: str | None = None  # local code only: its entry_points.txt as installed (console scripts...)
    requires: list[str] = field(default_factory=list)  # normalized names of what it requires (no extras)
    requested: bool = False  # installed because someone asked for it (pip's REQUESTED), not only as a dependency

    @property
    def key(self) -> str:
        return normalize(self.name)

    @property
    def editable(self) -> bool:
        info = (self.direct_url or {}).get("dir_info")
        return bool(isinstance(info, dict) and info.get("editable"))

    @property
    def vcs(self) -> bool:
        return bool(self.direct_url and "vcs_info" in self.direct_url)

    @property
    def local_path(self) -> Path | None:
        url = str((self.direct_url or {}).get("url", ""))
        # pip writes the path percent-encoded (PEP 610): file:///home/me/my%20project
        return Path(unquote(url[len("file://"):])) if url.startswith("file://") else None


@dataclass
class Interpreter:
    executable: str
    version: str
    implementation: str
    abi: str
    machine: str
    packages: list[InstalledPackage] = field(default_factory=list)
    replay_installed: bool = False  # replay-capsule is there (not among ``packages``: it is not locked)
    prefix: str = ""
    virtualenv: bool = False  # sys.prefix != sys.base_prefix
    left_out: list[str] = field(default_factory=list)  # packages only replay-capsule required: not locked

    @property
    def minor(self) -> str:
        return ".".join(self.version.split(".")[:2])


REPLAY_DIST = "replay-capsule"


def only_required_by(packages: list[InstalledPackage], root: str) -> set[str]:
    """``root`` and the packages only it requires (directly or not): those nothing else installed requires and
    nobody asked for. Empty when ``root`` is not installed."""
    by_key = {p.key: p for p in packages}
    if root not in by_key:
        return set()

    def closure(starts: list[str]) -> set[str]:
        seen: set[str] = set()
        stack = list(starts)
        while stack:
            key = stack.pop()
            if key in by_key and key not in seen:
                seen.add(key)
                stack.extend(by_key[key].requires)
        return seen

    theirs = closure([root])
    kept = [k for k, p in by_key.items() if k != root and (k not in theirs or p.requested)]
    return theirs - closure(kept)


@dataclass(frozen=True)
class Target:
    """The image's Python and platform, which decide which wheels fit."""

    python: str  # "3.11"
    abi: str  # "cp311"
    machine: str  # "x86_64"
    glibc: tuple[int, int]  # the base image's glibc, e.g. (2, 36)

    def platforms(self) -> list[str]:
        major, minor = self.glibc
        tags = [f"manylinux_{major}_{m}_{self.machine}" for m in range(minor, 4, -1)]
        # pip does not expand a manylinux tag to older ones by itself; name the legacy aliases too.
        return tags + [f"manylinux{alias}_{self.machine}" for alias in ("2014", "2010", "1")]

    @property
    def cache_key(self) -> str:
        return f"{self.abi}-{self.machine}"


@dataclass
class LockedRequirement:
    name: str
    version: str  # "" for a direct reference until its wheel is fetched
    hashes: list[str] = field(default_factory=list)
    url: str = ""  # a direct reference (name @ URL) kept by pip-compile from a --requirements file
    marker: str = ""  # an environment marker an existing lock file gave it (``sys_platform == "win32"``)

    @property
    def key(self) -> str:
        return normalize(self.name)

    @property
    def spec(self) -> str:
        return f"{self.name} @ {self.url}" if self.url else f"{self.name}=={self.version}"


def parse_lock(text: str) -> list[LockedRequirement]:
    """The pinned requirements of a pip-compile lock, with their allowed hashes."""
    reqs: list[LockedRequirement] = []
    for line in text.splitlines():
        # A pin or a direct reference starts a line; its hashes follow on indented continuations.
        match = _LINE.match(line)
        direct = None if match else _DIRECT.match(line)
        if match:
            reqs.append(LockedRequirement(match.group(1), match.group(2)))
        elif direct:
            reqs.append(LockedRequirement(direct.group(1), "", url=direct.group(2)))
        if reqs and not line.lstrip().startswith("#"):
            reqs[-1].hashes.extend(_HASH.findall(line))
    return reqs


def pin_local_wheel(wheel: Path) -> LockedRequirement:
    """A wheel built here (from a local path install), pinned by its own hash."""
    name, version = wheel.name.split("-")[:2]
    return LockedRequirement(name.replace("_", "-"), version, [hash_file(wheel)[1]])


def render_local_pins(reqs: list[LockedRequirement]) -> str:
    if not reqs:
        return ""
    lines = ["", "# Built on the capturing machine from local paths; served from the image's wheelhouse."]
    for req in reqs:
        lines.append(f"{req.name}=={req.version} \\")
        lines.append("    " + " \\\n    ".join(f"--hash=sha256:{h}" for h in req.hashes))
    return "\n".join(lines) + "\n"


def wheel_version(wheel: Path) -> str:
    """The version part of a wheel's file name (name-version-python-abi-platform.whl)."""
    return wheel.name.split("-")[1]
