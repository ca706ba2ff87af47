"""System tools some tests need (ssh-keygen...), which ``make tools`` installs and ``make test`` requires.

``make test-unit`` needs no root, so it does not install them: it sets REPLAY_TEST_UNIT=1, under which a test
whose tool is missing is skipped, saying so. Everywhere else (``make test``, CI) a missing tool fails the test.
"""

from __future__ import annotations

import os
import shutil

import pytest


def need(tool: str, package: str) -> None:
    """Skip the calling test under ``make test-unit`` when ``tool`` is not on PATH; otherwise let it run."""
    if shutil.which(tool) is None and os.environ.get("REPLAY_TEST_UNIT") == "1":
        pytest.skip(f"{tool} is not installed (apt-get install {package}, or `make tools`); `make test` runs this")
