"""SSH signatures through ``ssh-keygen -Y`` (sign, find-principals, verify): the ``SignatureTool`` port."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from replay.errors import BadInput, EnvironmentProblem


class SshKeygen:
    """``ssh-keygen`` from PATH, looked up when first needed (so making one costs nothing)."""

    def _tool(self) -> str:
        found = shutil.which("ssh-keygen")
        if not found:
            raise EnvironmentProblem("ssh-keygen is not installed",
                                     "install openssh-client (apt-get install openssh-client)")
        return found

    def check_installed(self) -> None:
        self._tool()

    def sign(self, key: Path, data: bytes, namespace: str) -> bytes:
        proc = subprocess.run([self._tool(), "-Y", "sign", "-q", "-f", str(key), "-n", namespace], input=data,
                              capture_output=True, timeout=120)
        if proc.returncode != 0 or b"BEGIN SSH SIGNATURE" not in proc.stdout:
            detail = proc.stderr.decode("utf-8", "replace").strip().splitlines()
            raise BadInput(f"ssh-keygen could not sign with {key} ({detail[-1] if detail else 'no output'})",
                           "pass an unencrypted SSH private key, or one ssh-agent holds")
        return proc.stdout

    def principals(self, signature: bytes, allowed_signers: Path) -> list[str]:
        tool = self._tool()
        with _signature_file(signature) as sig:
            found = subprocess.run([tool, "-Y", "find-principals", "-s", str(sig), "-f", str(allowed_signers)],
                                   capture_output=True, text=True, timeout=60)
        if found.returncode != 0:
            return []
        return [p.strip() for p in found.stdout.splitlines() if p.strip()]

    def verifies(self, data: bytes, signature: bytes, allowed_signers: Path, principal: str, namespace: str) -> bool:
        tool = self._tool()
        with _signature_file(signature) as sig:
            proc = subprocess.run([tool, "-Y", "verify", "-f", str(allowed_signers), "-I", principal,
                                   "-n", namespace, "-s", str(sig)], input=data, capture_output=True, timeout=60)
        return proc.returncode == 0


@contextmanager
def _signature_file(signature: bytes) -> Iterator[Path]:
    """ssh-keygen reads a signature from a file: a private temporary one, removed after."""
    with tempfile.TemporaryDirectory(prefix="replay-sig-") as tmp:
        sig = Path(tmp) / "index.sig"
        sig.write_bytes(signature)
        yield sig
