"""uv, run as a subprocess: the ``LockExporter`` port (``replay.core.ports``) that turns a uv.lock into
requirements text with hashes, exactly as uv itself exports it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from replay.core.capture.lock.source import UV_EXPORT
from replay.errors import BadInput, EnvironmentProblem

_TIMEOUT_S = 120


def find_uv() -> str | None:
    """uv on PATH, else the one installed beside replay's own interpreter (``pip install uv`` in its venv)."""
    found = shutil.which("uv")
    if found:
        return found
    beside = Path(sys.executable).parent / "uv"
    return str(beside) if beside.is_file() else None


def export_uv(project: Path) -> str:
    uv = find_uv()
    if uv is None:
        raise EnvironmentProblem(f"{project / 'uv.lock'} is a uv lock, but uv is not installed",
                                 "`pip install uv` (or put uv on PATH), or pass --relock to lock from the interpreter")
    # --frozen: export the lock as it is, never re-resolve it (no network, no rewritten uv.lock).
    cmd = [uv, *UV_EXPORT.split()[1:], "--no-header", "--color", "never", "--directory", str(project)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise EnvironmentProblem(f"cannot run uv ({exc})", "check the uv installation, or pass --relock") from None
    if proc.returncode != 0:
        reason = next((ln.strip() for ln in proc.stderr.splitlines() if ln.strip()), "no output")
        raise BadInput(f"uv cannot export {project / 'uv.lock'} ({reason.removeprefix('error: ')[:240]})",
                       f"run `{UV_EXPORT}` in {project} to see why, or pass --relock to lock from the interpreter")
    return proc.stdout


class UvExporter:
    """The ``LockExporter`` port through the uv command line."""

    def export_uv(self, project: Path) -> str:
        return export_uv(project)

    def has_uv(self) -> bool:
        return find_uv() is not None
