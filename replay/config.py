"""Team defaults from the project's pyproject.toml, ``[tool.replay]``; command-line options win.

Every command reads them the same way, from wherever in the project it runs: ``project_defaults`` finds the
project root (``find_project_root``) and loads and checks its table once.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from replay.core.batch.settings import BACKENDS, ENGINES
from replay.core.layout import check_seed
from replay.errors import BadInput

if TYPE_CHECKING:
    from replay.core.ports import SourceControl

_TOML_HINT = "fix the file or remove its [tool.replay] table"
_LISTS = ("data", "outputs", "metrics", "env", "ignore", "apt")
_BACKEND_STRINGS = ("backend", "partition", "time", "workdir")
_BACKEND_INTS = ("gpus", "jobs")


@dataclass
class ProjectDefaults:
    base: str | None = None
    python: str | None = None
    seed: int | None = None
    data: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    metrics: list[str] = field(default_factory=list)
    env: list[str] = field(default_factory=list)
    ignore: list[str] = field(default_factory=list)
    apt: list[str] = field(default_factory=list)  # Debian packages for the image no library scan can see
    tolerances: dict[str, str] = field(default_factory=dict)
    # Batch backend for `replay verify` (``backend = "slurm"``) and its options; the CLI's flags win.
    backend: str | None = None
    partition: str | None = None
    time: str | None = None
    gpus: int | None = None
    workdir: str | None = None
    jobs: int | None = None
    # The container engine (``engine = "podman"``); --engine wins; None: the one that answers.
    engine: str | None = None
    investigate: bool | int = False  # `replay verify --investigate` on every divergence (true: 4 extra replays)
    source: Path | None = None


def find_project_root(cwd: Path, vcs: SourceControl) -> Path:
    """The git work tree's top level; outside one, the nearest folder at or above ``cwd`` whose pyproject.toml
    has a ``[tool.replay]`` table; else ``cwd`` itself."""
    top = vcs.toplevel(cwd)
    if top is not None:
        return top
    here = cwd.resolve()
    for folder in (here, *here.parents):
        if _has_replay_table(folder / "pyproject.toml"):
            return folder
    return here


def project_defaults(cwd: Path, vcs: SourceControl) -> ProjectDefaults:
    """``[tool.replay]`` of the project ``cwd`` is in (see ``find_project_root``), checked: ``BadInput`` naming
    the file and the key when a value is wrong, from any folder of the project."""
    return load_defaults(find_project_root(cwd, vcs))


def _has_replay_table(path: Path) -> bool:
    """Whether ``path`` is a pyproject.toml with [tool.replay]; one that cannot be parsed but mentions it counts,
    so that ``load_defaults`` says what is wrong with it instead of the search passing it by."""
    try:
        if not path.is_file():
            return False
        text = path.read_text(errors="replace")
    except OSError:
        return False
    try:
        tool = tomllib.loads(text).get("tool", {})
    except (RecursionError, ValueError):
        return "tool.replay" in text
    return isinstance(tool, dict) and "replay" in tool


def load_defaults(root: Path) -> ProjectDefaults:
    path = root / "pyproject.toml"
    if not path.is_file():
        return ProjectDefaults()
    try:
        table: Any = tomllib.loads(path.read_text()).get("tool", {}).get("replay", {})
    except RecursionError:
        raise BadInput(f"{path} is not valid TOML (nested too deeply)", _TOML_HINT) from None
    except ValueError as exc:  # TOMLDecodeError, UnicodeDecodeError, an integer of over 4300 digits
        raise BadInput(f"{path} is not valid TOML ({exc})", _TOML_HINT) from None
    if not isinstance(table, dict):
        raise BadInput(f"{path}: [tool.replay] is not a table", "see the README's 'Team defaults'")
    known = {"base", "python", "seed", "tolerances", "engine", "investigate", *_LISTS, *_BACKEND_STRINGS,
             *_BACKEND_INTS}
    unknown = sorted(set(table) - known)
    if unknown:
        raise BadInput(f"{path}: unknown [tool.replay] key {unknown[0]!r}", f"use one of {', '.join(sorted(known))}")
    out = ProjectDefaults(source=path)
    for key in _LISTS:
        value = table.get(key, [])
        value = [value] if isinstance(value, str) else value
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise BadInput(f"{path}: [tool.replay] {key} must be a list of strings", f'e.g. {key} = ["..."]')
        setattr(out, key, value)
    tolerances = table.get("tolerances", {})
    if not isinstance(tolerances, dict):
        raise BadInput(f"{path}: [tool.replay] tolerances must be a table", 'e.g. tolerances = { accuracy = "1e-3" }')
    out.tolerances = _tolerances(tolerances, path)
    for key in ("base", "python"):
        if key in table:
            if not isinstance(table[key], str):
                raise BadInput(f"{path}: [tool.replay] {key} must be a string", f'e.g. {key} = "..."')
            setattr(out, key, table[key])
    for key in _BACKEND_STRINGS:
        if key in table:
            if not isinstance(table[key], str):
                raise BadInput(f"{path}: [tool.replay] {key} must be a string", f'e.g. {key} = "..."')
            setattr(out, key, table[key])
    if out.backend is not None and out.backend not in BACKENDS:
        raise BadInput(f"{path}: [tool.replay] backend {out.backend!r} is not a backend replay knows",
                       f"use one of: {', '.join(BACKENDS)}")
    if out.workdir is not None:
        out.workdir = str(root / out.workdir)  # relative to the project, wherever the command runs
    for key in _BACKEND_INTS:
        if key in table:
            value = table[key]
            if not isinstance(value, int) or isinstance(value, bool) or value < (0 if key == "gpus" else 1):
                raise BadInput(f"{path}: [tool.replay] {key} must be a {'non-negative' if key == 'gpus' else 'positive'}"
                               " integer", f"e.g. {key} = 4")
            setattr(out, key, value)
    if "engine" in table:
        if table["engine"] not in ENGINES:
            raise BadInput(f"{path}: [tool.replay] engine must be one of {', '.join(ENGINES)}", 'e.g. engine = "podman"')
        out.engine = table["engine"]
    if "investigate" in table:
        value = table["investigate"]
        if not isinstance(value, (bool, int)) or (not isinstance(value, bool) and not 0 <= value <= 20):
            raise BadInput(f"{path}: [tool.replay] investigate must be true, false or 0 to 20 extra replays",
                           "e.g. investigate = true")
        out.investigate = value
    if "seed" in table:
        seed = table["seed"]
        if not isinstance(seed, int) or isinstance(seed, bool):  # TOML true is a Python int too
            raise BadInput(f"{path}: [tool.replay] seed must be an integer", "e.g. seed = 7")
        out.seed = check_seed(seed)
    return out


def _tolerances(table: dict[str, Any], path: Path) -> dict[str, str]:
    """Metric name -> spec. A TOML dotted key (eval.loss = "1e-3") nests tables; read it as the dotted name."""
    out: dict[str, str] = {}
    for key, value in table.items():
        if isinstance(value, dict):
            out.update({f"{key}.{k}": v for k, v in _tolerances(value, path).items()})
        elif isinstance(value, str):
            out[str(key)] = value
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out[str(key)] = str(value)  # accuracy = 1e-6 means the absolute tolerance "1e-06"
        else:
            raise BadInput(f"{path}: [tool.replay] tolerances.{key} must be a string", f'e.g. {key} = "1e-3"')
    return out


def merge_capture_options(defaults: ProjectDefaults, *, data: list[str] | None = None, outputs: list[str] | None = None,
                          metrics: list[str] | None = None, seed: int | None = None, python: str | None = None,
                          base: str | None = None, env: list[str] | None = None, ignore: list[str] | None = None,
                          tolerances: list[tuple[str, str]] | None = None,
                          apt: list[str] | None = None) -> dict[str, Any]:
    """`replay capture`'s options over the project's defaults: a given option replaces its default, except
    tolerances, which add to (and per name override) the defaults. Keys are CaptureRequest's fields."""
    merged_tolerances = dict(defaults.tolerances)
    merged_tolerances.update(dict(tolerances or []))
    return {
        "data": data or defaults.data,
        "outputs": outputs or defaults.outputs,
        "metrics": metrics or defaults.metrics,
        "seed": seed if seed is not None else defaults.seed,
        "python": python or defaults.python or "python3",
        "python_named": bool(python or defaults.python),
        "base": base or defaults.base,
        "env": env or defaults.env,
        "ignore": ignore or defaults.ignore,
        "tolerances": merged_tolerances,
        "apt": sorted({*defaults.apt, *(apt or [])}),  # added to, like tolerances: both name what the image needs
    }
