"""A pytest plugin: fixtures that run your maps on batchpool's dummy Slurm, SGE and PBS.

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
    job still waiting or running at teardown is cancelled.
``dummy_slurm_pool``, ``dummy_slurm_array_pool``, ``dummy_sge_pool``, ``dummy_pbs_pool``
    Factories: call with pool options, get a :mod:`batchpool.slurm`,
    :mod:`batchpool.slurm.array`, :mod:`batchpool.sge` or :mod:`batchpool.pbs` pool
    (Torque 6 unless ``dummy_cluster.set_pbs_dialect("pbspro")``) wired to
    ``dummy_cluster``, with its ``work_dir`` in ``tmp_path`` (each overridable); every
    pool made is terminated at teardown. The pools keep the default
    ``polling_interval``: the dummy cluster moves on by itself, as a real one does, and a
    pool sees its results as they come. (A pool learns that a job failed from a status
    query: a test that makes many jobs fail may give a short ``polling_interval``.)

:func:`pool_fixture_name` names the factory fixture of a backend, for test suites that
pick the backend by a parameter (``request.getfixturevalue(pool_fixture_name(b))``).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

import pytest

from ..commands import CommandPolicy
from . import DummyCluster, install_dummies

DUMMY_OPTIONS: dict[str, Any] = {
    "lost_job_grace_period_s": 1.0,
    "command_policy": CommandPolicy(timeout_s=30.0, num_retries=3, backoff_s=0.2),
}
"""Pool options the factories set unless given: a dummy job never goes missing for a
while as a real one may, and a failing dummy command is retried soon."""

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


def pool_fixture_name(backend: str) -> str:
    """``"slurm.array"`` -> ``"dummy_slurm_array_pool"``: the factory fixture of a backend."""
    if backend not in PROGRAM_OPTIONS:
        raise ValueError(f"no dummy for backend {backend!r}; one of {sorted(PROGRAM_OPTIONS)}")
    return f"dummy_{backend.replace('.', '_')}_pool"


def program_paths(cluster: DummyCluster, backend: str) -> dict[str, Any]:
    """The ``*_path`` options that point a ``backend`` pool at ``cluster``'s programs."""
    return {name.removeprefix("pbs_"): getattr(cluster, name) for name in PROGRAM_OPTIONS[backend]}


def pool_options(cluster: DummyCluster, backend: str, work_dir: Path) -> dict[str, Any]:
    """The options the factories give a ``backend`` pool on ``cluster`` unless told otherwise."""
    options = program_paths(cluster, backend)
    options.update(DUMMY_OPTIONS)
    options["work_dir"] = work_dir
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
    """A dummy Slurm, SGE and PBS in ``tmp_path / "dummy_cluster"``; stopped after, its
    jobs killed."""
    cluster = install_dummies(tmp_path / "dummy_cluster")
    yield cluster
    cluster.kill_all()


def _pool_fixture(backend: str, module: str) -> Callable[..., Iterator[PoolFactory]]:
    """The fixture ``dummy_<backend>_pool``: call it with pool options for a
    ``batchpool.<module>.Pool`` on ``dummy_cluster``."""

    def factory(dummy_cluster: DummyCluster, tmp_path: Path) -> Iterator[PoolFactory]:
        yield from _pool_factory(backend, dummy_cluster, tmp_path)

    name = f"dummy_{backend.replace('.', '_')}_pool"
    factory.__name__ = factory.__qualname__ = name
    factory.__doc__ = (
        f"Call with pool options: a :class:`batchpool.{module}.Pool` on ``dummy_cluster``."
    )
    return pytest.fixture(name=name)(factory)


dummy_slurm_pool = _pool_fixture("slurm", "slurm")
dummy_slurm_array_pool = _pool_fixture("slurm.array", "slurm.array")
dummy_sge_pool = _pool_fixture("sge", "sge")
dummy_pbs_pool = _pool_fixture("pbs", "pbs")
