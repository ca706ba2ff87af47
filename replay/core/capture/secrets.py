"""Every rule about secrets, in one place: environment variable names that look like credentials, and
files of the code snapshot that look like keys, tokens or credentials by their name or by what they hold.

The snapshot goes into the image, and the image goes to every reviewer, so capture refuses such a file
(naming it) unless ``--allow-secret-files`` is given; the files let through are listed in the manifest.
The scan runs on every capture, before anything slow, over every file that enters the snapshot: tokens
and keys in the first MiB of each text file, and a private key's header (OpenSSH, PEM) anywhere in any
file, binaries included (a key pasted into a notebook's output or packed into a pickle is still a key).
"""

from __future__ import annotations

import fnmatch
import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from replay.errors import BadInput

# Names whose values look like credentials: never carried without --allow-secret-env, never stored.
SECRET_MARKERS = ("TOKEN", "SECRET", "PASSWORD", "PASSWD", "KEY", "CREDENTIAL", "AUTH")

# File names (any folder) that hold credentials by convention.
SECRET_NAMES = frozenset({
    ".env", ".envrc", ".netrc", ".pypirc", ".git-credentials", ".npmrc", ".htpasswd", ".pgpass",
    "id_rsa", "id_dsa", "id_ecdsa", "id_ed25519", "credentials.json", "service-account.json",
    "client_secret.json", "secrets.toml", "secrets.yaml", "secrets.yml",
})
SECRET_GLOBS = (".env.*", "*.pem", "*.key", "*.p12", "*.pfx", "*.jks", "*.keystore", "*_rsa", "*_ed25519")
# An AWS-style credentials file: `.aws/credentials`, matched by its folder too.
SECRET_PATHS = (".aws/credentials", ".docker/config.json", ".kube/config")

# What a credential looks like inside a file.
SECRET_CONTENT = re.compile(
    rb"(?P<aws_key>\b(?:AKIA|ASIA)[0-9A-Z]{16}\b)"
    rb"|(?P<private_key>-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----)"
    rb"|(?P<aws_secret>(?i:aws_secret_access_key)\s*[=:]\s*\S+)"
    rb"|(?P<github_token>\bgh[pousr]_[A-Za-z0-9]{36}\b)"
)
_CONTENT_WHAT = {
    "aws_key": "an AWS access key ID",
    "private_key": "a private key",
    "aws_secret": "an AWS secret access key",
    "github_token": "a GitHub token",
}
SCAN_BYTES = 1 << 20
SNIFF_BYTES = 8192
PRIVATE_KEY = re.compile(rb"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----")
_OVERLAP = 64  # longer than any private key header, so a header across two chunks is still seen


@dataclass(frozen=True)
class Finding:
    path: str  # relative to the project root, POSIX
    why: str  # e.g. "its name is one credentials are kept under", "it holds a private key"


def looks_secret(name: str) -> bool:
    """Whether an environment variable's name looks like it holds a credential."""
    upper = name.upper()
    return any(marker in upper for marker in SECRET_MARKERS)


def secret_name(path: str) -> bool:
    """Whether a file's path (POSIX, relative) is one that credentials are kept under."""
    name = PurePosixPath(path).name
    if name in SECRET_NAMES or any(fnmatch.fnmatchcase(name, glob) for glob in SECRET_GLOBS):
        return True
    return any(path == p or path.endswith("/" + p) for p in SECRET_PATHS)


def secret_content(data: bytes) -> str | None:
    """What credential ``data`` seems to hold, in words, or None."""
    match = SECRET_CONTENT.search(data)
    if match is None or match.lastgroup is None:
        return None
    return _CONTENT_WHAT[match.lastgroup]


def scan(root: Path, files: list[str]) -> list[Finding]:
    """Every file of ``files`` (relative to ``root``) that looks like a secret, by name or by content."""
    found = []
    for rel in files:
        if secret_name(rel):
            found.append(Finding(rel, "its name is one that credentials are kept under"))
            continue
        what = _scan_file(root / rel)
        if what:
            found.append(Finding(rel, f"it holds what looks like {what}"))
    return found


def _scan_file(path: Path) -> str | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None  # unreadable here: hashing the snapshot reports it
    try:
        head = os.read(fd, SNIFF_BYTES)
        data = head + (os.read(fd, SCAN_BYTES - len(head)) if len(head) == SNIFF_BYTES else b"")
        found = None if b"\0" in head else secret_content(data)  # tokens only in text: binaries hold noise
        return found or _private_key_anywhere(fd, data)
    except OSError:
        return None
    finally:
        os.close(fd)


def _private_key_anywhere(fd: int, start: bytes) -> str | None:
    """A private key's header anywhere in the rest of the file, read in chunks (bounded memory)."""
    chunk = start
    while chunk:
        if PRIVATE_KEY.search(chunk):
            return _CONTENT_WHAT["private_key"]
        more = os.read(fd, SCAN_BYTES)
        chunk = chunk[-_OVERLAP:] + more if more else b""
    return None


def refuse_secrets(root: Path, files: list[str], allow: bool) -> list[str]:
    """Refuse a snapshot holding secrets (exit 2, the first one named); with ``allow``, return them."""
    found = scan(root, files)
    if found and not allow:
        first = found[0]
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        raise BadInput(
            f"{first.path} looks like a secret ({first.why}){more}: it would ship in the image to everyone "
            "who verifies",
            "delete it or add it to .gitignore; or pass --allow-secret-files to ship it anyway",
        )
    return sorted(f.path for f in found)
