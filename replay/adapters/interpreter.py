"""Ask the training interpreter (not replay's own) what it is and which packages it has: the ``PythonProbe``
port of ``replay.core.ports``."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from replay.core.pyenv import REPLAY_DIST, InstalledPackage, Interpreter, only_required_by
from replay.errors import BadInput

# Runs inside the captured interpreter (stdlib only, Python 3.8+): its own module, so that it is linted and
# unit-tested in-process too; sent as `python -c` text, never imported there.
_PROBE = (Path(__file__).parent / "probe_script.py").read_text()

# pip's own tools come with the image's virtualenv (pip freeze leaves them out too); replay itself is the
# capturing tool, not a dependency of the training.
_EXCLUDED = {"pip", "setuptools", "wheel", "distribute", "replay-capsule"}


def inspect(python: str) -> Interpreter:
    exe = shutil.which(python) if "/" not in python else python
    if not exe or not Path(exe).exists():
        raise BadInput(f"interpreter {python} does not exist", "pass --python PATH to the Python that ran training")
    try:
        proc = subprocess.run([exe, "-c", _PROBE], capture_output=True, text=True, timeout=120, check=False)
    except OSError as exc:
        raise BadInput(f"cannot run interpreter {python} ({exc.strerror})", "pass --python PATH to a Python 3") from None
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise BadInput(f"interpreter {python} failed to report its packages ({last})", "pass --python PATH to a Python 3.8+")
    raw = _probe_answer(proc.stdout)
    if raw is None:
        raise BadInput(f"{python} did not answer like a Python interpreter (it printed no package report)",
                       "pass --python PATH to the Python 3.8+ that ran training")
    packages = [InstalledPackage(**p) for p in raw.pop("packages")]
    has_replay = any(p.key == REPLAY_DIST for p in packages)
    replays = only_required_by(packages, REPLAY_DIST) - {REPLAY_DIST}  # replay's own, no dependency of training
    packages = sorted((p for p in packages if p.key not in _EXCLUDED and p.key not in replays), key=lambda p: p.key)
    return Interpreter(packages=packages, replay_installed=has_replay, left_out=sorted(replays), **raw)


_FIELDS = {"executable": str, "version": str, "implementation": str, "abi": str, "machine": str, "prefix": str,
           "virtualenv": bool}


def _probe_answer(stdout: str) -> dict[str, Any] | None:
    """The probe's report, or None when what ran was not a Python printing it (``/bin/true`` prints nothing)."""
    lines = stdout.strip().splitlines()
    try:
        raw = json.loads(lines[-1]) if lines else None
    except (ValueError, RecursionError):
        return None
    if not isinstance(raw, dict) or set(raw) != {*_FIELDS, "packages"}:
        return None
    if not all(isinstance(raw[k], t) for k, t in _FIELDS.items()) or not isinstance(raw["packages"], list):
        return None
    return raw if all(_package_ok(p) for p in raw["packages"]) else None


_PACKAGE_FIELDS = {"name", "version", "direct_url", "location", "import_roots", "remapped", "entry_points", "requires",
                   "requested"}


def _package_ok(p: Any) -> bool:
    if not (isinstance(p, dict) and set(p) == _PACKAGE_FIELDS):
        return False
    roots, remapped = p["import_roots"], p["remapped"]
    return (isinstance(p["name"], str) and isinstance(p["version"], str)
            and (p["direct_url"] is None or isinstance(p["direct_url"], dict))
            and (p["location"] is None or isinstance(p["location"], str))
            and (p["entry_points"] is None or isinstance(p["entry_points"], str))
            and isinstance(p["requires"], list) and all(isinstance(r, str) for r in p["requires"])
            and isinstance(p["requested"], bool)
            and (roots is None or (isinstance(roots, list) and all(isinstance(r, str) for r in roots)))
            and (remapped is None or (isinstance(remapped, dict)
                                      and all(isinstance(v, str) for v in remapped.values()))))


class InterpreterProbe:
    """The ``PythonProbe`` port: runs the probe above in the given interpreter."""

    def inspect(self, python: str) -> Interpreter:
        return inspect(python)
