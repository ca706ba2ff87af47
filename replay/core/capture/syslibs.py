"""System libraries: what the environment's compiled code links against, and the Debian packages that give the
base image what it lacks.

1. ``scan``: the ``DT_NEEDED`` libraries of every shared object the environment's packages installed (their
   RECORD lists them) and of the interpreter, less those the environment brings itself (a wheel's own
   ``.libs`` folder, any library of the environment by file name or soname, RPATH/RUNPATH ``$ORIGIN`` folders).
2. ``base_libraries``: what the base image's dynamic linker finds (``ldconfig -p``, one short container run,
   cached by image ID, which never changes content).
3. ``plan``: the packages that provide the missing libraries (the capturing machine's dpkg names them: it runs
   the same Debian release), plus ``--apt`` ones, downloaded in a container of the base with apt (which checks
   that they install there, and resolves their versions and missing dependencies), cached by base and names.
   The environment image installs those ``.deb`` files offline (``dpkg -i``), so its build needs no network.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import shutil
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

from replay.core.capture.elf import ElfLinks, read_links
from replay.core.events import Reporter
from replay.core.limits import RunLimits
from replay.core.ports import Engine, Mount, RunSpec, SystemLibraries
from replay.core.pyenv import Interpreter
from replay.errors import BadInput, EnvironmentProblem
from replay.fsutil import atomic_write_text, cache_root
from replay.manifest import LibraryNeed, SystemPackage
from replay.manifest_rules import DEB_NAME

_MAX_RECORD = 64 << 20  # bytes of one RECORD file read at most
_LDCONFIG_LINE = re.compile(r"^\s*(\S+) \(([^)]*)\) => (/\S+)$")
# name_version_arch.deb, as apt names what it downloads (an epoch's ':' written %3a)
_DEB_FILE = re.compile(r"^([a-z0-9][a-z0-9+.-]+)_([0-9A-Za-z.+~%-]+)_([a-z0-9-]+)\.deb$")
_APT = "apt-get -q -o APT::Sandbox::User=root"
INTERPRETER = "python"  # the "package" an interpreter's own need is reported under


@dataclass
class SystemPlan:
    packages: list[SystemPackage] = field(default_factory=list)
    debs: list[Path] = field(default_factory=list)  # the .deb files the image installs, in the cache


def ldconfig_names(text: str) -> dict[str, list[str]]:
    """``ldconfig -p`` output -> {soname: [paths]}, 64-bit entries only ("libc6,x86-64", "libc6,AArch64"):
    the 32-bit ones ("libc6") cannot serve a 64-bit interpreter."""
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        match = _LDCONFIG_LINE.match(line)
        if match and "64" in match.group(2):
            out.setdefault(match.group(1), []).append(match.group(3))
    return out


# --- 1. what the environment needs --------------------------------------------------------------------------


def scan(interp: Interpreter) -> list[LibraryNeed]:
    """The libraries the environment's compiled code needs and does not bring itself, one per (library,
    package), sorted."""
    provided: set[str] = set()
    wanted: list[LibraryNeed] = []
    for package, path in _shared_objects(interp):
        links = _links(path)
        if links is None:
            continue
        provided.add(path.name)
        if links.soname:
            provided.add(links.soname)
        wanted.extend(LibraryNeed(lib, package) for lib in links.needed if not _in_rpath(lib, links.rpath, path))
    exe = _links(Path(os.path.realpath(interp.executable)))
    if exe is not None:
        # The image runs the base's own interpreter: the capturing one's libpython is not needed there.
        wanted.extend(LibraryNeed(lib, INTERPRETER) for lib in exe.needed if not lib.startswith("libpython"))
    unique = {(n.library, n.package): n for n in wanted if n.library not in provided}
    return [unique[k] for k in sorted(unique)]


def _shared_objects(interp: Interpreter) -> list[tuple[str, Path]]:
    """(package name, file) of every shared object the interpreter's installed packages list in RECORD."""
    out = []
    for pkg in interp.packages:
        if not pkg.location or not pkg.location.endswith(".dist-info") or pkg.import_roots:
            continue
        meta = Path(pkg.location)
        for rel in _record_paths(meta / "RECORD"):
            name = rel.rsplit("/", 1)[-1]
            if name.endswith(".so") or ".so." in name:
                full = Path(os.path.normpath(meta.parent / rel))
                if full.is_relative_to(meta.parent):  # a RECORD is the wheel's word: never leave the site
                    out.append((pkg.name, full))
    return out


def _record_paths(record: Path) -> list[str]:
    try:
        with record.open(encoding="utf-8", errors="replace", newline="") as handle:
            text = handle.read(_MAX_RECORD)
    except OSError:
        return []
    try:
        return [row[0] for row in csv.reader(text.splitlines()) if row and row[0] and not row[0].startswith("/")]
    except csv.Error:
        return []


def _links(path: Path) -> ElfLinks | None:
    """The file's ELF links, read without following a link out of a regular file; None for anything else."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            return None
        return read_links(handle, info.st_size)


def _in_rpath(library: str, rpath: list[str], path: Path) -> bool:
    """Whether ``library`` lies in one of the file's own ``$ORIGIN``-relative search folders."""
    for entry in rpath:
        if "$ORIGIN" in entry or "${ORIGIN}" in entry:
            folder = entry.replace("${ORIGIN}", str(path.parent)).replace("$ORIGIN", str(path.parent))
            if (Path(folder) / library).exists():
                return True
    return False


# --- 2. what the base has -----------------------------------------------------------------------------------


def base_libraries(engine: Engine, image_id: str) -> set[str]:
    """The sonames the base image's dynamic linker finds; cached by image ID."""
    cache = cache_root() / "bases" / f"{image_id.replace(':', '-')}.libs.json"
    try:
        return set(json.loads(cache.read_text()))
    except (FileNotFoundError, ValueError, TypeError):
        pass
    names = set(ldconfig_names(engine.probe(image_id, ["/sbin/ldconfig", "-p"])))
    atomic_write_text(cache, json.dumps(sorted(names)))
    return names


# --- 3. the packages --------------------------------------------------------------------------------------


def plan(interp: Interpreter, base_id: str, apt: list[str], engine: Engine, system: SystemLibraries | None,
         reporter: Reporter) -> SystemPlan:
    """The system packages the image needs beyond the base (refused, exit 2, when a library has no package)."""
    check_names(apt)
    needs = scan(interp)
    missing = [n for n in needs if n.library not in base_libraries(engine, base_id)] if needs else []
    wanted: dict[str, list[LibraryNeed]] = {name: [LibraryNeed("", "--apt")] for name in apt}
    for need in missing:
        provider = system.provider(need.library) if system else None
        if provider is None:
            raise BadInput(
                f"{need.library}, which {_who(need)} needs, is not in the base image and no Debian package "
                "on this machine provides it",
                "pass --apt PACKAGE with the package that provides it, or --base IMAGE with an image that has it",
            )
        wanted.setdefault(provider, []).append(need)
    if not wanted:
        return SystemPlan()
    reporter.stage("fetching system packages: " + ", ".join(sorted(wanted)))
    folder = _download(engine, base_id, sorted(wanted), reporter)
    return _read_plan(folder, wanted)


def check_names(apt: list[str]) -> None:
    """``--apt`` names, refused before anything slow when they are not Debian package names."""
    for name in apt:
        if not DEB_NAME.fullmatch(name):
            raise BadInput(f"--apt {name!r} is not a Debian package name",
                           "pass a package name such as ffmpeg (lower case: letters, digits, + - .)")


def _who(need: LibraryNeed) -> str:
    return "the interpreter" if need.package == INTERPRETER else f"the Python package {need.package}"


def _download(engine: Engine, base_id: str, names: list[str], reporter: Reporter) -> Path:
    """The .deb files apt in a container of the base downloads for ``names``, with versions.tsv: the
    installed version of those the base already has. Cached by base and names."""
    key = hashlib.sha256(json.dumps([base_id, names]).encode()).hexdigest()[:16]
    folder = cache_root() / "apt" / key
    if (folder / "versions.tsv").is_file():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=folder.parent))
    words = " ".join(names)
    script = (f"mkdir -p /out/partial && {_APT} update >/dev/null && {_APT} install --download-only -y "
              f"--no-install-recommends -o Dir::Cache::archives=/out {words} && rm -rf /out/partial /out/lock && "
              f"(dpkg-query -W -f='${{Package}}\\t${{Version}}\\n' {words} 2>/dev/null; true) > /out/versions.tsv "
              f"&& chown -R {os.getuid()}:{os.getgid()} /out")
    spec = RunSpec(image=base_id, argv=["sh", "-c", script], workdir="/", user="0:0", network=True,
                   read_only_root=False, mounts=[Mount(str(scratch), "/out", read_only=False)],
                   limits=RunLimits(timeout_s=600))
    tail: list[str] = []
    try:
        def hear(line: str) -> None:
            tail.append(line)
            reporter.log(line)

        result = engine.run(spec, hear)
        if result.exit_code != 0 or not (scratch / "versions.tsv").is_file():
            last = next((t for t in reversed(tail) if t.startswith("E:")), tail[-1] if tail else "no output")
            if "Unable to locate package" in last:
                raise BadInput(f"apt finds no package {last.rsplit(' ', 1)[-1]} for the base image",
                               "check the name given to --apt (or `apt` in [tool.replay])")
            raise EnvironmentProblem(
                f"apt in the base image could not fetch {words} ({last.strip()[:200]})",
                "check that containers reach the Debian mirror over http, or pass --base IMAGE with them installed",
            )
        os.replace(scratch, folder)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return folder


def _read_plan(folder: Path, wanted: dict[str, list[LibraryNeed]]) -> SystemPlan:
    versions: dict[str, str] = {}
    debs = []
    for entry in sorted(folder.iterdir()):
        match = _DEB_FILE.match(entry.name)
        if match and entry.is_file() and not entry.is_symlink():
            versions[match.group(1)] = unquote(match.group(2))
            debs.append(entry)
    for line in (folder / "versions.tsv").read_text(errors="replace").splitlines()[:1000]:
        name, _, version = line.partition("\t")
        if name in wanted and version:
            versions.setdefault(name, version)  # already in the base: nothing downloaded, its version recorded
    packages = [SystemPackage(name, versions.get(name, ""), wanted.get(name, [])) for name in
                sorted({*versions, *wanted})]
    return SystemPlan(packages=[p for p in packages if p.version], debs=debs)
