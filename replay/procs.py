"""Following a child process's output without ever leaving the child behind."""

from __future__ import annotations

import subprocess
from collections.abc import Callable


def follow(proc: subprocess.Popen[str], on_line: Callable[[str], None]) -> int:
    """Hand each line of ``proc``'s stdout (newline stripped) to ``on_line``; return its exit status.

    Interrupted by anything (Ctrl-C, SIGTERM/SIGHUP as ``errors.Stopped``, an error in ``on_line``), the child
    is stopped first (terminate, then kill after 10 s) and the exception goes on: it must not outlive us.
    """
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            on_line(line.rstrip("\n"))
        return proc.wait()
    except BaseException:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        raise
