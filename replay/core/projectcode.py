"""The project's own packages in the image: their import roots and a minimal dist-info for each.

The host imports an editable package through what its install left in site-packages (a .pth path line, a
setuptools finder, an egg-link); the image imports the same folders of the code snapshot through one .pth
file of its own, which puts them on ``sys.path`` after site-packages, where the host's .pth files put them
(PYTHONPATH would put them before, and show in the training's environment). The host's metadata of these
packages stays behind (``*.egg-info`` is a build leftover, never code), so each gets a ``METADATA`` with its
name and version: ``importlib.metadata.version(NAME)``, which many packages read for ``__version__``,
answers in the image as on the host.
"""

from __future__ import annotations

import re

from replay.core.layout import container_path
from replay.manifest import PythonEnv

PTH_NAME = "_replay_project.pth"


def dist_info_name(name: str, version: str) -> str:
    """The folder name a wheel installer gives the metadata (name and version with '-' escaped)."""
    return f"{re.sub(r'[-_.]+', '_', name)}-{version.replace('-', '_')}.dist-info"


def image_site_files(python: PythonEnv) -> dict[str, bytes]:
    """Files for the image's site-packages, by path relative to it; empty when the project has no package."""
    files: dict[str, bytes] = {}
    if python.project_paths:
        files[PTH_NAME] = "".join(f"{container_path(p)}\n" for p in python.project_paths).encode()
    for pkg in python.project_packages:
        folder = dist_info_name(pkg.name, pkg.version)
        files[f"{folder}/METADATA"] = f"Metadata-Version: 2.1\nName: {pkg.name}\nVersion: {pkg.version}\n".encode()
        files[f"{folder}/INSTALLER"] = b"replay\n"  # what pip shows as its installer; replay put it there
    return dict(sorted(files.items()))
