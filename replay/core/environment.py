"""The Python environment of a capture: which packages, locked with hashes, and their wheels."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

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
from replay.manifest import LOCK_NAME, Package

if TYPE_CHECKING:
    from replay.core.lock_source import TakenLock

_NESTED = ("-r", "-c", "-e", "--requirement", "--constraint", "--editable")


@dataclass
class LockedEnvironment:
    lock_text: str
    packages: list[Package]
    wheels: list[Path]
    project_paths: list[str] = field(default_factory=list)
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

    ``taken``: an existing lock file, already checked against the interpreter (``replay.core.lock_source``),
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
    return LockedEnvironment(lock_text, packages, wheels, sorted(project_paths), scratch)


@dataclass
class PackageSources:
    """Where each installed package will come from in the image."""

    pins: list[str] = field(default_factory=list)  # NAME==VERSION, locked from the index
    project_paths: list[str] = field(default_factory=list)  # the project's own code, from the snapshot
    local_sources: list[Path] = field(default_factory=list)  # local folders or wheels outside the project
    vcs: list[InstalledPackage] = field(default_factory=list)  # installed from a VCS URL: not fetchable offline


def classify(interp: Interpreter, project_root: Path) -> PackageSources:
    """Sort the interpreter's packages: index pins, the project's own editable code, local paths."""
    out = PackageSources()
    for pkg in interp.packages:
        path = pkg.local_path
        if pkg.vcs:
            out.vcs.append(pkg)
        elif path is not None and _inside(path, project_root):
            # The project's own code, installed editable: it comes from the code snapshot.
            out.project_paths.append(path.resolve().relative_to(project_root.resolve()).as_posix())
        elif path is not None:
            out.local_sources.append(path)
        else:
            out.pins.append(f"{pkg.name}=={pkg.version}")
    return out


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
