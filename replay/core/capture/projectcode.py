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
from replay.manifest_rules import ENTRY_GROUP, ENTRY_NAME, ENTRY_REF

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
        if pkg.entry_points:
            files[f"{folder}/entry_points.txt"] = render_entry_points(pkg.entry_points).encode()
    return dict(sorted(files.items()))


SCRIPT_GROUPS = ("console_scripts", "gui_scripts")


def parse_entry_points(text: str) -> dict[str, dict[str, str]]:
    """An installed ``entry_points.txt`` ([group] lines, then ``name = module:attr [extras]``), keeping only
    entries the manifest accepts (``replay.manifest_rules``): anything else is not an entry point the image
    could recreate."""
    out: dict[str, dict[str, str]] = {}
    group = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            group = line[1:-1].strip()
            group = group if ENTRY_GROUP.fullmatch(group) else None
            continue
        name, sep, ref = line.partition("=")
        ref = ref.split("[", 1)[0].strip()  # extras only pick optional dependencies
        if group is None or not sep or not ENTRY_NAME.fullmatch(name.strip()) or not ENTRY_REF.fullmatch(ref):
            continue
        out.setdefault(group, {})[name.strip()] = ref
    return {g: dict(sorted(e.items())) for g, e in sorted(out.items())}


def render_entry_points(entry_points: dict[str, dict[str, str]]) -> str:
    return "\n".join(f"[{group}]\n" + "".join(f"{name} = {ref}\n" for name, ref in sorted(entries.items()))
                     for group, entries in sorted(entry_points.items()))


def image_scripts(python: PythonEnv, venv: str) -> dict[str, bytes]:
    """The virtualenv's bin/ scripts of the project's console (and GUI) scripts, by name, as pip writes them:
    they import the callable and exit with what it returns."""
    scripts: dict[str, bytes] = {}
    for pkg in python.project_packages:
        for group in SCRIPT_GROUPS:
            for name, ref in pkg.entry_points.get(group, {}).items():
                module, _, attr = ref.partition(":")
                if not attr:
                    continue  # a script needs a callable to call
                scripts[name] = (f"#!{venv}/bin/python\nimport sys\nfrom {module} import {attr.split('.')[0]}\n\n"
                                 f"if __name__ == \"__main__\":\n    sys.exit({attr}())\n").encode()
    return dict(sorted(scripts.items()))
