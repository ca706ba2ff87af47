"""The training command run on the capturing machine (``replay capture --run``): the ``CommandRunner`` port."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

from replay.errors import CommandFailed
from replay.procs import follow


class HostCommand:
    """A child process of replay, its output merged and followed line by line; it never outlives replay."""

    def run(self, argv: list[str], cwd: Path, env: dict[str, str], on_line: Callable[[str], None]) -> int:
        try:
            proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    text=True, errors="replace")
        except OSError as exc:
            raise CommandFailed(f"cannot start {argv[0]} ({exc.strerror})", "check the command after --") from None
        return follow(proc, on_line)  # Ctrl-C, SIGTERM/SIGHUP (errors.Stopped): the command is stopped with us
