"""batchpool.Executor on the real Slurm: 100 submits, ``as_completed``, few ``sbatch``.

``sbatch`` is run through a wrapper that logs every call
(:func:`test_standing_workers.logging_wrapper`), so that the submissions are counted
from the scheduler's side, not from the pool's own bookkeeping.
"""

from __future__ import annotations

import concurrent.futures

import executor_tasks
import pytest
from test_standing_workers import calls_of, logging_wrapper

import batchpool
from batchpool.commands import CommandPolicy
from batchpool.errors import RemoteTraceback

try:
    from helpers.pools import require_real
except ImportError:  # run with --noconftest
    import shutil

    def require_real(backend: str) -> None:
        if shutil.which("sbatch") is None:
            pytest.skip("sbatch is not installed: no real Slurm here")


@pytest.mark.slurm
def test_as_completed_over_100_submits_takes_at_most_3_sbatch(tmp_path, monkeypatch):
    require_real("slurm.array")
    monkeypatch.chdir(tmp_path)
    sbatch, log = logging_wrapper(tmp_path, "sbatch")
    executor = batchpool.Executor(
        backend="slurm.array",
        work_dir=tmp_path / "work",
        sbatch_path=str(sbatch),
        polling_interval=0.5,
        lost_job_grace_period_s=2.0,
        command_policy=CommandPolicy(timeout_s=30.0, num_retries=3, backoff_s=0.2),
    )
    with executor:
        futures = {executor.submit(executor_tasks.cube_or_fail, i): i for i in range(100)}
        values, errors = {}, {}
        for future in concurrent.futures.as_completed(futures, timeout=150):
            if future.exception() is None:
                values[futures[future]] = future.result()
            else:
                errors[futures[future]] = future.exception()
    print(f"sbatch calls: {calls_of(log)}")
    assert {i: v for i, (v, _) in values.items()} == {i: i**3 for i in range(100) if i != 13}
    assert list(errors) == [13]
    assert isinstance(errors[13], executor_tasks.ExecutorTaskError)
    assert isinstance(errors[13].__cause__, RemoteTraceback)
    assert "unlucky 13" in str(errors[13])
    assert 1 <= len(calls_of(log)) <= 3
    assert {job for _, job in values.values()} != {"?"}, "the tasks did not run in Slurm jobs"
