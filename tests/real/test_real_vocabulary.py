"""One vocabulary of resources on the real Slurm, SGE and PBS (Slurm's Torque wrappers)
of CI (issue 23): the script of ``tests/integration/test_vocabulary.py`` runs unchanged,
and a failing ``setup`` line is a :class:`~batchpool.BrokenEnvironmentError` quoting it
within one job's lifetime.

CI's clusters have no GPUs: ``gpus`` is asked for only where ``BATCHPOOL_TEST_GPUS``
says how many a job may have; ``BATCHPOOL_TEST_QUEUE`` names a queue (partition) other
than the default, and ``BATCHPOOL_TEST_PE`` SGE's parallel environment for ``cpus=2``
(else ``cpus=1``).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from batchpool import BrokenEnvironmentError
from helpers.pools import FAST_COMMANDS, cluster_pool, real_pbs_paths, require_real

REAL = [
    pytest.param("slurm", marks=pytest.mark.slurm),
    pytest.param("slurm.array", marks=pytest.mark.slurm),
    pytest.param("sge", marks=pytest.mark.sge),
    pytest.param("pbs", marks=pytest.mark.pbs),
]
FAST = dict(polling_interval=1.0, lost_job_grace_period_s=2.0, worker_idle_s=2.0)


def one_script() -> dict:
    """The resources of the script, as CI's clusters can give them."""
    options: dict = dict(
        time="5",
        mem="300M",
        setup=["export BATCHPOOL_TEST_SETUP=ran", "unset BATCHPOOL_TEST_GONE"],
    )
    if os.environ.get("BATCHPOOL_TEST_QUEUE"):
        options["queue"] = os.environ["BATCHPOOL_TEST_QUEUE"]
    if os.environ.get("BATCHPOOL_TEST_GPUS"):
        options["gpus"] = int(os.environ["BATCHPOOL_TEST_GPUS"])
    return options


def own_options(backend: str) -> dict:
    """What a backend needs besides the vocabulary: SGE a parallel environment for more
    than one CPU, and ``-V`` so that the job starts with the driver's environment and
    a variable that ``setup`` unsets is seen as unset (README, "Resources"); PBS the
    wrappers off PATH."""
    if backend == "sge":
        pe = os.environ.get("BATCHPOOL_TEST_PE")
        cpus = dict(pe_name=pe, cpus=2) if pe else dict(cpus=1)
        return dict(cpus, qsub_args=["-V"])
    if backend == "pbs":
        return dict(real_pbs_paths(), cpus=2, command_policy=FAST_COMMANDS)
    return dict(cpus=2)


def setup_variables(_: object) -> tuple:
    return os.environ.get("BATCHPOOL_TEST_SETUP"), os.environ.get("BATCHPOOL_TEST_GONE")


@pytest.mark.parametrize("backend", REAL)
def test_one_script_runs_unchanged(backend, tmp_path: Path, monkeypatch):
    require_real(backend)
    monkeypatch.setenv("BATCHPOOL_TEST_GONE", "driver's")
    options = {**FAST, **one_script(), **own_options(backend)}
    with cluster_pool(backend, work_dir=tmp_path / "work", processes=2, **options) as pool:
        assert pool.map(setup_variables, range(4)) == [("ran", None)] * 4


@pytest.mark.parametrize("backend", REAL)
def test_a_failing_setup_line_is_a_broken_environment(backend, tmp_path: Path):
    require_real(backend)
    setup = ["export FINE=1", "batchpool-no-such-command --version"]
    options = {**FAST, **own_options(backend), "cpus": 1}
    with cluster_pool(
        backend, work_dir=tmp_path / "work", processes=1, setup=setup, **options
    ) as pool:
        started = time.monotonic()
        with pytest.raises(BrokenEnvironmentError) as caught:
            pool.map(abs, range(4))
    assert "A setup line failed (exit 127)" in str(caught.value)
    assert "batchpool-no-such-command --version" in str(caught.value)
    assert time.monotonic() - started < 120  # one job's lifetime, not a retry per chunk
