"""The ``replay.task-result`` document a batch task writes (``replay.core.batch.task.task_result``, for the
local and the node task alike), and its one reader, ``TaskResult.from_dict``.

Keys, all present: ``schema`` ("replay.task-result"), ``schema_version`` (1), ``id`` (the task's), ``node``
(the host name it ran on), ``host`` (its ``HostInfo``, as in replay.json), ``started`` (epoch seconds),
``duration_s``, ``reports`` (one ``replay.verify-report`` per capsule of the task, in the task's order).

A result comes back from a node through a shared folder: it is read like any document from elsewhere, and
anything that does not fit is a ``ManifestError``, never a traceback.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from replay.core.verify.report import VerifyReport
from replay.errors import ManifestError
from replay.manifest import HostInfo
from replay.typedjson import build

RESULT_SCHEMA = "replay.task-result"
SCHEMA_VERSION = 1


@dataclass
class TaskResult:
    id: str
    node: str
    host: HostInfo
    started: float
    duration_s: float
    reports: list[VerifyReport] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"schema": RESULT_SCHEMA, "schema_version": SCHEMA_VERSION, "id": self.id, "node": self.node,
                "host": asdict(self.host), "started": self.started, "duration_s": self.duration_s,
                "reports": [r.to_dict() for r in self.reports]}

    @classmethod
    def from_dict(cls, raw: Any, source: str = "task result") -> TaskResult:
        if not isinstance(raw, dict) or raw.get("schema") != RESULT_SCHEMA:
            raise ManifestError(f"{source} is not a replay task result", "rerun the batch")
        if raw.get("schema_version") != SCHEMA_VERSION:
            raise ManifestError(f"{source} has task result version {raw.get('schema_version')!r}, not "
                                f"{SCHEMA_VERSION}", "run the task with the replay that wrote it")
        reports = raw.get("reports")
        if not isinstance(reports, list):
            raise ManifestError(f"{source}: reports: expected a list", "rerun the batch")
        return cls(
            id=build(str, raw.get("id"), f"{source}.id"), node=build(str, raw.get("node"), f"{source}.node"),
            host=build(HostInfo, raw.get("host"), f"{source}.host"),
            started=build(float, raw.get("started"), f"{source}.started"),
            duration_s=build(float, raw.get("duration_s"), f"{source}.duration_s"),
            reports=[VerifyReport.from_dict(r, source) for r in reports],
        )
