"""The Slurm tests' cluster: one real slurmctld + slurmd + munged on 127.0.0.1, for the whole session.

Under CI=true a cluster that cannot start (packages missing and not installable, a daemon that exits, a node
that never shows idle) FAILS the tests with the daemons' logs; elsewhere it skips them. The end-to-end tests
here also need the Docker engine and the e2e fixtures (``tests/e2e/conftest.py``), imported below.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import engine, train_venv  # noqa: F401 - fixtures the e2e Slurm tests share
from tests.slurm.cluster import Cluster, ClusterError, ensure_installed


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"Slurm test cluster could not start: {reason}")
    pytest.skip(f"Slurm test cluster could not start: {reason}")


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[Cluster]:
    # Under /work-like disks rather than a tmpfs /tmp would do too; the folder must be one every "node"
    # sees, which on one machine any folder is.
    root = Path(tempfile.mkdtemp(prefix="replay-slurm-"))
    cluster = Cluster(root)
    try:
        ensure_installed()
        cluster.start()
    except (ClusterError, OSError) as exc:
        cluster.stop()
        _unavailable(str(exc))
    print(f"\nslurm test cluster up in {cluster.startup_s:.1f} s ({root})")
    old = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = str(cluster.conf)  # for the backend under test and the CLI it starts
    try:
        yield cluster
    finally:
        if old is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = old
        left = cluster.jobs()
        cluster.stop()
    assert not left, f"jobs left on the test cluster: {left}"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/slurm" in str(item.fspath) and "test_e2e" in item.fspath.basename:
            item.add_marker(pytest.mark.engine)
