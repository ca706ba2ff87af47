"""Finding the container engine that answers, and lending Podman's API service for one command.

Podman has no daemon: its Docker-compatible API is served by ``podman system service``, which nothing starts
by itself. When the reviewer has the ``podman`` program but no service runs, replay starts one on a private
socket (a fresh 0700 folder) for the command's duration and stops it by its PID at exit; the service also
gets SIGTERM when replay dies (``PR_SET_PDEATHSIG``), so it never outlives the command.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from replay.errors import EngineUnavailable

DOCKER_SOCKET = "/var/run/docker.sock"
ROOT_PODMAN_SOCKET = "/run/podman/podman.sock"
START_TIMEOUT_S = 20.0
_PR_SET_PDEATHSIG = 1


def choose(kind: str | None) -> str:
    """The base URL of the engine to use: ``kind`` ("docker", "podman") or, when None, the first that answers.

    Docker first (DOCKER_HOST, then its socket), then a Podman service already running (the reviewer's
    rootless socket, root's socket), then a Podman service started for this command.
    """
    if kind in (None, "docker"):
        if os.environ.get("DOCKER_HOST"):
            return os.environ["DOCKER_HOST"]
        if kind == "docker" or answers(DOCKER_SOCKET):
            return f"unix://{DOCKER_SOCKET}"
    for path in podman_sockets():
        if answers(path):
            return f"unix://{path}"
    if shutil.which("podman"):
        return SERVICE.start()
    if kind == "podman":
        raise EngineUnavailable("the podman program is not installed",
                                "install it (apt-get install podman uidmap catatonit); see the README's "
                                "'Verifying without root'", engine="Podman")
    raise EngineUnavailable("neither a Docker engine nor Podman answers", engine="container engine")


def podman_sockets() -> list[str]:
    """Where a running Podman API service listens: CONTAINER_HOST, the user's rootless socket, root's."""
    found = []
    host = os.environ.get("CONTAINER_HOST", "")
    if host.startswith("unix://"):
        found.append(host.removeprefix("unix://"))
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        found.append(os.path.join(runtime, "podman", "podman.sock"))
    if os.geteuid() == 0:
        found.append(ROOT_PODMAN_SOCKET)
    return found


def answers(path: str) -> bool:
    """Something accepts connections on the unix socket at ``path`` (a stale socket file refuses them)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(2.0)
        try:
            sock.connect(path)
        except OSError:
            return False
    return True


class PodmanService:
    """One ``podman system service`` on a private socket, started at most once per process."""

    def __init__(self) -> None:
        self.process: subprocess.Popen[bytes] | None = None
        self.folder: str | None = None
        self.url = ""

    def start(self) -> str:
        if self.process is not None and self.process.poll() is None:
            return self.url
        self.folder = tempfile.mkdtemp(prefix="replay-podman-")  # 0700: only this user reaches the socket
        path = os.path.join(self.folder, "podman.sock")
        self.url = f"unix://{path}"
        log = open(os.path.join(self.folder, "service.log"), "wb")  # noqa: SIM115 - the child keeps it
        with log:
            self.process = subprocess.Popen(
                ["podman", "system", "service", "--time=0", self.url], stdin=subprocess.DEVNULL, stdout=log,
                stderr=log, start_new_session=True,
                preexec_fn=_die_with_parent if threading.current_thread() is threading.main_thread() else None,
            )
        atexit.register(self.stop)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if answers(path):
                return self.url
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        tail = _tail(Path(self.folder) / "service.log")
        self.stop()
        raise EngineUnavailable(f"`podman system service` did not start: {tail or 'no output'}",
                                "run `podman info` to see what Podman lacks", engine="Podman")

    def stop(self) -> None:
        """Stop the service (SIGTERM, then SIGKILL) and remove its folder.

        The signals go to the process group the service leads (its own session, started for it alone): a
        rootless podman re-executes itself inside its user namespace, and that child must stop too."""
        process, self.process = self.process, None
        if process is not None:
            _signal_group(process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=10)
            _signal_group(process.pid, signal.SIGKILL)  # whatever of the group is left
            process.wait()
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None


SERVICE = PodmanService()


def _die_with_parent() -> None:
    """In the child: SIGTERM when replay dies, however it dies (Linux; elsewhere atexit alone).

    The signal follows the thread that started the child, so only a service started by the main thread asks
    for it; one started from a worker thread is stopped at exit alone."""
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _tail(path: Path) -> str:
    with contextlib.suppress(OSError):
        lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
        return lines[-1][:300] if lines else ""
    return ""
