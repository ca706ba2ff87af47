"""Locking with pip-tools and filling an offline wheelhouse with pip, both run as subprocesses.

pip-compile takes many seconds even for a handful of pins, so a lock is cached under its input's digest;
wheels are cached per target (ABI and machine) and found again by their sha256, so a second capture of the
same environment touches neither pip-tools nor the network.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from replay import fsutil
from replay.adapters import pipoutput
from replay.core.data.hashing import hash_file
from replay.core.pyenv import (
    LockedRequirement,
    Target,
    normalize,
)
from replay.errors import BadInput
from replay.fsutil import atomic_write_text
from replay.procs import follow

COMPILE_ARGS = [
    "--allow-unsafe",  # pin setuptools & co. when a package needs them: --require-hashes wants every dep
    "--generate-hashes",
    "--no-emit-find-links",  # local indexes of the capturing machine never leak into the lock
    "--no-emit-index-url",
    "--strip-extras",
]
# Verbose, streamed: its lines say which package is being resolved and hashed (the progress line), and its
# failures carry pip's own reason. The lock's header (the regenerating command) leaves -v out.
STREAM_ARGS = ["-v"]
FAILED_LOCK = "failed-lock"  # under the cache root: what reproduces the last failed lock, kept after it
FAILED_DOWNLOAD = "failed-download"

StatusFn = Callable[[str], None]
BytesFn = Callable[[int], None]


def cache_root() -> Path:
    return fsutil.cache_root()


def compile_lock(workdir: Path, requirements_in: str, lock_name: str, *, use_cache: bool = True,
                 on_status: StatusFn | None = None) -> str:
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
    args = [*COMPILE_ARGS, f"--output-file={lock_name}", "requirements.in"]
    cmd = [sys.executable, "-m", "piptools", "compile", *STREAM_ARGS, *args]
    reader = pipoutput.LineReader()

    def on_line(line: str) -> None:
        status = reader.status(line)
        if status and on_status is not None:
            on_status(status)

    code, output = _stream(cmd, workdir, on_line)
    if code != 0:
        raise _lock_failure(output, requirements_in, args)
    text = (workdir / lock_name).read_text()
    atomic_write_text(cached, text)
    return text


def _lock_failure(output: str, requirements_in: str, args: list[str]) -> BadInput:
    """pip's reason and the package it names, with the command that reproduces it from a folder that stays."""
    keep = _keep(FAILED_LOCK, {"requirements.in": requirements_in, "pip-compile.log": output})
    again = f"cd {shlex.quote(str(keep))} && {shlex.join([sys.executable, '-m', 'piptools', 'compile', *args])}"
    failure = pipoutput.compile_failure(output)
    what = f"cannot lock {failure.package}: {failure.reason}" if failure.package \
        else f"cannot lock the environment: {failure.reason}"
    if failure.kind == "no-version":
        todo = "install a version the package index has (check PIP_INDEX_URL, PIP_FIND_LINKS), or pass --requirements FILE"
    elif failure.kind == "conflict":
        todo = "make those pins agree in the training environment (`pip check` lists them), or pass --requirements FILE"
    elif failure.kind == "metadata":
        todo = (f"build a wheel of it here (`python -m pip wheel --no-deps {failure.package or 'NAME'} -w wheels/`) and "
                "install that wheel (replay carries it as a local wheel), or pass --requirements FILE")
    else:
        todo = f"see {keep / 'pip-compile.log'}, or pass --requirements FILE"
    return BadInput(what, f"{todo}; reproduce with: {again}")


def fetch_wheels(reqs: list[LockedRequirement], target: Target, *, on_status: StatusFn | None = None,
                 on_bytes: BytesFn | None = None) -> list[Path]:
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
        _download(missing, target, store, on_status, on_bytes)
        for path in store.glob("*.whl"):
            if path.name not in index.values():
                index[hash_file(path)[1]] = path.name
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
            f"cannot build a wheel from {source} ({pipoutput.plain_error(proc.stderr)})",
            "install that package from an index, or pass --requirements FILE without it",
        )
    return wheels[-1]


def _download(reqs: list[LockedRequirement], target: Target, store: Path, on_status: StatusFn | None = None,
              on_bytes: BytesFn | None = None) -> None:
    lines = "".join(f"{r.spec} " + " ".join(f"--hash=sha256:{h}" for h in r.hashes) + "\n" for r in reqs)
    with tempfile.TemporaryDirectory(prefix="replay-dl-") as tmp:
        partial = Path(tmp) / "missing.txt"
        partial.write_text(lines)
        cmd = [sys.executable, "-m", "pip", "download", *_target_args(target), "--require-hashes",
               "-r", str(partial), "-d", str(store)]
        counter = pipoutput.ByteCounter()

        def on_line(line: str) -> None:
            status = pipoutput.LineReader().status(line)
            if status and on_status is not None:
                on_status(status.replace("resolving", "downloading", 1))
            if counter.feed(line, _saved_size) and on_bytes is not None:
                on_bytes(counter.total)

        code, output = _stream([*cmd, "--progress-bar", "raw"], None, on_line)
    if code != 0:
        raise _download_failure(output, reqs, target, store)


def _target_args(target: Target) -> list[str]:
    args = ["--no-deps", "--only-binary=:all:", "--python-version", target.python, "--implementation", "cp",
            "--abi", target.abi]
    for platform in target.platforms():
        args += ["--platform", platform]
    return args


def _download_failure(output: str, reqs: list[LockedRequirement], target: Target, store: Path) -> BadInput:
    lines = "".join(f"{r.spec} " + " ".join(f"--hash=sha256:{h}" for h in r.hashes) + "\n" for r in reqs)
    keep = _keep(FAILED_DOWNLOAD, {"missing.txt": lines, "pip-download.log": output})
    again = shlex.join([sys.executable, "-m", "pip", "download", *_target_args(target), "--require-hashes",
                        "-r", str(keep / "missing.txt"), "-d", str(keep / "wheels")])
    platform = f"CPython {target.python} on linux {target.machine} (glibc {target.glibc[0]}.{target.glibc[1]})"
    failure = pipoutput.download_failure(output)
    req = next((r for r in reqs if normalize(r.name) == normalize(failure.package)), None) if failure.package else None
    if req is None:
        return BadInput(f"cannot download wheels for the image: {failure.reason}",
                        f"every package needs a wheel for {platform}; pin a version that has one, or pass "
                        f"--requirements FILE; reproduce with: {again}")
    sdist, tags = _skipped(req, target)
    build = (f"build a wheel here (`python -m pip wheel --no-deps {req.spec} -w wheels/`), install that wheel into "
             f"the training environment (`python -m pip install --no-deps --force-reinstall wheels/"
             f"{req.name.replace('-', '_')}-{req.version}-*.whl`; replay then carries it as a local wheel)")
    if tags:
        what = (f"no wheel of {req.name} {req.version} fits the image ({platform}): the index has wheels for "
                f"{', '.join(tags[:4])}{' and more' if len(tags) > 4 else ''}")
        todo = f"pin a version of {req.name} with a wheel for it, or {build}, or pass --requirements FILE"
    elif sdist:
        what = (f"{req.name} {req.version} exists only as a source distribution (no wheel on the index), which the "
                "image cannot compile offline")
        todo = f"{build}, or pass --requirements FILE without it"
    else:
        what = f"no wheel of {req.name} {req.version} for the image ({platform}): {failure.reason}"
        todo = f"pin a version of {req.name} that has a wheel, or {build}, or pass --requirements FILE"
    return BadInput(what, f"{todo}; reproduce with: {again}")


def _skipped(req: LockedRequirement, target: Target) -> tuple[bool, list[str]]:
    """Ask pip (very verbose, this one package) which files it saw and why none fit."""
    with tempfile.TemporaryDirectory(prefix="replay-why-") as tmp:
        cmd = [sys.executable, "-m", "pip", "download", *_target_args(target), "-vvv", "-d", tmp, req.spec]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace", timeout=300, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return False, []
    return pipoutput.skipped_files(proc.stdout + proc.stderr)


def _saved_size(path: str) -> int | None:
    try:
        return Path(path).stat().st_size
    except OSError:
        return None


def _stream(cmd: list[str], cwd: Path | None, on_line: Callable[[str], None]) -> tuple[int, str]:
    """Run ``cmd`` with stdout and stderr merged, handing each line to ``on_line``; its exit code and output.
    Interrupted (Ctrl-C, SIGTERM), the child is stopped before the exception goes on."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            errors="replace", bufsize=1)
    lines: list[str] = []

    def take(line: str) -> None:
        lines.append(line + "\n")
        on_line(line)

    code = follow(proc, take)
    return code, "".join(lines)


def _keep(name: str, files: dict[str, str]) -> Path:
    """A folder under the cache root that outlives the failed capture, holding ``files`` (replaced each time)."""
    keep = cache_root() / name
    keep.mkdir(parents=True, exist_ok=True)
    for file, text in files.items():
        atomic_write_text(keep / file, text)
    return keep


def _pip_index_settings() -> str:
    """What decides which files pip-compile sees, so that a changed index invalidates cached locks."""
    keys = ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS", "PIP_NO_INDEX", "PIP_CONFIG_FILE")
    return "\0".join(os.environ.get(k, "") for k in keys)


class PipTools:
    """The ``Locker`` port (``replay.core.ports``) through pip-tools and pip; the module's functions do the work."""

    def compile(self, workdir: Path, requirements_in: str, lock_name: str, *, use_cache: bool = True,
                on_status: StatusFn | None = None) -> str:
        return compile_lock(workdir, requirements_in, lock_name, use_cache=use_cache, on_status=on_status)

    def fetch_wheels(self, reqs: list[LockedRequirement], target: Target, *, on_status: StatusFn | None = None,
                     on_bytes: BytesFn | None = None) -> list[Path]:
        return fetch_wheels(reqs, target, on_status=on_status, on_bytes=on_bytes)

    def build_wheel(self, source: Path, python: str, out: Path) -> Path:
        return build_local_wheel(source, python, out)
