from __future__ import annotations

from dataclasses import replace

import pytest

from replay.core.verify.diagnose import Finding, diagnose, host_table
from replay.manifest import GpuInfo, HostInfo

A100 = GpuInfo(name="NVIDIA A100-SXM4-80GB", driver="535.104.05", memory_mb=81920)


def host(**changes: object) -> HostInfo:
    base = HostInfo(
        os="Ubuntu 22.04.4 LTS",
        kernel="6.5.0-27-generic",
        arch="x86_64",
        cpu_model="Intel(R) Xeon(R) Platinum 8480+",
        cpu_flags=["sse4_1", "sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw"],
        cores=8,
        memory_bytes=64 * 2**30,
        gpus=[A100],
        docker_version="26.1.3",
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def run(capture: HostInfo, verify: HostInfo, *, seed: int | None = 42, **kwargs: object) -> list[Finding]:
    return diagnose(capture, verify, seed=seed, diverged=True, **kwargs)  # type: ignore[arg-type]


def likely(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.likely]


def only(findings: list[Finding], kind: str) -> Finding:
    (found,) = [f for f in findings if f.kind == kind]
    return found


def test_nothing_to_say_when_the_replay_matched() -> None:
    assert diagnose(host(), host(cores=2, gpus=[]), seed=None, diverged=False, data_verified=False) == []


def test_identical_hosts_point_at_the_command() -> None:
    findings = run(host(), host())
    assert [(f.kind, f.likely) for f in findings] == [
        ("environment", True),
        ("data", False),
        ("image", False),
    ]
    assert "nondeterminism inside the command" in findings[0].message
    assert "proven equal" in only(findings, "data").message
    assert "proven equal" in only(findings, "image").message


def test_no_seed_is_the_likely_cause() -> None:
    findings = run(host(), host(), seed=None)
    seed = only(findings, "seed")
    assert seed.likely
    assert "--seed" in seed.message and "REPLAY_SEED" in seed.message and "--auto-seed" in seed.message
    # Without a seed the hosts matching proves nothing about the command.
    assert not [f for f in findings if f.kind == "environment"]


def test_unverified_data_and_image_are_likely_causes() -> None:
    findings = run(host(), host(), data_verified=False, image_verified=False)
    assert only(findings, "data").likely
    assert only(findings, "image").likely
    assert "proven" not in only(findings, "data").message


def test_missing_flags_are_named_in_both_directions() -> None:
    capture = host(cpu_flags=["avx", "avx2", "fma", "avx512f", "avx512bw"])
    verify = host(cpu_flags=["avx", "avx2", "fma", "amx_tile"])
    hardware = [f for f in run(capture, verify) if f.kind == "hardware"]
    assert [f.likely for f in hardware] == [True, True]
    assert hardware[0].message.startswith("avx512f, avx512bw present at capture, absent here: ")
    assert "round differently" in hardware[0].message
    assert hardware[1].message.startswith("amx_tile absent at capture, present here: ")


def test_flags_unknown_on_one_side_are_not_a_likely_cause() -> None:
    findings = run(host(), host(cpu_flags=[]))
    flags = only(findings, "hardware")
    assert not flags.likely
    assert "unknown" in flags.message
    assert only(findings, "command").likely  # nothing else explains it


def test_cpu_model_and_arch_differences_are_likely() -> None:
    findings = run(host(), host(cpu_model="AMD EPYC 9654 96-Core Processor"))
    model = only(findings, "hardware")
    assert model.likely and "AMD EPYC 9654" in model.message
    arch = [f for f in run(host(), host(arch="aarch64")) if "architecture" in f.message]
    assert arch and arch[0].likely


def test_core_count_is_likely_only_when_threads_were_not_pinned() -> None:
    unpinned = only(run(host(cores=32), host(cores=4)), "hardware")
    assert unpinned.likely
    assert "32 at capture, 4 here" in unpinned.message and "no thread count was pinned" in unpinned.message

    pinned = only(
        run(host(cores=32), host(cores=4), numerics_env={"OMP_NUM_THREADS": "4", "TZ": "UTC"}), "hardware"
    )
    assert not pinned.likely
    assert "OMP_NUM_THREADS=4" in pinned.message


def test_a_numerics_env_without_thread_counts_does_not_pin() -> None:
    finding = only(
        run(host(cores=32), host(cores=4), numerics_env={"TZ": "UTC", "OMP_NUM_THREADS": ""}), "hardware"
    )
    assert finding.likely


@pytest.mark.parametrize(
    ("verify_gpus", "expected"),
    [
        ([replace(A100, name="NVIDIA H100 80GB HBM3")], "GPUs differ"),
        ([A100, A100], "GPUs differ"),
        ([replace(A100, driver="550.54.15")], "GPU driver differs (535.104.05 at capture, 550.54.15 here)"),
        ([], "GPU present at capture only (NVIDIA A100-SXM4-80GB)"),
    ],
)
def test_gpu_differences_are_likely(verify_gpus: list[GpuInfo], expected: str) -> None:
    finding = only(run(host(), host(gpus=verify_gpus)), "hardware")
    assert finding.likely
    assert expected in finding.message


def test_gpu_only_on_the_verify_host() -> None:
    finding = only(run(host(gpus=[]), host()), "hardware")
    assert finding.likely and "here only" in finding.message


def test_kernel_docker_os_and_memory_rarely_matter() -> None:
    verify = host(
        kernel="6.8.0-31-generic", docker_version="27.0.3", os="Debian GNU/Linux 12", memory_bytes=2**34
    )
    findings = run(host(), verify)
    unlikely = [f for f in findings if f.kind in ("environment", "hardware")]
    assert len(unlikely) == 4
    assert not any(f.likely for f in unlikely)
    assert any("kernel version differs" in f.message for f in unlikely)
    assert any(
        "Docker engine version differs (26.1.3 at capture, 27.0.3 here)" in f.message for f in unlikely
    )
    # With nothing likely among the differences, the reader is pointed at the command.
    assert [f.kind for f in likely(findings)] == ["command"]


def test_unknown_fields_are_not_reported_as_differences() -> None:
    findings = run(host(), host(docker_version="", kernel="", memory_bytes=0, cores=0))
    assert not [f for f in findings if f.kind in ("hardware", "environment")]


def test_likely_findings_come_first() -> None:
    findings = run(host(), host(cores=2), seed=None)
    flags = [f.likely for f in findings]
    assert flags == sorted(flags, reverse=True)
    assert flags.count(True) == 2


def test_finding_to_dict() -> None:
    assert Finding("seed", "no seed", True).to_dict() == {
        "kind": "seed",
        "message": "no seed",
        "likely": True,
    }


def test_host_table() -> None:
    capture = host(gpus=[A100, A100], cpu_flags=["avx2", "fma", "avx512f", "avx512_vnni", "amx_tile"])
    verify = host(gpus=[], cores=0, memory_bytes=3 * 2**29, cpu_flags=["fma", "avx2"])
    rows = {label: (a, b, differs) for label, a, b, differs in host_table(capture, verify)}
    assert list(rows) == ["OS", "kernel", "arch", "CPU", "CPU flags", "cores", "memory", "GPUs", "engine", "engine version"]
    assert rows["CPU flags"] == ("avx2 fma avx512{f,vnni} amx{tile}", "avx2 fma", True)
    assert rows["memory"] == ("64.0 GiB", "1.5 GiB", True)
    assert rows["GPUs"] == ("2 x NVIDIA A100-SXM4-80GB (driver 535.104.05)", "none", True)
    assert rows["cores"] == ("8", "unknown", False)  # unknown is not a difference
    assert rows["OS"] == ("Ubuntu 22.04.4 LTS", "Ubuntu 22.04.4 LTS", False)


def test_host_table_ignores_flag_and_gpu_order() -> None:
    h100 = GpuInfo(name="NVIDIA H100 80GB HBM3", driver="535.104.05")
    capture = host(cpu_flags=["avx2", "fma"], gpus=[A100, h100])
    verify = host(cpu_flags=["fma", "avx2"], gpus=[h100, A100])
    assert not any(differs for *_, differs in host_table(capture, verify))
