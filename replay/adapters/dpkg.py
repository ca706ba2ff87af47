"""The capturing machine's system packages: which Debian package provides a shared library here (the
``SystemLibraries`` port of ``replay.core.ports``), through ``ldconfig -p`` and ``dpkg -S``."""

from __future__ import annotations

import re
import shutil
import subprocess

from replay.core.capture.syslibs import ldconfig_names

_PACKAGE = re.compile(r"^([a-z0-9][a-z0-9+.-]+)(?::[a-z0-9-]+)?$")


def dpkg_owner(text: str) -> str | None:
    """The first package of a ``dpkg -S`` answer ("libgomp1:amd64: /usr/lib/.../libgomp.so.1")."""
    for line in text.splitlines():
        owners, _, path = line.partition(": ")
        if not path.startswith("/"):
            continue
        for owner in owners.split(", "):
            match = _PACKAGE.match(owner.strip())
            if match:
                return match.group(1)
    return None


class HostDpkg:
    """The ``SystemLibraries`` port on a Debian host (replay's engine hosts run bookworm, as its bases do)."""

    def __init__(self) -> None:
        self._paths: dict[str, list[str]] | None = None

    def provider(self, library: str) -> str | None:
        for path in self._cache().get(library, []):
            candidates = [path, "/usr" + path] if path.startswith("/lib") else [path]
            for candidate in candidates:
                owner = dpkg_owner(_run(["dpkg", "-S", candidate]))
                if owner:
                    return owner
        return None

    def _cache(self) -> dict[str, list[str]]:
        if self._paths is None:
            ldconfig = shutil.which("ldconfig") or "/sbin/ldconfig"
            self._paths = ldconfig_names(_run([ldconfig, "-p"]))
        return self._paths


def _run(argv: list[str]) -> str:
    """A short query's stdout; "" when the program is missing or fails (no answer is an answer here)."""
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, errors="replace", timeout=30, check=False,
                              env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"})
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return proc.stdout if proc.returncode == 0 else ""
