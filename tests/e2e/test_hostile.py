"""Hostile capsules (one folder per attack under hostile/, see its README), verified against the real engine.

Every case must end on its documented exit code with one clear line, and leave the sentinel folder beside
the project exactly as it was: nothing outside replay's own fresh folders is created, changed or read out.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import stat
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import CAPSULE_LABEL, Result, new_project

HOSTILE = Path(__file__).parent / "hostile"
CASES = sorted(p.name for p in HOSTILE.iterdir() if (p / "case.json").is_file())


def edit_manifest(capsule: Path, change: Callable[[dict[str, Any]], Any]) -> None:
    """Apply ``change`` to the capsule's replay.json in place (it may mutate the dict or return a new one)."""
    path = capsule / "replay.json"
    manifest = json.loads(path.read_text())
    result = change(manifest)
    path.write_text(json.dumps(manifest if result is None else result))


def tree_checksum(root: Path) -> str:
    """Names, types, modes, link targets and contents of everything under ``root``, never following links."""
    digest = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        for name in sorted([*dirnames, *filenames]):
            path = Path(dirpath) / name
            st = path.lstat()
            digest.update(f"{path.relative_to(root)}\0{stat.S_IFMT(st.st_mode)}\0{stat.S_IMODE(st.st_mode)}\0".encode())
            if stat.S_ISLNK(st.st_mode):
                digest.update(os.readlink(path).encode())
            elif stat.S_ISREG(st.st_mode):
                digest.update(path.read_bytes())
    st = root.lstat()
    digest.update(f"{stat.S_IMODE(st.st_mode)}".encode())
    return digest.hexdigest()


def make_sentinel(folder: Path) -> Path:
    folder.mkdir()
    (folder / "notes.txt").write_text("the verifier's own file\n")
    (folder / "inner").mkdir()
    (folder / "inner" / "config.toml").write_text("key = 'value'\n")
    private = folder / "private.key"
    private.write_text("SENTINEL-PRIVATE-CONTENT-7f3a\n")
    private.chmod(0o600)
    folder.chmod(0o755)
    return folder


@pytest.fixture(scope="module")
def captured(tmp_path_factory, engine, train_venv):
    project = new_project(tmp_path_factory.mktemp("hostile-source"), "seeded", train_venv)
    result = project.capture()
    assert result.code == 0, result.stderr
    return project


def _load_attack(case: Path) -> Callable[[Path, Path, Path], None] | None:
    script = case / "attack.py"
    if not script.exists():
        return None
    spec = importlib.util.spec_from_file_location(f"hostile_{case.name.replace('-', '_')}", script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.attack  # type: ignore[no-any-return]


@pytest.mark.parametrize("case_name", CASES)
def test_hostile_capsule(case_name: str, captured, verifier, tmp_path: Path) -> None:
    """On Docker as root and on rootless Podman as an ordinary user (conftest's ``verifier``): the capsule
    is captured once on Docker, attacked in a copy, and handed to the verifier with its image."""
    case = HOSTILE / case_name
    spec = json.loads((case / "case.json").read_text())
    if verifier.rootless and spec.get("not_rootless"):
        pytest.skip(spec["not_rootless"])
    if verifier.unenforced_limits and spec.get("needs_limits"):
        pytest.skip(f"rootless Podman on cgroup v1 cannot enforce {spec['needs_limits']}: the case is not run "
                    "unbounded on a shared host (test_verify's isolation probe proves the report names it)")
    work = verifier.folder(case_name)
    project = work / "project"
    shutil.copytree(captured.root, project, symlinks=True)
    capsule = project / ".replay" / captured.name
    sentinel = make_sentinel(work / "sentinel")
    attack = _load_attack(case)
    if attack is not None:
        attack(capsule, project, sentinel)
    verifier.hand(work, _image_of(captured.capsule))
    verifier.hand(work, _image_of(capsule))  # an attack may have built another (image-volume)
    before = tree_checksum(sentinel)
    volumes = verifier.volumes()

    reports = work / "reports"

    def fill(text: str) -> str:
        return text.format(capsule=capsule, project=project, sentinel=sentinel, reports=reports)

    runs = [[fill(a) for a in spec.get("args", [])]]
    if spec.get("json"):
        runs.append([*runs[0], "--json"])
    for args in runs:
        shutil.rmtree(reports, ignore_errors=True)
        reports.mkdir()
        verifier.hand(reports)
        if "max_rss_mb" in spec:
            result = _verify_measured(verifier, project, [str(capsule), *args], spec, tmp_path / "rss")
        else:
            result = verifier.replay(project, "verify", str(capsule), *args, timeout=spec.get("timeout", 600))

        assert result.code == spec["exit"], f"{spec['why']}\n{result.stderr}"
        assert "Traceback" not in result.stderr, result.stderr
        errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        if spec["exit"] == 1 or spec.get("batch"):  # a verdict (a batch's: per capsule), not an error
            assert not errors, result.stderr
            if "--json" not in args:
                assert spec["stdout"] in result.stdout, result.stdout
        else:
            assert len(errors) == 1, result.stderr
            assert spec["stderr"] in errors[0], errors[0]
        if "--json" in args:
            report = json.loads(result.stdout, parse_constant=_refuse_constant)
            assert report["verdict"] == spec.get("verdict", "error") and report["exit_code"] == spec["exit"]
        written = [p.read_text(errors="replace") for p in sorted(reports.iterdir()) if p.is_file()]
        for name in spec.get("reports", []):
            assert (reports / name).is_file(), f"{name} was not written"
        for xml in sorted(reports.glob("*.xml")):
            ET.fromstring(xml.read_bytes())  # well-formed whatever the capsule and the replay's log held
        for text in spec.get("stdout_lacks", []):
            assert fill(text) not in result.stdout
            assert fill(text) not in result.stderr
            for content in written:
                assert fill(text) not in content
        for path in sorted(reports.iterdir()):  # reports a browser or a CI page renders: no raw markup
            if path.suffix in (".md", ".xml", ".html"):
                assert not [t for t in spec.get("markup_lacks", []) if t in path.read_text(errors="replace")], path
        assert tree_checksum(sentinel) == before, "the sentinel folder changed"
        for path in spec.get("must_not_exist", []):
            assert not os.path.lexists(fill(path)), f"{fill(path)} was created"
        assert not verifier.containers(f"{CAPSULE_LABEL}={captured.name}")
        assert not verifier.volumes() - volumes, "a volume was left in the engine"


def _image_of(capsule: Path) -> str:
    """The image a capsule names, when its replay.json is a plain file holding one (a hostile one may not)."""
    path = capsule / "replay.json"
    if path.is_symlink() or not path.is_file() or path.stat().st_size > 1 << 20:
        return ""
    try:
        image = json.loads(path.read_text()).get("image") or {}
    except (ValueError, RecursionError, AttributeError):
        return ""
    found = image.get("id") if isinstance(image, dict) else ""
    return found if isinstance(found, str) and found.startswith("sha256:") else ""


# Run in a fresh process, so RUSAGE_CHILDREN's maximum is the verifier's own peak (ru_maxrss: KiB on Linux).
_MEASURE = """
import resource, subprocess, sys
code = subprocess.run(sys.argv[2:]).returncode
open(sys.argv[1], "w").write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
sys.exit(code)
"""


def _verify_measured(verifier: Any, project: Path, args: list[str], spec: dict[str, Any], out: Path) -> Result:
    """``replay verify`` with its peak resident memory checked against the case's ``max_rss_mb`` (as the
    reviewer: runuser waits for it, so its peak is among the children's)."""
    argv, env = verifier.command("verify", *args)
    proc = subprocess.run([sys.executable, "-c", _MEASURE, str(out), *argv], cwd=project, env=env or None,
                          capture_output=True, text=True, timeout=spec.get("timeout", 600))
    peak_mb = int(out.read_text()) / 1024
    assert peak_mb < spec["max_rss_mb"], f"the verifier peaked at {peak_mb:.0f} MB"
    return Result(proc.returncode, proc.stdout, proc.stderr)


def _refuse_constant(name: str) -> Any:
    raise AssertionError(f"--json printed {name}, which is not strict JSON")
