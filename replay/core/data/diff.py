"""How two data manifests differ, file by file and link by link (``replay manifest --check``, verify's
data check). Every list comes out sorted by path."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from replay.manifest import DataManifest, FileEntry, LinkEntry


@dataclass
class ManifestDiff:
    missing: list[FileEntry] = field(default_factory=list)
    changed: list[tuple[FileEntry, FileEntry]] = field(default_factory=list)  # (expected, actual)
    extra: list[FileEntry] = field(default_factory=list)
    # Links that are not the recorded ones, or that leave their root: (path, what is wrong).
    links: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.changed or self.extra or self.links)

    def summary(self) -> str:
        """E.g. "2 missing, 1 changed, 0 extra"."""
        text = f"{len(self.missing)} missing, {len(self.changed)} changed, {len(self.extra)} extra"
        return text + (f", {len(self.links)} links" if self.links else "")

    def problems(self) -> list[dict[str, object]]:
        """One flat record per file that differs, tagged with ``problem`` (for ``DataMismatch``)."""
        out = self.to_dict()
        found = [{"problem": kind, **record} for kind in ("missing", "changed", "extra") for record in out[kind]]
        return found + [{"problem": problem, "path": path} for path, problem in self.links]

    def to_dict(self) -> dict[str, Any]:
        out = {
            "ok": self.ok,
            "missing": [{"path": e.path, "expected_size": e.size, "expected_sha256": e.sha256} for e in self.missing],
            "changed": [
                {
                    "path": e.path,
                    "expected_size": e.size,
                    "actual_size": a.size,
                    "expected_sha256": e.sha256,
                    "actual_sha256": a.sha256,
                }
                for e, a in self.changed
            ],
            "extra": [{"path": a.path, "actual_size": a.size, "actual_sha256": a.sha256} for a in self.extra],
        }
        if self.links:  # only then: the document stays as it was for data without link problems
            out["links"] = [{"path": path, "problem": problem} for path, problem in self.links]
        return out


def diff_manifests(expected: DataManifest, actual: DataManifest) -> ManifestDiff:
    """Compare file by file, by recorded path; every list comes out sorted by path."""
    if expected.files == actual.files:  # the common case, unchanged data in the same (sorted) order: no maps
        return ManifestDiff()
    want = {f.path: f for f in expected.files}
    have = {f.path: f for f in actual.files}
    diff = ManifestDiff()
    for path in sorted(want.keys() | have.keys()):
        e, a = want.get(path), have.get(path)
        if e is None:
            diff.extra.append(have[path])
        elif a is None:
            diff.missing.append(e)
        elif (e.size, e.sha256) != (a.size, a.sha256):
            diff.changed.append((e, a))
    return diff


def diff_links(expected: list[LinkEntry] | None, found: list[LinkEntry]) -> list[tuple[str, str]]:
    """Links that leave their root (they would dangle in the container), and, where the capsule recorded
    its links, every link that is not the recorded one."""
    problems = {f.path: f"is a link to {f.target}, which leaves its data root (it would dangle in the container)"
                for f in found if not f.inside}
    if expected is not None:
        want = {e.path: e.target for e in expected}
        have = {f.path: f.target for f in found}
        for path in sorted(want.keys() | have.keys()):
            if want.get(path) != have.get(path) and path not in problems:
                was = f"a link to {want[path]}" if path in want else "not a link"
                now = f"a link to {have[path]}" if path in have else "not a link"
                problems[path] = f"was {was} at capture, and is {now} now"
    return sorted(problems.items())
