"""``capture --verify``: the capsule just written, replayed once in its own image and compared, as
``replay verify`` would (``replay.core.verify.pipeline.verify``). A capsule that does not reproduce its own
capture is still written, with the result recorded (``outputs.self_check``) and a warning that says which
outputs and metrics differed and why.
"""

from __future__ import annotations

from pathlib import Path

from replay.core.events import Reporter
from replay.core.ports import Engine
from replay.errors import Interrupted, ReplayError
from replay.manifest import SelfCheck

REPRODUCED = ("identical", "equivalent")


def self_check(engine: Engine, capsule: Path, root: Path, reporter: Reporter) -> SelfCheck:
    """Verify ``capsule`` (its replay.json written) from the project ``root``; never raises for a capsule
    that fails to reproduce or to run, only for an interruption."""
    from replay.core.verify.options import ReplayOptions
    from replay.core.verify.pipeline import VerifyRequest, verify

    reporter.stage("replaying the capsule once to check that it reproduces its capture (--verify)")
    try:
        report = verify(VerifyRequest(target=capsule, options=ReplayOptions(cwd=root)), engine, reporter)
    except Interrupted:
        raise
    except ReplayError as exc:
        return SelfCheck(verdict="error", exit_code=exc.exit_code, message=exc.one_line())
    differed = [o.path for o in report.outputs if o.status not in ("identical", "within_tolerance") and not o.ignored]
    differed += [m.name for m in report.metrics if m.status not in ("identical", "within_tolerance")]
    why = [f"{o.path}: {o.explanation.summary()}" for o in report.outputs
           if o.path in differed and o.explanation][:3]
    likely = [f.message for f in report.diagnosis if f.likely][:1]
    return SelfCheck(verdict=str(report.verdict), exit_code=report.exit_code, differed=differed,
                     message="; ".join([*why, *likely]))


def warning(check: SelfCheck) -> str | None:
    """The warning for a capsule that does not reproduce its own capture, or None when it does."""
    if check.verdict in REPRODUCED:
        return None
    if check.verdict == "error":
        return (f"the capsule could not replay its own capture ({check.message}); it is written with that result "
                "recorded: fix the run before sharing it")
    shown = ", ".join(check.differed[:5]) + (f" and {len(check.differed) - 5} more" if len(check.differed) > 5 else "")
    because = f" ({check.message})" if check.message else ""
    return (f"the capsule does not reproduce its own capture: {shown} differed{because}; it is written with that "
            "result recorded: seed the run (--seed, or --run --auto-seed) or declare what may vary (--ignore, "
            "--tolerance) before sharing it")
