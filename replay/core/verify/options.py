"""The verifier's side of a replay, declared once: where it runs, its policy on top of the capsule's, and the
limits. ``verify``, a batch, a batch task (as JSON, on a node) and ``check`` all carry a ``ReplayOptions``."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from replay.core.limits import RunLimits
from replay.errors import BadInput

_TASK_HINT = "rerun the batch"


@dataclass
class ReplayOptions:
    cwd: Path
    data_map: dict[str, Path] = field(default_factory=dict)  # recorded data root -> where it is here
    tolerances: dict[str, str] = field(default_factory=dict)  # on top of the capsule's own
    ignore: list[str] = field(default_factory=list)  # on top of the capsule's own
    limits: RunLimits = field(default_factory=RunLimits)
    strict: bool = False  # --strict: the noise measured at capture (`capture --runs`) is not accepted

    def with_data(self, data_map: dict[str, Path]) -> ReplayOptions:
        """These options for one capsule whose data is where ``data_map`` says (a batch plan scopes --data
        and a bundle's data to each capsule's own roots)."""
        return replace(self, data_map=dict(data_map))

    def to_payload(self) -> dict[str, Any]:
        """As JSON for a batch task: paths as strings, the limits flat beside the policy."""
        strict = {"strict": True} if self.strict else {}  # absent when off: the payload's shape as it was
        return {"cwd": str(self.cwd), "data_map": {k: str(v) for k, v in self.data_map.items()},
                "tolerances": dict(self.tolerances), "ignore": list(self.ignore), **strict, **self.limits.to_payload()}

    @classmethod
    def from_payload(cls, raw: Any) -> ReplayOptions:
        """Read back from a task file, which sits in a shared folder others can write: every field checked."""
        if not isinstance(raw, dict):
            raise BadInput("replay task options are malformed", _TASK_HINT)
        policy = {"cwd", "data_map", "tolerances", "ignore", "strict"}
        cwd, data_map, tolerances, ignore = (raw.get(k) for k in ("cwd", "data_map", "tolerances", "ignore"))
        if not (isinstance(cwd, str) and _str_map(data_map or {}) and _str_map(tolerances or {})
                and isinstance(ignore or [], list) and all(isinstance(g, str) for g in ignore or [])
                and isinstance(raw.get("strict", False), bool)):
            raise BadInput("replay task options have the wrong types", _TASK_HINT)
        limits = RunLimits.from_payload({k: v for k, v in raw.items() if k not in policy})
        return cls(cwd=Path(cwd), data_map={k: Path(v) for k, v in (data_map or {}).items()},
                   tolerances=dict(tolerances or {}), ignore=list(ignore or []), limits=limits,
                   strict=bool(raw.get("strict", False)))


def _str_map(value: Any) -> bool:
    return isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())
