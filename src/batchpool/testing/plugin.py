"""A pytest plugin: fixtures that run your maps on batchpool's dummy Slurm and SGE.

Installed with batchpool (entry point ``pytest11``), so the fixtures are there in
every test suite of a project that has batchpool installed::

    from batchpool.testing import Fault, FaultKind

    def test_survives_a_node_failure(dummy_cluster, dummy_slurm_pool):
        # the first job submitted to the dummy cluster fails with NODE_FAIL
        dummy_cluster.add_fault(Fault(FaultKind.ERROR_STATE, job=0, state="NODE_FAIL"))
        pool = dummy_slurm_pool(processes=2)
        assert pool.map(abs, [-1, -2]) == [1, 2]

``dummy_cluster``
    A :class:`~batchpool.testing.DummyCluster` installed in ``tmp_path``; every
    job still running at teardown is killed.
``dummy_slurm_pool``, ``dummy_slurm_array_pool``, ``dummy_sge_pool``, ``dummy_pbs_pool``
    Factories: call with pool options, get a :mod:`batchpool.slurm`,
    :mod:`batchpool.slurm.array`, :mod:`batchpool.sge` or :mod:`batchpool.pbs` pool
    (Torque 6 unless ``dummy_cluster.set_pbs_dialect("pbspro")``) wired to
    ``dummy_cluster``, with fast polling and its ``work_dir`` in ``tmp_path``
    (each overridable); every pool made is terminated at teardown.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

import pytest

from . import DummyCluster, install_dummies

FAST_OPTIONS: dict[str, float] = {"polling_interval": 0.2, "lost_job_grace_period_s": 1.0}
"""Pool options the factories set unless given: poll the dummies often."""

PROGRAM_OPTIONS = {
    "slurm": ("sbatch_path", "squeue_path", "scancel_path", "sacct_path", "sinfo_path"),
    "slurm.array": (
        "sbatch_path",
        "squeue_path",
        "scancel_path",
        "scontrol_path",
        "sacct_path",
        "sinfo_path",
    ),
    "sge": ("qsub_path", "qstat_path", "qdel_path", "qacct_path"),
    "pbs": ("pbs_qsub_path", "pbs_qstat_path", "pbs_qdel_path"),
}
"""The ``*_path`` options that point a pool of each backend at the dummy programs."""

PoolFactory = Callable[..., Any]


def pool_options(cluster: DummyCluster, backend: str, work_dir: Path) -> dict[str, Any]:
    """The options the factories give a ``backend`` pool on ``cluster`` unless told otherwise."""
    from ..commands import CommandPolicy

    options: dict[str, Any] = {
        name.removeprefix("pbs_"): getattr(cluster, name) for name in PROGRAM_OPTIONS[backend]
    }
    options.update(FAST_OPTIONS)
    options["work_dir"] = work_dir
    options["command_policy"] = CommandPolicy(timeout_s=30.0, num_retries=3, backoff_s=0.2)
    return options


def _pool_factory(backend: str, cluster: DummyCluster, tmp_path: Path) -> Iterator[PoolFactory]:
    module = importlib.import_module(f"batchpool.{backend}")
    pools = []

    def make_pool(*args: Any, **options: Any) -> Any:
        defaults = pool_options(cluster, backend, tmp_path / "work")
        pool = module.Pool(*args, **{**defaults, **options})
        pools.append(pool)
        return pool

    yield make_pool
    for pool in pools:
        pool.terminate()


@pytest.fixture
def dummy_cluster(tmp_path: Path) -> Iterator[DummyCluster]:
    """A dummy Slurm and SGE in ``tmp_path / "dummy_cluster"``; its jobs are killed after."""
    cluster = install_dummies(tmp_path / "dummy_cluster")
    yield cluster
    cluster.kill_all()


@pytest.fixture
def dummy_slurm_pool(dummy_cluster: DummyCluster, tmp_path: Path) -> Iterator[PoolFactory]:
    """Call with pool options: a :class:`batchpool.slurm.Pool` on ``dummy_cluster``."""
    yield from _pool_factory("slurm", dummy_cluster, tmp_path)


@pytest.fixture
def dummy_slurm_array_pool(dummy_cluster: DummyCluster, tmp_path: Path) -> Iterator[PoolFactory]:
    """Call with pool options: a :class:`batchpool.slurm.array.Pool` on ``dummy_cluster``."""
    yield from _pool_factory("slurm.array", dummy_cluster, tmp_path)


@pytest.fixture
def dummy_sge_pool(dummy_cluster: DummyCluster, tmp_path: Path) -> Iterator[PoolFactory]:
    """Call with pool options: a :class:`batchpool.sge.Pool` on ``dummy_cluster``."""
    yield from _pool_factory("sge", dummy_cluster, tmp_path)


@pytest.fixture
def dummy_pbs_pool(dummy_cluster: DummyCluster, tmp_path: Path) -> Iterator[PoolFactory]:
    """Call with pool options: a :class:`batchpool.pbs.Pool` on ``dummy_cluster``'s PBS."""
    yield from _pool_factory("pbs", dummy_cluster, tmp_path)
