"""`replay manifest PATH... --check CAPSULE`: which part of a capsule's data manifest the asked paths answer for."""

from __future__ import annotations

from dataclasses import dataclass, field

from replay.manifest import DataManifest

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
