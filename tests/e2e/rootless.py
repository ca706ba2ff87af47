"""An ordinary user for the rootless Podman tests: made by root, removed with every file it owned.

The user gets subordinate uid/gid ranges (useradd allocates them from /etc/login.defs; added when it did
not), its own XDG_RUNTIME_DIR, and runs the replay under test with the system's Python 3.11 reading this
checkout and its virtualenv's packages (copied to the user's home when the user cannot read them here).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
SYSTEM_PYTHON = "/usr/bin/python3"


@dataclass
class Reviewer:
    name: str
    uid: int
    gid: int
    home: Path
    runtime: Path
    pythonpath: str

    def env(self, **extra: str) -> dict[str, str]:
        env = {"HOME": str(self.home), "USER": self.name, "XDG_RUNTIME_DIR": str(self.runtime),
               "PATH": "/usr/local/bin:/usr/bin:/bin", "PYTHONPATH": self.pythonpath,
               "REPLAY_CACHE_DIR": str(self.home / ".cache" / "replay")}
        return {**env, **extra}

    def run(self, *argv: str, cwd: Path | None = None, timeout: float = 900,
            **extra: str) -> subprocess.CompletedProcess[str]:
        """``argv`` as this user (runuser), in ``cwd`` (default: the home folder), with only ``env()``."""
        return subprocess.run(["runuser", "-u", self.name, "--", "env", "-i",
                               *(f"{k}={v}" for k, v in self.env(**extra).items()), *argv],
                              cwd=cwd or self.home, capture_output=True, text=True, timeout=timeout)

    def replay(self, *args: str, cwd: Path | None = None, timeout: float = 900,
               **extra: str) -> subprocess.CompletedProcess[str]:
        return self.run(SYSTEM_PYTHON, "-m", "replay", *args, cwd=cwd, timeout=timeout, **extra)

    def argv(self, *argv: str, **extra: str) -> list[str]:
        """The command line that runs ``argv`` as this user, for a caller that runs it itself."""
        return ["runuser", "-u", self.name, "--", "env", "-i", *(f"{k}={v}" for k, v in self.env(**extra).items()),
                *argv]

    def podman(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.run("podman", *args)

    def give(self, path: Path) -> None:
        """Hand ``path`` (a tree the test made) to this user."""
        subprocess.run(["chown", "-R", f"{self.uid}:{self.gid}", str(path)], check=True)


def create() -> Reviewer:
    name = f"rv{uuid.uuid4().hex[:8]}"
    for attempt in range(10):  # another test session on this machine may hold /etc/passwd's lock a moment
        made = subprocess.run(["useradd", "--create-home", "--shell", "/bin/sh", name], capture_output=True, text=True)
        if made.returncode == 0:
            break
        if attempt == 9 or "lock" not in made.stderr:
            raise RuntimeError(f"useradd {name}: {made.stderr.strip()}")
        time.sleep(1)
    entry = pwd.getpwnam(name)
    for table, flag in (("/etc/subuid", "--add-subuids"), ("/etc/subgid", "--add-subgids")):
        if not any(line.split(":", 1)[0] == name for line in Path(table).read_text().splitlines()):
            start = 200000 + (entry.pw_uid % 1000) * 65536
            subprocess.run(["usermod", flag, f"{start}-{start + 65535}", name], check=True, capture_output=True)
    runtime = Path(f"/run/user/{entry.pw_uid}")
    runtime.mkdir(parents=True, exist_ok=True)
    os.chown(runtime, entry.pw_uid, entry.pw_gid)
    runtime.chmod(0o700)
    home = Path(entry.pw_dir)
    reviewer = Reviewer(name, entry.pw_uid, entry.pw_gid, home, runtime, "")
    reviewer.pythonpath = _pythonpath(reviewer)
    return reviewer


def remove(reviewer: Reviewer) -> None:
    """Podman's pause process (it holds the user namespace) stopped by its PID, then the user and its files."""
    with contextlib.suppress(OSError, ValueError):
        pid = int((reviewer.runtime / "libpod" / "tmp" / "pause.pid").read_text().strip())
        if pwd.getpwuid(os.stat(f"/proc/{pid}").st_uid).pw_name == reviewer.name:
            os.kill(pid, signal.SIGKILL)
    for _ in range(20):  # the service's processes in the user's namespace may take a moment to end
        gone = subprocess.run(["userdel", "--remove", reviewer.name], capture_output=True, text=True)
        if gone.returncode == 0 or "currently used by process" not in gone.stderr:
            break
        time.sleep(0.5)
    shutil.rmtree(reviewer.home, ignore_errors=True)
    shutil.rmtree(reviewer.runtime, ignore_errors=True)


def processes_of(reviewer: Reviewer) -> list[str]:
    """The command lines of this user's processes still running (Podman's pause process left out)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if proc.stat().st_uid == reviewer.uid:
                line = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
                if line and "catatonit -P" not in line:
                    found.append(line)
    return found


def tree_digest(root: Path, leave_out: Path | None = None) -> dict[str, str]:
    """Every file under ``root`` (not under ``leave_out``) -> sha256 of its bytes, mode and owner."""
    out = {}
    for path in sorted(root.rglob("*")):
        if leave_out is not None and (path == leave_out or leave_out in path.parents):
            continue
        st = path.lstat()
        digest = hashlib.sha256(f"{st.st_mode}:{st.st_uid}:{st.st_gid}".encode())
        if path.is_file() and not path.is_symlink():
            digest.update(path.read_bytes())
        out[str(path.relative_to(root))] = digest.hexdigest()
    return out


def _pythonpath(reviewer: Reviewer) -> str:
    """This checkout and its virtualenv's packages, where the user can read them; else copies in its home."""
    if sys.version_info[:2] != (3, 11):
        raise RuntimeError(f"the rootless tests run replay with {SYSTEM_PYTHON} (3.11), not {sys.version}")
    site = next(p for p in sys.path if p.endswith("site-packages") and sys.prefix in p)
    path = f"{REPO}:{site}"
    probe = reviewer.run(SYSTEM_PYTHON, "-c", "import replay.cli, docker", PYTHONPATH=path)
    if probe.returncode == 0:
        return path
    copy = reviewer.home / "replay-under-test"
    shutil.copytree(REPO / "replay", copy / "src" / "replay")
    shutil.copytree(REPO / "templates", copy / "src" / "templates")
    shutil.copytree(site, copy / "site", symlinks=True)
    reviewer.give(copy)
    return f"{copy / 'src'}:{copy / 'site'}"


@contextlib.contextmanager
def reviewer_user() -> Iterator[Reviewer]:
    reviewer = create()
    try:
        yield reviewer
    finally:
        remove(reviewer)


def load_images(reviewer: Reviewer, *refs: str) -> None:
    """``docker save REFS | podman load`` as this user: images from root's Docker into the user's own Podman
    storage (the same IDs), e.g. the offline base image before the user captures."""
    save = subprocess.Popen(["docker", "save", *refs], stdout=subprocess.PIPE)
    load = subprocess.run(["runuser", "-u", reviewer.name, "--", "env", "-i",
                           *(f"{k}={v}" for k, v in reviewer.env().items()), "podman", "load"],
                          stdin=save.stdout, cwd=reviewer.home, capture_output=True, text=True, timeout=900)
    if save.stdout is not None:
        save.stdout.close()
    if save.wait() != 0 or load.returncode != 0:
        raise RuntimeError(f"docker save | podman load as {reviewer.name} failed: {load.stderr[-500:]}")


def entries(folder: Path) -> list[str]:
    """What is in ``folder`` (a user's TMPDIR after a command: replay leaves nothing there)."""
    return sorted(p.name for p in folder.iterdir())


def gone(reviewer: Reviewer, tries: int = 20) -> bool:
    """After ``remove``: whether the user is gone from /etc/passwd, retrying ``userdel`` (it fails while another
    session holds the passwd lock, or for a moment after the user's last process ended)."""
    import time

    for _ in range(tries):
        try:
            pwd.getpwnam(reviewer.name)
        except KeyError:
            return True
        subprocess.run(["userdel", reviewer.name], capture_output=True)
        time.sleep(0.5)
    return False


@contextlib.contextmanager
def podman_service(reviewer: Reviewer) -> Iterator[str]:
    """The reviewer's own ``podman system service`` on its rootless socket (where replay looks first), for a
    module's tests: started once, stopped by its process group (runuser and the podman it re-executes)."""
    sock = reviewer.runtime / "podman" / "podman.sock"
    sock.parent.mkdir(exist_ok=True)
    os.chown(sock.parent, reviewer.uid, reviewer.gid)
    log = reviewer.runtime / "service.log"
    with log.open("wb") as err:
        proc = subprocess.Popen(reviewer.argv("podman", "system", "service", "--time=0", f"unix://{sock}"),
                                cwd=reviewer.home, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=err, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not _answers(sock):
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = log.read_text(errors="replace")[-500:]
                raise RuntimeError(f"the reviewer's podman service did not start (status {proc.poll()}): {tail}")
            time.sleep(0.1)
        yield f"unix://{sock}"
    finally:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)


def load_image(reviewer: Reviewer, image_id: str) -> None:
    """Docker's image ``image_id`` into the reviewer's Podman storage (the same ID there)."""
    if reviewer.podman("image", "exists", image_id).returncode == 0:
        return
    save = subprocess.Popen(["docker", "save", image_id], stdout=subprocess.PIPE)
    assert save.stdout is not None
    env = [f"{k}={v}" for k, v in reviewer.env().items()]
    loaded = subprocess.run(["runuser", "-u", reviewer.name, "--", "env", "-i", *env, "podman", "load", "--quiet"],
                            cwd=reviewer.home, stdin=save.stdout, capture_output=True, text=True, timeout=900)
    save.stdout.close()
    assert save.wait() == 0 and loaded.returncode == 0, loaded.stderr


def _answers(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        try:
            sock.connect(str(path))
        except OSError:
            return False
    return True


# --- the engine a probe runs against: Docker as root, or rootless Podman as the reviewer ---------------------


@dataclass
class Verifier:
    """Who verifies, on which engine: ``docker`` (root, the normal engine) or ``podman-rootless`` (the
    reviewer, through its own Podman service). Capsules are captured on Docker and handed over (``hand``)."""

    name: str
    uid: int
    gid: int
    pid1: tuple[str, ...]  # the init the engine runs as PID 1 (as /proc/1/comm names it)
    engine: Any  # the session's DockerEngine (captures, the Docker side's containers and volumes)
    reviewer: Reviewer | None = None
    folders: Path | None = None

    @property
    def rootless(self) -> bool:
        return self.reviewer is not None

    @property
    def unenforced_limits(self) -> bool:
        """Whether this engine cannot enforce run limits (rootless Podman on a cgroup v1 host)."""
        return self.rootless and not Path("/sys/fs/cgroup/cgroup.controllers").exists()

    def folder(self, name: str) -> Path:
        """A fresh folder this verifier can reach (a reviewer cannot traverse root's temporary folders)."""
        assert self.folders is not None
        path = self.folders / f"{name}-{uuid.uuid4().hex[:6]}"
        path.mkdir(parents=True)
        return path

    def hand(self, path: Path, image_id: str = "") -> None:
        """``path`` (a tree the test made) and the image ``image_id`` (where Docker has it) to the verifier."""
        if self.reviewer is None:
            return
        self.reviewer.give(path)
        if image_id and subprocess.run(["docker", "image", "inspect", image_id], capture_output=True).returncode == 0:
            load_image(self.reviewer, image_id)

    def command(self, *args: str, **env: str) -> tuple[list[str], dict[str, str]]:
        """``replay ARGS`` as this verifier: the command line and its environment."""
        from tests.e2e.conftest import clean_env

        if self.reviewer is None:
            return [sys.executable, "-m", "replay", *args], clean_env(**env)
        return self.reviewer.argv(SYSTEM_PYTHON, "-m", "replay", *args, REPLAY_ENGINE="podman", **env), {}

    def replay(self, cwd: Path, *args: str, timeout: float = 600, **env: str) -> Any:
        from tests.e2e.conftest import Result

        argv, environ = self.command(*args, **env)
        proc = subprocess.run(argv, cwd=cwd, env=environ or None, capture_output=True, text=True, timeout=timeout)
        return Result(proc.returncode, proc.stdout, proc.stderr)

    def containers(self, label: str) -> list[str]:
        if self.reviewer is None:
            return [c["Id"] for c in self.engine.api.containers(all=True, filters={"label": label})]
        return self.reviewer.podman("ps", "--all", "--quiet", "--filter", f"label={label}").stdout.split()

    def images(self) -> set[str]:
        """The reviewer's Podman images (on Docker, shared with other sessions, use its load events instead)."""
        assert self.reviewer is not None
        return set(self.reviewer.podman("images", "--all", "--quiet", "--no-trunc").stdout.split())

    def trust_registry(self, registry: str) -> None:
        """A registry on 127.0.0.1 speaks plain HTTP: the reviewer says so in its own Podman configuration
        (Docker's engine trusts 127.0.0.0/8 already)."""
        if self.reviewer is None:
            return
        conf = self.reviewer.home / ".config" / "containers"
        conf.mkdir(parents=True, exist_ok=True)
        (conf / "registries.conf").write_text(f'[[registry]]\nlocation = "{registry}"\ninsecure = true\n')
        self.reviewer.give(self.reviewer.home / ".config")

    def volumes(self) -> set[str]:
        if self.reviewer is None:
            return {v["Name"] for v in self.engine.api.volumes().get("Volumes") or []}
        return set(self.reviewer.podman("volume", "ls", "--quiet").stdout.split())


@contextlib.contextmanager
def verifier(kind: str, engine: Any, folders: Path) -> Iterator[Verifier]:
    """A ``Verifier`` of ``kind``; for ``podman-rootless`` a fresh reviewer whose Podman service runs for the
    whole block (replay finds it on the reviewer's rootless socket) and who is removed after it."""
    if kind == "docker":
        yield Verifier("docker", os.geteuid(), os.getegid(), ("docker-init", "tini"), engine, folders=folders)
        return
    with reviewer_user() as reviewer, podman_service(reviewer):
        yield Verifier(kind, reviewer.uid, reviewer.gid, ("podman-init", "catatonit"), engine, reviewer,
                       reviewer.home / "work")


def require() -> None:
    """Skip (fail under CI) where the rootless tests cannot run: they need root, podman and uidmap."""
    import pytest

    if os.geteuid() != 0 or not shutil.which("podman") or not shutil.which("newuidmap"):
        message = "the rootless Podman tests run as root with podman and uidmap installed (`make podman`)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
