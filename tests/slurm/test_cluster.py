"""The test cluster itself: it runs an array job whose tasks reach the Docker engine."""

from __future__ import annotations

import time

from tests.slurm.cluster import Cluster


def test_the_cluster_runs_an_array_whose_tasks_reach_the_engine(slurm_cluster: Cluster) -> None:
    out = slurm_cluster.root / "array-check"
    out.mkdir()
    job = slurm_cluster.run("sbatch", "--parsable", "--array=0-1", "--output", str(out / "%a.out"),
                            "--wrap", "docker version --format '{{.Server.Version}}'").strip()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and any(line.startswith(job + "_") for line in slurm_cluster.jobs()):
        time.sleep(0.5)
    assert not slurm_cluster.jobs()
    for index in (0, 1):
        info = slurm_cluster.run("scontrol", "show", "job", "-o", f"{job}_{index}")
        assert "JobState=COMPLETED" in info and "ExitCode=0:0" in info
        assert (out / f"{index}.out").read_text().strip()[0].isdigit()  # the engine's version
