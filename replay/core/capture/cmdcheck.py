"""The command resolves in the image: checked in the built environment image before the capsule is written.

``argv[0]`` must be a program on the image's PATH or a file of the code snapshot; for ``python SCRIPT`` the
script must be a file there, for ``python -m MODULE`` the module must be found in the snapshot or the
environment (located, never imported: importing a package runs its code). The same short container run (no
network) checks that the image holds the system packages at the versions recorded (its dpkg database).
"""

from __future__ import annotations

import json

from replay.core import layout
from replay.core.ports import Engine
from replay.errors import BadInput, EnvironmentProblem
from replay.manifest import RunCommand, SystemPackage

# Runs in the image's own python3 (the virtualenv's, first on its PATH): standard library only. Arguments: the
# system packages as JSON {name: version}, the workdir, the command. Prints one JSON line: {"command": null or
# [what, name] for the first thing missing, "packages": ["name=version" the dpkg database does not hold]}.
PROBE = r"""
import importlib.machinery, importlib.util, json, os, re, shutil, sys

def module_missing(name):
    parts = name.split(".")
    if parts[0] in sys.builtin_module_names:
        return False
    try:
        spec = importlib.machinery.PathFinder.find_spec(parts[0], sys.path) or importlib.util.find_spec(parts[0])
        for part in parts[1:]:
            places = spec.submodule_search_locations if spec else None
            spec = importlib.machinery.PathFinder.find_spec(part, list(places)) if places else None
    except (ImportError, ValueError):
        return True
    return spec is None

def python_target(args):
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in ("-c", "-"):
            return None
        if arg == "-m" or (arg.startswith("-m") and not arg.startswith("--")):
            module = arg[2:] or (args[i + 1] if i + 1 < len(args) else "")
            return ["module", module] if not module or module_missing(module) else None
        if arg in ("-W", "-X"):
            i += 2
            continue
        if arg.startswith("-"):
            i += 1
            continue
        return None if os.path.isfile(arg) else ["script", arg]
    return None

def problem(argv):
    prog = argv[0]
    if "/" in prog:
        if not os.path.isfile(prog):
            return ["program", prog]
    elif shutil.which(prog) is None and not os.path.isfile(prog):
        return ["program", prog]
    if re.fullmatch(r"python(3(\.[0-9]+)?)?", os.path.basename(prog)):
        return python_target(argv[1:])
    return None

def installed():
    found = {}
    try:
        with open("/var/lib/dpkg/status", encoding="utf-8", errors="replace") as handle:
            text = handle.read(64 << 20)
    except OSError:
        return found
    for para in text.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in para.splitlines() if ": " in line and not line[0].isspace())
        if fields.get("Status", "").endswith(" installed") and "Package" in fields:
            found[fields["Package"]] = fields.get("Version", "")
    return found

wanted = json.loads(sys.argv[1])
have = installed() if wanted else {}
missing = sorted(n + "=" + v for n, v in wanted.items() if have.get(n) != v)
try:
    os.chdir(sys.argv[2])
    sys.path.insert(0, os.getcwd())
    found = problem(sys.argv[3:])
except OSError:
    found = ["workdir", sys.argv[2]]
print(json.dumps({"command": found, "packages": missing}))
"""


def check_image(engine: Engine, image: str, command: RunCommand, packages: list[SystemPackage]) -> None:
    """Refuse (exit 2) a command that cannot start in ``image``, naming what is missing; an image without the
    system packages recorded is an environment problem (exit 3)."""
    workdir = layout.container_path(command.workdir)
    wanted = json.dumps({p.name: p.version for p in packages})
    out = engine.probe(image, ["python3", "-c", PROBE, wanted, workdir, *command.argv])
    try:
        answer = json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError):
        answer = None
    if not isinstance(answer, dict):
        raise EnvironmentProblem("the built image did not answer the command check (no python3 on its PATH?)",
                                 "pass --base with an image that has Python 3 on PATH")
    missing = answer.get("packages")
    if missing:
        raise EnvironmentProblem(f"the built image lacks the system packages {', '.join(map(str, missing))[:300]}",
                                 "capture again with --no-cache")
    found = answer.get("command")
    if isinstance(found, list) and len(found) == 2 and all(isinstance(x, str) for x in found):
        raise _missing(found[0], found[1][:200], command)


def _missing(what: str, name: str, command: RunCommand) -> BadInput:
    where = command.workdir if command.workdir not in ("", ".") else "the project root"
    if what == "program":
        return BadInput(f"{name} is not a program in the image (not on its PATH, not a file of the code snapshot)",
                        "check the spelling of the command after --, or add the Debian package that provides it "
                        "with --apt PACKAGE")
    if what == "script":
        return BadInput(f"{name} is not a file of the code snapshot (the command runs in {where})",
                        "check the script's path after --; the snapshot holds the files git tracks and untracked "
                        "files it does not ignore")
    if what == "module":
        return BadInput(f"module {name or '(none)'} is not in the code snapshot or the environment",
                        "check the module name after -m, or install its package in the training environment")
    return BadInput(f"the command's folder {name} is not in the image", "run capture from inside the project")
