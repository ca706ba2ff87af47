from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from replay.adapters import git
from replay.adapters.git import GitCli, _scrub, inspect, toplevel
from replay.core.capture.snapshot import _walk, take_snapshot
from replay.core.events import NullReporter


@pytest.fixture(autouse=True)
def hermetic_git(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No user or system git config, a fixed identity, and no repository above tmp_path."""
    for var in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_EXTERNAL_DIFF", "GIT_OBJECT_DIRECTORY"):
        monkeypatch.delenv(var, raising=False)
    empty = tmp_path_factory.mktemp("gitconfig") / "config"
    empty.write_text("")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(empty))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    for who in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{who}_NAME", "Test")
        monkeypatch.setenv(f"GIT_{who}_EMAIL", "test@example.org")


def run_git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


def write(path: Path, data: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    run_git(root, "init", "-q", "-b", "main")
    write(root / ".gitignore", ".env\nout/\n*.log\n")
    write(root / "train.py", "print('v1')\n")
    write(root / "src" / "model.py", "W = 1\n")
    write(root / "gone.py", "x = 1\n")
    write(root / "weights.bin", bytes(range(256)))
    run_git(root, "add", ".")
    run_git(root, "commit", "-q", "-m", "initial")
    return root


def reconstruct(info: git.GitInfo, dest: Path) -> Path:
    """A checkout of the recorded commit with the recorded patch applied, as someone auditing a capsule would do."""
    if info.commit is None:
        dest.mkdir()
        run_git(dest, "init", "-q")
    else:
        subprocess.run(["git", "clone", "-q", str(info.toplevel), str(dest)], check=True, capture_output=True)
        run_git(dest, "checkout", "-q", info.commit)
    if info.patch:
        subprocess.run(["git", "apply", "--binary", "-"], cwd=dest, input=info.patch, check=True, capture_output=True)
    return dest


# --- git.inspect ---------------------------------------------------------------------------------------


def test_clean_repo(repo: Path) -> None:
    info = inspect(repo)
    assert info is not None
    assert info.toplevel == repo.resolve()
    assert info.commit == run_git(repo, "rev-parse", "HEAD")
    assert len(info.commit) == 40
    assert info.branch == "main"
    assert info.remote is None
    assert info.dirty is False
    assert info.patch == b""
    assert info.files == [".gitignore", "gone.py", "src/model.py", "train.py", "weights.bin"]


def test_inspect_from_a_subfolder(repo: Path) -> None:
    info = inspect(repo / "src")
    assert info is not None and info.toplevel == repo.resolve()
    assert toplevel(repo / "src") == repo.resolve()
    assert "train.py" in info.files


def test_detached_head_has_no_branch(repo: Path) -> None:
    run_git(repo, "checkout", "-q", "--detach")
    info = inspect(repo)
    assert info is not None and info.branch is None and info.commit == run_git(repo, "rev-parse", "HEAD")


def test_uncommitted_and_untracked_changes_are_in_the_patch(repo: Path, tmp_path: Path) -> None:
    write(repo / "train.py", "print('v2')\n")
    write(repo / "src" / "new_layer.py", "LAYER = 2\n")
    write(repo / "notes" / "idea.md", "# idea\n")
    write(repo / "weights.bin", bytes(range(255, -1, -1)))
    (repo / "gone.py").unlink()
    info = inspect(repo)
    assert info is not None
    assert info.dirty is True
    assert info.files == [".gitignore", "notes/idea.md", "src/model.py", "src/new_layer.py", "train.py", "weights.bin"]
    patch = info.patch.decode()
    assert "diff --git a/train.py b/train.py" in patch
    assert "-print('v1')\n+print('v2')\n" in patch
    assert "diff --git a/src/new_layer.py b/src/new_layer.py\nnew file mode 100644" in patch
    assert "+LAYER = 2\n" in patch
    assert "diff --git a/notes/idea.md b/notes/idea.md" in patch
    assert "diff --git a/gone.py b/gone.py\ndeleted file mode 100644" in patch
    assert "GIT binary patch" in patch
    # The patch on top of the commit gives back exactly the snapshot.
    rebuilt = reconstruct(info, tmp_path / "rebuilt")
    for rel in info.files:
        assert (rebuilt / rel).read_bytes() == (repo / rel).read_bytes(), rel
    assert not (rebuilt / "gone.py").exists()


def test_staged_change_is_in_the_patch(repo: Path) -> None:
    write(repo / "train.py", "print('staged')\n")
    run_git(repo, "add", "train.py")
    info = inspect(repo)
    assert info is not None and info.dirty is True
    assert "+print('staged')\n" in info.patch.decode()


def test_ignored_files_are_neither_in_files_nor_in_patch(repo: Path) -> None:
    write(repo / ".env", "API_TOKEN=hunter2\n")
    write(repo / "out" / "model.pkl", "weights")
    write(repo / "train.log", "loss 0.1\n")
    info = inspect(repo)
    assert info is not None
    assert info.files == [".gitignore", "gone.py", "src/model.py", "train.py", "weights.bin"]
    assert info.patch == b""
    assert info.dirty is False
    write(repo / "train.py", "print('v2')\n")
    info = inspect(repo)
    assert info is not None
    assert b"hunter2" not in info.patch and b".env" not in info.patch
    assert b"model.pkl" not in info.patch and b"train.log" not in info.patch


def test_repo_without_commit(tmp_path: Path) -> None:
    root = tmp_path / "fresh"
    root.mkdir()
    run_git(root, "init", "-q", "-b", "main")
    write(root / "train.py", "print('hi')\n")
    info = inspect(root)
    assert info is not None
    assert info.commit is None
    assert info.dirty is True
    assert info.branch == "main"
    assert info.files == ["train.py"]
    assert b"+print('hi')\n" in info.patch
    rebuilt = reconstruct(info, tmp_path / "rebuilt")
    assert (rebuilt / "train.py").read_text() == "print('hi')\n"


def test_empty_repo_without_commit_is_still_dirty(tmp_path: Path) -> None:
    root = tmp_path / "empty"
    root.mkdir()
    run_git(root, "init", "-q")
    info = inspect(root)
    assert info is not None
    assert (info.commit, info.dirty, info.patch, info.files) == (None, True, b"", [])


def test_remote_is_recorded_without_credentials(repo: Path) -> None:
    run_git(repo, "remote", "add", "origin", "https://alice:ghp_s3cret@github.com/org/proj.git")
    info = inspect(repo)
    assert info is not None
    assert info.remote == "https://github.com/org/proj.git"


def test_inspect_of_a_non_repo(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    assert inspect(plain) is None
    assert toplevel(plain) is None


def test_inspect_without_git_installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))
    assert inspect(tmp_path) is None


@pytest.mark.parametrize(("key", "value"), [("diff.noprefix", "true"), ("diff.external", "echo")])
def test_patch_ignores_user_diff_config(repo: Path, tmp_path: Path, key: str, value: str) -> None:
    run_git(repo, "config", key, value)
    write(repo / "train.py", "print('v2')\n")
    write(repo / "added.py", "A = 1\n")
    info = inspect(repo)
    assert info is not None
    rebuilt = reconstruct(info, tmp_path / "rebuilt")
    assert (rebuilt / "train.py").read_text() == "print('v2')\n"
    assert (rebuilt / "added.py").read_text() == "A = 1\n"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://user:token@github.com/o/r.git", "https://github.com/o/r.git"),
        ("https://x-access-token:ghs_abc@github.com/o/r", "https://github.com/o/r"),
        ("https://token@gitlab.com/o/r.git", "https://gitlab.com/o/r.git"),
        ("http://u:p@host:8080/o/r.git", "http://host:8080/o/r.git"),
        ("https://github.com/o/r.git", "https://github.com/o/r.git"),
        ("https://host/path/with@sign.git", "https://host/path/with@sign.git"),
        ("git@github.com:o/r.git", "git@github.com:o/r.git"),
        ("/srv/git/r.git", "/srv/git/r.git"),
    ],
)
def test_scrub(url: str, expected: str) -> None:
    assert _scrub(url) == expected


# --- snapshot ------------------------------------------------------------------------------------------


def test_snapshot_in_git_drops_excluded_prefixes(repo: Path) -> None:
    write(repo / "data" / "train.csv", "a,b\n")
    write(repo / "data2" / "keep.txt", "k")
    write(repo / "dataset.py", "D = 1\n")
    write(repo / "results" / "r.json", "{}")
    snap = take_snapshot(repo, ["data", "results/", "/abs/elsewhere", ""], None, NullReporter(), GitCli())
    assert snap.root == repo
    assert snap.git is not None and snap.git.commit == run_git(repo, "rev-parse", "HEAD")
    assert snap.files == [".gitignore", "data2/keep.txt", "dataset.py", "gone.py", "src/model.py", "train.py",
                          "weights.bin"]
    assert snap.excluded == ["data/train.csv", "results/r.json"]
    assert snap.digest.startswith("sha256:") and len(snap.digest) == len("sha256:") + 64


def test_snapshot_digest_follows_kept_files_only(repo: Path) -> None:
    write(repo / "data" / "train.csv", "a,b\n")
    first = take_snapshot(repo, ["data"], None, NullReporter(), GitCli()).digest
    write(repo / "data" / "train.csv", "a,b\n1,2\n")
    assert take_snapshot(repo, ["data"], None, NullReporter(), GitCli()).digest == first
    write(repo / "train.py", "print('v2')\n")
    assert take_snapshot(repo, ["data"], None, NullReporter(), GitCli()).digest != first


def test_snapshot_outside_git_walks_and_skips(tmp_path: Path) -> None:
    root = tmp_path / "plain"
    for rel in [
        "train.py", "src/model.py", "src/__pycache__/model.cpython-311.pyc", "src/stale.pyc", "notes.txt",
        ".env", ".env.local", ".envrc", ".git/config", ".replay/old/replay.json", "venv/pyvenv.cfg",
        "venv/lib/site.py", ".venv/pyvenv.cfg", ".venv/bin/python", "nested/env2/pyvenv.cfg", "nested/env2/x.py",
        "nested/ok.py", "data/a.csv", "node_modules/m/index.js",
    ]:
        write(root / rel, "x")
    # .envrc is a secret file name (secrets.py): outside git, such names are left out of the snapshot.
    expected = ["data/a.csv", "nested/ok.py", "notes.txt", "src/model.py", "train.py"]
    assert _walk(root) == expected
    snap = take_snapshot(root, ["data"], None, NullReporter(), GitCli())
    assert snap.git is None
    assert snap.files == [f for f in expected if f != "data/a.csv"]
    assert snap.excluded == ["data/a.csv"]


def test_walk_keeps_a_folder_named_like_a_skipped_file(tmp_path: Path) -> None:
    write(tmp_path / "pkg" / "env" / "config.py", "x")
    write(tmp_path / "pkg" / "pyvenv.cfg.example", "x")
    assert _walk(tmp_path) == ["pkg/env/config.py", "pkg/pyvenv.cfg.example"]
