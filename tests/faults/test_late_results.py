"""A result that becomes visible only after its job left the queue (shared filesystems
show new files late): ``lost_job_grace_period_s`` waits for it."""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Optional

import pytest

import batchpool
from batchpool.backend import Backend, Job, JobRequest, JobStatus, Resources
from batchpool.proto_pool import Pool
from batchpool.session import Session


class LateResultsBackend(Backend):
    """Runs a worker to its end when it is submitted (the queue forgets the job at
    once), but the result files it wrote show only ``delay_s`` later."""

    name = "late-results"

    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s
        self.num_jobs = 0
        self.timers: list[threading.Timer] = []
        self.hidden: set[Path] = set()

    def max_jobs_per_submit(self) -> int:
        return 1

    def explain(self, jobs: Sequence[Job], cancel=None, nodes=None) -> dict:
        return {}

    def base_resources(self) -> Resources:
        return Resources()

    def submit(self, request: JobRequest, cancel: Optional[threading.Event] = None) -> list[Job]:
        self.num_jobs += 1
        job_id = str(self.num_jobs)
        subprocess.run(request.worker_argv(job_id), check=True)
        for result in request.pool_dir.parent.glob("*/results/*.rec"):
            if result in self.hidden:
                continue  # shown late once already (another job's submission sees it)
            self.hidden.add(result)
            hidden = result.with_name(f"{result.name}.hidden")
            os.rename(result, hidden)
            timer = threading.Timer(self.delay_s, os.rename, (hidden, result))
            timer.start()
            self.timers.append(timer)
        log = request.log_dir / job_id
        return [Job(job_id, request.job_name, Path(f"{log}.out"), Path(f"{log}.err"))]

    def status(
        self, jobs: Sequence[Job], cancel: Optional[threading.Event] = None
    ) -> dict[str, JobStatus]:
        return {}  # every job has left the queue

    def delete(self, jobs: Sequence[Job], cancel: Optional[threading.Event] = None) -> None:
        return None  # they are gone already

    def filter_stderr(self, text: str) -> str:
        return text


def late_pool(tmp_path, backend, grace_s, **options):
    return Pool(
        backend=backend,
        work_dir=tmp_path / "work",
        polling_interval=0.2,
        lost_job_grace_period_s=grace_s,
        worker_idle_s=0,
        **options,
    )


def test_the_grace_period_waits_for_late_results(tmp_path):
    backend = LateResultsBackend(delay_s=1.0)
    with late_pool(tmp_path, backend, grace_s=5.0, keep_work_dir=True) as pool:
        assert pool.map(abs, [-1, -2, -3], chunksize=1) == [1, 2, 3]
    (session,) = (p for p in (tmp_path / "work").iterdir() if not p.name.startswith("pool_"))
    attempts = [e.attempt for e in Session(session).chunk_events() if e.event == "posted"]
    assert attempts == [0, 0, 0]  # no chunk was put back in the queue
    for timer in backend.timers:
        timer.join()


def test_without_grace_a_late_result_counts_as_lost(tmp_path):
    backend = LateResultsBackend(delay_s=2.0)
    with late_pool(tmp_path, backend, grace_s=0.0, max_num_resubmissions=0) as pool:
        with pytest.raises(batchpool.JobsLostError, match="not in queue"):
            pool.map(abs, [-1], chunksize=1)
    for timer in backend.timers:
        timer.join()
