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
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

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

    def replay(self, *args: str, cwd: Path | None = None, **extra: str) -> subprocess.CompletedProcess[str]:
        return self.run(SYSTEM_PYTHON, "-m", "replay", *args, cwd=cwd, **extra)

    def podman(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.run("podman", *args)

    def give(self, path: Path) -> None:
        """Hand ``path`` (a tree the test made) to this user."""
        subprocess.run(["chown", "-R", f"{self.uid}:{self.gid}", str(path)], check=True)


def create() -> Reviewer:
    name = f"rv{uuid.uuid4().hex[:8]}"
    subprocess.run(["useradd", "--create-home", "--shell", "/bin/sh", name], check=True, capture_output=True)
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
    subprocess.run(["userdel", "--remove", reviewer.name], capture_output=True)
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
