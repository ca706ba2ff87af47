"""Whether ``replay verify TARGET...`` replays one capsule on its own or runs a batch, and why."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from replay.errors import BadInput


@dataclass(frozen=True)
class VerifyMode:
    batch: bool
    reason: str  # what decided it: "a slurm backend", "3 capsules", "--plan", ...; "one capsule" when single


def choose_mode(capsules: Sequence[object], *, backend: str = "local", remote: bool = False, plan: bool = False,
                html: bool = False, jobs: int | None = None, fail_fast: bool = False,
                keep: bool = False) -> VerifyMode:
    """A batch when the backend is remote, the TARGETs name other than one capsule, or a batch-only option is
    given (--plan, --html, --jobs, --fail-fast); else a single verify. ``keep`` (--keep) takes one capsule
    only: a batch with it is refused."""
    mode = _choose(len(capsules), backend, remote, plan, html, jobs, fail_fast)
    if mode.batch and keep:
        raise BadInput("--keep takes one capsule, not a batch", "verify that capsule on its own with --keep")
    return mode


def _choose(count: int, backend: str, remote: bool, plan: bool, html: bool, jobs: int | None,
            fail_fast: bool) -> VerifyMode:
    if remote:
        return VerifyMode(True, f"the {backend} backend")
    if count != 1:
        return VerifyMode(True, f"{count} capsules")
    for given, flag in ((plan, "--plan"), (html, "--html"), (jobs is not None, "--jobs"), (fail_fast, "--fail-fast")):
        if given:
            return VerifyMode(True, flag)
    return VerifyMode(False, "one capsule")
