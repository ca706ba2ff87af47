"""The one place that chooses concrete adapters for core's ports (``replay.core.ports``).

The CLI asks here for an engine, a batch backend or a capture's toolchain; core never names a concrete one.
Every adapter is imported on demand, so building nothing costs nothing (``replay --help`` imports no docker).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from replay.core.batch.settings import BACKENDS, ENGINES
from replay.core.ports import Backend, Engine, GpuProbe, RootfsBuilder, SignatureTool, SourceControl, Toolchain
from replay.errors import BadInput

# The engine the command line chose (``--engine``, or REPLAY_ENGINE); None: ``engine`` in the project's
# [tool.replay], else the one that answers.
chosen_engine: str | None = None


def engine(kind: str | None = None) -> Engine:
    """The container engine on this machine: ``kind`` ("docker", "podman"), else the one chosen (``--engine``,
    REPLAY_ENGINE, ``engine`` under [tool.replay]), else the first that answers: DOCKER_HOST or Docker's socket,
    a running Podman service, or a Podman service started for this command. Nothing is asked until first use.
    """
    from replay.adapters import podman_service
    from replay.adapters.docker_engine import DockerEngine

    kind = _known(kind) if kind else engine_choice()
    if kind is None and os.environ.get("DOCKER_HOST"):
        return DockerEngine(gpus=gpu_probe())  # DOCKER_HOST is the user's word, whatever engine serves it
    return DockerEngine(base_url=lambda: podman_service.choose(kind), gpus=gpu_probe())


def engine_choice() -> str | None:
    """The engine the user chose: ``--engine`` (or REPLAY_ENGINE), else ``engine`` under the project's
    [tool.replay]; None when neither says (then the one that answers). A batch's tasks carry it to their nodes."""
    from replay.config import project_defaults

    if chosen_engine is not None:
        return _known(chosen_engine)
    return project_defaults(Path.cwd(), source_control()).engine


def _known(kind: str) -> str:
    if kind not in ENGINES:
        raise BadInput(f"--engine {kind} is not an engine replay knows", f"use one of: {', '.join(ENGINES)}")
    return kind


def gpu_probe() -> GpuProbe:
    """The host's GPUs for the host facts: nvidia-smi (none when it is not installed)."""
    from replay.adapters.nvidia_smi import NvidiaSmi

    return NvidiaSmi()


def signature_tool() -> SignatureTool:
    """SSH signatures for bundles: ssh-keygen -Y (looked up when first used)."""
    from replay.adapters.ssh_keygen import SshKeygen

    return SshKeygen()


def source_control() -> SourceControl:
    """git, through its command line."""
    from replay.adapters.git import GitCli

    return GitCli()


def toolchain() -> Toolchain:
    """What a capture uses on this machine: git, the training interpreter's probe, pip-tools and pip, the
    training command's runner (--run), uv, dpkg."""
    from replay.adapters.dpkg import HostDpkg
    from replay.adapters.host_command import HostCommand
    from replay.adapters.interpreter import InterpreterProbe
    from replay.adapters.piptools import PipTools
    from replay.adapters.uv import UvExporter

    return Toolchain(vcs=source_control(), python=InterpreterProbe(), locker=PipTools(), runner=HostCommand(),
                     exporter=UvExporter(), system=HostDpkg())


def rootfs_builder() -> RootfsBuilder:
    """debootstrap from the host's apt mirror (``replay base build``)."""
    from replay.adapters.debootstrap import Debootstrap

    return Debootstrap()


def backend(name: str = "local", **options: Any) -> Backend:
    """The batch backend called ``name`` (``--backend``, or ``backend`` under ``[tool.replay]``)."""
    if name not in BACKENDS:
        raise BadInput(f"--backend {name} is not a backend replay knows", f"use one of: {', '.join(BACKENDS)}")
    if name == "slurm":
        from replay.adapters.slurm import SlurmBackend

        return SlurmBackend(**options)
    if name == "local":
        from replay.core.batch.local import LocalBackend

        given = options.get("engine")
        return LocalBackend(given if given is not None else engine())
    raise BadInput(f"the {name} backend is not available in this build", "run without --backend")
