"""The secret rules: names, contents, and the refusal capture makes."""

from __future__ import annotations

from pathlib import Path

import pytest

from replay.core.capture.secrets import looks_secret, refuse_secrets, scan, secret_content, secret_name
from replay.errors import BadInput

AWS_KEY = "AKIA" + "ABCDEFGHIJKLMNOP"  # split, so this file itself does not look like a secret
PEM = "-----BEGIN " + "RSA PRIVATE KEY-----\nMIIE...\n"


@pytest.mark.parametrize("path", [".env", ".env.local", ".envrc", "keys/server.pem", "tls.key", "id_rsa",
                                  "home/.ssh/id_ed25519", ".netrc", ".pypirc", ".git-credentials",
                                  "gcp/credentials.json", "x/.aws/credentials"])
def test_secret_names(path: str) -> None:
    assert secret_name(path)


@pytest.mark.parametrize("path", ["train.py", "env.py", "keyboard.txt", "README.md", "pem/notes.txt", "aws/creds.md"])
def test_ordinary_names(path: str) -> None:
    assert not secret_name(path)


def test_secret_contents() -> None:
    assert secret_content(f"key = '{AWS_KEY}'\n".encode()) == "an AWS access key ID"
    assert secret_content(PEM.encode()) == "a private key"
    assert secret_content(b"aws_secret_access_key = abc/def\n") == "an AWS secret access key"
    assert secret_content(b"print('hello')\nAKIA is a prefix\n") is None


def test_scan_reads_contents_skips_binaries_and_looks_only_at_the_first_mib(tmp_path: Path) -> None:
    (tmp_path / "config.py").write_text(f"AWS = '{AWS_KEY}'\n")
    (tmp_path / "model.bin").write_bytes(b"\0" * 100 + AWS_KEY.encode())
    (tmp_path / "late.txt").write_bytes(b"a" * (2 << 20) + AWS_KEY.encode())
    (tmp_path / "train.py").write_text("print(1)\n")
    (tmp_path / "server.pem").write_text("not even a key\n")
    found = scan(tmp_path, ["config.py", "model.bin", "late.txt", "train.py", "server.pem"])
    assert [(f.path, f.why) for f in found] == [
        ("config.py", "it holds what looks like an AWS access key ID"),
        ("server.pem", "its name is one that credentials are kept under"),
    ]


def test_refusal_names_the_file_unless_allowed(tmp_path: Path) -> None:
    (tmp_path / "deploy.txt").write_text(PEM)
    with pytest.raises(BadInput) as info:
        refuse_secrets(tmp_path, ["deploy.txt"], allow=False)
    assert "deploy.txt looks like a secret (it holds what looks like a private key)" in info.value.one_line()
    assert "--allow-secret-files" in info.value.hint
    assert refuse_secrets(tmp_path, ["deploy.txt"], allow=True) == ["deploy.txt"]


def test_env_names_rule_lives_here_too() -> None:
    assert looks_secret("HF_TOKEN") and not looks_secret("WANDB_MODE")
