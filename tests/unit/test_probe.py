"""The environment probe (replay/adapters/probe_script.py): it reads what the training interpreter really
imports, never what lies in the folder capture runs in, and finds where the project's own code is imported
from. Run for real in a subprocess where that matters, in-process on a hand-made site-packages elsewhere."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from replay.adapters import probe_script
from replay.adapters.interpreter import _PROBE, _probe_answer, inspect


def leftover_egg_info(folder: Path, name: str) -> None:
    """What `pip install -e .` of a setuptools project leaves in its folder: NAME.egg-info, no direct_url.json."""
    info = folder / f"{name.replace('-', '_')}.egg-info"
    info.mkdir(parents=True)
    (info / "PKG-INFO").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")


def test_the_probe_does_not_read_the_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    leftover_egg_info(tmp_path, "ghost-project")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PYTHONPATH", raising=False)
    # What a plain `python -c` sees here (the test would not fail without the fix otherwise) ...
    naive = subprocess.run([sys.executable, "-c", "from importlib import metadata; "
                            "print([d.metadata['Name'] for d in metadata.distributions()])"],
                           capture_output=True, text=True, check=True).stdout
    assert "ghost-project" in naive
    # ... and what the probe reports.
    assert "ghost-project" not in {p.name for p in inspect(sys.executable).packages}


def real_interpreter(python: str) -> str | None:
    """The interpreter itself, not a pyenv shim (which refuses to run in a folder that picks no version)."""
    version = python[len("python"):]
    root = Path(os.environ.get("PYENV_ROOT", "~/.pyenv")).expanduser()
    for found in sorted(root.glob(f"versions/{version}.*/bin/{python}")):
        return str(found)
    exe = shutil.which(python)
    if exe is None:
        return None
    ok = subprocess.run([exe, "-c", "import sys; print(sys.executable)"], capture_output=True, text=True, check=False)
    return ok.stdout.strip() if ok.returncode == 0 else None


@pytest.mark.parametrize("python", ["python3.8", "python3.9", "python3.12", "python3.13"])
def test_the_probe_runs_on_every_python_it_promises(python: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Python 3.8+ (no -P, no safe_path flag before 3.11): the working directory stays out there too."""
    exe = real_interpreter(python)
    if exe is None:
        pytest.skip(f"{python} is not installed here")
    leftover_egg_info(tmp_path, "ghost-project")
    monkeypatch.chdir(tmp_path)

    interp = inspect(exe)

    assert interp.version.startswith(python[len("python"):] + ".")
    assert "ghost-project" not in {p.name for p in interp.packages}


def test_the_probe_keeps_pythonpath_as_the_training_sees_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    extra = tmp_path / "extra"
    leftover_egg_info(extra, "on-pythonpath")
    monkeypatch.setenv("PYTHONPATH", str(extra))

    found = {p.name: p for p in inspect(sys.executable).packages}

    assert "on-pythonpath" in found
    assert found["on-pythonpath"].location == str(extra / "on_pythonpath.egg-info")


def test_under_pythonsafepath_the_first_real_entry_is_kept(tmp_path: Path) -> None:
    extra = tmp_path / "extra"
    leftover_egg_info(extra, "first-entry")
    env = {**os.environ, "PYTHONSAFEPATH": "1", "PYTHONPATH": str(extra)}
    out = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, check=True, env=env,
                         cwd=tmp_path).stdout
    assert "first-entry" in {p["name"] for p in json.loads(out)["packages"]}


def answer(**package: Any) -> str:
    pkg = {"name": "pkg", "version": "0.1", "direct_url": None, "location": None, "import_roots": None,
           "remapped": None, "entry_points": None, "requires": [], "requested": False, **package}
    return json.dumps({"executable": "/venv/bin/python", "version": "3.11.7", "implementation": "CPython",
                       "abi": "cp311", "machine": "x86_64", "prefix": "/venv", "virtualenv": True, "packages": [pkg]})


def test_a_full_answer_is_read() -> None:
    raw = _probe_answer("noise a sitecustomize printed\n" + answer(location="/p/pkg.egg-info", import_roots=["/p"],
                                                                    remapped={}, entry_points="[console_scripts]\n"))
    assert raw is not None and raw["packages"][0]["import_roots"] == ["/p"]


@pytest.mark.parametrize("package", [
    {"location": 3}, {"import_roots": "/p"}, {"import_roots": [1]}, {"remapped": ["pkg"]}, {"remapped": {"a": 1}},
    {"name": None}, {"direct_url": "file:///p"}, {"extra": 1}, {"entry_points": ["x"]}, {"requires": "numpy"},
    {"requires": [1]}, {"requested": "yes"},
])
def test_a_malformed_package_makes_the_answer_unreadable(package: dict[str, Any]) -> None:
    assert _probe_answer(answer(**package)) is None


def test_an_answer_from_an_older_probe_is_unreadable() -> None:
    old = json.loads(answer())
    for pkg in old["packages"]:
        del pkg["location"], pkg["import_roots"], pkg["remapped"]
    assert _probe_answer(json.dumps(old)) is None


# --- where an editable install's code is imported from, on a hand-made site-packages ---------------------

def installed(site: Path, name: str, files: dict[str, str]) -> metadata.Distribution:
    """A distribution installed into ``site`` with ``files`` beside its dist-info, all listed in its RECORD."""
    info = site / f"{name}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    for rel, text in files.items():
        (site / rel).write_text(text)
    (info / "RECORD").write_text("".join(f"{rel},,\n" for rel in [*files, f"{info.name}/METADATA"]))
    return metadata.PathDistribution(info)


def test_a_pth_path_line_is_an_import_root_and_an_import_line_is_not(tmp_path: Path) -> None:
    site, src = tmp_path / "site", tmp_path / "proj" / "src"
    src.mkdir(parents=True)
    dist = installed(site, "pkg", {"__editable__.pkg-0.1.pth": f"{src}\nimport os\n# a comment\n/does/not/exist\n"})

    assert probe_script.import_roots(dist, None, {str(site)}) == ([str(src)], {})


def test_a_relative_pth_line_is_read_from_the_pth_files_folder(tmp_path: Path) -> None:
    site = tmp_path / "site"
    (tmp_path / "proj").mkdir()
    dist = installed(site, "pkg", {"pkg.pth": "../proj\n"})

    assert probe_script.import_roots(dist, None, {str(site)})[0] == [str(tmp_path / "proj")]


@pytest.mark.parametrize("annotated", [True, False])  # setuptools >= 69 annotates MAPPING, older ones do not
def test_a_setuptools_finder_mapping_gives_the_folder_above_each_package(tmp_path: Path, annotated: bool) -> None:
    site, proj = tmp_path / "site", tmp_path / "proj"
    (proj / "pkg").mkdir(parents=True)
    (proj / "tool.py").write_text("")
    mapping = {"pkg": str(proj / "pkg"), "tool": str(proj / "tool.py"), "other": str(proj / "lib")}
    finder = f"import sys\nMAPPING{': dict[str, str]' if annotated else ''} = {mapping!r}\nNAMESPACES = {{}}\n"
    dist = installed(site, "pkg", {"__editable__.pkg-0.1.pth": "import __editable___pkg_0_1_finder\n",
                                   "__editable___pkg_0_1_finder.py": finder})

    roots, remapped = probe_script.import_roots(dist, None, {str(site)})

    assert roots == [str(proj)]
    assert remapped == {"other": str(proj / "lib")}


def test_a_legacy_egg_info_is_imported_from_its_folder(tmp_path: Path) -> None:
    leftover_egg_info(tmp_path / "proj", "legpkg")
    info = tmp_path / "proj" / "legpkg.egg-info"
    dist = metadata.PathDistribution(info)

    assert probe_script.import_roots(dist, str(info), set()) == ([str(tmp_path / "proj")], {})


def test_without_install_files_the_import_system_is_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site, proj = tmp_path / "site", tmp_path / "proj"
    (proj / "findme_pkg").mkdir(parents=True)
    (proj / "findme_pkg" / "__init__.py").write_text("")
    dist = installed(site, "findme-pkg", {})
    (site / "findme-pkg-0.1.dist-info" / "top_level.txt").write_text("findme_pkg\n")
    monkeypatch.syspath_prepend(str(proj))

    assert probe_script.import_roots(dist, None, {str(site)}) == ([str(proj)], {})


def test_site_packages_itself_is_never_an_import_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # hatchling's exact mode: an import line and a module of its own in site-packages, nothing else to read.
    site = tmp_path / "site"
    dist = installed(site, "hat", {"_hat.pth": "import _editable_impl_hat\n", "_editable_impl_hat.py": ""})
    monkeypatch.syspath_prepend(str(site))

    assert probe_script.import_roots(dist, None, {str(site)}) == ([], {})
