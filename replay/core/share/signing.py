"""SSH signatures over a bundle's index, the scheme git uses (``ssh-keygen -Y``, namespace replay-bundle).

Signing: ``ssh-keygen -Y sign -f KEY -n replay-bundle`` over the index bytes. Checking: the principal is found
with ``ssh-keygen -Y find-principals`` in an ``allowed_signers`` file (the format of git's
``gpg.ssh.allowedSignersFile``), then ``ssh-keygen -Y verify`` must accept the signature for it.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from replay.core.share.bundle.format import SIG_NAMESPACE, BundleError
from replay.errors import BadInput, EnvironmentProblem


def _ssh_keygen() -> str:
    found = shutil.which("ssh-keygen")
    if not found:
        raise EnvironmentProblem("ssh-keygen is not installed", "install openssh-client (apt-get install openssh-client)")
    return found


def signer(key: Path) -> Callable[[bytes], bytes]:
    """A function that signs bytes with the SSH private key ``key``; the key is checked at once."""
    if not key.is_file():
        raise BadInput(f"--sign {key}: no such key file", "pass an SSH private key, e.g. ~/.ssh/id_ed25519")
    tool = _ssh_keygen()

    def sign(data: bytes) -> bytes:
        proc = subprocess.run([tool, "-Y", "sign", "-q", "-f", str(key), "-n", SIG_NAMESPACE], input=data,
                              capture_output=True, timeout=120)
        if proc.returncode != 0 or b"BEGIN SSH SIGNATURE" not in proc.stdout:
            detail = proc.stderr.decode("utf-8", "replace").strip().splitlines()
            raise BadInput(f"ssh-keygen could not sign with {key} ({detail[-1] if detail else 'no output'})",
                           "pass an unencrypted SSH private key, or one ssh-agent holds")
        return proc.stdout

    return sign


ALLOWED_SIGNERS_FORMAT = ("pass an allowed_signers file, as `ssh-keygen -Y verify` takes: one line per signer, "
                          "`PRINCIPAL ssh-ed25519 AAAA...`; make one from a .pub with "
                          "`echo \"alice@lab $(cat alice.pub)\" > allowed_signers`")
_KEY_TYPES = ("ssh-", "ecdsa-", "sk-ssh-", "sk-ecdsa-")
_HEAD_BYTES = 1 << 20  # the file is read once here for its form; ssh-keygen reads it whole


def _head(path: Path) -> str:
    try:
        with path.open("rb") as f:
            return f.read(_HEAD_BYTES).decode("utf-8", "replace")
    except OSError as exc:
        raise BadInput(f"cannot read --allowed-signers {path} ({exc.strerror})", ALLOWED_SIGNERS_FORMAT) from None


def format_problem(text: str) -> str | None:
    """Why ``text`` is no allowed_signers file ("is a public key (.pub)..."), or None when it may be one."""
    lines = [ln.split() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if not lines:
        return "lists no signer"
    if any(words[0].startswith(_KEY_TYPES) for words in lines):
        return "is a public key (.pub), not an allowed_signers file: it names no principal"
    if not any(len(words) >= 3 for words in lines):
        return "has no line of the form PRINCIPAL KEYTYPE KEY"
    return None


def check(data: bytes, signature: bytes, allowed_signers: Path) -> str:
    """The principal of ``allowed_signers`` whose valid signature ``signature`` is; BundleError otherwise."""
    if not allowed_signers.is_file():
        raise BadInput(f"--allowed-signers {allowed_signers}: no such file", ALLOWED_SIGNERS_FORMAT)
    problem = format_problem(_head(allowed_signers))
    if problem:
        raise BadInput(f"--allowed-signers {allowed_signers} {problem}", ALLOWED_SIGNERS_FORMAT)
    tool = _ssh_keygen()
    with tempfile.TemporaryDirectory(prefix="replay-sig-") as tmp:
        sig = Path(tmp) / "index.sig"
        sig.write_bytes(signature)
        found = subprocess.run([tool, "-Y", "find-principals", "-s", str(sig), "-f", str(allowed_signers)],
                               capture_output=True, text=True, timeout=60)
        principals = [p.strip() for p in found.stdout.splitlines() if p.strip()]
        if found.returncode != 0 or not principals:
            raise BundleError(f"index.sig is not by a key listed in {allowed_signers}",
                              "do not trust this bundle: ask its author for a signed one, or add their key")
        for principal in principals:
            proc = subprocess.run([tool, "-Y", "verify", "-f", str(allowed_signers), "-I", principal,
                                   "-n", SIG_NAMESPACE, "-s", str(sig)], input=data,
                                  capture_output=True, timeout=60)
            if proc.returncode == 0:
                return principal
    raise BundleError("index.sig does not verify: the index was changed after signing, or the signature is bad",
                      "do not trust this bundle: ask its author for it again")
