"""The batch plan: which capsules share an image, a data set, or the whole experiment. Pure data, no engine.

From the loaded capsules and the verifier's options, three groupings, each doing its work once:

- **images**: by the environment image (``image.environment_id``; ``image.id`` for capsules from before the
  split). Each is checked once (its members' thin capsule images by ID, a cheap inspect each).
- **data sets**: by recorded roots + tree digest + where those roots are on this machine. Each is checked
  once, through the stat cache.
- **experiments**: by ``experiment_key`` (environment, command, workdir, seed, carried environment, data
  digest) and the data set's place here. Each is replayed once, and that one replay is compared against each
  member's own references.

A capsule whose manifest cannot be read is in no group; it gets its error report without running anything.
"""

from __future__ import annotations

import hashlib
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from replay.core import layout
from replay.core.batch.task import experiment_key
from replay.core.limits import usable_cores
from replay.core.ports import ImageSource
from replay.display import short
from replay.errors import BadInput, ReplayError
from replay.manifest import Manifest
from replay.manifest_rules import THREAD_VARS

if TYPE_CHECKING:
    from replay.core.share.targets import ResolvedCapsule


@dataclass
class PlannedCapsule:
    index: int
    name: str  # how reports name it (a folder's name, FILE#NAME)
    path: Path  # the capsule folder, absolute
    source: str  # the target as written
    manifest: Manifest | None  # None when it could not be read (see ``error``)
    error: ReplayError | None = None
    data_map: dict[str, Path] = field(default_factory=dict)  # recorded root -> here, this capsule's roots only
    ensure_image: ImageSource | None = None
    bundle: Path | None = None  # where a remote node can load the image from (a bundle TARGET)
    pull: str | None = None  # or pull it (a REF@sha256 TARGET)
    timings: dict[str, float] = field(default_factory=dict)  # steps taken while resolving it (a "pull")
    image_group: str = ""
    data_group: str = ""
    experiment: str = ""

    @property
    def commit(self) -> str:
        if self.manifest is None:
            return ""
        code = self.manifest.code
        return code.commit or code.snapshot_digest


@dataclass
class Group:
    id: str  # "I1", "D1", "E1": short names for tables and reports
    key: str  # what the members share (an image ID, a data digest and its place, an experiment)
    members: list[int]  # capsule indices, in target order
    label: str = ""  # for humans: a short image ID, the data roots, the command


@dataclass
class Plan:
    capsules: list[PlannedCapsule]
    images: list[Group]
    data_sets: list[Group]
    experiments: list[Group]
    jobs: int

    @property
    def unreadable(self) -> list[PlannedCapsule]:
        return [c for c in self.capsules if c.manifest is None]

    def counts(self) -> dict[str, int]:
        """How much work the plan saves: each figure against ``capsules``."""
        return {"capsules": len(self.capsules), "images": len(self.images), "data_sets": len(self.data_sets),
                "experiments": len(self.experiments)}

    def to_dict(self) -> dict[str, Any]:
        return {
            "counts": self.counts(),
            "jobs": self.jobs,
            "images": [_group_dict(g, self) for g in self.images],
            "data_sets": [_group_dict(g, self) for g in self.data_sets],
            "experiments": [_group_dict(g, self) for g in self.experiments],
            "unreadable": [{"capsule": c.name, "error": c.error.one_line() if c.error else ""}
                           for c in self.unreadable],
        }


def _group_dict(g: Group, plan: Plan) -> dict[str, Any]:
    return {"id": g.id, "key": g.key, "label": g.label, "capsules": [plan.capsules[i].name for i in g.members]}


def environment_key(m: Manifest) -> str:
    """The image a capsule shares with others: its environment image, or its own for an old capsule."""
    return m.image.environment_id or m.image.id


def scoped_data_map(m: Manifest, data_map: dict[str, Path]) -> dict[str, Path]:
    """The --data mappings that name one of this capsule's recorded roots (the rest apply to others)."""
    return {root: local for root, local in data_map.items() if root in m.data.roots}


def data_key(m: Manifest, data_map: dict[str, Path], cwd: Path) -> str:
    """Recorded roots + digest + where the roots are here: equal keys, one data check serves both."""
    places = [str((data_map.get(root) or layout.local_path(root, cwd)).resolve()) for root in m.data.roots]
    return "|".join([m.data.digest, *(f"{r}={p}" for r, p in zip(m.data.roots, places, strict=True))])


def thread_pin(m: Manifest) -> int:
    """The largest thread count the capture pinned (OMP_NUM_THREADS and the like), 1 when none."""
    pins = [1]
    for var in THREAD_VARS:
        value = m.command.numerics_env.get(var, "")
        if value.strip().isdigit():
            pins.append(int(value))
    return max(pins)


def default_jobs(manifests: list[Manifest], cores: int | None = None) -> int:
    """Usable cores divided by the largest recorded thread pin among the experiments, at least 1."""
    cores = usable_cores() if cores is None else cores
    pin = max((thread_pin(m) for m in manifests), default=1)
    return max(1, cores // pin)


def load_capsules(found: Sequence[ResolvedCapsule], cwd: Path) -> list[PlannedCapsule]:
    """The resolved TARGETs' capsules, each opened (a capsule that cannot be read keeps its error, for its report)
    and numbered in order: what ``make_plan`` groups."""
    from replay.core.verify.pipeline import open_capsule

    out = []
    for index, item in enumerate(found):
        path = (item.path if item.path.is_absolute() else cwd / item.path).resolve()
        try:
            manifest, error = open_capsule(path).manifest, None
        except ReplayError as exc:
            manifest, error = None, exc
        out.append(PlannedCapsule(index, item.name, path, item.source, manifest, error, dict(item.data_map),
                                  item.ensure_image, bundle=item.bundle, pull=item.pull,
                                  timings=dict(item.timings)))
    return out


def make_plan(capsules: list[PlannedCapsule], cwd: Path, cli_data_map: dict[str, Path] | None = None,
              jobs: int | None = None, cores: int | None = None) -> Plan:
    """Group loaded capsules; ``cli_data_map`` (--data) applies to every capsule recording that root."""
    cli_data_map = cli_data_map or {}
    loaded = [c for c in capsules if c.manifest is not None]
    known_roots = {root for c in loaded for root in c.manifest.data.roots}  # type: ignore[union-attr]
    unknown = sorted(set(cli_data_map) - known_roots)
    if unknown and loaded:
        raise BadInput(f"--data {unknown[0]}=... names no recorded data path of any capsule",
                       f"recorded data paths: {', '.join(sorted(known_roots)) or 'none'}")
    images: dict[str, Group] = {}
    data_sets: dict[str, Group] = {}
    experiments: dict[tuple[Any, ...], Group] = {}
    for c in loaded:
        m = c.manifest
        assert m is not None
        c.data_map = {**c.data_map, **scoped_data_map(m, cli_data_map)}
        image = _join(images, environment_key(m), "I", c.index, short(environment_key(m)))
        data = _join(data_sets, data_key(m, c.data_map, cwd), "D", c.index, ", ".join(m.data.roots) or "(no data)")
        key = (experiment_key(m), data.key)
        experiment = _join(experiments, key, "E", c.index, shlex.join(m.command.argv))
        c.image_group, c.data_group, c.experiment = image.id, data.id, experiment.id
    if jobs is not None and jobs < 1:
        raise BadInput(f"--jobs {jobs} is not a positive number", "pass --jobs 1 or more, or leave it out")
    leaders = [capsules[g.members[0]].manifest for g in experiments.values()]
    chosen = jobs if jobs is not None else default_jobs([m for m in leaders if m is not None], cores)
    return Plan(capsules, list(images.values()), list(data_sets.values()), list(experiments.values()), chosen)


def _join(groups: dict[Any, Group], key: Any, prefix: str, index: int, label: str) -> Group:
    group = groups.get(key)
    if group is None:
        text = key if isinstance(key, str) else hashlib.sha256(repr(key).encode()).hexdigest()[:16]
        group = groups[key] = Group(f"{prefix}{len(groups) + 1}", text, [], label)
    group.members.append(index)
    return group

