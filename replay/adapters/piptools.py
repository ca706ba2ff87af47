"""Locking with pip-tools and filling an offline wheelhouse with pip, both run as subprocesses.

pip-compile takes many seconds even for a handful of pins, so a lock is cached under its input's digest;
wheels are cached per target (ABI and machine) and found again by their sha256, so a second capture of the
same environment touches neither pip-tools nor the network.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from replay.errors import BadInput
from replay.fsutil import atomic_write_text

COMPILE_ARGS = [
    "--allow-unsafe",  # pin setuptools & co. when a package needs them: --require-hashes wants every dep
    "--generate-hashes",
    "--no-emit-find-links",  # local indexes of the capturing machine never leak into the lock
    "--no-emit-index-url",
    "--strip-extras",
    "--quiet",
]
_LINE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\;]+)")
_DIRECT = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)\s*@\s*([^\s\\;]+)")  # name @ https://.../x.whl
_HASH = re.compile(r"--hash=sha256:([0-9a-f]{64})")


@dataclass
class LockedRequirement:
    name: str
    version: str  # "" for a direct reference until its wheel is fetched
    hashes: list[str] = field(default_factory=list)
    url: str = ""  # a direct reference (name @ URL) kept by pip-compile from a --requirements file

    @property
    def key(self) -> str:
        return self.name.lower().replace("_", "-").replace(".", "-")


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


def cache_root() -> Path:
    env = os.environ.get("REPLAY_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "replay"


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


def compile_lock(workdir: Path, requirements_in: str, lock_name: str, *, use_cache: bool = True) -> str:
    """Write ``requirements.in`` into ``workdir`` and lock it there with pip-compile; return the lock text.

    Run in ``workdir`` with relative names, so that the lock's header is the exact command that regenerates
    it from the capsule folder.
    """
    (workdir / "requirements.in").write_text(requirements_in)
    key = hashlib.sha256(
        "\0".join([requirements_in, sys.version, _pip_index_settings(), *COMPILE_ARGS]).encode()
    ).hexdigest()
    cached = cache_root() / "locks" / f"{key}.lock"
    if use_cache and cached.exists():
        text = cached.read_text()
        (workdir / lock_name).write_text(text)
        return text
    cmd = [sys.executable, "-m", "piptools", "compile", *COMPILE_ARGS, f"--output-file={lock_name}", "requirements.in"]
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise BadInput(
            f"cannot lock the environment ({_last_error(proc.stderr)})",
            "check that every package is on your package index, or pass --requirements FILE",
        )
    text = (workdir / lock_name).read_text()
    atomic_write_text(cached, text)
    return text


def fetch_wheels(reqs: list[LockedRequirement], target: Target) -> list[Path]:
    """One cached wheel per requirement, each matching a locked hash; only misses are downloaded."""
    store = cache_root() / "wheels" / target.cache_key
    store.mkdir(parents=True, exist_ok=True)
    index_path = store / "index.json"
    try:
        index: dict[str, str] = json.loads(index_path.read_text())
    except (FileNotFoundError, ValueError):
        index = {}

    def cached(req: LockedRequirement) -> Path | None:
        for digest in req.hashes:
            name = index.get(digest)
            if name and (store / name).exists():
                return store / name
        return None

    missing = [r for r in reqs if cached(r) is None]
    if missing:
        _download(missing, target, store)
        for path in store.glob("*.whl"):
            if path.name not in index.values():
                index[_sha256(path)] = path.name
        atomic_write_text(index_path, json.dumps(index, indent=1, sort_keys=True))
    placed = []
    for req in reqs:
        source = cached(req)
        if source is None:
            raise BadInput(
                f"no wheel of {_spec(req)} matches a locked hash for {target.abi} {target.machine}",
                "the package index serves other files than it locked; re-run capture to relock",
            )
        placed.append(source)
    return placed


def pin_local_wheel(wheel: Path) -> LockedRequirement:
    """A wheel built here (from a local path install), pinned by its own hash."""
    name, version = wheel.name.split("-")[:2]
    return LockedRequirement(name.replace("_", "-"), version, [_sha256(wheel)])


def build_local_wheel(source: Path, python: str, out: Path) -> Path:
    """Build a wheel from a local project folder with the training interpreter's pip."""
    if source.suffix == ".whl" and source.is_file():
        return source
    proc = subprocess.run(
        [python, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out), str(source)],
        capture_output=True, text=True, check=False,
    )
    wheels = sorted(out.glob("*.whl"))
    if proc.returncode != 0 or not wheels:
        raise BadInput(
            f"cannot build a wheel from {source} ({_last_error(proc.stderr)})",
            "install that package from an index, or pass --requirements FILE without it",
        )
    return wheels[-1]


def render_local_pins(reqs: list[LockedRequirement]) -> str:
    if not reqs:
        return ""
    lines = ["", "# Built on the capturing machine from local paths; served from the image's wheelhouse."]
    for req in reqs:
        lines.append(f"{req.name}=={req.version} \\")
        lines.append("    " + " \\\n    ".join(f"--hash=sha256:{h}" for h in req.hashes))
    return "\n".join(lines) + "\n"


def _download(reqs: list[LockedRequirement], target: Target, store: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="replay-dl-") as tmp:
        partial = Path(tmp) / "missing.txt"
        partial.write_text(
            "".join(f"{_spec(r)} " + " ".join(f"--hash=sha256:{h}" for h in r.hashes) + "\n" for r in reqs)
        )
        cmd = [
            sys.executable, "-m", "pip", "download", "--no-deps", "--require-hashes", "--only-binary=:all:",
            "--python-version", target.python, "--implementation", "cp", "--abi", target.abi,
            "-r", str(partial), "-d", str(store), "--quiet",
        ]
        for platform in target.platforms():
            cmd += ["--platform", platform]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise BadInput(
            f"cannot download wheels for the image ({_last_error(proc.stderr)})",
            f"every package needs a wheel for Python {target.python} on linux {target.machine}; "
            "pin a version that has one, or pass --requirements FILE",
        )


def _spec(req: LockedRequirement) -> str:
    return f"{req.name} @ {req.url}" if req.url else f"{req.name}=={req.version}"


def wheel_version(wheel: Path) -> str:
    """The version part of a wheel's file name (name-version-python-abi-platform.whl)."""
    return wheel.name.split("-")[1]


def _pip_index_settings() -> str:
    """What decides which files pip-compile sees, so that a changed index invalidates cached locks."""
    keys = ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS")
    return "\0".join(os.environ.get(k, "") for k in keys)


def _sha256(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _last_error(stderr: str) -> str:
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip() and "is ignored" not in ln]
    errors = [ln for ln in lines if ln.startswith("ERROR") or "error" in ln.lower()]
    text = (errors or lines or ["no output"])[-1]
    return text.removeprefix("ERROR: ")[:240]
