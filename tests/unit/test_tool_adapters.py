"""The tools core reaches through ports: the training command's runner (capture --run) and ssh-keygen
(bundle signatures). nvidia-smi's probe is tested with the host facts (test_hostinfo.py)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from replay import factory
from replay.adapters.host_command import HostCommand
from replay.adapters.ssh_keygen import SshKeygen
from replay.core.share import signing
from replay.errors import CommandFailed, EnvironmentProblem


def test_the_runner_streams_merged_lines_and_returns_the_status(tmp_path: Path) -> None:
    lines: list[str] = []
    code = HostCommand().run(
        [sys.executable, "-c", "import os,sys; print(os.getcwd(), flush=True); print(os.environ['X'], file=sys.stderr); "
                               "sys.exit(3)"],
        tmp_path, {"X": "only this"}, lines.append)
    assert code == 3
    assert lines == [str(tmp_path), "only this"]


def test_a_command_that_cannot_start_is_a_command_failure(tmp_path: Path) -> None:
    with pytest.raises(CommandFailed, match="cannot start /no/such/trainer"):
        HostCommand().run(["/no/such/trainer"], tmp_path, {}, print)


def test_an_error_while_following_stops_the_command(tmp_path: Path) -> None:
    pids: list[int] = []

    def fail(line: str) -> None:
        pids.append(int(line))
        raise RuntimeError("the reporter broke")

    script = "import os, time; print(os.getpid(), flush=True); time.sleep(60)"
    with pytest.raises(RuntimeError):
        HostCommand().run([sys.executable, "-c", script], tmp_path, {}, fail)
    with pytest.raises(ProcessLookupError):  # stopped and reaped before the error went on
        os.kill(pids[0], 0)


def test_without_ssh_keygen_signing_and_checking_say_what_to_install(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    key, allowed = tmp_path / "key", tmp_path / "allowed_signers"
    key.write_text("k")
    allowed.write_text("a@b ssh-ed25519 AAAA\n")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    for attempt in (lambda: signing.signer(key, SshKeygen()), lambda: signing.check(b"x", b"sig", allowed, SshKeygen())):
        with pytest.raises(EnvironmentProblem, match="ssh-keygen is not installed"):
            attempt()


def test_the_factory_picks_the_tools() -> None:
    assert isinstance(factory.signature_tool(), SshKeygen)
    assert isinstance(factory.toolchain().runner, HostCommand)
