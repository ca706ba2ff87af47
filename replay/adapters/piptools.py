"""Locking with pip-tools and filling an offline wheelhouse with pip, both run as subprocesses.

pip-compile takes many seconds even for a handful of pins, so a lock is cached under its input's digest;
wheels are cached per target (ABI and machine) and found again by their sha256, so a second capture of the
same environment touches neither pip-tools nor the network.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from replay import fsutil

# The lock's data and its pure parsing live in core; re-exported for the callers of this adapter.
from replay.core.pyenv import LockedRequirement as LockedRequirement
from replay.core.pyenv import Target as Target
from replay.core.pyenv import parse_lock as parse_lock
from replay.core.pyenv import pin_local_wheel as pin_local_wheel
from replay.core.pyenv import render_local_pins as render_local_pins
from replay.core.pyenv import wheel_version as wheel_version
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


def cache_root() -> Path:
    return fsutil.cache_root()


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
                f"no wheel of {req.spec} matches a locked hash for {target.abi} {target.machine}",
                "the package index serves other files than it locked; re-run capture to relock",
            )
        placed.append(source)
    return placed


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


def _download(reqs: list[LockedRequirement], target: Target, store: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="replay-dl-") as tmp:
        partial = Path(tmp) / "missing.txt"
        partial.write_text(
            "".join(f"{r.spec} " + " ".join(f"--hash=sha256:{h}" for h in r.hashes) + "\n" for r in reqs)
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


class PipTools:
    """The ``Locker`` port (``replay.core.ports``) through pip-tools and pip; the module's functions do the work."""

    def compile(self, workdir: Path, requirements_in: str, lock_name: str, *, use_cache: bool = True) -> str:
        return compile_lock(workdir, requirements_in, lock_name, use_cache=use_cache)

    def fetch_wheels(self, reqs: list[LockedRequirement], target: Target) -> list[Path]:
        return fetch_wheels(reqs, target)

    def build_wheel(self, source: Path, python: str, out: Path) -> Path:
        return build_local_wheel(source, python, out)
