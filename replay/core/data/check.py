"""`replay manifest PATH... --check CAPSULE`: hash the asked paths and compare them with the part of the
capsule's data manifest they answer for (``check_against``, or ``DataCheck.load`` then ``run``), and say what
of it they covered."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from replay.core.data.diff import ManifestDiff, diff_manifests
from replay.core.data.hashing import hash_paths
from replay.core.data.statcache import StatCache
from replay.core.events import Reporter
from replay.errors import DataMismatch
from replay.manifest import DataManifest, load

CHECK_SCHEMA = "replay.data-check"

SHOWN = 3  # recorded paths named in the line before "and N more"


@dataclass(frozen=True)
class Coverage:
    """What a check of some paths covered of what the capsule records: a subset's match is no full match."""

    checked_files: int
    recorded_files: int
    # Recorded paths the check did not look at: a root none of whose files was asked for, else single files.
    not_checked: list[str] = field(default_factory=list)
    capsule_digest: str = ""

    @property
    def complete(self) -> bool:
        return not self.not_checked

    def to_dict(self) -> dict[str, object]:
        return {"complete": self.complete, "checked_files": self.checked_files, "recorded_files": self.recorded_files,
                "not_checked": list(self.not_checked)}

    def line(self, actual_digest: str) -> str:
        """The words for a check whose checked files all match."""
        if self.complete:
            return f"data matches the capsule: {self.checked_files} files, digest {actual_digest}"
        names = ", ".join(self.not_checked[:SHOWN])
        more = len(self.not_checked) - SHOWN
        names += f" and {more} more" if more > 0 else ""
        digest = self.capsule_digest.split(":")[-1][:12] or "-"
        return (f"{self.checked_files} of {self.recorded_files} recorded files checked, and they match; not checked: "
                f"{names} (the capsule's data digest {digest} covers all {self.recorded_files}, so it was not "
                "compared: pass every recorded path for a full check)")


@dataclass(frozen=True)
class DataCheckResult:
    capsule: Path  # as the caller named it
    actual: DataManifest  # what the asked paths hold now
    diff: ManifestDiff  # against the capsule's manifest, scoped to the asked roots
    coverage: Coverage  # what of the capsule's data the asked paths covered

    @property
    def ok(self) -> bool:
        return self.diff.ok

    def to_dict(self) -> dict[str, Any]:
        """The ``replay.data-check`` document (``--json``)."""
        return {"schema": CHECK_SCHEMA, "schema_version": 1, "ok": self.diff.ok, **self.diff.to_dict(),
                "coverage": self.coverage.to_dict()}

    def mismatch(self) -> DataMismatch:
        """The error a failed check exits with (after the caller has shown the differences)."""
        d = self.diff
        return DataMismatch(f"data differs from the capsule: {len(d.missing)} missing, {len(d.changed)} changed, "
                            f"{len(d.extra)} extra", "restore the captured data (see the table above)", [])


@dataclass(frozen=True)
class DataCheck:
    """A capsule's recorded data, loaded (and so checked) before anything is hashed."""

    capsule: Path
    expected: DataManifest

    @classmethod
    def load(cls, capsule: Path) -> DataCheck:
        return cls(capsule, load(capsule).data)

    def run(self, paths: Sequence[Path], root: Path, cache: StatCache | None = None,
            reporter: Reporter | None = None) -> DataCheckResult:
        """Hash ``paths`` (recorded relative to ``root``) and compare them with the recorded roots they name."""
        actual = hash_paths(paths, root, cache=cache, reporter=reporter)
        diff = diff_manifests(scoped(self.expected, actual.roots), actual)
        return DataCheckResult(self.capsule, actual, diff, coverage(self.expected, actual.roots))


def check_against(capsule: Path, paths: Sequence[Path], root: Path, cache: StatCache | None = None,
                  reporter: Reporter | None = None) -> DataCheckResult:
    """Load ``capsule``'s data manifest, hash ``paths`` (recorded relative to ``root``) and compare."""
    return DataCheck.load(capsule).run(paths, root, cache, reporter)


def scoped(expected: DataManifest, asked_roots: list[str]) -> DataManifest:
    """Only the recorded roots that were asked for take part: a check of one folder says nothing of others."""
    asked = set(asked_roots)
    return DataManifest(roots=[r for r in expected.roots if r in asked],
                        files=[f for f in expected.files if any(_under(f.path, r) for r in asked)])


def coverage(expected: DataManifest, asked_roots: list[str]) -> Coverage:
    """How much of ``expected`` a check of ``asked_roots`` looks at, and what it leaves out."""
    checked = {f.path for f in scoped(expected, asked_roots).files}
    left: list[str] = []
    for root in expected.roots:
        files = [f.path for f in expected.files if _under(f.path, root)]
        outside = [p for p in files if p not in checked]
        if outside and len(outside) == len(files):
            left.append(root)
        else:
            left.extend(outside)
    unseen = sorted(dict.fromkeys(left))
    return Coverage(len(checked), len(expected.files), unseen, expected.digest)


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")
