"""The ports core owns: what it needs from a container engine, a batch backend, and the capturing machine's
tools (source control, the training interpreter, the locker, the root-filesystem builder), as plain data and
protocols. Adapters implement them (``replay.adapters.*``, the local backend) and ``replay.factory`` chooses
which; core imports only this module, never a concrete adapter.

Nothing here speaks Docker syntax: memory is bytes, mounts and tmpfs are data, and the adapter turns them
into whatever its engine takes.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol

from replay.core.limits import RunLimits

if TYPE_CHECKING:
    from replay.core.events import Reporter
    from replay.core.pyenv import Interpreter, LockedRequirement, Target
    from replay.manifest import GpuInfo

# --- containers ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Mount:
    source: str  # absolute host path; must exist (a missing source is an error, never created)
    target: str  # absolute path inside the container
    read_only: bool = True


@dataclass(frozen=True)
class Tmpfs:
    target: str
    size_bytes: int = 1 << 30
    exec: bool = True  # training code may run from /tmp (e.g. a compiled extension); never setuid
    owner: tuple[int, int] | None = None  # uid, gid of its top folder; None: the engine's default (root, 1777)


@dataclass(frozen=True)
class ScratchTree:
    """The image's folder ``path`` (the working tree) replayed as a throw-away, size-limited copy: the command
    may write anywhere under it, as it did on the host; what is mounted under it (data, declared outputs)
    stays what it is. Nothing written there reaches the host or outlives the container; the files written
    outside those mounts are named in ``RunResult.written``."""

    path: str
    size_bytes: int = 1 << 30


@dataclass
class RunSpec:
    """One replay of a command, as the engine is to run it: sandboxed by default."""

    image: str
    argv: list[str]
    workdir: str
    env: dict[str, str] = field(default_factory=dict)
    mounts: list[Mount] = field(default_factory=list)
    tmpfs: list[Tmpfs] = field(default_factory=lambda: [Tmpfs("/tmp")])
    user: str = "10001:10001"
    network: bool = False
    read_only_root: bool = True
    limits: RunLimits = field(default_factory=RunLimits)
    labels: dict[str, str] = field(default_factory=dict)
    hostname: str | None = None  # None: the engine's default (Docker: the container's short ID)
    cpuset: str | None = None  # CPUs the command may run on, e.g. "0" or "0-3" (what sched_getaffinity sees)
    scratch_tree: ScratchTree | None = None  # None: the image's tree stays on the read-only root


@dataclass
class RunResult:
    exit_code: int
    duration_s: float
    start_s: float = 0.0  # time from create to running, the engine's own overhead
    timed_out: bool = False
    oom_killed: bool = False
    output_exceeded: int | None = None  # the output quota (bytes) the command's outputs went past, if they did
    log_tail: str = ""
    # Limits the engine could not enforce on this run (rootless Podman on cgroup v1): said, never hidden.
    unenforced: list[str] = field(default_factory=list)
    # Files the command created or changed under the scratch tree outside its mounts (relative paths, the
    # first 1000 of them) and how many there were; None when no scratch tree was watched.
    written: list[str] = field(default_factory=list)
    written_count: int | None = None


@dataclass
class ImageRecord:
    id: str
    tags: list[str]
    repo_digests: list[str]
    size: int
    labels: dict[str, str]
    parent: str = ""  # the image it was built on, where the engine records one (the classic builder)
    # Folders the image's config declares as VOLUMEs: each would get an anonymous volume, writable and on the
    # host's disk whatever the read-only root, so verify refuses such an image.
    volumes: list[str] = field(default_factory=list)


class Engine(Protocol):
    """A container engine: images (look up, build, save, load, push, pull) and sandboxed runs."""

    def version(self) -> str:
        """The engine's version, recorded with the host facts."""

    def name(self) -> str:
        """Which engine this is ("docker", "podman", "podman (rootless)"), recorded with the host facts."""
    def host_gpus(self) -> list[GpuInfo]:
        """The GPUs of the machine this engine runs containers on, recorded with the host facts (a ``GpuProbe``
        answers); none when they cannot be listed. Never raises, needs no running engine."""

    def image(self, ref: str) -> ImageRecord | None:
        """The image under ``ref`` (tag or ID), or None when the engine does not have it."""

    def build(self, context: IO[bytes], tag: str | None, on_line: Callable[[str], None],
              on_step: Callable[[int, int, str], None] | None = None, no_cache: bool = False) -> str:
        """Build from a tar build context, offline; return the image ID. ``on_step(n, count, instruction)`` hears
        each step as it starts (the instruction one line, neutralized and cut short: safe to show)."""

    def tag(self, image_id: str, repository: str, tag: str) -> None: ...

    def remove_image(self, ref: str) -> None: ...

    def labelled_images(self, key: str) -> list[ImageRecord]:
        """Every image carrying the label ``key`` (any value), untagged and intermediate ones included."""

    def remove_unused_image(self, image_id: str) -> str | None:
        """Remove the image and its tags only when no container uses it and no image is built on it, never
        by force; None when it is gone, else why the engine kept it."""

    def import_rootfs(self, tarball: Any, repository: str, tag: str, changes: list[str]) -> str: ...

    def save(self, ref: str) -> Iterable[bytes]:
        """The image as the engine's save stream (not byte-deterministic: hash its members, not the tar)."""

    def load(self, archive: Iterable[bytes], on_bytes: Callable[[int], None] | None = None) -> list[str]:
        """Load a docker-archive stream (streamed, never held whole); return the IDs of the images loaded.
        ``on_bytes`` hears how many bytes of ``archive`` the engine has been fed so far."""

    def free_bytes(self) -> int | None:
        """Free space where the engine stores images, or None when it cannot be known from here."""

    def push(self, ref: str, on_bytes: Callable[[int, int], None] | None = None) -> str:
        """Push the image tagged ``ref`` to its registry (credentials from the Docker config); return its
        registry digest (``sha256:...``)."""

    def pull(self, ref: str, on_bytes: Callable[[int, int | None], None] | None = None) -> ImageRecord:
        """Pull ``ref`` (``REPO:TAG`` or ``REPO@sha256:DIGEST``) from its registry. ``on_bytes(done, total)``
        hears the bytes downloaded so far over all layers; ``total`` is None until every layer's size is known."""

    def read_file(self, image: str, path: str, max_bytes: int) -> bytes | None:
        """The regular file at ``path`` in ``image`` (no container is started), None when there is none;
        refused when it is larger than ``max_bytes`` or not a regular file."""

    def probe(self, image: str, argv: list[str]) -> str:
        """Run a short command in ``image`` with no network and return its stdout."""

    def run(self, spec: RunSpec, on_line: Callable[[str], None], cancel: threading.Event | None = None) -> RunResult:
        """Run to completion, streaming output lines; always leaves no container behind. ``cancel`` set (from
        another thread) kills the container, which is removed, and ``Interrupted`` is raised."""


@dataclass(frozen=True)
class ImageSource:
    """How a capsule's image is brought into an engine that lacks it (a bundle loads it, a registry pulls it):
    ``step`` names the time it took in a verify's timings ("load", "pull"); ``fetch`` does it, telling the
    reporter its bytes."""

    step: str
    fetch: Callable[[Engine, Reporter], None]


# --- batch backends ------------------------------------------------------------------------------------


class JobState(enum.StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"  # the task ran to its end and wrote a result (whatever the verdicts in it)
    FAILED = "failed"  # the task itself failed: no result
    CANCELLED = "cancelled"
    TIMEOUT = "timeout"
    PREEMPTED = "preempted"

    @property
    def final(self) -> bool:
        return self not in (JobState.PENDING, JobState.RUNNING)


@dataclass
class JobStatus:
    state: JobState
    node: str = ""  # where it runs or ran (a Slurm node name; the local host's name)
    detail: str = ""  # the backend's own word for it (Slurm's state and reason), for error messages


@dataclass
class TaskSpec:
    """One unit of batch work: the backend runs ``payload`` through ``replay.core.batch.task.run_task`` (in this
    process, or as ``python -m replay task`` on a cluster node) and hands back what it returned."""

    id: str
    payload: dict[str, Any]


class JobHandle(Protocol):
    @property
    def id(self) -> str: ...

    def status(self) -> JobStatus: ...

    def result(self) -> dict[str, Any] | None:
        """What the task returned, once its state is DONE; None before, or when it failed."""

    def cancel(self) -> None: ...


class Backend(Protocol):
    """Where a batch's tasks run: submit them all, then poll their handles until every one is final."""

    name: str
    # True when tasks run on other machines with their own engines (Slurm nodes): those check the images,
    # the submitter's engine is not asked.
    remote: bool

    def describe(self) -> str:
        """What was submitted, for messages: "slurm job 41", or "" when there is nothing to name."""

    def submit(self, tasks: list[TaskSpec], jobs: int) -> list[JobHandle]:
        """Start ``tasks``, at most ``jobs`` at a time; one handle per task, in order."""

    def close(self) -> None:
        """Cancel what still runs and release what the backend holds (threads, a Slurm array)."""


# --- the capturing machine's tools --------------------------------------------------------------------------


@dataclass
class GitInfo:
    toplevel: Path
    commit: str | None
    branch: str | None
    remote: str | None
    dirty: bool
    patch: bytes = b""
    files: list[str] = field(default_factory=list)  # what the snapshot holds, relative to toplevel


LeaveOut = Callable[[list[str], list[str]], Collection[str]]


class SourceControl(Protocol):
    def toplevel(self, path: Path) -> Path | None:
        """The work tree's top folder when ``path`` is in one, else None."""

    def inspect(self, path: Path, leave_out: LeaveOut | None = None) -> GitInfo | None:
        """Commit, branch, remote, uncommitted patch and the files a snapshot holds; None outside a work tree.
        ``leave_out(files, untracked)`` names paths (relative files or folders) that neither the files nor the
        patch hold; it may raise to refuse the tree."""


class PythonProbe(Protocol):
    def inspect(self, python: str) -> Interpreter:
        """What the interpreter ``python`` (a name on PATH or a path) is and which packages it imports."""


class Locker(Protocol):
    def compile(self, workdir: Path, requirements_in: str, lock_name: str, *, use_cache: bool = True,
                on_status: Callable[[str], None] | None = None) -> str:
        """Lock ``requirements_in`` with hashes into ``workdir``/``lock_name``; return the lock's text.
        ``on_status`` hears what is being done now ("resolving numpy", "hashing scipy")."""

    def fetch_wheels(self, reqs: list[LockedRequirement], target: Target, *,
                     on_status: Callable[[str], None] | None = None,
                     on_bytes: Callable[[int], None] | None = None) -> list[Path]:
        """One wheel per requirement for ``target``, each matching a locked hash; ``on_bytes`` hears the bytes
        downloaded so far."""

    def build_wheel(self, source: Path, python: str, out: Path) -> Path:
        """A wheel built from a local project folder (or the wheel itself) with ``python``'s pip, in ``out``."""


class LockExporter(Protocol):
    """Tools that turn another tool's lock into requirements text with hashes (``uv export`` of a uv.lock)."""

    def export_uv(self, project: Path) -> str:
        """``uv export --format requirements-txt --no-emit-project`` of ``project``/uv.lock, as it is (frozen);
        ``EnvironmentProblem`` when uv is not installed, ``BadInput`` when uv refuses the lock."""

    def has_uv(self) -> bool:
        """Whether uv can be run here (on PATH, or beside replay's own interpreter)."""


class CommandRunner(Protocol):
    """Runs the training command on the capturing machine (``replay capture --run``)."""

    def run(self, argv: list[str], cwd: Path, env: dict[str, str], on_line: Callable[[str], None]) -> int:
        """Run ``argv`` in ``cwd`` with exactly ``env``, stdout and stderr merged line by line into ``on_line``;
        return its exit status. ``CommandFailed`` when it cannot start. Interrupted by anything (Ctrl-C,
        ``errors.Stopped``, an error in ``on_line``), the command is stopped first: it never outlives us."""


class GpuProbe(Protocol):
    """The machine's GPUs, for the host facts recorded at capture and at verify (through ``Engine.host_gpus``)."""

    def gpus(self) -> list[GpuInfo]:
        """The GPUs seen here; none when the tool that lists them is missing, fails or hangs (never raises)."""


class SignatureTool(Protocol):
    """SSH signatures over bytes in a namespace (``ssh-keygen -Y``, the scheme git uses)."""

    def check_installed(self) -> None:
        """``EnvironmentProblem`` when the tool cannot be run here."""

    def sign(self, key: Path, data: bytes, namespace: str) -> bytes:
        """The armoured signature of ``data`` by the private ``key``; ``BadInput`` when the key cannot sign."""

    def principals(self, signature: bytes, allowed_signers: Path) -> list[str]:
        """The principals of ``allowed_signers`` whose key made ``signature`` (not yet checked against any data);
        none when it is by no key listed there."""

    def verifies(self, data: bytes, signature: bytes, allowed_signers: Path, principal: str, namespace: str) -> bool:
        """Whether ``signature`` is ``principal``'s valid signature of ``data`` in ``namespace``."""


class RootfsBuilder(Protocol):
    def check_tools(self) -> None: ...

    def apt_mirror(self) -> str: ...

    def build_rootfs(self, target: Path, suite: str, mirror: str, on_line: Callable[[str], None]) -> None: ...

    def pack_rootfs(self, source: Path, tarball: Path) -> None: ...


class SystemLibraries(Protocol):
    """The capturing machine's own system packages (a Debian host: its dpkg database)."""

    def provider(self, library: str) -> str | None:
        """The Debian package that provides the shared library ``library`` (a soname such as ``libgomp.so.1``)
        on this machine, or None when none does (or the machine has no dpkg)."""


@dataclass(frozen=True)
class Toolchain:
    """The capturing machine's tools, as ``replay.factory.toolchain()`` picks them."""

    vcs: SourceControl
    python: PythonProbe
    locker: Locker
    runner: CommandRunner  # the training command, for --run
    exporter: LockExporter | None = None  # None: no tool for other locks (a uv.lock is then not taken)
    system: SystemLibraries | None = None  # None: missing system libraries are refused, never looked up
