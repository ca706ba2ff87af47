"""SSH signatures over a bundle's index, the scheme git uses (``ssh-keygen -Y``, namespace replay-bundle).

Signing: the index bytes are signed with a private key in the namespace replay-bundle. Checking: the
principal is found in an ``allowed_signers`` file (the format of git's ``gpg.ssh.allowedSignersFile``), then
the signature must verify for it. The tool that does both is a ``SignatureTool`` port (``replay.factory``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from replay.core.ports import SignatureTool
from replay.core.share.bundle.format import SIG_NAMESPACE, BundleError
from replay.errors import BadInput

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


@dataclass(frozen=True)
class Trust:
    """Whom a bundle must be signed by (``--allowed-signers``), and the tool that checks its signature."""

    allowed_signers: Path
    tool: SignatureTool

    def check(self, data: bytes, signature: bytes) -> str:
        """The principal whose valid signature ``signature`` is; BundleError otherwise."""
        return check(data, signature, self.allowed_signers, self.tool)


def signer(key: Path, tool: SignatureTool) -> Callable[[bytes], bytes]:
    """A function that signs bytes with the SSH private key ``key``; the key and the tool are checked at once."""
    if not key.is_file():
        raise BadInput(f"--sign {key}: no such key file", "pass an SSH private key, e.g. ~/.ssh/id_ed25519")
    tool.check_installed()

    def sign(data: bytes) -> bytes:
        return tool.sign(key, data, SIG_NAMESPACE)

    return sign


def check(data: bytes, signature: bytes, allowed_signers: Path, tool: SignatureTool) -> str:
    """The principal of ``allowed_signers`` whose valid signature ``signature`` is; BundleError otherwise."""
    if not allowed_signers.is_file():
        raise BadInput(f"--allowed-signers {allowed_signers}: no such file", ALLOWED_SIGNERS_FORMAT)
    problem = format_problem(_head(allowed_signers))
    if problem:
        raise BadInput(f"--allowed-signers {allowed_signers} {problem}", ALLOWED_SIGNERS_FORMAT)
    tool.check_installed()
    principals = tool.principals(signature, allowed_signers)
    if not principals:
        raise BundleError(f"index.sig is not by a key listed in {allowed_signers}",
                          "do not trust this bundle: ask its author for a signed one, or add their key")
    for principal in principals:
        if tool.verifies(data, signature, allowed_signers, principal, SIG_NAMESPACE):
            return principal
    raise BundleError("index.sig does not verify: the index was changed after signing, or the signature is bad",
                      "do not trust this bundle: ask its author for it again")
