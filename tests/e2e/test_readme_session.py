"""The README's "A session", walked exactly as printed, on the set-up `make test` makes (the offline base,
no registry reachable, no --base): it must end IDENTICAL."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

from tests.e2e.conftest import REPO, Project, new_project

README = (REPO / "README.md").read_text()


def session_commands() -> list[list[str]]:
    """The `replay ...` lines of the README's "A session" block, continuation lines joined."""
    block = README.split("## A session", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    joined = block.replace("\\\n", " ")
    lines = [line.strip() for line in joined.splitlines() if line.strip() and not line.strip().startswith("#")]
    assert lines and all(line.startswith("replay ") for line in lines), lines
    return [shlex.split(line)[1:] for line in lines]


def test_the_readme_session_as_written_ends_identical(tmp_path: Path, engine, train_venv) -> None:
    seeded = new_project(tmp_path, "seeded", train_venv)
    root = tmp_path / "myproject"  # the README's capsule is .replay/myproject: the project folder's name
    seeded.root.rename(root)
    project = Project(root, train_venv, "myproject", seeded.scenario)
    train = next(args for args in session_commands() if args[0] == "capture")
    command = train[train.index("--") + 1:]
    assert command[0] == "python"  # the researcher trained first: out/ holds the outputs the session names
    subprocess.run([str(train_venv / "bin" / "python"), *command[1:]], cwd=root, check=True, capture_output=True,
                   env=project.env())
    results = []
    for args in session_commands():
        result = project.replay(*args, timeout=900)
        if args[0] == "capture":
            project.track(root / ".replay" / "myproject")
        results.append(result)
        assert result.code == 0, f"replay {shlex.join(args)}\n{result.stderr}"
    assert "IDENTICAL" in results[-1].stdout
    assert "using the offline base" in results[0].stderr  # the fallback said so, once
    assert (root / "verify.xml").is_file() and (root / "verify.md").is_file()
