"""Why a replay's outputs may differ: the capture host set beside the verify host, and what each difference
usually does to floating-point results.

Pure functions over recorded facts. ``likely`` marks the findings worth reading first; the others say
what was ruled out or what rarely matters, so that a reader does not chase them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal

from replay.core.verify.hostinfo import NUMERIC_CPU_FLAGS
from replay.core.verify.noise import NoiseClass, NoiseEvidence, describe
from replay.manifest import GpuInfo, HostInfo

FindingKind = Literal["data", "image", "environment", "hardware", "seed", "command", "noise"]

# Variables that fix how many threads BLAS/OpenMP split a reduction into. With one of them set, the
# partial sums are the same on any core count (OpenBLAS and MKL fall back to OMP_NUM_THREADS).
THREAD_VARS: tuple[str, ...] = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)

UNKNOWN = "unknown"

_NONDETERMINISM = "time, unseeded RNG, thread scheduling, parallel reductions"


@dataclass(frozen=True)
class Finding:
    kind: FindingKind
    message: str
    likely: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def diagnose(
    capture: HostInfo,
    verify: HostInfo,
    *,
    seed: int | None,
    diverged: bool,
    data_verified: bool = True,
    image_verified: bool = True,
    numerics_env: dict[str, str] | None = None,
    evidence: NoiseEvidence | None = None,
    log_tail: str = "",
) -> list[Finding]:
    """Findings about a diverged replay, likely causes first (stable within each group).

    With ``evidence`` (what differs, classified), outputs that only a clock, an allocator or float rounding
    moved are named as noise, and a missing seed is blamed only where something differs beyond noise.
    """
    if not diverged:
        return []
    findings = [*_inputs(data_verified, image_verified)]
    refused = write_refused(log_tail)
    if refused:
        findings.append(refused)
    findings += _noise(evidence)
    if seed is None:
        blamed = _seed(evidence)
        # A write the replay was refused explains missing outputs better than a seed does.
        findings.append(Finding(blamed.kind, blamed.message, False) if refused else blamed)
    findings += _hardware(capture, verify, numerics_env or {})
    findings += _software(capture, verify)
    if evidence is not None and evidence.all_noise:
        pass  # every difference is explained as noise: no need to send the reader after nondeterminism
    elif seed is not None and _identical(capture, verify):
        findings.append(
            Finding(
                "environment",
                "hardware and software match the capture host field for field: the likely cause is "
                f"nondeterminism inside the command ({_NONDETERMINISM})",
                likely=True,
            )
        )
    elif not any(f.likely for f in findings):
        # Hosts differ only in ways that rarely matter: say so rather than leave the reader with no lead.
        findings.append(
            Finding(
                "command",
                "nothing that differs between the hosts usually changes results: look for nondeterminism "
                f"inside the command ({_NONDETERMINISM})",
                likely=True,
            )
        )
    return sorted(findings, key=lambda f: not f.likely)


_WRITE_ERRORS = (("Read-only file system", "EROFS"), ("Permission denied", "EACCES"))


def write_refused(log_tail: str) -> Finding | None:
    """A finding when the replay's log shows a write it was refused (the command may have caught the
    error and gone on, leaving outputs missing or different), naming the first such line."""
    for line in log_tail.splitlines():
        for text, code in _WRITE_ERRORS:
            if text in line:
                shown = line.strip()[:200]
                return Finding("command", f"the replay was refused a write ({code}: \"{shown}\"): the command "
                               "wrote somewhere the replay does not let it (outside the project folder and /tmp, or "
                               "into the read-only data); outputs that depend on that write are missing or differ. "
                               "Write under the project folder or /tmp, or declare the place with --output", True)
    return None


def host_table(capture: HostInfo, verify: HostInfo) -> list[tuple[str, str, str, bool]]:
    """Rows of (field, capture value, verify value, differs); an unknown side never counts as differing."""
    rows = []
    for label, show in _FIELDS:
        a, b = show(capture), show(verify)
        rows.append((label, a, b, a != b and UNKNOWN not in (a, b)))
    return rows


# --- findings ------------------------------------------------------------------------------------------


def _inputs(data_verified: bool, image_verified: bool) -> list[Finding]:
    if data_verified:
        data = Finding(
            "data", "input data proven equal: every file's size and sha256 match the capture", False
        )
    else:
        data = Finding(
            "data", "input data was not checked against the capture: other data, other results", True
        )
    if image_verified:
        image = Finding(
            "image", "image proven equal: the same packages and system libraries as at capture", False
        )
    else:
        image = Finding(
            "image", "image was not checked against the capture: other libraries, other results", True
        )
    return [data, image]


def _noise(evidence: NoiseEvidence | None) -> list[Finding]:
    if evidence is None:
        return []
    out = []
    reordered = evidence.reordered
    for item in evidence.items:
        what = "metric " + item.name if item.is_metric else item.name
        if item in reordered:
            out.append(Finding("seed", f"{what} holds the same items in another order: set and dict order follows "
                                       "Python's hash randomization and no PYTHONHASHSEED was recorded; capture with "
                                       "--seed (it sets PYTHONHASHSEED) or --env PYTHONHASHSEED=0", True))
        elif item.varied_at_capture:
            out.append(Finding("noise", f"{what} already varied between runs at capture ({evidence.capture_runs} runs): "
                                        "noise, not a regression", True))
        elif item.explained:
            text = describe(item.classes, what) if not item.is_metric else \
                f"{what} looks like {NoiseClass(next(iter(item.classes))).label}"
            out.append(Finding("noise", f"{text}: noise from {_causes(item.classes)}, not a regression "
                                        f"(`replay check` measures it; --ignore or --tolerance settles it)", True))
    return out


_CAUSES = {"timing": "the clock", "timestamp": "the clock", "timing_driven": "the clock", "address": "the allocator",
           "temp_path": "temporary file names", "float_noise": "float rounding", "order": "hash order"}


def _causes(classes: dict[str, int]) -> str:
    found = list(dict.fromkeys(_CAUSES.get(c, "elsewhere") for c in sorted(classes)))
    return " and ".join(found)


def _seed(evidence: NoiseEvidence | None) -> Finding:
    advice = "pass --seed and read REPLAY_SEED in the training script, or capture with --run --auto-seed"
    if evidence is None or evidence.beyond_noise:
        names = ", ".join(i.name for i in (evidence.beyond_noise if evidence else [])[:3])
        where = f" ({names} differ beyond float noise)" if names else ""
        return Finding("seed", "no seed was recorded and values differ beyond noise" + where + ": a run that "
                       f"draws random numbers without a fixed seed differs on every run; {advice}", True)
    order = " and the order of set/dict items (the hash seed)" if evidence.reordered else ""
    return Finding("seed", f"no seed was recorded, but only noise{order} differs (clocks, addresses, rounding): a "
                   "random-number seed would not change it", False)


def _hardware(capture: HostInfo, verify: HostInfo, numerics_env: dict[str, str]) -> list[Finding]:
    out = []
    if _known_differs(capture.arch, verify.arch):
        out.append(
            _hw(
                f"architecture differs ({capture.arch} at capture, {verify.arch} here): every numeric "
                "kernel is a different build",
                True,
            )
        )
    if _known_differs(capture.cpu_model, verify.cpu_model):
        out.append(
            _hw(
                f"CPU model differs ({capture.cpu_model} at capture, {verify.cpu_model} here): BLAS "
                "libraries pick kernels and block sizes per CPU, so float reductions can round differently",
                True,
            )
        )
    out += _flag_findings(capture.cpu_flags, verify.cpu_flags)
    if capture.cores and verify.cores and capture.cores != verify.cores:
        out.append(_cores_finding(capture.cores, verify.cores, numerics_env))
    out += _gpu_findings(capture.gpus, verify.gpus)
    a, b = _memory(capture), _memory(verify)
    if _known_differs(a, b):
        out.append(
            _hw(
                f"memory differs ({a} at capture, {b} here): it does not change arithmetic, only a script "
                "that sizes batches or workers from memory",
                False,
            )
        )
    return out


def _flag_findings(capture: list[str], verify: list[str]) -> list[Finding]:
    if not capture or not verify:
        # Nothing recorded on one side (not Linux, or an older capture): absent is not the same as unknown.
        if capture or verify:
            side = "capture" if not capture else "this host"
            return [_hw(f"CPU instruction-set flags unknown for {side}: cannot compare them", False)]
        return []
    why = "BLAS/numpy kernels take other code paths, so float reductions can round differently"
    out = []
    if only_capture := _ordered(set(capture) - set(verify)):
        out.append(_hw(f"{', '.join(only_capture)} present at capture, absent here: {why}", True))
    if only_verify := _ordered(set(verify) - set(capture)):
        out.append(_hw(f"{', '.join(only_verify)} absent at capture, present here: {why}", True))
    return out


def _cores_finding(capture: int, verify: int, numerics_env: dict[str, str]) -> Finding:
    counts = f"core count differs ({capture} at capture, {verify} here)"
    pinned = [f"{name}={numerics_env[name]}" for name in THREAD_VARS if numerics_env.get(name)]
    if pinned:
        return _hw(
            f"{counts}, but thread counts were pinned ({', '.join(pinned)}): the work splits the same way",
            False,
        )
    return _hw(
        f"{counts} and no thread count was pinned ({', '.join(THREAD_VARS[:2])}, ...): BLAS and OpenMP "
        "split reductions by core count and add the partial sums in another order",
        True,
    )


def _gpu_findings(capture: list[GpuInfo], verify: list[GpuInfo]) -> list[Finding]:
    if not capture and not verify:
        return []
    if not capture or not verify:
        where = "at capture only" if capture else "here only"
        gpus = _gpu_names(capture or verify)
        return [_hw(f"GPU present {where} ({gpus}): CPU and GPU kernels compute differently", True)]
    out = []
    a, b = _gpu_names(capture), _gpu_names(verify)
    if a != b:
        out.append(
            _hw(
                f"GPUs differ ({a} at capture, {b} here): cuBLAS/cuDNN choose kernels per GPU model, and "
                "work split over another GPU count reduces in another order",
                True,
            )
        )
    da, db = _drivers(capture), _drivers(verify)
    if da != db:
        out.append(
            _hw(
                f"GPU driver differs ({da} at capture, {db} here): the driver's JIT and kernel choices "
                "can change results",
                True,
            )
        )
    return out


def _software(capture: HostInfo, verify: HostInfo) -> list[Finding]:
    out = []
    if _known_differs(capture.os, verify.os):
        out.append(
            Finding(
                "environment",
                f"host OS differs ({capture.os} at capture, {verify.os} here): the "
                "replay runs on the image's pinned libraries, so this rarely affects numerics",
                False,
            )
        )
    versions = [("kernel", capture.kernel, verify.kernel)]
    if _known_differs(capture.engine, verify.engine):
        out.append(Finding("environment", f"container engine differs ({capture.engine} at capture, {verify.engine} "
                                          "here): the same image runs; rarely affects numerics", False))
    else:  # two engines' version numbers do not compare
        label = "Docker engine" if verify.engine in ("", "docker") else "Podman"
        versions.append((label, capture.docker_version, verify.docker_version))
    for label, a, b in versions:
        if _known_differs(a, b):
            out.append(
                Finding(
                    "environment",
                    f"{label} version differs ({a} at capture, {b} here): rarely affects numerics",
                    False,
                )
            )
    return out


def _hw(message: str, likely: bool) -> Finding:
    return Finding("hardware", message, likely)


def _identical(capture: HostInfo, verify: HostInfo) -> bool:
    return all(a == b for _, a, b, _ in host_table(capture, verify))


def _known_differs(a: str, b: str) -> bool:
    return a != b and all(v and v != UNKNOWN for v in (a, b))


# --- display -------------------------------------------------------------------------------------------


def _ordered(flags: set[str]) -> list[str]:
    # The constant's order (older extensions first), then anything an older or newer replay recorded.
    known = [f for f in NUMERIC_CPU_FLAGS if f in flags]
    return known + sorted(flags - set(known))


def _compact_flags(flags: list[str]) -> str:
    """``avx512f avx512_vnni amx_tile`` -> ``avx512{f,vnni} amx{tile}``: the families make long lists."""
    groups: dict[str, list[str]] = {}
    for flag in _ordered(set(flags)):
        family = next((p for p in ("avx512", "amx") if flag.startswith(p) and flag != p), flag)
        groups.setdefault(family, []).append(flag[len(family) :].lstrip("_"))
    return " ".join(f"{fam}{{{','.join(rest)}}}" if rest != [""] else fam for fam, rest in groups.items())


def _memory(host: HostInfo) -> str:
    return f"{host.memory_bytes / 2**30:.1f} GiB" if host.memory_bytes else UNKNOWN


def _gpu_names(gpus: list[GpuInfo]) -> str:
    return _counted([g.name for g in gpus]) or "none"


def _drivers(gpus: list[GpuInfo]) -> str:
    return ", ".join(sorted({g.driver for g in gpus if g.driver})) or UNKNOWN


def _gpus(host: HostInfo) -> str:
    return _counted([f"{g.name} (driver {g.driver or UNKNOWN})" for g in host.gpus]) or "none"


def _counted(items: list[str]) -> str:
    # Sorted so that the order nvidia-smi listed the same GPUs in never reads as a difference.
    return "; ".join(item if n == 1 else f"{n} x {item}" for item, n in sorted(Counter(items).items()))


_FIELDS: tuple[tuple[str, Callable[[HostInfo], str]], ...] = (
    ("OS", lambda h: h.os or UNKNOWN),
    ("kernel", lambda h: h.kernel or UNKNOWN),
    ("arch", lambda h: h.arch or UNKNOWN),
    ("CPU", lambda h: h.cpu_model or UNKNOWN),
    ("CPU flags", lambda h: _compact_flags(h.cpu_flags) if h.cpu_flags else UNKNOWN),
    ("cores", lambda h: str(h.cores) if h.cores else UNKNOWN),
    ("memory", _memory),
    ("GPUs", _gpus),
    ("engine", lambda h: h.engine or UNKNOWN),
    ("engine version", lambda h: h.docker_version or UNKNOWN),
)


def host_facts(host: HostInfo) -> list[tuple[str, str]]:
    """(field, value) of one host, in the rows and wording of ``host_table``."""
    return [(label, show(host)) for label, show in _FIELDS]
