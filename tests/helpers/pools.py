"""The pools the tests make: every kind of :data:`POOL_KINDS`, the same tests run
against each (the contract suite, through the fixtures of ``tests/conftest.py``).

``multiprocessing`` is the reference the others must match; ``local`` is
batchpool's local backend; ``dummy-*`` are made by the factory fixtures of the
pytest plugin batchpool ships (``dummy_slurm_pool``, ... of
:mod:`batchpool.testing.plugin`), as a user's tests would make them; ``real-*`` run
against a real Slurm or SGE, or (``real-pbs``) Slurm's Torque wrappers in front of that
Slurm (marked, and skipped only where the scheduler's programs are not installed).
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
import shutil
from pathlib import Path

import pytest

import batchpool
from batchpool.commands import CommandPolicy

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


def require_real(backend: str) -> None:
    program = REAL[backend][0]
    if shutil.which(program) is None:
        pytest.skip(f"{program} is not installed: no real {backend} here")


def make_pool(kind: str, tmp_path: Path, **options):
    """A pool of ``kind`` other than ``dummy-*``; multiprocessing gets only the options
    it knows."""
    if kind == "multiprocessing":
        mp_options = {k: v for k, v in options.items() if k in ("initializer", "initargs")}
        return multiprocessing.Pool(options.get("processes", 2), **mp_options)
    options.setdefault("work_dir", tmp_path / "work")
    if kind == "local":
        options.setdefault("processes", 2)
        return cluster_pool("local", **options)
    options.setdefault("polling_interval", 0.3)
    options.setdefault("lost_job_grace_period_s", 1.0)
    backend = kind[len("real-") :]
    require_real(backend)
    if backend == "pbs":
        options = {**real_pbs_paths(), **options}
    return cluster_pool(backend, **options)


def real_pbs_paths() -> dict:
    """The ``*_path`` options of a pool on Slurm's Torque wrappers (:data:`PBS_WRAPPERS`)."""
    return {f"{name}_path": str(PBS_WRAPPERS / name) for name in ("qsub", "qstat", "qdel")}
