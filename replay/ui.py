"""The only rich Consoles: stdout for results and --json, stderr for progress, warnings and errors."""

from __future__ import annotations

import contextlib
import io
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.markup import escape as _markup_escape
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

from replay import jsonio
from replay.display import number as number  # how every view writes a metric
from replay.display import short as short  # and a digest
from replay.textsafe import neutral


def escape(text: str) -> str:
    """Text from elsewhere for a markup string: neutralized (one line, every control character shown as an
    escape: ``replay.textsafe``), then its rich markup escaped. Every capsule or replay string goes through it."""
    return _markup_escape(neutral(text))


class _SafeConsole(Console):
    """A Console that neutralizes every string it renders (newlines kept): whatever a command prints, no
    ESC, CR or backspace from a capsule or a replay's log reaches the terminal to move the cursor, clear the
    screen or repaint the verdict. Rich's own styling is added after this, so colours still work."""

    def render_str(self, text: str, *args: Any, **kwargs: Any) -> Any:
        return super().render_str(neutral(text, keep_newlines=True), *args, **kwargs)


out = _SafeConsole(highlight=False, soft_wrap=False)
err = _SafeConsole(stderr=True, highlight=False)


@contextmanager
def recorded(width: int = 100) -> Iterator[io.StringIO]:
    """While it lasts, ``out`` and ``err`` both write plain text (no colour, no terminal) at a fixed width
    into one buffer, in the order a terminal would show them: the README's samples are rendered this way."""
    global out, err
    buffer = io.StringIO()
    saved = out, err
    plain = {"file": buffer, "width": width, "color_system": None, "force_terminal": False, "highlight": False}
    out, err = _SafeConsole(soft_wrap=False, **plain), _SafeConsole(**plain)  # type: ignore[arg-type]
    try:
        yield buffer
    finally:
        out, err = saved


class QuietPipe:
    """stdout that a closed pipe (``replay verify C | head``) silences: what is left to print is dropped, no
    BrokenPipeError escapes, and the command ends with its own exit code (the verdict's)."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self.pipe_closed = False

    def write(self, text: str) -> int:
        if not self.pipe_closed:
            try:
                return int(self._stream.write(text))
            except BrokenPipeError:
                self._silence()
        return len(text)

    def flush(self) -> None:
        if not self.pipe_closed:
            try:
                self._stream.flush()
            except BrokenPipeError:
                self._silence()

    def _silence(self) -> None:
        """Point the descriptor at /dev/null, so the interpreter's own flush at exit has nowhere to fail."""
        import os

        self.pipe_closed = True
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._stream.fileno())
            os.close(devnull)
        except (OSError, ValueError, AttributeError):
            pass

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def print_json(document: dict[str, Any]) -> None:
    """Machine output: strict JSON on stdout (non-finite floats as "NaN", "Infinity", "-Infinity"), nothing else."""
    sys.stdout.write(jsonio.dumps(document) + "\n")
    sys.stdout.flush()


def error(line: str) -> None:
    # The line may quote a capsule's own text ("[/x]" in a path): never read it as markup.
    err.print(f"[bold red]error:[/] {escape(line)}", markup=True, highlight=False, soft_wrap=True)


def error_table(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """The rows an error carries (e.g. a lock that does not match the interpreter), under its line on stderr."""
    from rich.table import Table

    table = Table(*columns, show_edge=True)
    for row in rows:
        table.add_row(*(escape(cell) for cell in row))
    err.print(table)


def warn(line: str) -> None:
    err.print(f"[yellow]warning:[/] {escape(line)}", soft_wrap=True)


def count(n: int, noun: str) -> str:
    """``1 file``, ``2 files``: a number with its noun, plural when it is not one."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def human_bytes(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"  # pragma: no cover


class _BytesColumn(ProgressColumn):
    """For tasks counted in bytes (``RichReporter.BYTE_TASKS``): done of total, rate, and time left."""

    def render(self, task: Task) -> Text:
        if not task.fields.get("bytes"):
            return Text("")
        done = human_bytes(task.completed)
        total = f" / {human_bytes(task.total)}" if task.total else ""
        speed = task.finished_speed or task.speed
        rate = f"  {human_bytes(speed)}/s" if speed else ""
        left = task.time_remaining
        eta = f"  ETA {int(left) // 60}:{int(left) % 60:02d}" if left is not None and speed else ""
        return Text(f"{done}{total}{rate}{eta}", style="progress.download")


EVENT_LOG_ENV = "REPLAY_EVENT_LOG"


class EventLog:
    """The progress a RichReporter draws, also as JSON lines appended to the file REPLAY_EVENT_LOG names
    (for CI logs and tests, which cannot read a live display): {"event": "stage", "name"} and {"event":
    "progress", "task", "completed", "total"}. A task's progress is written when it starts, when it reaches
    its total, and each time it has moved by a hundredth of its total (or 1 MiB while the total is unknown),
    so a gigabyte's load writes about a hundred lines, not one per chunk."""

    def __init__(self, path: str) -> None:
        self._file: Any = None
        self._last: dict[str, float] = {}
        try:
            self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed by close()
        except OSError as exc:
            warn(f"{EVENT_LOG_ENV}={path} cannot be written ({exc.strerror}): no event log")

    @classmethod
    def from_env(cls) -> EventLog | None:
        import os

        path = os.environ.get(EVENT_LOG_ENV, "")
        return cls(path) if path else None

    def stage(self, name: str) -> None:
        self._last.clear()
        self._write({"event": "stage", "name": name})

    def progress(self, task: str, completed: float, total: float | None) -> None:
        last = self._last.get(task)
        step = total / 100 if total else float(1 << 20)
        if last is not None and completed != total and abs(completed - last) < step:
            return
        self._last[task] = completed
        self._write({"event": "progress", "task": task, "completed": completed, "total": total})

    def _write(self, event: dict[str, Any]) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError, ValueError):
                self._file.write(jsonio.dumps(event, indent=None) + "\n")
                self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
            self._file = None


# Whether a replayed command's own lines were streamed to the terminal in this process.
command_log_shown = False


class RichReporter:
    """Draws the core's progress on stderr: a bar per task, streamed logs dimmed, warnings in yellow.

    Tool output (image builds, debootstrap) is kept out of sight unless --verbose; the training command's
    own output is always streamed.
    """

    def __init__(self, verbose: bool = False, quiet: bool = False) -> None:
        self.verbose = verbose
        self.quiet = quiet
        self.warnings: list[str] = []
        self._progress: Progress | None = None
        self._tasks: dict[str, Any] = {}
        self._last_stage = time.perf_counter()
        self._events = EventLog.from_env()

    # Tasks the core counts in bytes: they get a size, rate and ETA column.
    BYTE_TASKS = frozenset({"packing", "checking the bundle", "loading the image", "pulling the image", "pushing",
                            "downloading wheels"})

    # Tasks whose status names a step (a build's): the elapsed time beside it is the step's own.
    STEP_TASKS = frozenset({"build"})

    def __enter__(self) -> RichReporter:
        if not self.quiet:
            self._progress = Progress(
                SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
                TimeElapsedColumn(), _BytesColumn(), console=err, transient=True,
            )
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()
        if self._events is not None:
            self._events.close()

    def stage(self, name: str) -> None:
        self._tasks.clear()
        if self._events is not None:
            self._events.stage(name)
        if self._progress is not None:
            for task in list(self._progress.tasks):
                self._progress.remove_task(task.id)
            self._progress.console.print(f"[cyan]→[/] {escape(name)}")
            # A spinner with the time spent so far, until the next stage: a long training never looks hung.
            self._tasks[""] = self._progress.add_task(escape(name), total=None)

    def progress(self, task: str, completed: float, total: float | None = None) -> None:
        if self._events is not None:
            self._events.progress(task, completed, total)
        if self._progress is None:
            return
        if task not in self._tasks:
            self._tasks[task] = self._progress.add_task(task, total=total, bytes=task in self.BYTE_TASKS)
        self._progress.update(self._tasks[task], completed=completed, total=total)

    def status(self, task: str, detail: str) -> None:
        if self._progress is None:
            return
        if task not in self._tasks:
            self._tasks[task] = self._progress.add_task(task, total=None, bytes=task in self.BYTE_TASKS)
        description = f"{escape(task)}: {escape(detail)}"
        if task in self.STEP_TASKS:
            # A new step: its own elapsed time from now (the stage's spinner above keeps the whole's).
            shown = next(t for t in self._progress.tasks if t.id == self._tasks[task])
            if shown.description != description:
                self._progress.reset(shown.id, total=shown.total, completed=int(shown.completed),
                                     description=description)
            return
        self._progress.update(self._tasks[task], description=description)

    def log(self, line: str, source: str = "tool") -> None:
        if (source == "command" or self.verbose) and self._progress is not None:
            if source == "command":
                global command_log_shown
                command_log_shown = True  # the error boundary then does not print its tail a second time
            self._progress.console.print(f"[dim]{escape(line)}[/]", markup=True, highlight=False, soft_wrap=True)

    def warn(self, message: str) -> None:
        self.warnings.append(message)
        if self._progress is not None:
            self._progress.console.print(f"[yellow]warning:[/] {escape(message)}", soft_wrap=True)
        elif not self.quiet:
            warn(message)
