"""The code version through the git CLI: commit, branch, remote, dirty flag, uncommitted patch, file list."""

from __future__ import annotations

import subprocess
from pathlib import Path

from replay.core.capture import leftovers
from replay.core.ports import GitInfo, LeaveOut

# A patch `git apply` takes back whatever the user's diff settings (noprefix, external diff tools, textconv).
_PATCH_FLAGS = ("--binary", "--no-color", "--no-ext-diff", "--no-textconv", "--src-prefix=a/", "--dst-prefix=b/")

# The empty tree's ID: the base to diff against in a repository that has no commit yet.
EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"


def _git(cwd: Path, *args: str, ok: tuple[int, ...] = (0,)) -> bytes | None:
    try:
        proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, check=False)
    except FileNotFoundError:
        return None
    if proc.returncode not in ok:
        return None
    return proc.stdout


def toplevel(path: Path) -> Path | None:
    out = _git(path, "rev-parse", "--show-toplevel")
    return Path(out.decode().strip()) if out else None


def inspect(path: Path, leave_out: LeaveOut | None = None) -> GitInfo | None:
    """Everything capture records about the code, or None when ``path`` is not in a git work tree; what
    ``leave_out`` names is in neither the files nor the patch."""
    top = toplevel(path)
    if top is None:
        return None
    head = _git(top, "rev-parse", "--verify", "-q", "HEAD")
    commit = head.decode().strip() if head else None
    branch_out = _git(top, "symbolic-ref", "--short", "-q", "HEAD")
    remote_out = _git(top, "remote", "get-url", "origin")

    listed = [f for f in (_git(top, "ls-files", "-z", "--cached", "--others", "--exclude-standard") or b"")
              .decode().split("\0") if f]
    # A tracked file deleted on disk is listed by --cached but is not part of the snapshot.
    files = sorted({f for f in listed if (top / f).is_file()})

    # Build leftovers are not code (replay.core.capture.leftovers): the snapshot leaves them out, so the patch of
    # what differs from the commit does too, tracked or not; so are the paths ``leave_out`` names.
    has_build_files = leftovers.on_disk(top)
    untracked = [f for f in (_git(top, "ls-files", "-z", "--others", "--exclude-standard") or b"").decode().split("\0")
                 if f and leftovers.leftover_folder(f, has_build_files) is None]
    left = sorted(set(leave_out(files, [f for f in untracked if (top / f).is_file()]))) if leave_out else []
    if left:
        files = [f for f in files if not _beneath(f, left)]
    new_files = [f for f in untracked if not _beneath(f, left)]
    skipped = [*leftovers.folders(listed, top), *left]
    pathspec = ["--", ".", *(f":(exclude,literal){f}" for f in skipped)] if skipped else []
    patch = _git(top, "diff", *_PATCH_FLAGS, commit or EMPTY_TREE, *pathspec) or b""
    for name in new_files:
        # Untracked files are not in `git diff`; --no-index adds them without touching the user's index.
        patch += _git(top, "diff", *_PATCH_FLAGS, "--no-index", "/dev/null", name, ok=(0, 1)) or b""
    return GitInfo(
        toplevel=top,
        commit=commit,
        branch=branch_out.decode().strip() if branch_out else None,
        remote=_scrub(remote_out.decode().strip()) if remote_out else None,
        dirty=bool(patch) or commit is None,
        patch=patch,
        files=files,
    )


def _beneath(rel: str, paths: list[str]) -> bool:
    return any(rel == p or rel.startswith(p + "/") for p in paths)


def _scrub(url: str) -> str:
    """Drop credentials from a remote URL (https://user:token@host/...) before recording it."""
    if "://" in url and "@" in url.split("://", 1)[1].split("/", 1)[0]:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://{rest.split('@', 1)[1]}"
    return url


class GitCli:
    """The ``SourceControl`` port through the git command line."""

    def toplevel(self, path: Path) -> Path | None:
        return toplevel(path)

    def inspect(self, path: Path, leave_out: LeaveOut | None = None) -> GitInfo | None:
        return inspect(path, leave_out)
