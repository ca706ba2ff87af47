from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from replay.adapters import nvidia_smi
from replay.adapters.nvidia_smi import NvidiaSmi, parse_nvidia_smi
from replay.core.verify import hostinfo
from replay.core.verify.hostinfo import (
    NUMERIC_CPU_FLAGS,
    cgroup_memory_limit,
    collect_host,
    parse_cgroup_limit,
    parse_cpuinfo,
    parse_meminfo,
)
from replay.manifest import GpuInfo


def collect_gpus() -> list[GpuInfo]:
    """The GPU probe the factory gives the engine (nvidia-smi)."""
    return NvidiaSmi().gpus()

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

X86_CPUINFO = """\
processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu sse sse2 ssse3 fma sse4_1 sse4_2 aes avx f16c avx2 sha_ni avx512f avx512_vnni amx_tile
bugs\t\t: spectre_v1

processor\t: 1
model name\t: Some Other Model
flags\t\t: fpu avx512bw
"""

ARM_CPUINFO = """\
processor\t: 0
BogoMIPS\t: 243.75
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp sve sve2 i8mm bf16
CPU implementer\t: 0x41
"""


@pytest.fixture
def no_nvidia_smi(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nvidia_smi.shutil, "which", lambda name: None)


@pytest.fixture
def fake_smi(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """nvidia-smi 'found' on PATH; each test sets what subprocess.run does. Returns the argv of every call."""
    monkeypatch.setattr(nvidia_smi.shutil, "which", lambda name: "/usr/bin/nvidia-smi")
    return []


# --- collect_host on this machine ----------------------------------------------------------------------


@linux_only
def test_collect_host_on_this_machine(no_nvidia_smi: None) -> None:
    host = collect_host("27.1.1")
    assert host.cores >= 1
    assert host.cores == len(os.sched_getaffinity(0))
    assert host.arch and host.arch == platform.machine()
    assert host.kernel == platform.release()
    assert host.os
    assert host.cpu_model
    assert 0 < host.memory_bytes <= parse_meminfo(Path("/proc/meminfo").read_text())
    # Only the documented flags, in the documented order.
    assert host.cpu_flags == [f for f in NUMERIC_CPU_FLAGS if f in host.cpu_flags]
    assert host.gpus == []
    assert host.docker_version == "27.1.1"


def test_collect_host_records_the_gpus_the_engine_lists() -> None:
    t4 = GpuInfo(name="Tesla T4", driver="470.82.01", memory_mb=15360)
    assert collect_host("27.1.1", "docker", [t4]).gpus == [t4]


def test_the_docker_engine_lists_the_gpus_of_its_probe() -> None:
    from replay import factory
    from replay.adapters.docker_engine import DockerEngine

    t4 = GpuInfo(name="Tesla T4", driver="470.82.01", memory_mb=15360)

    class Probe:
        def gpus(self) -> list[GpuInfo]:
            return [t4]

    assert DockerEngine(gpus=Probe()).host_gpus() == [t4]  # no engine needed to list them
    assert DockerEngine().host_gpus() == []
    assert isinstance(factory.gpu_probe(), NvidiaSmi)


@linux_only
def test_memory_is_capped_by_the_cgroup_limit(monkeypatch: pytest.MonkeyPatch, no_nvidia_smi: None) -> None:
    monkeypatch.setattr(hostinfo, "cgroup_memory_limit", lambda: 64 * 2**20)
    assert collect_host().memory_bytes == 64 * 2**20


@linux_only
def test_cores_follow_the_affinity_mask_not_the_machine(
    monkeypatch: pytest.MonkeyPatch, no_nvidia_smi: None
) -> None:
    # `docker run --cpuset-cpus=3` or taskset: the machine has more cores than this process may use.
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {3})
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    assert collect_host().cores == 1


def test_collect_host_without_proc_or_affinity(monkeypatch: pytest.MonkeyPatch, no_nvidia_smi: None) -> None:
    # What macOS looks like: no /proc/cpuinfo, no sched_getaffinity.
    monkeypatch.setattr(hostinfo, "_read_first_cpu_block", lambda: "")
    monkeypatch.setattr(hostinfo.platform, "processor", lambda: "arm")
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    host = collect_host()
    assert host.cpu_model == "arm"
    assert host.cpu_flags == []
    assert host.cores == os.cpu_count()


# --- /proc parsing -------------------------------------------------------------------------------------


def test_parse_cpuinfo_x86_keeps_numeric_flags_of_the_first_block() -> None:
    model, flags = parse_cpuinfo(X86_CPUINFO)
    assert model == "Intel(R) Xeon(R) Platinum 8480+"
    # aes and sha_ni cannot change a result; constant order, not cpuinfo order.
    assert flags == ["sse4_1", "sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512_vnni", "amx_tile"]


def test_parse_cpuinfo_arm64_features() -> None:
    model, flags = parse_cpuinfo(ARM_CPUINFO)
    assert model == ""
    assert flags == ["asimd", "asimdhp", "fphp", "sve", "sve2", "bf16", "i8mm"]


def test_read_first_cpu_block_stops_at_the_first_blank_line(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(X86_CPUINFO)
    block = hostinfo._read_first_cpu_block(cpuinfo)
    assert "Platinum" in block and "Some Other Model" not in block
    assert hostinfo._read_first_cpu_block(tmp_path / "missing") == ""


def test_parse_meminfo() -> None:
    text = "MemTotal:       24684084 kB\nMemFree:         1000 kB\n"
    assert parse_meminfo(text) == 24684084 * 1024
    assert parse_meminfo("MemFree: 1 kB\n") == 0


@pytest.mark.parametrize(
    ("text", "expected"),
    [("max\n", None), ("1073741824\n", 2**30), ("9223372036854771712\n", None), ("", None), ("-1", None)],
)
def test_parse_cgroup_limit(text: str, expected: int | None) -> None:
    assert parse_cgroup_limit(text) == expected


def test_cgroup_v2_limit_on_a_parent_binds(tmp_path: Path) -> None:
    proc = tmp_path / "cgroup"
    proc.write_text("0::/user.slice/app.scope\n")
    root = tmp_path / "sys"
    (root / "user.slice" / "app.scope").mkdir(parents=True)
    (root / "user.slice" / "memory.max").write_text("2147483648\n")
    (root / "user.slice" / "app.scope" / "memory.max").write_text("max\n")
    assert cgroup_memory_limit(proc, root) == 2 * 2**30


def test_cgroup_v1_inside_a_container_without_namespace(tmp_path: Path) -> None:
    # /proc/self/cgroup names the host-side path; only the mount's own file exists in the container.
    proc = tmp_path / "cgroup"
    proc.write_text("5:cpu,cpuacct:/docker/abc\n4:memory:/docker/abc\n0::/\n")
    root = tmp_path / "sys"
    (root / "memory").mkdir(parents=True)
    (root / "memory" / "memory.limit_in_bytes").write_text("1073741824\n")
    assert cgroup_memory_limit(proc, root) == 2**30


def test_no_cgroup_means_no_limit(tmp_path: Path) -> None:
    assert cgroup_memory_limit(tmp_path / "missing", tmp_path) is None
    proc = tmp_path / "cgroup"
    proc.write_text("0::/\n")
    assert cgroup_memory_limit(proc, tmp_path) is None


# --- nvidia-smi ----------------------------------------------------------------------------------------


def test_parse_nvidia_smi() -> None:
    text = "NVIDIA H100 80GB HBM3, 550.54.15, 81559\nNVIDIA H100 80GB HBM3, 550.54.15, [N/A]\n\n"
    assert parse_nvidia_smi(text) == [
        GpuInfo(name="NVIDIA H100 80GB HBM3", driver="550.54.15", memory_mb=81559),
        GpuInfo(name="NVIDIA H100 80GB HBM3", driver="550.54.15", memory_mb=0),
    ]
    assert parse_nvidia_smi("No devices were found\n") == []


def test_no_nvidia_smi_means_no_gpus(monkeypatch: pytest.MonkeyPatch, no_nvidia_smi: None) -> None:
    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("nvidia-smi must not be run when it is not installed")

    monkeypatch.setattr(nvidia_smi.subprocess, "run", never)
    assert collect_gpus() == []


def test_nvidia_smi_empty_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert collect_gpus() == []


def test_fake_nvidia_smi_output(monkeypatch: pytest.MonkeyPatch, fake_smi: list[list[str]]) -> None:
    def run(argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        fake_smi.append(argv)
        assert kwargs.get("timeout")
        return subprocess.CompletedProcess(argv, 0, stdout="NVIDIA A100-SXM4-80GB, 535.104.05, 81920\n")

    monkeypatch.setattr(nvidia_smi.subprocess, "run", run)
    assert collect_gpus() == [GpuInfo(name="NVIDIA A100-SXM4-80GB", driver="535.104.05", memory_mb=81920)]
    assert fake_smi == [["/usr/bin/nvidia-smi", *nvidia_smi.NVIDIA_SMI_QUERY]]


@pytest.mark.parametrize(
    "failure",
    [
        subprocess.TimeoutExpired(["nvidia-smi"], 10),
        FileNotFoundError("gone"),
        PermissionError("denied"),
    ],
)
def test_nvidia_smi_failures_mean_no_gpus(
    monkeypatch: pytest.MonkeyPatch, fake_smi: list[list[str]], failure: Exception
) -> None:
    def run(argv: list[str], **kwargs: object) -> None:
        raise failure

    monkeypatch.setattr(nvidia_smi.subprocess, "run", run)
    assert collect_gpus() == []


def test_nvidia_smi_error_exit_means_no_gpus(
    monkeypatch: pytest.MonkeyPatch, fake_smi: list[list[str]]
) -> None:
    # A driver/library mismatch exits non-zero and may still print something GPU-shaped.
    def run(argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(argv, 9, stdout="Failed, to, initialize\n")

    monkeypatch.setattr(nvidia_smi.subprocess, "run", run)
    assert collect_gpus() == []


@linux_only
def test_real_subprocess_with_a_fake_nvidia_smi_on_path(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    script = tmp_path / "nvidia-smi"
    script.write_text("#!/bin/sh\necho 'Tesla T4, 470.82.01, 15360'\n")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert collect_gpus() == [GpuInfo(name="Tesla T4", driver="470.82.01", memory_mb=15360)]
