"""The facts about a machine that can change a run's numbers, recorded at capture and again at verify.

Every probe is a few small file reads and degrades to an empty value instead of raising, so that collecting
host facts can never fail a capture or a verify. The GPUs come from the engine's ``GpuProbe`` (nvidia-smi,
through ``Engine.host_gpus``), which never raises either. Off Linux most fields stay empty: there is no /proc
to read.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Sequence
from pathlib import Path

from replay.manifest import GpuInfo, HostInfo

# CPU features that make numeric libraries take another code path. Where two machines differ in one of
# these, numpy's SIMD dispatch, OpenBLAS/MKL/oneDNN kernels or PyTorch's CPU backend pick other kernels,
# which sum in another order (wider vectors) or round differently (FMA rounds once, not twice; bf16/fp16
# and int8 paths change precision). Features that cannot change a result (aes, sha_ni, rdrand, ...) are
# left out so that they never show up as a likely cause. x86 names first, then arm64 names.
NUMERIC_CPU_FLAGS: tuple[str, ...] = (
    "sse4_1",
    "sse4_2",
    "avx",
    "avx2",
    "fma",
    "f16c",
    "avx_vnni",
    "avx512f",
    "avx512cd",
    "avx512dq",
    "avx512bw",
    "avx512vl",
    "avx512_vnni",
    "avx512_bf16",
    "avx512_fp16",
    "amx_tile",
    "amx_bf16",
    "amx_int8",
    "amx_fp16",
    # arm64 (/proc/cpuinfo "Features"): NEON, half-precision arithmetic, SVE vectors, bf16, int8 matmul.
    "asimd",
    "asimdhp",
    "fphp",
    "sve",
    "sve2",
    "bf16",
    "i8mm",
)

# cgroup v1 writes "no limit" as a huge page-rounded number instead of v2's "max".
_NO_LIMIT = 1 << 60


def collect_host(docker_version: str = "", engine: str = "", gpus: Sequence[GpuInfo] = ()) -> HostInfo:
    """This machine's facts; ``engine`` names the engine, ``gpus`` as the engine's ``host_gpus()`` lists them."""
    cpu_model, cpu_flags = parse_cpuinfo(_read_first_cpu_block())
    return HostInfo(
        os=_os_name(),
        kernel=platform.release(),
        arch=platform.machine(),
        cpu_model=cpu_model or platform.processor(),
        cpu_flags=cpu_flags,
        cores=_usable_cores(),
        memory_bytes=_memory_bytes(),
        gpus=list(gpus),
        docker_version=docker_version,
        engine=engine,
    )


def parse_cpuinfo(text: str) -> tuple[str, list[str]]:
    """The CPU model and numeric flags from the first /proc/cpuinfo block (x86 "flags", arm64 "Features").

    The kernel reports the same flags for every core, so one block is enough.
    """
    model, present, seen = "", set(), False
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            if seen and not line.strip():
                break  # end of the first processor's block
            continue
        seen = True
        key = key.strip()
        if key == "model name":
            model = value.strip()
        elif key in ("flags", "Features"):
            present.update(value.split())
    return model, [flag for flag in NUMERIC_CPU_FLAGS if flag in present]


def parse_meminfo(text: str) -> int:
    """MemTotal from /proc/meminfo, in bytes; 0 when absent."""
    for line in text.splitlines():
        if line.startswith("MemTotal:"):
            parts = line.split()
            if len(parts) >= 2 and parts[1].isdigit():
                return int(parts[1]) * 1024  # the kernel writes "kB" and means KiB
    return 0


def parse_cgroup_limit(text: str) -> int | None:
    """A memory.max / memory.limit_in_bytes value in bytes, or None for "no limit"."""
    text = text.strip()
    if not text.isdigit():  # "max" (v2), empty or garbage
        return None
    value = int(text)
    return value if value < _NO_LIMIT else None


def cgroup_memory_limit(
    proc_cgroup: Path = Path("/proc/self/cgroup"), root: Path = Path("/sys/fs/cgroup")
) -> int | None:
    """The tightest memory limit on this process's cgroup or any of its parents, v1 or v2."""
    try:
        lines = proc_cgroup.read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    limits = []
    for line in lines:
        hierarchy, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if hierarchy == "0" and not controllers:
            base, name = root, "memory.max"
        elif "memory" in controllers.split(","):
            base, name = root / "memory", "memory.limit_in_bytes"
        else:
            continue
        # Walk up to the mount: a limit set on a parent binds too, and inside a container without a cgroup
        # namespace the recorded path does not exist below the mount but the mount's own file is the limit.
        folder = base / path.strip("/")
        for candidate in (folder, *folder.parents):
            limits.append(_read_limit(candidate / name))
            if candidate == base:
                break
    found = [limit for limit in limits if limit is not None]
    return min(found) if found else None


def _read_limit(path: Path) -> int | None:
    try:
        return parse_cgroup_limit(path.read_text(encoding="utf-8"))
    except OSError:
        return None


def _read_first_cpu_block(path: Path = Path("/proc/cpuinfo")) -> str:
    # Stop at the first blank line: cpuinfo repeats one block per core, hundreds of KiB on big machines.
    lines: list[str] = []
    try:
        with path.open(encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if not line.strip() and lines:
                    break
                lines.append(line)
    except OSError:
        return ""
    return "".join(lines)


def _os_name() -> str:
    try:
        name = platform.freedesktop_os_release().get("PRETTY_NAME", "")
    except OSError:
        name = ""
    if name:
        return name
    mac = platform.mac_ver()[0]
    return f"macOS {mac}" if mac else platform.platform(terse=True)


def _usable_cores() -> int:
    # The affinity mask honours taskset and `docker run --cpuset-cpus`; os.cpu_count() counts every core
    # of the machine whatever this process may use. macOS and Windows have no affinity call.
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 0


def _memory_bytes() -> int:
    try:
        total = parse_meminfo(Path("/proc/meminfo").read_text(encoding="utf-8"))
    except OSError:
        total = _sysconf_memory()
    limit = cgroup_memory_limit()
    if limit is None:
        return total
    return min(total, limit) if total else limit


def _sysconf_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return 0
