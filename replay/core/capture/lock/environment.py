"""The Python environment of a capture: which packages, locked with hashes, and their wheels."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from replay.core.capture.leftovers import BUILD_FILES
from replay.core.capture.projectcode import parse_entry_points
from replay.core.events import NullReporter, Reporter
from replay.core.ports import Locker
from replay.core.pyenv import (
    InstalledPackage,
    Interpreter,
    Target,
    parse_lock,
    pin_local_wheel,
    render_local_pins,
    wheel_version,
)
from replay.errors import BadInput
from replay.manifest import LOCK_NAME, Package, ProjectPackage

if TYPE_CHECKING:
    from replay.core.capture.lock.files import TakenLock

_NESTED = ("-r", "-c", "-e", "--requirement", "--constraint", "--editable")


@dataclass
class LockedEnvironment:
    lock_text: str
    packages: list[Package]
    wheels: list[Path]
    project_paths: list[str] = field(default_factory=list)
    project_packages: list[ProjectPackage] = field(default_factory=list)
    scratch: tempfile.TemporaryDirectory[str] | None = None  # holds locally built wheels until the build

    def cleanup(self) -> None:
        if self.scratch is not None:
            self.scratch.cleanup()


def lock_environment(
    interp: Interpreter,
    project_root: Path,
    stage: Path,
    target: Target,
    locker: Locker,
    requirements: Path | None = None,
    use_cache: bool = True,
    taken: TakenLock | None = None,
    reporter: Reporter | None = None,
) -> LockedEnvironment:
    """Lock the environment into ``stage``/requirements.lock and gather one wheel per locked package.

    ``taken``: an existing lock file, already checked against the interpreter (``replay.core.capture.lock.source``),
    is the lock as it is: pip-compile does not run.
    """
    report = reporter or NullReporter()
    sources = classify(interp, project_root)
    local_sources = sources.local_sources
    if taken is not None:
        requirements_in = ""
    elif requirements is not None:
        requirements_in = _read_requirements(requirements)
        local_sources = []  # the requirements file names every package the image gets
    else:
        if sources.vcs:
            pkg = sources.vcs[0]
            raise BadInput(
                f"package {pkg.name} was installed from a VCS URL ({(pkg.direct_url or {}).get('url')})",
                "replay cannot fetch it offline: install it from an index or a local wheel, "
                "or pass --requirements FILE",
            )
        requirements_in = "".join(f"{p}\n" for p in sources.pins)
    project_paths = sources.project_paths

    lock_text = ""
    if taken is not None:
        lock_text = taken.text
    elif requirements_in.strip():
        lock_text = locker.compile(stage, requirements_in, LOCK_NAME, use_cache=use_cache,
                                   on_status=lambda now: report.status("locking", now))
    else:
        (stage / "requirements.in").write_text(requirements_in)
    reqs = taken.reqs if taken is not None else parse_lock(lock_text)
    wheels = locker.fetch_wheels(
        reqs, target, on_status=lambda now: report.status("downloading wheels", now),
        on_bytes=lambda done: report.progress("downloading wheels", done)) if reqs else []
    packages = [Package(r.name, r.version or wheel_version(w), "url" if r.url else "index")
                for r, w in zip(reqs, wheels, strict=True)]

    scratch = None
    if local_sources:
        scratch = tempfile.TemporaryDirectory(prefix="replay-wheels-")
        local_reqs = []
        for index, source in enumerate(local_sources):
            out = Path(scratch.name) / str(index)
            out.mkdir()
            wheel = locker.build_wheel(source, interp.executable, out)
            wheels.append(wheel)
            local_reqs.append(pin_local_wheel(wheel))
            packages.append(Package(local_reqs[-1].name, local_reqs[-1].version, "local-wheel"))
        lock_text += render_local_pins(local_reqs)
    (stage / LOCK_NAME).write_text(lock_text or "# no packages beyond the standard library\n")
    packages.sort(key=lambda p: p.name.lower())
    return LockedEnvironment(lock_text, packages, wheels, project_paths, sources.project, scratch)


@dataclass
class PackageSources:
    """Where each installed package will come from in the image."""

    pins: list[str] = field(default_factory=list)  # NAME==VERSION, locked from the index
    project: list[ProjectPackage] = field(default_factory=list)  # the project's own code, from the snapshot
    local_sources: list[Path] = field(default_factory=list)  # local folders or wheels, built into wheels here
    vcs: list[InstalledPackage] = field(default_factory=list)  # installed from a VCS URL: not fetchable offline

    @property
    def project_paths(self) -> list[str]:
        """Every project package's import roots, sorted, once each."""
        return sorted({path for pkg in self.project for path in pkg.paths})



def classify(interp: Interpreter, project_root: Path) -> PackageSources:
    """Sort the interpreter's packages: index pins, the project's own code, local paths, VCS.

    - installed editable from a folder inside the project: the project's own code, imported in the image from
      the snapshot at the folders the interpreter imports it from (``InstalledPackage.import_roots``);
    - metadata the interpreter finds in a .egg-info outside site-packages, inside the project (a legacy
      ``setup.py develop``, whose egg-link has no direct_url.json): the project's own code too;
    - any other local folder or wheel (an editable install outside the project, a non-editable install from
      a path, a legacy develop elsewhere): built into a wheel here;
    - everything else is pinned from the index.
    """
    out = PackageSources()
    root = project_root.resolve()
    for pkg in interp.packages:
        path = pkg.local_path
        develop = _legacy_develop(pkg)
        if pkg.vcs:
            out.vcs.append(pkg)
        elif path is not None and pkg.editable and _inside(path, root):
            out.project.append(_project_package(pkg, path.resolve(), root, "editable"))
        elif path is None and develop is not None and _inside(develop, root):
            out.project.append(_project_package(pkg, develop, root, "develop"))
        elif path is not None:
            out.local_sources.append(path)
        elif develop is not None:
            out.local_sources.append(develop)
        else:
            out.pins.append(f"{pkg.name}=={pkg.version}")
    return out


def _legacy_develop(pkg: InstalledPackage) -> Path | None:
    """The project folder of a legacy develop install: its .egg-info found outside site-packages (the probe
    then reports import roots for it), with build files (``leftovers.BUILD_FILES``) beside it or one folder
    up for a src/ layout; else None."""
    if pkg.direct_url is not None or pkg.import_roots is None or not (pkg.location or "").endswith(".egg-info"):
        return None
    folder = Path(str(pkg.location)).resolve().parent
    for candidate in (folder, folder.parent):
        if any((candidate / name).is_file() for name in BUILD_FILES):
            return candidate
    return None


def _project_package(pkg: InstalledPackage, source: Path, root: Path, kind: str) -> ProjectPackage:
    if pkg.remapped:
        name, folder = sorted(pkg.remapped.items())[0]
        raise BadInput(
            f"package {pkg.name} maps its module {name} to {folder}, a folder of another name "
            "(setuptools' package_dir): the image cannot import it from the code snapshot",
            f"name the folder {name}/ (or use a src/ layout) and reinstall with `pip install -e {source}`",
        )
    paths = [_relative(Path(r), root) for r in pkg.import_roots or [] if _inside(Path(r), root)]
    if not paths:
        # The probe found nothing it imports from (an editable backend replay does not know): guess the
        # two layouts every backend uses.
        paths = [_relative(source, root)] + ([_relative(source / "src", root)] if (source / "src").is_dir() else [])
    return ProjectPackage(pkg.name, pkg.version, paths, kind, parse_entry_points(pkg.entry_points or ""))


def _relative(path: Path, root: Path) -> str:
    return path.resolve().relative_to(root).as_posix() or "."


def _read_requirements(path: Path) -> str:
    if not path.is_file():
        raise BadInput(f"requirements file {path} does not exist", "pass --requirements with an existing file")
    text = path.read_text()
    for line in text.splitlines():
        if line.strip().split(" ")[0] in _NESTED:
            raise BadInput(
                f"requirements file {path} refers to other files ({line.strip()})",
                "pass one flattened file (pip-compile or `pip freeze` output)",
            )
    return text


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
        return True
    except ValueError:
        return False
