"""The output quota (``--max-output``): a watcher that kills the container once its writable mounts (the
declared outputs, bind-mounted from a host folder) hold more than the quota.

The folders are walked every ``CHECK_INTERVAL_S`` without following links, counting every non-folder's
apparent size (a sparse file counts in full: the verifier would hash all of it). A replay can therefore
overshoot the quota by what it writes between two checks (at the disk's write speed, times the interval),
never by more; a last walk after the container has ended catches a command that wrote its bulk and exited
between two checks. A folder the command made unreadable is not counted (as root, nothing is unreadable).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from types import TracebackType

CHECK_INTERVAL_S = 0.25


def tree_bytes(roots: Iterable[str], stop_above: int) -> int:
    """Bytes under ``roots``, counted until they pass ``stop_above`` (then the count so far is returned)."""
    total = 0
    pending = list(roots)
    while pending:
        try:
            with os.scandir(pending.pop()) as entries:
                for entry in entries:
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            pending.append(entry.path)
                        else:
                            total += entry.stat(follow_symlinks=False).st_size
                    except OSError:
                        continue  # gone meanwhile
                    if total > stop_above:
                        return total
        except OSError:
            continue  # gone meanwhile, or unreadable
    return total


class QuotaWatch:
    """While the block runs, ``kill`` is called once the folders hold more than ``quota`` bytes."""

    def __init__(self, roots: list[str], quota: int, kill: Callable[[], None]) -> None:
        self.roots, self.quota, self.kill = roots, quota, kill
        self.exceeded = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True, name="replay-output-quota")

    def __enter__(self) -> QuotaWatch:
        if self.roots:
            self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def check(self) -> bool:
        """Whether the folders hold more than the quota now (and remember it)."""
        if self.roots and tree_bytes(self.roots, self.quota) > self.quota:
            self.exceeded.set()
        return self.exceeded.is_set()

    def _watch(self) -> None:
        while not self._stop.wait(CHECK_INTERVAL_S):
            if self.check():
                self.kill()
                return
