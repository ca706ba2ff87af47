"""The engine adapter's words for a silent engine, and the exit codes of signals (no engine needed)."""

from __future__ import annotations

import pytest

from replay.adapters import docker_engine
from replay.errors import EXIT_SIGHUP, EXIT_SIGTERM, Interrupted


def test_a_read_timeout_is_said_plainly() -> None:
    exc = Exception("Error while fetching server API version: UnixHTTPConnectionPool(host='localhost', "
                    "port=None): Read timed out. (read timeout=3)")
    assert docker_engine._short(exc, 3) == "it accepted the connection but did not answer within 3 s"


@pytest.mark.parametrize(("value", "expected"), [("", 60.0), ("5", 5.0), ("0", 60.0), ("x", 60.0), ("-1", 60.0)])
def test_engine_timeout_from_the_environment(monkeypatch: pytest.MonkeyPatch, value: str, expected: float) -> None:
    monkeypatch.setenv(docker_engine.TIMEOUT_ENV, value)
    assert docker_engine._api_timeout() == expected
    assert docker_engine.DockerEngine()._timeout == expected


def test_signals_have_their_exit_codes() -> None:
    assert (Interrupted(15).exit_code, Interrupted(1).exit_code, Interrupted().exit_code) == (EXIT_SIGTERM, EXIT_SIGHUP, 130)
    assert Interrupted(15).message == "interrupted (SIGTERM)" and Interrupted().message == "interrupted"
