"""Which interpreter a capture takes, and replay's own packages left out of the training's."""

from __future__ import annotations

from pathlib import Path

import pytest

from replay.core.capture.which_python import announce
from replay.core.events import NullReporter
from replay.core.pyenv import InstalledPackage, Interpreter, only_required_by
from replay.errors import BadInput


class Stages(NullReporter):
    def __init__(self) -> None:
        self.stages: list[str] = []

    def stage(self, name: str) -> None:
        self.stages.append(name)


def interp(virtualenv: bool, prefix: str = "/usr", packages: int = 3) -> Interpreter:
    return Interpreter("/usr/bin/python3", "3.11.2", "CPython", "cp311", "x86_64",
                       [InstalledPackage(f"p{i}", "1") for i in range(packages)], prefix=prefix, virtualenv=virtualenv)


def test_a_system_interpreter_is_named_then_refused() -> None:
    reporter = Stages()
    with pytest.raises(BadInput) as info:
        announce(interp(False, packages=101), named=False, reporter=reporter, environ={})
    assert reporter.stages == ["no virtualenv is active: taking /usr/bin/python3 (Python 3.11.2, a system "
                               "interpreter, 101 packages)"]
    assert info.value.exit_code == 2 and "--python /usr/bin/python3" in info.value.hint


def test_a_named_or_active_interpreter_is_taken_without_a_word() -> None:
    for named, environ in [(True, {}), (False, {"VIRTUAL_ENV": "/v"}), (False, {"CONDA_PREFIX": "/c"})]:
        reporter = Stages()
        announce(interp(False), named=named, reporter=reporter, environ=environ)
        assert reporter.stages == []


def test_a_virtualenv_on_path_is_said_and_taken() -> None:
    reporter = Stages()
    announce(interp(True, prefix="/p/.venv", packages=1), named=False, reporter=reporter, environ={})
    assert reporter.stages == ["no virtualenv is active: taking /usr/bin/python3 (Python 3.11.2, a virtualenv, "
                               "1 package)"]


def test_a_conda_environment_is_not_a_system_interpreter(tmp_path: Path) -> None:
    env = tmp_path / "envs" / "train"
    (env / "conda-meta").mkdir(parents=True)
    announce(interp(False, prefix=str(env)), named=False, reporter=Stages(), environ={})


def pkg(name: str, *requires: str, requested: bool = False) -> InstalledPackage:
    return InstalledPackage(name, "1", requires=list(requires), requested=requested)


def test_only_what_replay_alone_requires_is_left_out() -> None:
    packages = [
        pkg("replay-capsule", "typer", "rich", "jinja2", "numpy", requested=True),
        pkg("typer", "click", "rich"), pkg("click"), pkg("rich", "pygments"), pkg("pygments"),
        pkg("jinja2", "markupsafe"), pkg("markupsafe"),
        pkg("torch", "jinja2", "numpy", requested=True), pkg("numpy"),
    ]
    assert only_required_by(packages, "replay-capsule") == {"replay-capsule", "typer", "click", "rich", "pygments"}


def test_a_package_someone_asked_for_stays_with_what_it_needs() -> None:
    packages = [pkg("replay-capsule", "rich", requested=True), pkg("rich", "pygments", requested=True),
                pkg("pygments")]
    assert only_required_by(packages, "replay-capsule") == {"replay-capsule"}
    assert only_required_by(packages, "absent") == set()
