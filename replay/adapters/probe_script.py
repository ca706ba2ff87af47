"""The probe that runs INSIDE the training interpreter (``python -c`` with this file's text): standard library
only, Python 3.8+ syntax and APIs. It prints one JSON line: the interpreter, and every distribution it
imports with where that distribution's code really comes from.

What the interpreter imports, not what lies in the current folder: ``-c`` puts the working directory first
on ``sys.path``, where a setuptools project's leftover ``NAME.egg-info`` would be found before the real
``NAME.dist-info`` of its editable install (and taken for an index package). That first entry is dropped;
the rest of ``sys.path`` stays as the training sees it (PYTHONPATH, the user site, .pth files), which is
why ``-I`` is not used: it would also drop the user site and PYTHON* variables the researcher really has.

For a distribution that is local code (an editable install, or metadata found outside site-packages as a
legacy ``setup.py develop`` leaves it) the probe also reports its import roots: the folders the
interpreter imports its top-level names from, read from what the install left (path lines of the .pth
files in its RECORD, setuptools' ``__editable___*_finder`` MAPPING, the folder its .egg-info lies in) and,
failing those, from ``importlib.util.find_spec`` of its top-level names.
"""

from __future__ import annotations

import ast
import contextlib
import json
import os
import platform
import site
import sys
from typing import Any


def _drop_working_directory() -> None:
    # `python -c` puts "" (the working directory) first, unless PYTHONSAFEPATH/-P (3.11+) kept it out.
    if sys.path and sys.path[0] == "" and not getattr(sys.flags, "safe_path", False):
        del sys.path[0]


def _site_dirs() -> set[str]:
    dirs = list(getattr(site, "getsitepackages", lambda: [])())
    user = getattr(site, "getusersitepackages", lambda: "")()
    if user:
        dirs.append(user)
    return {os.path.realpath(d) for d in dirs}


def _pth_roots(path: str, text: str) -> list[str]:
    """The folders a .pth file adds to sys.path (its import lines run code, they add no folder)."""
    here = os.path.dirname(path)
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or line.startswith(("import ", "import\t")):
            continue
        folder = os.path.realpath(os.path.join(here, line))
        if os.path.isdir(folder):
            out.append(folder)
    return out


def _finder_mapping(text: str) -> dict[str, str]:
    """setuptools' ``__editable___NAME_finder.py``: MAPPING = {top-level name: its folder or module file}."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return {}
    for node in tree.body:
        target: Any = None
        if isinstance(node, ast.AnnAssign):
            target = node.target
        elif isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
        if isinstance(target, ast.Name) and target.id == "MAPPING" and getattr(node, "value", None) is not None:
            try:
                value = ast.literal_eval(node.value)  # type: ignore[attr-defined]
            except ValueError:
                return {}
            if isinstance(value, dict):
                return {str(k): str(v) for k, v in value.items()}
    return {}


def _top_level_names(dist: Any) -> list[str]:
    names = (dist.read_text("top_level.txt") or "").split()
    if names:
        return names
    found: set[str] = set()
    for f in dist.files or []:
        parts = f.parts
        if len(parts) > 1 and parts[0].endswith((".dist-info", ".egg-info", ".data")):
            continue
        if f.suffix == ".py" or len(parts) > 1:
            found.add(parts[0][:-3] if parts[0].endswith(".py") else parts[0])
    return sorted(found)


def _spec_root(name: str) -> str | None:
    """The sys.path folder ``name`` is imported from, by asking the import system itself."""
    from importlib.util import find_spec

    try:
        spec = find_spec(name)
    except (ImportError, ValueError, AttributeError):
        return None
    if spec is None:
        return None
    places = list(spec.submodule_search_locations or []) if spec.origin in (None, "namespace") else [spec.origin]
    for place in places:
        place = os.path.realpath(place)
        if os.path.basename(place) == "__init__.py":
            place = os.path.dirname(place)
        if os.path.basename(place) in (name, name + ".py"):
            return os.path.dirname(place)
    return None


def import_roots(dist: Any, location: str | None, sites: set[str]) -> tuple[list[str], dict[str, str]]:
    """(folders the distribution's code is imported from, {top-level name: folder} the roots cannot express)."""
    roots: list[str] = []
    remapped: dict[str, str] = {}
    for f in dist.files or []:
        name = str(f)
        if "/" in name:
            continue
        if name.endswith(".pth"):
            with contextlib.suppress(OSError, UnicodeDecodeError):
                roots.extend(_pth_roots(str(f.locate()), f.read_text()))
        elif name.startswith("__editable___") and name.endswith("_finder.py"):
            try:
                mapping = _finder_mapping(f.read_text())
            except (OSError, UnicodeDecodeError):
                mapping = {}
            for top, place in sorted(mapping.items()):
                place = os.path.realpath(place)
                if os.path.basename(place) in (top, top + ".py"):
                    roots.append(os.path.dirname(place))
                else:
                    remapped[top] = place
    if not roots and not remapped and location and location.endswith(".egg-info"):
        roots.append(os.path.dirname(location))  # legacy develop: the folder its .egg-info was found in
    if not roots and not remapped:
        for top in _top_level_names(dist):
            root = _spec_root(top)
            if root:
                roots.append(root)
    unique: list[str] = []
    for root in roots:
        if root not in unique and root not in sites:  # never site-packages itself (a finder module's folder)
            unique.append(root)
    return unique, remapped


def _location(dist: Any) -> str | None:
    path = getattr(dist, "_path", None)  # PathDistribution's metadata folder (3.8+); None for other finders
    return os.path.realpath(str(path)) if path is not None else None


def package(dist: Any, sites: set[str]) -> dict[str, Any]:
    direct = dist.read_text("direct_url.json")
    direct_url = json.loads(direct) if direct else None
    location = _location(dist)
    out = {"name": dist.metadata["Name"], "version": dist.version, "direct_url": direct_url,
           "location": location, "import_roots": None, "remapped": None, "entry_points": None,
           "requires": _requires(dist), "requested": dist.read_text("REQUESTED") is not None}
    info = (direct_url or {}).get("dir_info")
    editable = isinstance(info, dict) and bool(info.get("editable"))
    outside = direct_url is None and location is not None and os.path.dirname(location) not in sites
    if editable or outside:
        out["import_roots"], out["remapped"] = import_roots(dist, location, sites)
        # Its console scripts and plugin entry points: the image recreates them from the snapshot.
        out["entry_points"] = dist.read_text("entry_points.txt")
    return out


def _requires(dist: Any) -> list[str]:
    """The names of the distribution's requirements, those behind environment markers too (an edge too many
    only keeps a package in the lock), but not those behind an ``extra``: nothing records that an extra was
    asked for, and a build tool's test extras would keep half an environment. Normalized as pip compares."""
    out = []
    for line in dist.requires or []:
        name_part, _, marker = line.partition(";")
        if "extra" in marker:
            continue
        name = ""
        for ch in name_part.strip():
            if not (ch.isalnum() or ch in "-_."):
                break
            name += ch
        if name:
            out.append("-".join(name.replace("_", "-").replace(".", "-").lower().split("-")))
    return sorted(set(out))


def report() -> dict[str, Any]:
    from importlib import metadata

    _drop_working_directory()
    sites = _site_dirs()
    seen: set[str] = set()
    pkgs: list[dict[str, Any]] = []
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if not name:
            continue
        key = name.lower().replace("_", "-").replace(".", "-")
        if key in seen:
            continue  # shadowed by an earlier sys.path entry, as import would be
        seen.add(key)
        pkgs.append(package(dist, sites))
    return {
        "executable": sys.executable,
        "version": platform.python_version(),
        "implementation": platform.python_implementation(),
        "abi": "cp{}{}".format(*sys.version_info[:2]),
        "machine": platform.machine(),
        "prefix": sys.prefix,
        "virtualenv": sys.prefix != getattr(sys, "base_prefix", sys.prefix),
        "packages": pkgs,
    }


if __name__ == "__main__":
    print(json.dumps(report()))
