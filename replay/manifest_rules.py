"""What the values of a replay.json may be, beyond their types: paths, variable names, seeds, fixed names.

A capsule from someone else is untrusted input. Its paths decide where verify creates folders and what it
mounts into a container, and its variables steer the replayed process, so every one is checked on load
(``replay.manifest.check``) and a manifest that breaks a rule is refused whole, with the field named (exit 2):

- Paths are POSIX, normalized (no ``.`` or empty segment, no trailing ``/``), with no ``..`` segment and no
  NUL. Outputs, metrics files, the workdir and project paths are relative to the project root; data roots
  and data files may be absolute (data recorded from outside the project), but never ``/`` itself.
- Every data file and recorded data link lies under one of the data roots, every output file under one of
  the output roots, and every metrics file is one of the output files.
- ``command.argv`` is a non-empty list of strings, the first one not empty; ``command.seed`` is one that
  PYTHONHASHSEED accepts (0 to ``SEED_MAX``).
- ``command.numerics_env`` holds only ``NUMERICS_VARS``; thread counts are positive integers (OpenMP's
  comma-separated list of them too), other values a conservative set of characters.
- ``command.env`` (carried with ``--env``) holds valid names, none that steers the dynamic loader, the
  shell or the interpreter, nor one that replay sets itself (``refused_env_name``); capture refuses the
  same names.
- A project package's name and version are a distribution name and a version (they name a folder in the
  image), and its paths follow the path rules above.
- Fields with one documented value hold only it: ``python.lock_file``, ``code.patch``,
  ``outputs.reference_dir``; the capsule ``name`` is what capture makes of one (``[a-z0-9._-]``).

The checks are plain string tests, a few per path, so that a manifest with a million data files loads in
about the time ``json.load`` takes to parse it.
"""

from __future__ import annotations

import re
from itertools import repeat

from replay.errors import ManifestError

# PYTHONHASHSEED takes only this range; Python refuses to start with anything else.
SEED_MAX = 4294967295

# Variables that change numerical results, recorded with their values at capture and set at replay.
THREAD_VARS = (
    "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS",
)
NUMERICS_VARS = THREAD_VARS + (
    "MKL_CBWR", "MKL_ENABLE_INSTRUCTIONS", "OPENBLAS_CORETYPE", "OPENBLAS_VERBOSE",
    "CUBLAS_WORKSPACE_CONFIG", "NVIDIA_TF32_OVERRIDE", "TF_DETERMINISTIC_OPS", "TF_CUDNN_DETERMINISTIC",
    "TZ", "LC_ALL", "LANG",
)

# A project package's name and version become a folder name in the image (NAME-VERSION.dist-info).
DIST_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,200}[A-Za-z0-9])?")
DIST_VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9.+!_-]{0,200}")
DEB_NAME = re.compile(r"[a-z0-9][a-z0-9+.-]{1,100}")  # Debian policy 5.6.1
DEB_VERSION = re.compile(r"[0-9][A-Za-z0-9.+~:-]{0,100}")  # 5.6.12: [epoch:]upstream[-revision]
# Entry points of a project package. A console script's name becomes a file name in the image's bin/: no
# '/', never '.' or '..'; a reference is importable dotted names, nothing a script could smuggle code in.
ENTRY_GROUP = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,200}")
ENTRY_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]{0,200}")
ENTRY_REF = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*(?::[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)?", re.ASCII)
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Names that steer the dynamic loader, the shell or the interpreter of the replayed command, or that
# replay sets itself (HOME, PYTHONHASHSEED, REPLAY_SEED): carrying one would change what runs, not what it
# computes.
REFUSED_ENV_NAMES = frozenset({"PATH", "HOME", "BASH_ENV", "ENV", "IFS", "SHELLOPTS", "BASHOPTS", "PS4",
                               "PROMPT_COMMAND"})
REFUSED_ENV_PREFIXES = ("LD_", "DYLD_", "PYTHON", "REPLAY_")

_THREADS = re.compile(r"[1-9][0-9]{0,5}(?:,[1-9][0-9]{0,5})*")
# Locale names, time zones (including POSIX rules such as "<+0330>-3:30"), "AUTO,STRICT", ":4096:8".
_NUMERICS_VALUE = re.compile(r"[A-Za-z0-9_.,:/+=@<>-]{0,256}")
CAPSULE_NAME = re.compile(r"[a-z0-9](?:[a-z0-9._-]{0,126}[a-z0-9])?")

HINT = "recapture the run; a capsule edited by hand is refused rather than replayed"


def refused_env_name(name: str) -> str | None:
    """Why ``name`` may not be carried into the replay, or None when it may."""
    if not ENV_NAME.fullmatch(name):
        return "is not a variable name"
    upper = name.upper()
    if upper in REFUSED_ENV_NAMES or upper.startswith(REFUSED_ENV_PREFIXES):
        return "steers the loader, shell or interpreter (or replay sets it itself), not the training"
    return None


def numerics_value_problem(name: str, value: str) -> str | None:
    """Why ``value`` is not a well-formed value of numerics variable ``name``, or None."""
    if name in THREAD_VARS:
        return None if _THREADS.fullmatch(value) else "is not a positive thread count"
    return None if _NUMERICS_VALUE.fullmatch(value) else "holds characters a numerics setting never has"


def path_problem(path: str, absolute: bool = False) -> str | None:
    """Why ``path`` is not a normalized recorded path (relative, or absolute where allowed), or None."""
    if not path:
        return "is empty"
    if "\0" in path:
        return "holds a NUL byte"
    if path == ".":
        return None
    if path[0] == "/":
        if not absolute:
            return "is absolute"
        if path == "/":
            return "is the root folder"
        wrapped = path + "/"
    else:
        wrapped = "/" + path + "/"
    if "/../" in wrapped:
        return "has a '..' segment"
    if "//" in wrapped or "/./" in wrapped:
        return "is not normalized"
    return None


def check_paths(source: str, field: str, paths: list[str], absolute: bool = False) -> None:
    for i, path in enumerate(paths):
        problem = path_problem(path, absolute)
        if problem:
            fail(source, f"{field}[{i}]", path, problem)


def check_under_roots(source: str, field: str, paths: list[str], roots: list[str], absolute: bool = False) -> None:
    """Each path is valid and is a root or lies under one.

    The common case (relative, normalized paths under folder roots) is settled by a few tests over the whole
    list at C speed; anything else goes through the exact per-path loop, which names the first problem.
    """
    prefixes = tuple(r + "/" for r in roots if r != ".")
    if _all_normal_relative(paths) and ("." in roots or all(map(str.startswith, paths, repeat(prefixes)))):
        return
    exact = set(roots)
    any_relative = "." in exact
    for i, path in enumerate(paths):
        if path in exact:
            continue
        problem = path_problem(path, absolute)
        if problem:
            fail(source, f"{field}[{i}]", path, problem)
        if not (path.startswith(prefixes) or (any_relative and path[0] != "/")):
            fail(source, f"{field}[{i}]", path, "is not under any of the recorded roots")


def _all_normal_relative(paths: list[str]) -> bool:
    """Whether every path passes ``path_problem`` as a relative path other than "." (a conservative test:
    False sends the caller to the exact loop). Joined as ``/p1/NUL/p2/``, no ``//``, ``/./`` or ``/../``
    can span two paths, since none holds a NUL."""
    joined = "/\0/".join(paths)
    if "\0" in "".join(paths):
        return False
    wrapped = f"/{joined}/"
    return "//" not in wrapped and "/./" not in wrapped and "/../" not in wrapped


def check_fixed(source: str, field: str, value: str | None, allowed: tuple[str | None, ...]) -> None:
    if value not in allowed:
        shown = " or ".join("null" if a is None else repr(a) for a in allowed)
        fail(source, field, value, f"may only be {shown}")


def fail(source: str, field: str, value: object, problem: str) -> None:
    raise ManifestError(f"{source}.{field}: {_shown(value)} {problem}", HINT)


def _shown(value: object, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
