"""A result that becomes visible only after its job left the queue (shared filesystems
cache directory listings): ``lost_job_grace_period_s`` waits for it."""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Sequence

import pytest

import batchpool
from batchpool.backend import Job, JobStatus, Submission
from batchpool.proto_pool import ProtoPool


class LateResultsBackend:
    """Runs a job when it is submitted and is done with it at once (the queue forgets
    it), but its result file shows only ``delay_s`` later."""

    name = "late-results"
    throttles = False

    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s
        self.submitted: list[int] = []
        self.timers: list[threading.Timer] = []

    def max_chunks_per_submit(self) -> int:
        return 1

    def submit(self, submission: Submission) -> list[Job]:
        (chunk,) = submission.chunks
        subprocess.run(submission.worker_argv([chunk]), check=True)
        result = submission.session_dir / "results" / f"{chunk}.pkl"
        hidden = result.with_name(f"{chunk}.hidden-{len(self.submitted)}")
        os.rename(result, hidden)
        timer = threading.Timer(self.delay_s, os.rename, (hidden, result))
        timer.start()
        self.timers.append(timer)
        self.submitted.append(chunk)
        log = submission.log_dir / f"{chunk}.{len(self.submitted)}"
        return [
            Job(chunk, str(len(self.submitted)), log.with_suffix(".out"), log.with_suffix(".err"))
        ]

    def status(self, job_name: str, jobs: Sequence[Job]) -> dict[str, JobStatus]:
        return {}  # every job has left the queue

    def delete(self, jobs: Sequence[Job]) -> None:
        raise AssertionError("nothing to delete: the jobs are gone")


def late_pool(tmp_path, backend, grace_s, **options):
    return ProtoPool(
        backend=backend,
        work_dir=tmp_path / "work",
        polling_interval=0.2,
        lost_job_grace_period_s=grace_s,
        **options,
    )


def test_the_grace_period_waits_for_late_results(tmp_path):
    backend = LateResultsBackend(delay_s=1.0)
    with late_pool(tmp_path, backend, grace_s=5.0) as pool:
        assert pool.map(abs, [-1, -2, -3], chunksize=1) == [1, 2, 3]
    assert sorted(backend.submitted) == [0, 1, 2]  # nothing was resubmitted


def test_without_grace_a_late_result_counts_as_lost(tmp_path):
    backend = LateResultsBackend(delay_s=2.0)
    with late_pool(tmp_path, backend, grace_s=0.0, max_num_resubmissions=0) as pool:
        with pytest.raises(batchpool.JobsLostError, match="vanished from the queue"):
            pool.map(abs, [-1], chunksize=1)
    for timer in backend.timers:
        timer.join()
