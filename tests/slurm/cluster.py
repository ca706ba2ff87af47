"""A real one-node Slurm cluster on 127.0.0.1, started by hand (this kind of machine has no systemd).

``scripts/ensure-slurm.sh`` installs Debian's slurm-wlm and munge when they are missing; this module writes
a private munge key and a ``slurm.conf`` with free, non-default ports and every state, spool, pid and log
file in one temporary folder, starts ``munged``, ``slurmctld`` and ``slurmd`` in the foreground (so their PIDs
are ours), waits until ``sinfo`` shows the node idle, and stops exactly those PIDs at the end (after
``scancel`` of whatever its own jobs left). The client commands find it through ``SLURM_CONF``.

Also a command, for the benchmark and the README's sample session:
``python tests/slurm/cluster.py DIR`` starts one, prints ``export SLURM_CONF=...``, and stops it on Ctrl-C or
SIGTERM.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PARTITION = "replaytest"


class ClusterError(RuntimeError):
    pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _conf(d: Path, host: str, cpus: int, ctld_port: int, slurmd_port: int) -> str:
    return f"""\
ClusterName=replaytest
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
AuthType=auth/munge
AuthInfo=socket={d / 'munge.socket'}
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation={d / 'state'}
SlurmdSpoolDir={d / 'spool'}
SlurmctldPidFile={d / 'slurmctld.pid'}
SlurmdPidFile={d / 'slurmd.pid'}
SlurmctldLogFile={d / 'slurmctld.log'}
SlurmdLogFile={d / 'slurmd.log'}
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
SchedulerParameters=sched_min_interval=0,batch_sched_delay=0
ReturnToService=2
MpiDefault=none
MailProg=/bin/true
# A --time kill is quick: no grace beyond the limit, SIGKILL 2 s after SIGTERM.
OverTimeLimit=0
KillWait=2
MinJobAge=600
InactiveLimit=0
SlurmdTimeout=60
NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} State=UNKNOWN
PartitionName={PARTITION} Nodes={host} Default=YES MaxTime=INFINITE State=UP
"""


@dataclass
class Cluster:
    """A running test cluster: ``env`` (SLURM_CONF) for the client commands, ``partition``, its folder."""

    root: Path
    host: str = field(default_factory=lambda: socket.gethostname().split(".")[0])
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    startup_s: float = 0.0
    partition: str = PARTITION

    @property
    def conf(self) -> Path:
        return self.root / "slurm.conf"

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    def start(self, timeout: float = 90) -> Cluster:
        t0 = time.monotonic()
        self.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o700)  # munged refuses a socket folder others can write (without --force)
        for sub in ("state", "spool"):
            (self.root / sub).mkdir(exist_ok=True)
        key = self.root / "munge.key"
        if not key.exists():
            key.write_bytes(secrets.token_bytes(1024))
            key.chmod(0o400)
        self.conf.write_text(_conf(self.root, self.host, os.cpu_count() or 1, _free_port(), _free_port()))
        self._spawn("munged", ["munged", "--foreground", "--force", f"--socket={self.root / 'munge.socket'}",
                               f"--key-file={key}", f"--pid-file={self.root / 'munged.pid'}",
                               f"--seed-file={self.root / 'munge.seed'}", f"--log-file={self.root / 'munged.log'}"])
        self._wait(lambda: (self.root / "munge.socket").exists(), 15, "munged did not create its socket")
        self._spawn("slurmctld", ["slurmctld", "-D", "-i", "-f", str(self.conf)])
        self._spawn("slurmd", ["slurmd", "-D", "-f", str(self.conf), "-N", self.host])
        self._wait(self._idle, timeout, "the node never showed idle in sinfo")
        self.startup_s = time.monotonic() - t0
        return self

    def _spawn(self, name: str, argv: list[str]) -> None:
        out = open(self.root / f"{name}.stdout", "ab")  # noqa: SIM115 - the daemon holds it until stop()
        self.procs[name] = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=self.env,
                                            start_new_session=True)
        out.close()

    def _idle(self) -> bool:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise ClusterError(f"{name} exited with {proc.returncode}\n{self.logs()}")
        res = subprocess.run(["sinfo", "-h", "-N", "-o", "%T"], env=self.env, capture_output=True, text=True)
        return res.returncode == 0 and res.stdout.strip() == "idle"

    def _wait(self, cond: object, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if callable(cond) and cond():
                return
            time.sleep(0.25)
        raise ClusterError(f"{what} within {timeout:.0f} s\n{self.logs()}")

    def run(self, *argv: str) -> str:
        res = subprocess.run(list(argv), env=self.env, capture_output=True, text=True, check=True)
        return res.stdout

    def jobs(self) -> list[str]:
        """Every job this cluster still holds that is not finished (pending, running, completing)."""
        res = subprocess.run(["squeue", "-h", "-r", "-o", "%i %T"], env=self.env, capture_output=True, text=True)
        return [line for line in res.stdout.splitlines() if line.strip()]

    def logs(self, lines: int = 40) -> str:
        out = []
        for name in ("munged.log", "slurmctld.log", "slurmd.log", "munged.stdout", "slurmctld.stdout",
                     "slurmd.stdout"):
            path = self.root / name
            if path.exists():
                tail = path.read_text(errors="replace").splitlines()[-lines:]
                out.append(f"--- {path} ---\n" + "\n".join(tail))
        return "\n".join(out)

    def stop(self) -> None:
        """Cancel what is left, then stop our daemons by PID (slurmd first, munged last)."""
        if "slurmctld" in self.procs and self.procs["slurmctld"].poll() is None:
            ids = subprocess.run(["squeue", "-h", "-o", "%A"], env=self.env, capture_output=True, text=True)
            left = sorted(set(ids.stdout.split()))
            if left:
                subprocess.run(["scancel", *left], env=self.env, capture_output=True)
                time.sleep(3)
        for name in ("slurmd", "slurmctld", "munged"):
            proc = self.procs.pop(name, None)
            if proc is None or proc.poll() is not None:
                continue
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def ensure_installed() -> None:
    res = subprocess.run(["bash", str(REPO / "scripts" / "ensure-slurm.sh")], capture_output=True, text=True)
    if res.returncode != 0:
        raise ClusterError(f"scripts/ensure-slurm.sh failed ({res.returncode}): {res.stderr.strip()}")


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python tests/slurm/cluster.py DIR", file=sys.stderr)
        return 2
    # Stop on Ctrl-C and on SIGTERM alike (a shell's background job starts with SIGINT ignored).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    ensure_installed()
    cluster = Cluster(Path(argv[0]).resolve()).start()
    print(f"export SLURM_CONF={cluster.conf}   # one-node cluster up in {cluster.startup_s:.1f} s; Ctrl-C stops it",
          flush=True)
    try:
        signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
