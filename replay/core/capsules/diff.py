"""`replay diff A B`: two capsules' manifests side by side, as what differs underneath, section by section.

Pure: two loaded ``Manifest``s in, a ``CapsuleDiff`` out. Sections come in the order a person chasing "it
worked on the cluster but not on my laptop" reads them: packages, system packages, base image, Python, data, code, seed,
carried environment, capture hosts, then outputs and metrics. Nothing is read but the manifests (the lock
file's content is recorded there as its packages and its sha256).
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from replay.core.verify.diagnose import host_table
from replay.manifest import FileEntry, Manifest, Package

SCHEMA = "replay.capsule-diff"
SCHEMA_VERSION = 1

SECTIONS = ("packages", "system_packages", "base_image", "python", "data", "code", "seed", "environment", "command", "hosts",
            "outputs", "metrics")


@dataclass
class Change:
    item: str  # a package, a file, a field, a variable or a metric name
    change: str  # added | removed | changed
    a: Any = None
    b: Any = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class CapsuleDiff:
    a: str
    b: str
    sections: dict[str, list[Change]] = field(default_factory=dict)

    @property
    def same(self) -> bool:
        return not any(self.sections.values())

    def to_dict(self) -> dict[str, Any]:
        return {"schema": SCHEMA, "schema_version": SCHEMA_VERSION, "a": self.a, "b": self.b, "same": self.same,
                "sections": {name: [_finite(c.to_dict()) for c in self.sections.get(name, [])] for name in SECTIONS}}


def _finite(change: dict[str, Any]) -> dict[str, Any]:
    """Strict JSON: a NaN or infinite metric is written as the string "NaN", "Infinity" or "-Infinity"."""
    for side in ("a", "b"):
        value = change[side]
        if isinstance(value, float) and not math.isfinite(value):
            change[side] = "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    return change


def diff_manifests(a: Manifest, b: Manifest, label_a: str = "A", label_b: str = "B") -> CapsuleDiff:
    return CapsuleDiff(label_a, label_b, {
        "packages": _packages(a, b),
        "system_packages": _mapping({p.name: p.version for p in a.system_packages},
                                    {p.name: p.version for p in b.system_packages}),
        "base_image": _fields({"ref": a.image.base.ref, "id": a.image.base.id, "digest": a.image.base.digest,
                               "image": a.image.id, "platform": a.image.platform},
                              {"ref": b.image.base.ref, "id": b.image.base.id, "digest": b.image.base.digest,
                               "image": b.image.id, "platform": b.image.platform}),
        "python": _fields({"version": a.python.version, "implementation": a.python.implementation,
                           "lock_sha256": a.python.lock_sha256},
                          {"version": b.python.version, "implementation": b.python.implementation,
                           "lock_sha256": b.python.lock_sha256}),
        "data": _files(a.data.files, b.data.files) + _fields({"digest": a.data.digest}, {"digest": b.data.digest}),
        "code": _fields(_code(a), _code(b)),
        "seed": _fields({"seed": a.command.seed}, {"seed": b.command.seed}),
        "environment": _mapping(_carried(a), _carried(b)),
        "command": _fields({"argv": " ".join(a.command.argv), "workdir": a.command.workdir},
                           {"argv": " ".join(b.command.argv), "workdir": b.command.workdir}),
        "hosts": [Change(label, "changed", x, y) for label, x, y, differs in host_table(a.host, b.host) if differs],
        "outputs": _files(a.outputs.files, b.outputs.files),
        "metrics": _mapping(a.outputs.metrics, b.outputs.metrics),
    })


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()  # PEP 503: Foo_Bar and foo-bar are one package


def _all_packages(m: Manifest) -> dict[str, Package]:
    """The locked packages and the project's own (source "project": imported from the code snapshot)."""
    found = {_norm(p.name): p for p in m.python.packages}
    found.update({_norm(p.name): Package(p.name, p.version, "project") for p in m.python.project_packages})
    return found


def _packages(a: Manifest, b: Manifest) -> list[Change]:
    pa, pb = _all_packages(a), _all_packages(b)
    out = []
    for name in sorted(pa.keys() | pb.keys()):
        x, y = pa.get(name), pb.get(name)
        if x is None and y is not None:
            out.append(Change(y.name, "added", None, _pkg(y)))
        elif y is None and x is not None:
            out.append(Change(x.name, "removed", _pkg(x), None))
        elif x is not None and y is not None and (x.version, x.source) != (y.version, y.source):
            out.append(Change(x.name, "changed", _pkg(x), _pkg(y)))
    return out


def _pkg(p: Any) -> str:
    return p.version if p.source == "index" else f"{p.version} ({p.source})"


def _files(a: list[FileEntry], b: list[FileEntry]) -> list[Change]:
    fa, fb = {f.path: f for f in a}, {f.path: f for f in b}
    out = []
    for path in sorted(fa.keys() | fb.keys()):
        x, y = fa.get(path), fb.get(path)
        if x is None and y is not None:
            out.append(Change(path, "added", None, _file(y)))
        elif y is None and x is not None:
            out.append(Change(path, "removed", _file(x), None))
        elif x is not None and y is not None and (x.sha256, x.size) != (y.sha256, y.size):
            out.append(Change(path, "changed", _file(x), _file(y)))
    return out


def _file(f: FileEntry) -> str:
    return f"{f.size} B {f.sha256.removeprefix('sha256:')[:12]}"


def _mapping(a: dict[str, Any], b: dict[str, Any]) -> list[Change]:
    out = []
    for key in sorted(a.keys() | b.keys()):
        if key not in b:
            out.append(Change(key, "removed", a[key], None))
        elif key not in a:
            out.append(Change(key, "added", None, b[key]))
        elif a[key] != b[key] and not (a[key] != a[key] and b[key] != b[key]):  # NaN == NaN here
            out.append(Change(key, "changed", a[key], b[key]))
    return out


def _fields(a: dict[str, Any], b: dict[str, Any]) -> list[Change]:
    return [Change(k, "changed", a[k], b[k]) for k in a if a[k] != b[k]]


def _code(m: Manifest) -> dict[str, Any]:
    c = m.code
    return {"kind": c.kind, "commit": c.commit, "branch": c.branch, "dirty": c.dirty, "patch_sha256": c.patch_sha256,
            "snapshot_digest": c.snapshot_digest, "files": c.files}


def _carried(m: Manifest) -> dict[str, Any]:
    env: dict[str, Any] = {k: ("(secret, read at verify)" if v is None else v) for k, v in m.command.env.items()}
    return env | {k: v for k, v in m.command.numerics_env.items() if k not in env}
