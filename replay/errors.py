"""Every failure replay reports on purpose, each with its documented exit code and a hint.

The CLI catches ``ReplayError`` at one boundary, prints ``message`` and ``hint`` on one line to stderr and
exits with ``exit_code``. Nothing here imports the rest of the package.
"""

from __future__ import annotations

# Documented exit codes (README "Exit codes"; `replay --help`).
EXIT_OK = 0
EXIT_DIVERGED = 1
EXIT_BAD_INPUT = 2
EXIT_ENVIRONMENT = 3
EXIT_COMMAND_FAILED = 4
EXIT_SIGHUP = 129  # 128 + SIGHUP: the terminal went away
EXIT_INTERRUPTED = 130  # 128 + SIGINT: Ctrl-C
EXIT_SIGTERM = 143  # 128 + SIGTERM: asked to stop (kill, a CI job cancelled, systemd)

_SIGNAL_NAMES = {1: "SIGHUP", 2: "SIGINT", 15: "SIGTERM"}


class ReplayError(Exception):
    """Base of every deliberate failure: a message, what to do about it, and an exit code."""

    exit_code = EXIT_BAD_INPUT

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def one_line(self) -> str:
        text = self.message.rstrip(".")
        return f"{text}: {self.hint}" if self.hint else text


class BadInput(ReplayError):
    """The user asked for something that cannot be done as asked (exit 2)."""

    exit_code = EXIT_BAD_INPUT


class ManifestError(BadInput):
    """A replay.json that is missing, corrupt, or of an unknown schema version (exit 2)."""


class UnsafeCapsule(BadInput):
    """A capsule entry that is a link, FIFO, socket or device, or not the file its manifest records (exit 2)."""

    def __init__(self, path: str, what: str) -> None:
        super().__init__(
            f"the capsule's {path} is {what}; nothing was run",
            "a capsule holds only the plain files capture wrote: ask its author for a fresh copy",
        )
        self.path = path


class DataUnreadable(BadInput):
    """Data that this user can read but the container's user cannot (exit 2)."""


class DataMismatch(BadInput):
    """The data on this machine is not the data that was captured (exit 2)."""

    def __init__(self, message: str, hint: str, problems: list[dict[str, object]]) -> None:
        super().__init__(message, hint)
        self.problems = problems


class LockMismatch(BadInput):
    """An existing lock file that does not pin what the interpreter has installed (exit 2); ``rows`` are
    (package, locked version, installed version), rendered as a table under the error line."""

    columns = ("package", "locked", "installed")

    def __init__(self, message: str, hint: str, rows: list[tuple[str, str, str]]) -> None:
        super().__init__(message, hint)
        self.rows = rows


class EnvironmentProblem(ReplayError):
    """This machine cannot do the job: no engine, no image, no base, no tool (exit 3)."""

    exit_code = EXIT_ENVIRONMENT


class EngineUnavailable(EnvironmentProblem):
    def __init__(self, detail: str = "", hint: str | None = None, engine: str = "Docker engine") -> None:
        super().__init__(
            f"no {engine} answers" + (f" ({detail})" if detail else ""),
            hint or "start one (`sudo dockerd &`, or `make engine` in a replay checkout) or set DOCKER_HOST; "
            "without root, install Podman (see the README's 'Verifying without root')",
        )


class ImageProblem(EnvironmentProblem):
    """The capsule's image is missing, or another image sits under its tag (exit 3)."""


class CommandFailed(ReplayError):
    """The training command itself failed: non-zero exit, killed for memory, or timed out (exit 4)."""

    exit_code = EXIT_COMMAND_FAILED

    def __init__(self, message: str, hint: str = "", log_tail: str = "", status: int | None = None) -> None:
        super().__init__(message, hint)
        self.log_tail = log_tail
        self.status = status


class Interrupted(ReplayError):
    """Stopped by a signal (SIGINT, SIGTERM, SIGHUP) after cleaning up; exit 128 + the signal's number."""

    exit_code = EXIT_INTERRUPTED

    def __init__(self, signum: int = 2) -> None:
        name = _SIGNAL_NAMES.get(signum, f"signal {signum}")
        super().__init__(f"interrupted ({name})" if signum != 2 else "interrupted",
                         "nothing was kept; run the command again to start over")
        self.signum = signum
        self.exit_code = 128 + signum


class Stopped(BaseException):  # noqa: N818 - it is a signal, not an error
    """Raised by the CLI's SIGTERM and SIGHUP handlers in the main thread. A BaseException, as
    KeyboardInterrupt is, so that no ``except Exception`` swallows it and every ``finally`` (container
    removal, temporary folders) runs on the way out; the boundary turns it into ``Interrupted``."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum
