"""Capture's cheap checks on what it records: the same names and values the loader accepts, no others."""

from __future__ import annotations

import pytest

from replay.adapters.interpreter import inspect
from replay.core.capture.pipeline import _carried_env, _numerics_env
from replay.errors import BadInput


@pytest.mark.parametrize("name", ["LD_PRELOAD", "LD_LIBRARY_PATH", "PATH", "PYTHONPATH", "PYTHONSTARTUP", "HOME",
                                  "BASH_ENV", "ENV", "DYLD_INSERT_LIBRARIES", "REPLAY_SEED", "1X", "A-B"])
def test_carried_env_refuses_names_that_steer_the_loader_or_interpreter(name: str, monkeypatch) -> None:
    monkeypatch.setenv("LD_PRELOAD", "/tmp/x.so")
    with pytest.raises(BadInput, match=f"--env {name} "):
        _carried_env([name], allow_secret=False)


def test_carried_env_keeps_training_settings(monkeypatch) -> None:
    monkeypatch.setenv("WANDB_MODE", "offline")
    assert _carried_env(["WANDB_MODE", "HF_TOKEN"], allow_secret=True) == {"WANDB_MODE": "offline", "HF_TOKEN": None}


@pytest.mark.parametrize(("name", "value"), [("OMP_NUM_THREADS", ""), ("OMP_NUM_THREADS", "0"),
                                             ("MKL_NUM_THREADS", "many"), ("TZ", "UTC;x")])
def test_numerics_env_that_verify_would_refuse_is_refused_at_capture(name: str, value: str, monkeypatch) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(BadInput, match=name):
        _numerics_env()


def test_numerics_env_records_well_formed_values(monkeypatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    monkeypatch.setenv("TZ", "Europe/Paris")
    found = _numerics_env()
    assert found["OMP_NUM_THREADS"] == "3" and found["TZ"] == "Europe/Paris"


@pytest.mark.parametrize("program", ["/bin/true", "/bin/echo"])
def test_an_interpreter_that_prints_no_report_is_bad_input(program: str) -> None:
    with pytest.raises(BadInput, match="did not answer like a Python interpreter"):
        inspect(program)
