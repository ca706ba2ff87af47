"""Which interpreter a capture takes: said before anything slow when no virtualenv is active and no --python
named one, and a system interpreter refused then (it holds whatever the machine has, seldom the training's)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from replay.core.events import Reporter
from replay.core.pyenv import Interpreter
from replay.errors import BadInput


def announce(interp: Interpreter, named: bool, reporter: Reporter, environ: Mapping[str, str] | None = None) -> None:
    """Say which interpreter is taken when nothing chose it; refuse (exit 2) a system one."""
    environ = os.environ if environ is None else environ
    if named or environ.get("VIRTUAL_ENV") or environ.get("CONDA_PREFIX"):
        return
    count = len(interp.packages) + len(interp.left_out)
    kind = "a virtualenv" if interp.virtualenv else "a system interpreter" if system(interp) else "an environment"
    reporter.stage(f"no virtualenv is active: taking {interp.executable} (Python {interp.version}, {kind}, "
                   f"{count} package{'' if count == 1 else 's'})")
    if system(interp):
        raise BadInput(
            f"no virtualenv is active, and python3 on PATH is the system interpreter {interp.executable} "
            f"({count} packages, not the training's own environment)",
            f"activate the training's virtualenv, or pass --python {interp.executable} to capture that interpreter",
        )


def system(interp: Interpreter) -> bool:
    """Not a virtualenv and not a conda environment: the machine's (or a version manager's) own Python."""
    if interp.virtualenv:
        return False
    prefix = Path(interp.prefix) if interp.prefix else None
    return not (prefix and (prefix / "conda-meta").is_dir() and prefix.parent.name == "envs")
