"""Messages that point the right way: each says what is wrong and the way out that works for that input."""

from __future__ import annotations

from pathlib import Path

import pytest

from replay import factory
from replay.core.share import signing
from tests.cli.test_bad_input import one_error_line, replay
from tests.tools import need
from tests.unit.test_bundle import _key, make_bundle


@pytest.mark.parametrize("command", ["verify", "check"])
def test_a_data_mapping_without_equals_shows_a_data_example_not_a_tolerance(tmp_path: Path, command: str) -> None:
    result = replay(tmp_path, command, "nowhere", "--data", "/scratch/digits")

    line = one_error_line(result)
    assert result.returncode == 2
    assert "is not RECORDED=LOCAL" in line and "--data data=/scratch/digits" in line and "replay show" in line
    assert "accuracy" not in line


def test_a_tolerance_without_equals_still_shows_a_tolerance_example(tmp_path: Path) -> None:
    result = replay(tmp_path, "verify", "nowhere", "--tolerance", "accuracy")

    assert "e.g. --tolerance accuracy=1e-3" in one_error_line(result)


def test_a_pub_file_as_allowed_signers_says_the_format_and_how_to_make_it(tmp_path: Path) -> None:
    need("ssh-keygen", "openssh-client")
    key, _ = _key(tmp_path, "alice")
    make_bundle(tmp_path, sign=signing.signer(key, factory.signature_tool()))

    result = replay(tmp_path, "verify", "demo.replay", "--allowed-signers", "alice.pub")

    line = one_error_line(result)
    assert result.returncode == 2
    assert "is a public key (.pub), not an allowed_signers file" in line
    assert "PRINCIPAL ssh-ed25519 AAAA" in line and "$(cat alice.pub)" in line
    assert "do not trust" not in line


@pytest.mark.parametrize(("text", "problem"), [
    ("ssh-ed25519 AAAAC3Nza alice\n", "is a public key (.pub)"),
    ("# only a comment\n\n", "lists no signer"),
    ("alice\n", "has no line of the form"),
    ('alice@lab namespaces="replay-bundle" ssh-ed25519 AAAAC3Nza\n', None),
    ("alice@lab ssh-ed25519 AAAAC3Nza\n", None),
])
def test_allowed_signers_form(text: str, problem: str | None) -> None:
    found = signing.format_problem(text)
    assert (found is None) if problem is None else (found is not None and found.startswith(problem))
