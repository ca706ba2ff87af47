"""A Debian root filesystem with Python, made by debootstrap from the host's apt mirror: no registry needed."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tarfile
from collections.abc import Callable
from pathlib import Path

from replay.errors import EnvironmentProblem

PACKAGES = ["python3", "python3-venv", "ca-certificates"]
FALLBACK_MIRROR = "http://deb.debian.org/debian"
# Trimmed from the image: caches and docs nobody reads inside a capsule.
TRIM = ["var/cache/apt/archives", "var/lib/apt/lists", "usr/share/doc", "usr/share/man", "usr/share/info"]


def apt_mirror(root: Path = Path("/")) -> str:
    """The Debian mirror that apt's own sources name (deb822 .sources first, then sources.list)."""
    candidates: list[str] = []
    sources_d = root / "etc/apt/sources.list.d"
    for path in sorted(sources_d.glob("*.sources")) if sources_d.is_dir() else []:
        for stanza in path.read_text(errors="replace").split("\n\n"):
            fields = dict(
                (k.strip().lower(), v.strip()) for k, _, v in
                (ln.partition(":") for ln in stanza.splitlines() if ":" in ln and not ln.startswith("#"))
            )
            suites = fields.get("suites", "")
            if "deb" in fields.get("types", "").split() and "security" not in suites:
                candidates += [u for u in fields.get("uris", "").split() if "debian" in u]
    listing = root / "etc/apt/sources.list"
    if listing.exists():
        for line in listing.read_text(errors="replace").splitlines():
            match = re.match(r"^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)", line.strip())
            if match and "security" not in match.group(2) and "debian" in match.group(1):
                candidates.append(match.group(1))
    plain = [c for c in candidates if c.startswith("http://")]
    return (plain or candidates or [FALLBACK_MIRROR])[0].rstrip("/")


def check_tools() -> str:
    exe = shutil.which("debootstrap") or ("/usr/sbin/debootstrap" if Path("/usr/sbin/debootstrap").exists() else None)
    if not exe:
        raise EnvironmentProblem("debootstrap is not installed", "apt-get install -y debootstrap")
    if os.geteuid() != 0:
        raise EnvironmentProblem("building a base image needs root (debootstrap)", "run `sudo replay base build`")
    return exe


def build_rootfs(target: Path, suite: str, mirror: str, on_line: Callable[[str], None]) -> None:
    exe = check_tools()
    cmd = [exe, "--variant=minbase", f"--include={','.join(PACKAGES)}", suite, str(target), mirror]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    tail: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        tail = (tail + [line.rstrip()])[-20:]
        on_line(line.rstrip())
    if proc.wait() != 0:
        last = next((ln for ln in reversed(tail) if ln.startswith("E:")), tail[-1] if tail else "no output")
        raise EnvironmentProblem(f"debootstrap failed ({last})", f"check that {mirror} is reachable from this host")
    for rel in TRIM:
        path = target / rel
        if path.is_dir():
            for child in path.iterdir():
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child, ignore_errors=True)
                else:
                    child.unlink(missing_ok=True)


def pack_rootfs(source: Path, tarball: Path) -> None:
    """Tar the root filesystem with numeric owners and sorted entries, as `docker import` wants it."""

    def walk(rel: str) -> None:
        full = source / rel if rel else source
        for child in sorted(os.listdir(full)):
            child_rel = f"{rel}/{child}" if rel else child
            tar.add(source / child_rel, arcname=child_rel, recursive=False)
            path = source / child_rel
            if path.is_dir() and not path.is_symlink():
                walk(child_rel)

    with tarfile.open(tarball, "w", format=tarfile.PAX_FORMAT) as tar:
        walk("")



class Debootstrap:
    """The ``RootfsBuilder`` port: a Debian root filesystem from the host's apt mirror."""

    def check_tools(self) -> None:
        check_tools()

    def apt_mirror(self) -> str:
        return apt_mirror()

    def build_rootfs(self, target: Path, suite: str, mirror: str, on_line: Callable[[str], None]) -> None:
        build_rootfs(target, suite, mirror, on_line)

    def pack_rootfs(self, source: Path, tarball: Path) -> None:
        pack_rootfs(source, tarball)
