"""`replay verify` against the real engine: its failure paths, its reports, and what it leaves behind."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.e2e.conftest import BASE, new_project

CAPSULE_LABEL = "io.replay.capsule"


@pytest.fixture(scope="module")
def seeded(tmp_path_factory, engine, train_venv):
    """One seeded capture shared by the verify tests of this module that leave it as they found it."""
    project = new_project(tmp_path_factory.mktemp("verify"), "seeded", train_venv)
    result = project.capture()
    assert result.code == 0, result.stderr
    return project


def test_reports_are_written_as_json_junit_and_markdown(seeded, tmp_path) -> None:
    report, junit, markdown, keep = (tmp_path / n for n in ("r.json", "r.xml", "r.md", "kept"))

    result = seeded.replay("verify", str(seeded.capsule), "--report", str(report), "--junit", str(junit),
                           "--markdown", str(markdown), "--keep", str(keep))

    assert result.code == 0, result.stderr
    assert "IDENTICAL" in result.stdout
    doc = json.loads(report.read_text())
    assert doc["verdict"] == "identical" and doc["data"]["status"] == "verified"
    assert {"manifest", "image", "data", "run", "compare"} <= set(doc["timings"])
    suite = ET.parse(junit).getroot()
    cases = suite.findall(".//testcase")
    assert len(cases) >= 5 and not suite.findall(".//failure")  # 3 outputs + 2 metrics (+ the run)
    assert "identical" in markdown.read_text()
    assert (keep / "out" / "model.pkl").exists()  # --keep keeps the replayed outputs


def test_one_changed_data_byte_is_caught_before_the_command_runs(make_project) -> None:
    project = make_project("seeded")
    assert project.capture().code == 0
    data = project.root / "data" / "digits.npz"
    raw = bytearray(data.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    data.write_bytes(bytes(raw))

    result = project.replay("verify", str(project.capsule), "--json")

    assert result.code == 2
    assert "data/digits.npz" in result.stderr and "not run" in result.stderr
    report = result.json()
    assert report["verdict"] == "error" and report["data"]["status"] == "mismatch"
    assert [p["path"] for p in report["data"]["problems"]] == ["data/digits.npz"]
    assert "accuracy" not in result.stdout + result.stderr  # the training never printed: it never ran


def test_data_can_live_elsewhere_with_a_mapping(seeded, tmp_path) -> None:
    elsewhere = tmp_path / "copy-of-data"
    shutil.copytree(seeded.root / "data", elsewhere)
    moved = tmp_path / "moved-data"
    (seeded.root / "data").rename(moved)
    try:
        missing = seeded.replay("verify", str(seeded.capsule))
        assert missing.code == 2 and "missing" in missing.stderr
        mapped = seeded.replay("verify", str(seeded.capsule), "--data", f"data={elsewhere}")
        assert mapped.code == 0, mapped.stderr
    finally:
        moved.rename(seeded.root / "data")


def test_missing_image_is_an_environment_problem(seeded, tmp_path) -> None:
    capsule = tmp_path / "capsule"
    shutil.copytree(seeded.capsule, capsule)
    manifest = json.loads((capsule / "replay.json").read_text())
    manifest["image"]["id"] = "sha256:" + "0" * 64
    (capsule / "replay.json").write_text(json.dumps(manifest))

    result = seeded.replay("verify", str(capsule))

    assert result.code == 3
    assert "is not in this Docker engine" in result.stderr and "Traceback" not in result.stderr


def test_gpus_on_an_engine_without_a_gpu_runtime_is_exit_3_with_the_way_out(seeded, engine) -> None:
    if "nvidia" in json.dumps(engine.api.info().get("Runtimes", {})):
        pytest.skip("this engine has an NVIDIA runtime: --gpus would be granted")
    label = {"label": f"io.replay.capsule={seeded.name}"}

    result = seeded.replay("verify", str(seeded.capsule), "--gpus", "1")

    assert result.code == 3, result.stderr
    assert "cannot give the container GPUs" in result.stderr and "NVIDIA container toolkit" in result.stderr
    assert "Traceback" not in result.stderr
    assert not engine.api.containers(all=True, filters=label)  # the refused container is not left behind


def test_a_tag_moved_to_another_image_is_refused(seeded, engine, tmp_path) -> None:
    capsule = tmp_path / "capsule"
    shutil.copytree(seeded.capsule, capsule)
    manifest = json.loads((capsule / "replay.json").read_text())
    base_id = engine.image(manifest["image"]["base"]["ref"]).id
    manifest["image"]["tag"] = f"replay/{seeded.name}:moved"
    (capsule / "replay.json").write_text(json.dumps(manifest))
    engine.tag(base_id, f"replay/{seeded.name}", "moved")
    try:
        result = seeded.replay("verify", str(capsule))
    finally:
        engine.api.remove_image(f"replay/{seeded.name}:moved", noprune=True)

    assert result.code == 3 and "not the recorded" in result.stderr


def test_unknown_schema_version_is_bad_input(seeded, tmp_path) -> None:
    capsule = tmp_path / "capsule"
    shutil.copytree(seeded.capsule, capsule)
    manifest = json.loads((capsule / "replay.json").read_text())
    manifest["schema_version"] = 99
    (capsule / "replay.json").write_text(json.dumps(manifest))

    result = seeded.replay("verify", str(capsule))

    assert result.code == 2 and "upgrade replay" in result.stderr


def test_failing_command_exits_4_with_its_log_tail(make_project) -> None:
    project = make_project("failing")
    assert project.capture().code == 0

    result = project.replay("verify", str(project.capsule))

    assert result.code == 4
    assert "exited with status 3" in result.stderr
    assert "CUDA device not found" in result.stderr  # the tail of the command's own log
    # Streamed while it ran, so not printed a second time under the error line.
    assert result.stderr.count("CUDA device not found") == 1, result.stderr

    as_json = project.replay("verify", str(project.capsule), "--json")
    assert as_json.code == 4 and as_json.json()["run"]["log_tail"].count("CUDA device not found") == 1
    assert "CUDA device not found" in as_json.stderr  # nothing was streamed: the tail under the error line


def test_timeout_stops_the_command_and_exits_4(make_project, engine) -> None:
    project = make_project("sleeper")
    assert project.capture().code == 0

    result = project.replay("verify", str(project.capsule), "--timeout", "2")

    # The sleeper sleeps 600 s: "timed out" and exit 4 say --timeout stopped it (no wall clock asserted).
    assert result.code == 4 and "timed out" in result.stderr
    assert not engine.api.containers(all=True, filters={"label": f"{CAPSULE_LABEL}={project.name}"})


def test_ctrl_c_stops_and_removes_the_container(make_project, engine) -> None:
    project = make_project("sleeper")
    assert project.capture().code == 0
    label = {"label": f"{CAPSULE_LABEL}={project.name}"}

    proc = subprocess.Popen([sys.executable, "-m", "replay", "verify", str(project.capsule)], cwd=project.root,
                            env=project.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not engine.api.containers(filters=label) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert engine.api.containers(filters=label), "the replay container never started"
    time.sleep(1)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)

    assert proc.returncode == 130 and "interrupted" in stderr
    assert not engine.api.containers(all=True, filters=label)
    assert "Traceback" not in stderr


ISOLATION_PROBE = r"""
import errno, json, os, socket, sys

def attempt(fn):
    try:
        fn()
        return 0
    except OSError as exc:
        return exc.errno

def write(path):
    with open(path, "w") as handle:
        handle.write("probe")

def connect(host, port):
    with socket.create_connection((host, port), timeout=3):
        pass

def first(*paths):
    for path in paths:
        try:
            return open(path).read().strip()
        except OSError:
            pass
    return None

status = dict(line.split(":\t", 1) for line in open("/proc/self/status").read().splitlines() if ":\t" in line)
table = [line.split() for line in open("/proc/mounts")]
mounts = {fields[1]: fields[2] for fields in table}
facts = {
    "uid": os.getuid(),
    "home_owner": os.stat("/home/replay").st_uid,
    "home_write": attempt(lambda: write("/home/replay/probe")),
    "root_ro": "ro" in next(f[3].split(",") for f in table if f[1] == "/"),
    "run_write": attempt(lambda: write("/run/probe")),
    "var_tmp_write": attempt(lambda: write("/var/tmp/probe")),
    "run_lock_write": attempt(lambda: write("/run/lock/probe")),
    "data_write": attempt(lambda: write("/workspace/data/probe")),
    "out_write": attempt(lambda: write("/workspace/out/probe")),
    "tmp_fs": mounts.get("/tmp"),
    "tmp_write": attempt(lambda: write("/tmp/probe")),
    "workspace_fs": mounts.get("/workspace"),
    "workspace_write": attempt(lambda: write("/workspace/probe")),
    "binds": {f[1]: "ro" if "ro" in f[3].split(",") else "rw" for f in table
              if f[2] not in VIRTUAL and not f[1].startswith(("/proc", "/sys", "/dev"))},
    "pid1": open("/proc/1/comm").read().strip(),
    "threads": {k: os.environ.get(k) for k in json.loads(sys.argv[1])},
    "ifaces": sorted(n for _, n in socket.if_nameindex()),
    "loopback_server": attempt(lambda: connect("127.0.0.1", int(sys.argv[2]))),
    "gateway_server": attempt(lambda: connect(sys.argv[3], int(sys.argv[2]))),
    "cap_eff": status["CapEff"].strip(),
    "cap_bnd": status["CapBnd"].strip(),
    "no_new_privs": status["NoNewPrivs"].strip(),
    "pids_max": first("/sys/fs/cgroup/pids.max", "/sys/fs/cgroup/pids/pids.max"),
    "memory_max": first("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"),
}
os.makedirs("out", exist_ok=True)
open("out/result.txt", "w").write(json.dumps(facts))
""".replace("VIRTUAL", repr({"proc", "sysfs", "tmpfs", "devpts", "mqueue", "cgroup", "cgroup2", "overlay", "shm"}))
# Files every engine lays over the root for its own purposes (names, resolver, Podman's marker, the init).
ENGINE_FILES = {"/etc/hosts", "/etc/hostname", "/etc/resolv.conf", "/run/.containerenv", "/usr/sbin/docker-init",
                "/run/podman-init", "/etc/passwd", "/etc/group"}  # the last two: Podman's keep-id user, read-only
# The only mounts verify declares: the data (read-only), the outputs, and the image's working tree to unpack.
DECLARED = {"/workspace/data": "ro", "/workspace/out": "rw", "/.replay-tree.tar": "ro"}
PIDS, MEMORY = 96, 512 << 20


@pytest.fixture(scope="module")
def isolation_capsule(tmp_path_factory, engine, train_venv):
    """The probe, captured once on Docker, with a server on this host that it must not reach: (project,
    port, the address it tries, the connections the server accepted)."""
    import socket
    import threading

    project = new_project(tmp_path_factory.mktemp("isolation"), "failing", train_venv)
    (project.root / "probe.py").write_text(ISOLATION_PROBE)
    subprocess.run(["git", "add", "probe.py"], cwd=project.root, check=True)
    os.chmod(project.root / "data", 0o777)  # on the host the container's user may write here: only the mount stops it
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("0.0.0.0", 0))
    server.listen(8)
    port = server.getsockname()[1]
    accepted: list[object] = []
    threading.Thread(target=lambda: _accept_all(server, accepted), daemon=True).start()
    gateway = _host_address(engine)
    try:
        # Sanity: the host's server does answer, so a refusal inside can only come from the sandbox.
        socket.create_connection((gateway, port), timeout=3).close()
        argv = ["--", "python", "probe.py", json.dumps(THREADS), str(port), gateway]
        captured = project.replay("capture", "--name", project.name, "--base", BASE, "--data", "data",
                                  "--output", "out/result.txt", *argv)
        assert captured.code == 0, captured.stderr
        yield project, accepted
    finally:
        server.close()


THREADS = ["OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"]


def test_replayed_container_is_isolated(isolation_capsule, verifier) -> None:
    """Each property by a probe that only it can stop, on Docker (as root) and on rootless Podman (as an
    ordinary user): a read-only root (a write to the image user's own home), read-only data (a write into a
    data folder the user may write on the host), a writable output folder, /tmp and /workspace tmpfs, no
    mount but the declared ones, an init as PID 1, the pinned thread variables, no network (a server on the host is
    unreachable, on 127.0.0.1 and on the bridge's gateway), no capabilities at all (the bounding set too), no
    new privileges, the process and memory limits; a limit the engine cannot enforce is named in the report."""
    source, accepted = isolation_capsule
    work = verifier.folder("isolation")
    project = work / "project"
    shutil.copytree(source.root, project, symlinks=True)
    capsule = project / ".replay" / source.name
    manifest = json.loads((capsule / "replay.json").read_text())
    verifier.hand(work, manifest["image"]["id"])
    keep = work / "kept"
    accepted_before = len(accepted)

    result = verifier.replay(project, "verify", str(capsule), "--keep", str(keep), "--json", "--pids", str(PIDS),
                             "--memory", str(MEMORY))

    assert result.code == 1, result.stderr  # the probe's output differs from the captured one, of course
    report = result.json()
    assert report["hosts"]["verify"]["engine"] == ("podman (rootless)" if verifier.rootless else "docker")
    facts = json.loads((keep / "out" / "result.txt").read_text())
    assert facts["uid"] != 0
    if verifier.rootless:  # keep-id: the reviewer itself, no root, no subordinate uid
        assert facts["uid"] == verifier.uid and facts["home_write"] in (errno.EROFS, errno.EACCES)
    elif os.geteuid() == 0:  # the image's user runs the replay, and owns its home: only a read-only root stops it
        assert facts["home_owner"] == facts["uid"] and facts["home_write"] == errno.EROFS
    assert facts["root_ro"] is True
    for name in ("run_write", "var_tmp_write", "run_lock_write"):  # Podman's writable tmpfs there are not
        assert facts[name] in (errno.EROFS, errno.EACCES, errno.ENOENT), (name, facts[name])
    assert facts["data_write"] == errno.EROFS and facts["out_write"] == 0
    assert facts["tmp_fs"] == "tmpfs" and facts["tmp_write"] == 0
    assert facts["workspace_fs"] == "tmpfs" and facts["workspace_write"] == 0  # a throw-away copy of the tree
    assert {k: v for k, v in facts["binds"].items() if k not in ENGINE_FILES} == DECLARED, facts["binds"]
    assert facts["pid1"] in verifier.pid1
    assert facts["threads"] == {k: manifest["command"]["numerics_env"][k] for k in THREADS}
    assert facts["ifaces"] == ["lo"]
    assert facts["loopback_server"] == errno.ECONNREFUSED  # its own loopback, not the host's
    assert facts["gateway_server"] in (errno.ENETUNREACH, errno.EHOSTUNREACH)
    assert len(accepted) == accepted_before  # the probe never reached the host's server
    assert facts["cap_eff"] == facts["cap_bnd"] == "0000000000000000"
    assert facts["no_new_privs"] == "1"
    if verifier.unenforced_limits:  # rootless Podman on cgroup v1: not enforced, and the report says so
        assert {"pids", "memory"} <= set(report["run"]["unenforced"]), report["run"]
    else:
        assert facts["pids_max"] == str(PIDS) and facts["memory_max"] == str(MEMORY)
        assert not report["run"].get("unenforced")
    assert verifier.containers(f"{CAPSULE_LABEL}={source.name}") == []
    # Everything the container wrote came back to the verifier, and nothing was made world-writable.
    for path in [keep, *keep.rglob("*")]:
        st = path.lstat()
        assert (st.st_uid, st.st_gid) == (verifier.uid, verifier.gid), path
        assert stat.S_IMODE(st.st_mode) & 0o002 == 0, path


def _host_address(engine) -> str:
    """An address of this host that a container on Docker's bridge network would reach: the bridge's
    gateway, else any non-loopback address of the host's."""
    for config in engine.api.inspect_network("bridge").get("IPAM", {}).get("Config") or []:
        if config.get("Gateway"):
            return str(config["Gateway"])
    out = subprocess.run(["ip", "-4", "-o", "addr", "show"], capture_output=True, text=True, check=True).stdout
    addresses = [line.split()[3].split("/")[0] for line in out.splitlines() if len(line.split()) > 3]
    preferred = [a for line, a in zip(out.splitlines(), addresses, strict=True) if " docker0 " in f" {line} "]
    others = [a for a in addresses if not a.startswith("127.")]
    return (preferred or others)[0]


def _accept_all(server: object, accepted: list[object]) -> None:
    import socket

    assert isinstance(server, socket.socket)
    while True:
        try:
            conn, _ = server.accept()
        except OSError:
            return
        accepted.append(conn)
        conn.close()


@pytest.mark.parametrize(("signame", "code"), [("SIGTERM", 143), ("SIGHUP", 129)])
def test_sigterm_and_sighup_stop_and_remove_the_container_and_temporaries(make_project, engine, tmp_path,
                                                                          signame, code) -> None:
    project = make_project("sleeper")
    assert project.capture().code == 0
    label = {"label": f"{CAPSULE_LABEL}={project.name}"}
    temp = tmp_path / "tmp"
    temp.mkdir()

    proc = subprocess.Popen([sys.executable, "-m", "replay", "verify", str(project.capsule)], cwd=project.root,
                            env=project.env(TMPDIR=str(temp)), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        deadline = time.monotonic() + 120
        while not engine.api.containers(filters=label) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert engine.api.containers(filters=label), "the replay container never started"
        assert [p.name for p in temp.iterdir() if p.name.startswith("replay-verify-")]  # the output folder
        time.sleep(1)
        proc.send_signal(getattr(signal, signame))
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    assert proc.returncode == code, stderr
    assert f"interrupted ({signame})" in stderr and "Traceback" not in stderr
    assert not engine.api.containers(all=True, filters=label)
    assert not [p.name for p in temp.iterdir() if p.name.startswith("replay-verify-")]


@contextlib.contextmanager
def silent_engine(folder):
    """A unix socket that accepts every connection and never answers: an engine that hangs."""
    import socket
    import tempfile
    import threading

    short = Path(tempfile.mkdtemp(prefix="rs-", dir="/tmp"))  # a unix socket path must stay under 108 bytes
    path = short / "silent.sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.listen(16)
    held: list[object] = []

    def hold() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            held.append(conn)  # kept open, never answered

    threading.Thread(target=hold, daemon=True).start()
    try:
        yield f"unix://{path}"
    finally:
        server.close()
        for conn in held:
            conn.close()  # type: ignore[attr-defined]
        shutil.rmtree(short, ignore_errors=True)


@pytest.mark.parametrize("command", ["verify", "capture"])
def test_an_engine_that_never_answers_is_exit_3_in_bounded_time(seeded, tmp_path, command) -> None:
    with silent_engine(tmp_path) as host:
        args = [str(seeded.capsule)] if command == "verify" else [
            "--name", seeded.name + "-silent", "--into", str(tmp_path / "capsule"), *seeded.scenario["capture"]]
        # The bound is the subprocess timeout; the engine timeout is shortened so that the test is quick.
        result = seeded.replay(command, *args, timeout=120, DOCKER_HOST=host, REPLAY_ENGINE_TIMEOUT="3")

    assert result.code == 3, result.stderr
    lines = [ln for ln in result.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "did not answer within 3 s" in lines[0]
    assert "Traceback" not in result.stderr


def test_memory_limit_kill_is_reported(make_project) -> None:
    project = make_project("hog")
    assert project.capture().code == 0

    result = project.replay("verify", str(project.capsule), "--memory", "128m", "--json")

    assert result.code == 4
    report = result.json()
    assert report["verdict"] == "error" and "killed for memory" in report["error"]


def test_manifest_check_against_a_capsule(seeded, tmp_path) -> None:
    ok = seeded.replay("manifest", "data", "--check", str(seeded.capsule))
    assert ok.code == 0 and "data matches" in ok.stdout

    copy = tmp_path / "data"
    shutil.copytree(seeded.root / "data", copy)
    (copy / "digits.npz").write_bytes(b"not the data")
    (copy / "extra.txt").write_text("new\n")
    # Checked from the copy's parent, the recorded root "data" names the copy.
    proc = subprocess.run([sys.executable, "-m", "replay", "manifest", "data", "--check", str(seeded.capsule),
                           "--json"], cwd=tmp_path, env=seeded.env(), capture_output=True, text=True)
    assert proc.returncode == 2
    doc = json.loads(proc.stdout)
    assert doc["ok"] is False
    assert [c["path"] for c in doc["changed"]] == ["data/digits.npz"]
    assert [e["path"] for e in doc["extra"]] == ["data/extra.txt"]


def test_show_summarises_a_capsule(seeded) -> None:
    human = seeded.replay("show", str(seeded.capsule))
    assert human.code == 0
    for needle in ("python train.py", "seed", "numpy", "data/digits.npz", "out/predictions.npy", "accuracy"):
        assert needle in human.stdout, needle

    as_json = seeded.replay("show", str(seeded.capsule), "--json")
    assert as_json.json() == json.loads((seeded.capsule / "replay.json").read_text())
