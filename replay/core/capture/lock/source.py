"""Which lock a capture takes: an existing lock file the project keeps, checked against the interpreter, or
none (then pip-compile locks the interpreter's packages, ``replay.core.capture.lock.environment``).

How a lock file is found: ``--requirements FILE`` names it (``uv.lock``, ``poetry.lock`` and ``Pipfile.lock``
by name, a requirements file by its ``--hash`` lines); without it, the first of ``AUTO_FILES`` in the project
root that is a lock is taken. ``--relock`` ignores them all and locks from the interpreter, as before.

The installed interpreter is the truth: every package it has from an index must be in the lock at its
installed version (else ``LockMismatch``, before anything is built); the project's own code and local paths
are left to ``classify()``; lock entries for packages not installed here (other platforms' markers, dev
groups) are left out, and the caller is told which.
"""

from __future__ import annotations

from pathlib import Path

from replay.core.capture.lock import files as lockfiles
from replay.core.capture.lock.environment import classify
from replay.core.capture.lock.files import LockKind, TakenLock
from replay.core.events import Reporter
from replay.core.ports import LockExporter
from replay.core.pyenv import Interpreter, LockedRequirement, normalize
from replay.errors import BadInput, EnvironmentProblem, LockMismatch

AUTO_FILES = ("uv.lock", "poetry.lock", "Pipfile.lock", "requirements.txt")
PIP_COMPILE = "pip-compile"  # the manifest's python.lock_source when replay locked the environment itself
UV_EXPORT = "uv export --frozen --format requirements-txt --no-emit-project --all-extras --all-groups"
# The probe leaves pip's own build tools out of the interpreter's packages; a lock that pins them keeps them.
_TOOLS = {"setuptools", "wheel"}


def take_lock(interp: Interpreter, root: Path, requirements: Path | None, relock: bool,
              exporter: LockExporter | None, reporter: Reporter) -> TakenLock | None:
    """The existing lock this capture takes, checked against ``interp``; None when pip-compile is to lock."""
    found = _find(root, requirements, relock, exporter, reporter)
    if found is None:
        return None
    kind, path, text = found
    shown = _shown(path, root)
    if kind is LockKind.UV:
        if exporter is None:
            raise EnvironmentProblem(f"{shown} is a uv lock, and this replay has no uv exporter",
                                     "pass --relock to lock from the interpreter with pip-compile")
        text = exporter.export_uv(path.parent)
    reqs = lockfiles.parse(kind, text, shown)
    taken = match(interp, root, kind, shown, reqs, text if kind is LockKind.REQUIREMENTS else None)
    if taken.left_out:
        reporter.warn(f"{len(taken.left_out)} entries of {shown} are not installed in the training interpreter and "
                      f"were left out of the image: {', '.join(taken.left_out)}")
    return taken


def match(interp: Interpreter, root: Path, kind: LockKind, shown: str, reqs: list[LockedRequirement],
          verbatim: str | None = None) -> TakenLock:
    """Keep the lock's pin of every installed index package; raise ``LockMismatch`` for those it lacks."""
    sources = classify(interp, root)
    installed: dict[str, tuple[str, str]] = {}
    for pin in sources.pins:
        name, _, version = pin.partition("==")
        installed[normalize(name)] = (name, version)
    for pkg in sources.vcs:  # the lock's pin by hash is the team's intent for a package installed from git
        installed[pkg.key] = (pkg.name, pkg.version)
    everything = {pkg.key for pkg in interp.packages}
    by_key: dict[str, list[LockedRequirement]] = {}
    for req in reqs:
        by_key.setdefault(req.key, []).append(req)

    kept, rows = [], []
    for key, (name, version) in sorted(installed.items()):
        candidates = by_key.get(key, [])
        same = [r for r in candidates if r.url or same_version(r.version, version)]
        if same:
            kept.append(same[0])
        else:
            locked = ", ".join(dict.fromkeys(r.version for r in candidates)) or "not in the lock"
            rows.append((name, locked, version))
    if rows:
        raise LockMismatch(
            f"{shown} does not match the training interpreter: {len(rows)} of its {len(installed)} installed "
            "packages are not locked at their installed version (table below); nothing was built",
            "install what the lock pins (e.g. `uv sync`, `poetry install`, `pip install -r`), update the lock, "
            "or pass --relock to lock from the interpreter instead",
            rows,
        )
    for key in sorted(_TOOLS & by_key.keys() - installed.keys()):
        kept.append(by_key[key][0])
    left_out = [_named(r) for r in reqs if r.key not in everything and r.key not in _TOOLS]
    if verbatim is not None and len(kept) == len(reqs):
        text = verbatim  # the file itself is the lock: nothing to leave out, nothing relocked
    else:
        header = [f"Taken by replay capture from {shown}" + (f" through `{UV_EXPORT}`" if kind is LockKind.UV else "")
                  + ": the pins of the packages installed in the training interpreter, with the lock's hashes."]
        if left_out:
            header.append(f"Left out (not installed there): {', '.join(left_out)}")
        text = lockfiles.render(kept, header)
    kept.sort(key=lambda r: r.key)
    return TakenLock(kind, shown, text, kept, left_out)


def same_version(locked: str, installed: str) -> bool:
    """PEP 440 equality where ``packaging`` is there (1.0 == 1.0.0), else the same text."""
    if locked.lower() == installed.lower():
        return True
    try:
        from packaging.version import InvalidVersion, Version
    except ImportError:  # pragma: no cover - pip-tools brings packaging
        return False
    try:
        return Version(locked) == Version(installed)
    except InvalidVersion:
        return False


def _find(root: Path, requirements: Path | None, relock: bool, exporter: LockExporter | None,
          reporter: Reporter) -> tuple[LockKind, Path, str] | None:
    if requirements is not None:
        text = _read(requirements)
        kind = lockfiles.kind_of(requirements, text)
        if kind is None:
            return None  # a requirements file without hashes: pip-compile locks it
        if relock:
            if kind is LockKind.REQUIREMENTS:
                return None  # pip-compile relocks it, as a requirements file
            raise BadInput(f"--relock cannot relock {requirements.name}: pip-compile relocks requirements files only",
                           f"leave out --relock to take {requirements.name} as the lock, or pass a requirements file")
        return kind, requirements, text
    if relock:
        return None
    for name in AUTO_FILES:
        path = root / name
        if not path.is_file():
            continue
        text = _read(path)
        kind = lockfiles.kind_of(path, text)
        if kind is None:
            continue
        if kind is LockKind.UV and (exporter is None or not exporter.has_uv()):
            reporter.warn(f"{name} found, but uv is not installed: locking from the interpreter with pip-compile "
                          "instead (`pip install uv` to take uv.lock as the lock; --relock to silence this)")
            continue
        return kind, path, text
    return None


def _read(path: Path) -> str:
    if not path.is_file():
        raise BadInput(f"requirements file {path} does not exist", "pass --requirements with an existing file")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise BadInput(f"{path} is not UTF-8 text", "pass the lock file as its tool wrote it") from None
    except OSError as exc:
        raise BadInput(f"cannot read {path} ({exc.strerror})", "pass a readable lock file") from None


def _named(req: LockedRequirement) -> str:
    return f"{req.name} ({req.marker})" if req.marker else req.name


def _shown(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)
