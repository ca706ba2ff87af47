"""Team defaults from the project's pyproject.toml, ``[tool.replay]``; command-line options win."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from replay.errors import BadInput

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

_LISTS = ("data", "outputs", "metrics", "env", "ignore")


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
    tolerances: dict[str, str] = field(default_factory=dict)
    source: Path | None = None


def load_defaults(root: Path) -> ProjectDefaults:
    path = root / "pyproject.toml"
    if not path.is_file():
        return ProjectDefaults()
    try:
        table: Any = tomllib.loads(path.read_text()).get("tool", {}).get("replay", {})
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise BadInput(f"{path} is not valid TOML ({exc})", "fix the file or remove its [tool.replay] table") from None
    if not isinstance(table, dict):
        raise BadInput(f"{path}: [tool.replay] is not a table", "see the README's 'Team defaults'")
    known = {"base", "python", "seed", "tolerances", *_LISTS}
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
    out.tolerances = {str(k): str(v) for k, v in tolerances.items()}
    for key in ("base", "python"):
        if key in table:
            setattr(out, key, str(table[key]))
    if "seed" in table:
        if not isinstance(table["seed"], int):
            raise BadInput(f"{path}: [tool.replay] seed must be an integer", "e.g. seed = 7")
        out.seed = table["seed"]
    return out
