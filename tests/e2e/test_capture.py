"""`replay capture` against the real engine: the capsule on disk and the image it pins."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

from tests.e2e.conftest import BASE

# Runs inside the capsule image: every locked package must be installed at its locked version and import.
IMPORT_CHECK = r"""
import importlib, json, sys
from importlib import metadata
expected = json.loads(sys.argv[1])
problems = []
for name, version in expected.items():
    dist = metadata.distribution(name)
    if dist.version != version:
        problems.append(f"{name}: {dist.version} != {version}")
    top = (dist.read_text("top_level.txt") or "").split()
    if not top:
        top = sorted({f.parts[0] for f in dist.files or [] if f.suffix == ".py" and len(f.parts) > 1
                      and not f.parts[0].endswith((".dist-info", ".data"))})
    for module in top:
        if not module.startswith("_"):
            importlib.import_module(module)
print("ok" if not problems else "\n".join(problems))
"""


def test_capture_writes_a_complete_capsule(make_project, engine) -> None:
    project = make_project("seeded")

    result = project.capture("--json")

    assert result.code == 0, result.stderr
    summary = result.json()
    assert summary["schema"] == "replay.capture-summary" and summary["schema_version"] == 1
    assert summary["counts"]["data_files"] == 1 and summary["counts"]["outputs"] == 3
    capsule = project.capsule
    assert sorted(p.name for p in capsule.iterdir()) == [
        "Dockerfile", "capsule.Dockerfile", "reference", "replay.json", "requirements.in", "requirements.lock"]
    manifest = json.loads((capsule / "replay.json").read_text())
    assert manifest["schema_version"] == 1
    assert manifest["command"]["argv"] == ["python", "train.py"] and manifest["command"]["seed"] == 7
    assert manifest["code"]["kind"] == "git" and len(manifest["code"]["commit"]) == 40
    assert manifest["code"]["dirty"] is False
    assert manifest["data"]["files"][0]["path"] == "data/digits.npz"
    assert manifest["data"]["digest"].startswith("sha256:")
    assert {f["path"] for f in manifest["outputs"]["files"]} == {
        "out/model.pkl", "out/predictions.npy", "out/metrics.json"}
    assert set(manifest["outputs"]["metrics"]) == {"accuracy", "test.n"}
    assert manifest["image"]["base"]["ref"] == BASE and manifest["image"]["base"]["id"].startswith("sha256:")
    assert manifest["host"]["cores"] >= 1 and manifest["host"]["docker_version"]
    names = {p["name"].lower() for p in manifest["python"]["packages"]}
    assert {"numpy", "scikit-learn", "scipy"} <= names
    lock = (capsule / "requirements.lock").read_text()
    assert "pip-compile" in lock and "--generate-hashes" in lock  # the command that regenerates it
    assert "--hash=sha256:" in lock
    assert "file://" not in lock and "--find-links" not in lock and "--index-url" not in lock
    assert "FROM sha256:" in (capsule / "Dockerfile").read_text()


def test_image_is_pinned_non_root_offline_and_has_every_locked_package(make_project, engine) -> None:
    project = make_project("seeded")
    assert project.capture().code == 0
    manifest = json.loads((project.capsule / "replay.json").read_text())
    image = manifest["image"]

    record = engine.image(image["id"])
    assert record is not None and record.id == image["id"]
    assert image["tag"] in record.tags and image["tag"].startswith(f"replay/{project.name}:")
    assert record.labels["org.opencontainers.image.revision"] == manifest["code"]["commit"]
    assert record.labels["io.replay.name"] == project.name
    # The probe container has no network: running and importing needs none.
    assert engine.probe(image["id"], ["id", "-u"]).strip() == "10001"
    packages = {p["name"]: p["version"] for p in manifest["python"]["packages"]}
    out = engine.probe(image["id"], ["python", "-c", IMPORT_CHECK, json.dumps(packages)])
    assert out.strip() == "ok"
    # The image alone describes the run.
    inside = json.loads(engine.probe(image["id"], ["cat", "/replay/replay.json"]))
    assert inside["name"] == project.name and inside["data"] == manifest["data"]


def layer_files_containing(saved: Path, needles: list[bytes]) -> dict[bytes, list[str]]:
    """For each needle, the files of the saved image's layers that hold it: every layer tar is opened
    (compressed or not) and every file in it read, so that a compressed layer cannot hide a match."""
    found: dict[bytes, list[str]] = {n: [] for n in needles}
    with tarfile.open(saved) as outer:
        for member in outer:
            stream = outer.extractfile(member) if member.isfile() else None
            if stream is None or member.name.endswith((".json", "VERSION", "repositories")):
                continue
            try:
                layer = tarfile.open(fileobj=stream, mode="r|*")  # noqa: SIM115 - closed by the with below
            except tarfile.ReadError:
                continue  # not a layer (an OCI config or index blob)
            with layer:
                for item in layer:
                    handle = layer.extractfile(item) if item.isfile() else None
                    data = handle.read() if handle is not None else b""
                    for needle in needles:
                        if needle in data:
                            found[needle].append(f"{member.name}:{item.name}")
    return found


def test_captures_of_the_same_code_share_the_environment_image_and_differ_in_the_capsule_image(
        make_project, engine) -> None:
    project = make_project("seeded")
    assert project.capture().code == 0
    args = list(project.scenario["capture"])
    args[args.index("--seed") + 1] = "8"  # another run of the same code: another seed, another name
    other = f"{project.name}-b"
    second = project.replay("capture", "--name", other, "--base", BASE, *args)
    project.track(project.root / ".replay" / other)
    assert second.code == 0, second.stderr

    first = json.loads((project.capsule / "replay.json").read_text())["image"]
    again = json.loads((project.root / ".replay" / other / "replay.json").read_text())["image"]
    assert first["environment_id"].startswith("sha256:")
    assert first["environment_id"] == again["environment_id"]
    assert first["id"] != again["id"]
    # The capsule image is one layer on the environment: it names it, and carries its own run.
    dockerfile = (project.capsule / "capsule.Dockerfile").read_text()
    assert f"FROM {first['environment_id']}" in dockerfile
    environment = engine.image(first["environment_id"])
    assert environment is not None and environment.labels.get("io.replay.stage") == "environment"
    inside = json.loads(engine.probe(again["id"], ["cat", "/replay/replay.json"]))
    assert inside["name"] == other and inside["command"]["seed"] == 8
    assert inside["image"]["environment_id"] == first["environment_id"]


def test_secret_canary_reaches_neither_capsule_nor_image(make_project, engine, tmp_path) -> None:
    canary = "canary-7f3a9c1e5b-do-not-leak"
    shipped = "positive-control-3b1d-shipped"  # in the code snapshot: must be found, or the search proves nothing
    project = make_project("seeded")
    (project.root / ".env").write_text(f"API_TOKEN={canary}\n")  # git-ignored, as real secrets are
    (project.root / "notes").mkdir()
    (project.root / "notes" / "server.pem").write_text(f"{shipped}\n")  # untracked, not ignored: it would ship
    capture_args = ["capture", "--name", project.name, "--base", BASE, "--env", "API_TOKEN"]
    refused = project.replay(*capture_args, *project.scenario["capture"], API_TOKEN=canary)
    assert refused.code == 2 and "--allow-secret-env" in refused.stderr  # names that look secret need consent
    refused = project.replay(*capture_args, "--allow-secret-env", *project.scenario["capture"], API_TOKEN=canary)
    assert refused.code == 2 and "notes/server.pem looks like a secret" in refused.stderr, refused.stderr
    assert "--allow-secret-files" in refused.stderr and "Traceback" not in refused.stderr

    result = project.replay(*capture_args, "--allow-secret-env", "--allow-secret-files",
                            *project.scenario["capture"], API_TOKEN=canary)
    assert result.code == 0, result.stderr

    manifest = json.loads((project.capsule / "replay.json").read_text())
    assert manifest["command"]["env"] == {"API_TOKEN": None}  # the name is kept, never the value
    assert manifest["code"]["allowed_secret_files"] == ["notes/server.pem"]
    for path in project.capsule.rglob("*"):
        if path.is_file():
            assert canary.encode() not in path.read_bytes(), path
    saved = tmp_path / "image.tar"
    with saved.open("wb") as handle:
        for chunk in engine.save(manifest["image"]["id"]):
            handle.write(chunk)
    assert saved.stat().st_size > 10_000_000
    train = (project.root / "train.py").read_bytes().splitlines()[0]
    found = layer_files_containing(saved, [canary.encode(), shipped.encode(), train])
    assert found[shipped.encode()], "the positive control was not found: the layer search is blind"
    assert any(name.endswith("workspace/train.py") for name in found[train])
    assert found[canary.encode()] == []

    # At verify the secret comes from the verifier's environment; without it, a clear bad-input error.
    missing = project.replay("verify", str(project.capsule))
    assert missing.code == 2 and "API_TOKEN" in missing.stderr
    ok = project.replay("verify", str(project.capsule), API_TOKEN=canary)
    assert ok.code == 0, ok.stdout + ok.stderr


def test_second_capture_after_a_code_change_reuses_cached_layers(make_project) -> None:
    project = make_project("seeded")
    assert project.capture().code == 0
    (project.root / "train.py").write_text((project.root / "train.py").read_text() + "\n# tweak\n")

    again = project.capture("--force", "--verbose")

    assert again.code == 0, again.stderr
    # The classic builder says "Using cache" for every layer it reuses: all the package layers are.
    assert again.stderr.count("Using cache") >= 5
    manifest = json.loads((project.capsule / "replay.json").read_text())
    assert manifest["code"]["dirty"] is True and manifest["code"]["patch"] == "code.patch"
    assert "+# tweak" in (project.capsule / "code.patch").read_text()


def test_outside_git_capture_warns_and_records_a_tree_digest(make_project) -> None:
    project = make_project("seeded")
    subprocess.run(["rm", "-rf", str(project.root / ".git")], check=True)

    result = project.capture("--json")

    assert result.code == 0, result.stderr
    assert "not a git repository" in result.stderr
    manifest = json.loads((project.capsule / "replay.json").read_text())
    assert manifest["code"]["kind"] == "tree" and manifest["code"]["commit"] is None
    assert manifest["code"]["files"] == 3  # train.py, make_data.py, .gitignore: no data, outputs or .env


def test_existing_capsule_needs_force(make_project) -> None:
    project = make_project("seeded")
    assert project.capture().code == 0
    before = (project.capsule / "replay.json").read_bytes()

    again = project.capture()

    assert again.code == 2 and "--force" in again.stderr and "Traceback" not in again.stderr
    assert (project.capsule / "replay.json").read_bytes() == before


def test_missing_base_image_names_the_way_out(make_project) -> None:
    project = make_project("seeded")

    result = project.replay("capture", "--base", "replay-test/no-such-base:1", *project.scenario["capture"])

    assert result.code == 3
    assert "--base" in result.stderr and "replay base build" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (project.root / ".replay").exists() or not any((project.root / ".replay").iterdir())


def test_no_engine_is_one_line_and_exit_3(make_project) -> None:
    project = make_project("seeded")

    result = project.replay("capture", *project.scenario["capture"], DOCKER_HOST="unix:///nonexistent.sock")

    assert result.code == 3
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert lines[-1].startswith("error: no Docker engine answers") and "Traceback" not in result.stderr


def test_version_and_python_module_entry_point() -> None:
    out = subprocess.run([sys.executable, "-m", "replay", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("replay ")


def test_a_package_that_cannot_be_locked_is_bad_input(make_project) -> None:
    project = make_project("seeded")
    (project.root / "requirements.txt").write_text("numpy==2.4.6\nno-such-package-for-replay-tests==9.9.9\n")

    result = project.capture("--requirements", "requirements.txt")

    assert result.code == 2
    # The package and pip's reason, the command that reproduces it; never the last line of a traceback.
    assert "cannot lock no-such-package-for-replay-tests: no version" in result.stderr
    assert "reproduce with: cd " in result.stderr and "piptools compile" in result.stderr
    assert "Traceback" not in result.stderr and "raise error" not in result.stderr
    assert not project.capsule.exists()


def test_a_data_link_that_leaves_the_data_folder_is_refused_with_the_way_out(make_project, tmp_path) -> None:
    project = make_project("seeded")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (project.root / "data" / "digits.npz").rename(elsewhere / "digits.npz")
    (project.root / "data" / "digits.npz").symlink_to(elsewhere / "digits.npz")

    result = project.capture()

    assert result.code == 2, result.stderr
    assert "data link data/digits.npz" in result.stderr and "leaves its data folder" in result.stderr
    assert f"--data {elsewhere / 'digits.npz'}" in result.stderr and "Traceback" not in result.stderr
    assert not project.capsule.exists()


def test_a_killed_capture_leaves_staging_that_the_next_capture_removes(make_project) -> None:
    project = make_project("seeded")
    parent = project.root / ".replay"
    proc = subprocess.Popen([sys.executable, "-m", "replay", "capture", "--name", project.name, "--base", BASE,
                             "--no-cache", *project.scenario["capture"]], cwd=project.root, env=project.env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None:
            if parent.is_dir() and any(".staging-" in p.name for p in parent.iterdir()):
                break
            time.sleep(0.1)
        assert proc.poll() is None, "the capture ended before its staging folder was seen"
        proc.kill()  # SIGKILL: no clean-up can run
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    leftovers = [p for p in parent.iterdir() if ".staging-" in p.name]
    assert leftovers, "SIGKILL left no staging folder: the test proves nothing"

    result = project.capture()

    assert result.code == 0, result.stderr
    assert not [p for p in parent.iterdir() if ".staging-" in p.name]


def test_sigterm_during_capture_run_stops_the_command(make_project, tmp_path) -> None:
    project = make_project("sleeper")
    pid_file = tmp_path / "child.pid"
    (project.root / "train.py").write_text(
        "import os, time\n"
        f"open({str(pid_file)!r}, 'w').write(str(os.getpid()))\n"
        "print('training for a long time...', flush=True)\n"
        "time.sleep(600)\n"
    )
    subprocess.run(["git", "commit", "-qam", "pid"], cwd=project.root, check=True,
                   env={**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@e.invalid",
                        "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@e.invalid"})
    proc = subprocess.Popen([sys.executable, "-m", "replay", "capture", "--name", project.name, "--base", BASE,
                             "--run", *project.scenario["capture"]], cwd=project.root, env=project.env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    child = 0
    try:
        deadline = time.monotonic() + 120
        while not pid_file.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
        assert pid_file.exists(), "the command never started"
        time.sleep(0.3)
        child = int(pid_file.read_text())
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if child and _alive(child):
            os.kill(child, signal.SIGKILL)

    assert proc.returncode == 143, stderr
    assert "interrupted (SIGTERM)" in stderr and "Traceback" not in stderr
    assert not _alive(child), "the training command outlived the capture"
    assert not project.capsule.exists()


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
