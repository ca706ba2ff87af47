"""``--auto-seed``: the start-up hook's files for the image's site-packages, and the host run's hook folder.

The capsule image has no replay installed, so what it needs is copied in as files: ``replay/seeding.py``
(standard library only) as ``_replay_seeding.py``, and a ``.pth`` line that calls its ``start_hook`` when
REPLAY_AUTO_SEED=1. The host run (``--run``) cannot take a ``.pth`` file without writing into the user's
virtualenv, so it gets a temporary folder first on PYTHONPATH with the hook as ``sitecustomize.py``, which
runs the user's own ``sitecustomize`` after it (templates/seeding/sitecustomize.py).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from replay import __version__, seeding
from replay.assets import templates_dir
from replay.core.capture.dockerfile import template_environment

SEEDING_MODULE = "_replay_seeding.py"  # the hook's copy of replay/seeding.py, under a name no project uses
PTH_NAME = "_replay_autoseed.pth"


def seeding_source() -> bytes:
    return Path(seeding.__file__).read_bytes()


def image_site_files(auto_seed: bool, replay_api: bool) -> dict[str, bytes]:
    """Files for the image's site-packages, by path relative to it; empty when the capture asked for neither.

    ``replay_api``: the captured environment had replay-capsule installed, so a training script may run
    ``from replay import seed_everything``; the image gets a minimal ``replay`` package holding only that.
    """
    files: dict[str, bytes] = {}
    if auto_seed:
        files[PTH_NAME] = (templates_dir() / "seeding" / PTH_NAME).read_bytes()
        files[SEEDING_MODULE] = seeding_source()
    if replay_api:
        init = template_environment().get_template("seeding/replay_init.py.j2").render(replay_version=__version__)
        files["replay/__init__.py"] = init.encode()
        files["replay/seeding.py"] = seeding_source()
    return dict(sorted(files.items()))


def image_site_dir(venv: str, python_version: str) -> str:
    """The image virtualenv's site-packages: its Python is the base image's, which made the virtualenv."""
    minor = ".".join(python_version.split(".")[:2])
    return f"{venv}/lib/python{minor}/site-packages"


@contextmanager
def host_hook(env: dict[str, str]) -> Iterator[dict[str, str]]:
    """``env`` with the hook folder first on PYTHONPATH, for as long as the host run lasts."""
    with tempfile.TemporaryDirectory(prefix="replay-autoseed-") as tmp:
        folder = Path(tmp)
        (folder / "sitecustomize.py").write_bytes((templates_dir() / "seeding" / "sitecustomize.py").read_bytes())
        (folder / SEEDING_MODULE).write_bytes(seeding_source())
        hooked = dict(env)
        hooked["PYTHONPATH"] = os.pathsep.join(p for p in (str(folder), env.get("PYTHONPATH", "")) if p)
        yield hooked
