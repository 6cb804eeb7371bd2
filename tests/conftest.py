"""Pools for the contract suite: the same tests run against every kind in POOL_KINDS.

``multiprocessing`` is the reference the others must match; ``local`` is
batchpool's local backend; ``dummy-*`` are made by the factory fixtures of the
pytest plugin batchpool ships (``dummy_slurm_pool``, ... of
:mod:`batchpool.testing.plugin`), as a user's tests would make them; ``real-*`` run
against a real Slurm or SGE, or (``real-pbs``) Slurm's Torque wrappers in front of that
Slurm (marked, and skipped only where the scheduler's programs are not installed).

The end of the run prints how long each tier (``tests/unit``, ``tests/faults``, ...)
took: in its tests, and from its first test to its last.
"""

from __future__ import annotations

import collections
import importlib
import multiprocessing
import os
import shutil
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "contract"))

import batchpool  # noqa: E402
from batchpool.commands import CommandPolicy  # noqa: E402
from batchpool.testing import plugin  # noqa: E402

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


@pytest.fixture(params=POOL_KINDS)
def pool_kind(request):
    return request.param


@pytest.fixture
def new_pool(pool_kind, tmp_path, request):
    """Call as ``new_pool(**options)``; every pool made is terminated after the test."""
    if pool_kind.startswith("dummy-"):
        yield request.getfixturevalue(plugin.pool_fixture_name(pool_kind[len("dummy-") :]))
        return
    pools = []

    def factory(**options):
        pool = make_pool(pool_kind, tmp_path, **options)
        pools.append(pool)
        return pool

    yield factory
    for pool in pools:
        pool.terminate()


@pytest.fixture
def pool(new_pool):
    return new_pool()


@pytest.fixture
def is_batchpool(pool_kind):
    return pool_kind != "multiprocessing"


@pytest.fixture
def cluster(dummy_cluster):
    """The plugin's ``dummy_cluster``, under the name some unit tests still use."""
    return dummy_cluster


@pytest.fixture
def work(tmp_path):
    path = tmp_path / "work"
    path.mkdir()
    return path


TIER_DURATIONS_S: collections.Counter = collections.Counter()
"""Seconds spent in each tier's tests (setup, call and teardown), by tier."""
TIER_SPANS: dict[str, list[float]] = {}
"""Each tier's ``[first start, last finish]`` (``time.monotonic``): its wall-clock time."""


def _tier(nodeid: str) -> str:
    """``tests/unit/test_x.py::test_y`` -> ``tests/unit``."""
    parts = Path(nodeid.split("::")[0]).parts
    return "/".join(parts[:2]) if parts[:1] == ("tests",) and len(parts) > 2 else parts[0]


def pytest_runtest_logstart(nodeid, location):
    now = time.monotonic()
    TIER_SPANS.setdefault(_tier(nodeid), [now, now])


def pytest_runtest_logfinish(nodeid, location):
    TIER_SPANS[_tier(nodeid)][1] = time.monotonic()


def pytest_runtest_logreport(report):
    TIER_DURATIONS_S[_tier(report.nodeid)] += report.duration


def pytest_terminal_summary(terminalreporter):
    if not TIER_DURATIONS_S:
        return
    terminalreporter.section("time per tier")
    for tier, seconds in sorted(TIER_DURATIONS_S.items()):
        first, last = TIER_SPANS.get(tier, (0.0, 0.0))
        terminalreporter.write_line(
            f"{tier}: {seconds:.1f} s in its tests, {last - first:.1f} s from its first to its last"
        )
