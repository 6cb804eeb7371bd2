"""Pools for the contract suite: the same tests run against every kind in POOL_KINDS.

``multiprocessing`` is the reference the others must match; ``local`` is
batchpool's local backend; ``dummy-*`` run against the dummy schedulers of
``batchpool.testing``; ``real-*`` against a real Slurm or SGE, or (``real-pbs``)
Slurm's Torque wrappers in front of that Slurm (marked, and skipped only where the
scheduler's programs are not installed).
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "contract"))

import batchpool  # noqa: E402
from batchpool.commands import CommandPolicy  # noqa: E402
from batchpool.testing import DummyCluster, install_dummies  # noqa: E402

FAST_COMMANDS = CommandPolicy(timeout_s=30.0, num_retries=3, backoff_s=0.2)

PBS_WRAPPERS = Path(os.environ.get("BATCHPOOL_PBS_WRAPPERS", "/opt/slurm-torque/usr/bin"))
"""Slurm's Torque wrappers, as ``ci/pbs/install.sh`` unpacks them (off PATH: SGE's
``qsub`` is on it)."""

REAL = {
    "slurm": ("sbatch", pytest.mark.slurm),
    "slurm.array": ("sbatch", pytest.mark.slurm),
    "sge": ("qsub", pytest.mark.sge),
    "pbs": (str(PBS_WRAPPERS / "qsub"), pytest.mark.pbs),
}
"""Real scheduler kinds: the program that must be on PATH (or at that path), and their mark."""

POOL_KINDS = [
    "multiprocessing",
    "local",
    "dummy-slurm",
    "dummy-slurm.array",
    "dummy-sge",
    "dummy-pbs",
    *(pytest.param(f"real-{name}", marks=mark) for name, (_, mark) in REAL.items()),
]


def cluster_pool(backend: str, **options):
    """A batchpool pool of ``backend`` (``slurm``, ``slurm.array``, ``sge``, ``local``)."""
    module = importlib.import_module(batchpool.BACKENDS[backend])
    if backend != "local":
        options.setdefault("command_policy", FAST_COMMANDS)
    return module.Pool(**options)


def dummy_paths(cluster, backend: str) -> dict:
    """The ``*_path`` options that point a pool of ``backend`` at the dummies."""
    if backend == "pbs":
        return {
            "qsub_path": cluster.pbs_qsub_path,
            "qstat_path": cluster.pbs_qstat_path,
            "qdel_path": cluster.pbs_qdel_path,
        }
    if backend == "sge":
        names = ("qsub_path", "qstat_path", "qdel_path", "qacct_path")
    else:
        names = ("sbatch_path", "squeue_path", "scancel_path", "sacct_path", "sinfo_path")
        if backend == "slurm.array":
            names += ("scontrol_path",)
    return {name: str(getattr(cluster, name)) for name in names}


def require_real(backend: str) -> None:
    program = REAL[backend][0]
    if shutil.which(program) is None:
        pytest.skip(f"{program} is not installed: no real {backend} here")


def make_pool(kind: str, tmp_path: Path, **options):
    """A pool of ``kind``; multiprocessing gets only the options it knows."""
    if kind == "multiprocessing":
        mp_options = {k: v for k, v in options.items() if k in ("initializer", "initargs")}
        return multiprocessing.Pool(options.get("processes", 2), **mp_options)
    options.setdefault("work_dir", tmp_path / "work")
    if kind == "local":
        options.setdefault("processes", 2)
        return cluster_pool("local", **options)
    options.setdefault("polling_interval", 0.3)
    options.setdefault("lost_job_grace_period_s", 1.0)
    if kind.startswith("dummy-"):
        backend = kind[len("dummy-") :]
        cluster = install_dummies(tmp_path / "dummy")
        return cluster_pool(backend, **dummy_paths(cluster, backend), **options)
    backend = kind[len("real-") :]
    require_real(backend)
    if backend == "pbs":
        options = {**real_pbs_paths(), **options}
    return cluster_pool(backend, **options)


def real_pbs_paths() -> dict:
    """The ``*_path`` options of a pool on Slurm's Torque wrappers (:data:`PBS_WRAPPERS`)."""
    return {f"{name}_path": str(PBS_WRAPPERS / name) for name in ("qsub", "qstat", "qdel")}


@pytest.fixture(params=POOL_KINDS)
def pool_kind(request):
    return request.param


@pytest.fixture
def new_pool(pool_kind, tmp_path):
    """Call as ``new_pool(**options)``; every pool made is terminated after the test."""
    pools = []

    def factory(**options):
        pool = make_pool(pool_kind, tmp_path, **options)
        pools.append(pool)
        return pool

    yield factory
    for pool in pools:
        pool.terminate()
    dummy = tmp_path / "dummy"
    if dummy.exists():
        DummyCluster(dummy, dummy / "bin").kill_all()


@pytest.fixture
def pool(new_pool):
    return new_pool()


@pytest.fixture
def is_batchpool(pool_kind):
    return pool_kind != "multiprocessing"


@pytest.fixture
def cluster(tmp_path):
    """A dummy cluster in ``tmp_path``; its jobs still running at teardown are killed."""
    cluster = install_dummies(tmp_path / "cluster")
    yield cluster
    cluster.kill_all()


@pytest.fixture
def work(tmp_path):
    path = tmp_path / "work"
    path.mkdir()
    return path
