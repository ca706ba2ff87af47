"""Where Docker and Podman differ behind the same Docker API: each difference in one small, named place.

- ``engine_kind``: which engine answers (Podman names itself in the version's components), and whether it
  runs rootless (Podman's own info endpoint says so).
- ``adjust_host_config``: on rootless Podman the reviewer's uid is kept as itself inside the container
  (``keep-id``), so output files belong to the reviewer, never to a subordinate uid they cannot remove; a
  tmpfs is as on Docker (empty; the user's own where lent to it); /run and /var/tmp stay unwritable under a
  read-only root, as on Docker; and a
  guarantee the engine cannot give (CPU/memory limits on rootless cgroup v1, GPUs) is refused, never dropped.
- ``is_link``: Docker's stat of a path in a container names a link target only for a link; Podman names the
  resolved path for every path, so there a target other than the path itself is what marks a link.
- ``loaded_ids``: Docker reports a load as "Loaded image ID: sha256:...", Podman as "Loaded image: sha256:...".
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

from replay.core.ports import RunSpec
from replay.errors import EnvironmentProblem


@dataclass(frozen=True)
class EngineKind:
    podman: bool = False
    rootless: bool = False
    cgroup_version: str = ""

    @property
    def name(self) -> str:
        if not self.podman:
            return "docker"
        return "podman (rootless)" if self.rootless else "podman"


DOCKER = EngineKind()


def engine_kind(api: Any) -> EngineKind:
    """Ask the engine behind ``api`` (docker-py's APIClient) what it is."""
    components = api.version().get("Components") or []
    if not any(str(c.get("Name", "")).startswith("Podman") for c in components if isinstance(c, dict)):
        return DOCKER
    rootless = False
    with contextlib.suppress(Exception):  # an older Podman without the libpod endpoint: assume rootful
        response = api._get(api._url("/libpod/info"))
        if response.ok:
            rootless = bool(response.json().get("host", {}).get("security", {}).get("rootless"))
    return EngineKind(podman=True, rootless=rootless, cgroup_version=str(api.info().get("CgroupVersion") or ""))


# What Podman makes writable under a read-only root (besides /tmp, which replay mounts itself).
_PODMAN_WRITABLE = ("/run", "/var/tmp")

# The host config's limit keys, and how a report names each.
_LIMITS = {"NanoCpus": "cpus", "CpusetCpus": "cpuset", "Memory": "memory", "MemorySwap": "memory",
           "PidsLimit": "pids"}


def adjust_host_config(kind: EngineKind, spec: RunSpec, host_config: dict[str, Any]) -> list[str]:
    """What a run needs from this engine beyond the Docker API's common ground: raises where it cannot run as
    asked; returns the limits it cannot enforce (each named once), taken out of the config, for the report."""
    if not kind.podman:
        return []
    if spec.limits.gpus:
        raise EnvironmentProblem("replay does not pass GPUs to Podman", "verify with --engine docker, or without --gpus")
    unenforced: list[str] = []
    # A tmpfs as Docker mounts one: empty (Podman copies the image's folder in unless ``notmpcopyup``). Podman
    # refuses the kernel's uid=/gid= options, and gives a tmpfs the owner and mode of the image's folder
    # beneath it whatever ``mode=`` says (root's 0755 for a working tree): a tmpfs lent to the container's
    # user is chowned to that user by Podman's ``U`` instead; any other asks for Docker's mode, 1777.
    for target, options in list((host_config.get("Tmpfs") or {}).items()):
        parts = options.split(",")
        kept = [o for o in parts if not o.startswith(("uid=", "gid=", "mode="))]
        lent = any(o.startswith("uid=") for o in parts)
        host_config["Tmpfs"][target] = ",".join([*kept, "mode=0755,U" if lent else "mode=1777", "notmpcopyup"])
    if host_config.get("ReadonlyRootfs"):
        # Under a read-only root Podman mounts writable tmpfs at /run and /var/tmp (its read_only_tmpfs), where
        # Docker's stay read-only: each gets an empty, read-only one instead (a mode would not hold: Podman
        # gives a tmpfs the mode of the image's folder beneath it, 1777 for /var/tmp).
        for target in _PODMAN_WRITABLE:
            host_config.setdefault("Tmpfs", {}).setdefault(target, "ro,noexec,nosuid,nodev,size=1048576,notmpcopyup")
    if kind.rootless:
        # docker-py refuses any UsernsMode but "host", so the key is set on its finished dict.
        host_config["UsernsMode"] = "keep-id"
        if kind.cgroup_version == "1":  # no cgroup delegation to an ordinary user: Podman would ignore them
            for key, name in _LIMITS.items():
                if host_config.pop(key, None) and name not in unenforced:
                    unenforced.append(name)
    return unenforced


def loaded_ids(text: str) -> list[str]:
    """The image IDs in one line of a load's stream, from either engine."""
    for marker in ("Loaded image ID:", "Loaded image:"):
        if marker in text:
            names = text.split(marker, 1)[1].strip()
            return [n.strip() for n in names.split(",") if n.strip().startswith("sha256:")]
    return []


def is_link(kind: EngineKind, stat: dict[str, Any], path: str) -> bool:
    """Whether the engine's stat of ``path`` (the X-Docker-Container-Path-Stat header) says it leads elsewhere."""
    target = str(stat.get("linkTarget") or "")
    if kind.podman:
        return target not in ("", path)
    return bool(target)
