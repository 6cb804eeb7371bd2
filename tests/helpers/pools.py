"""The pools the tests make: every kind of :data:`POOL_KINDS`, the same tests run
against each (the contract suite, through the fixtures of ``tests/conftest.py``).

``multiprocessing`` is the reference the others must match; ``local`` is
batchpool's local backend; ``dummy-*`` are made by the factory fixtures of the
pytest plugin batchpool ships (``dummy_slurm_pool``, ... of
:mod:`batchpool.testing.plugin`), as a user's tests would make them; ``real-*`` run
against a real Slurm or SGE, or (``real-pbs``) Slurm's Torque wrappers in front of that
Slurm (marked), only when asked (:func:`real_asked`), and skipped where the scheduler's
programs are not installed.
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
import shutil
from collections.abc import Mapping
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

REAL_OPTION = "--real"
REAL_VARIABLE = "BATCHPOOL_TEST_REAL"
"""``--real`` on pytest's command line, or this variable set to ``1``, runs the tests that
submit to a real scheduler (``tests/real``, the ``real-*`` kinds); ``.ci/run`` sets it."""
REAL_MARKS = ("slurm", "sge", "pbs")
REAL_TIER = Path(__file__).resolve().parents[1] / "real"
NOT_ASKED = (
    f"submits to a real scheduler: run with {REAL_OPTION} or {REAL_VARIABLE}=1 "
    "(README.rst, Tests)"
)
"""Why a real-scheduler test was skipped."""
real_is_asked = False
"""Set once by ``tests/conftest.py`` from :func:`real_asked`."""


def real_asked(option: bool, environ: Mapping[str, str]) -> bool:
    """Whether the real-scheduler tests run: ``--real`` was given (``option``), or
    ``$BATCHPOOL_TEST_REAL`` is set to anything but empty or ``0``."""
    return option or environ.get(REAL_VARIABLE, "").strip() not in ("", "0")


def is_real(item: pytest.Item) -> bool:
    """Whether ``item`` submits to a real scheduler: it is in ``tests/real`` or marked."""
    in_real_tier = REAL_TIER in Path(item.path).resolve().parents
    return in_real_tier or any(item.get_closest_marker(mark) for mark in REAL_MARKS)

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
    """Skip unless the real-scheduler tests were asked for and ``backend`` is here."""
    if not real_is_asked:
        pytest.skip(NOT_ASKED)
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
