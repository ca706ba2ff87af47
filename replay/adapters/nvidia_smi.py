"""The machine's NVIDIA GPUs through ``nvidia-smi``: the ``GpuProbe`` port, for the host facts."""

from __future__ import annotations

import shutil
import subprocess

from replay.manifest import GpuInfo

# nvidia-smi can take seconds to answer when the driver is not kept loaded (no persistence mode); a
# GPU missed because of a timeout would later read as "GPU present on one side only".
NVIDIA_SMI_TIMEOUT_S = 10.0
NVIDIA_SMI_QUERY = ("--query-gpu=name,driver_version,memory.total", "--format=csv,noheader,nounits")


class NvidiaSmi:
    """NVIDIA GPUs seen by nvidia-smi; none when it is missing, fails or hangs."""

    def gpus(self) -> list[GpuInfo]:
        exe = shutil.which("nvidia-smi")
        if exe is None:
            return []
        try:
            result = subprocess.run(
                [exe, *NVIDIA_SMI_QUERY],
                capture_output=True,
                text=True,
                timeout=NVIDIA_SMI_TIMEOUT_S,
                check=False,
            )
        except (OSError, subprocess.SubprocessError, ValueError):
            return []
        return parse_nvidia_smi(result.stdout) if result.returncode == 0 else []


def parse_nvidia_smi(text: str) -> list[GpuInfo]:
    """Lines of ``name, driver, memory MiB`` as written by NVIDIA_SMI_QUERY."""
    gpus = []
    for line in text.splitlines():
        # Split from the right: the last two fields are numbers, a name could in principle hold a comma.
        parts = [p.strip() for p in line.rsplit(",", 2)]
        if len(parts) != 3 or not parts[0]:
            continue
        name, driver, memory = parts
        gpus.append(GpuInfo(name=name, driver=driver, memory_mb=int(memory) if memory.isdigit() else 0))
    return gpus
