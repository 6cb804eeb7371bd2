"""The local backend: each job is a subprocess of this machine.

It goes through exactly the same session directory and worker as the cluster
backends, so a map that works here works on the cluster.
"""

from __future__ import annotations

import collections
import itertools
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from .backend import Job, JobState, JobStatus, Submission
from .proto_pool import ProtoPool
from .worker import is_job_variable


@dataclass
class _LocalJob:
    job: Job
    argv: list[str]
    state: JobState = JobState.PENDING
    process: Optional[subprocess.Popen] = field(default=None, repr=False)
    returncode: Optional[int] = None
    deleted: bool = False


class LocalBackend:
    """Runs at most ``processes`` jobs at once, as subprocesses, from threads of the driver."""

    name = "local"
    throttles = True

    def __init__(self, processes: int) -> None:
        self.processes = processes
        self._limit = processes
        self._lock = threading.Lock()
        self._pending: collections.deque[_LocalJob] = collections.deque()
        self._jobs: dict[str, _LocalJob] = {}
        self._num_runners = 0
        self._ids = itertools.count(1)

    def max_chunks_per_submit(self) -> int:
        return sys.maxsize

    def submit(self, submission: Submission) -> list[Job]:
        jobs = []
        with self._lock:
            self._limit = min(self.processes, submission.max_running or self.processes)
            for chunk in submission.chunks:
                job_id = str(next(self._ids))
                log = submission.log_dir / f"{chunk}.{job_id}"
                job = Job(chunk, job_id, log.with_suffix(".out"), log.with_suffix(".err"))
                local_job = _LocalJob(job, submission.worker_argv([chunk]))
                self._jobs[job_id] = local_job
                self._pending.append(local_job)
                jobs.append(job)
            while self._num_runners < min(self._limit, len(self._pending)):
                self._num_runners += 1
                threading.Thread(target=self._run_pending, daemon=True).start()
        return jobs

    def status(self, job_name: str, jobs: Sequence[Job]) -> dict[str, JobStatus]:
        statuses = {}
        with self._lock:
            for job in jobs:
                local_job = self._jobs.get(job.job_id)
                if local_job is None or local_job.deleted:
                    continue
                reason = "" if local_job.returncode is None else f"exit {local_job.returncode}"
                statuses[job.job_id] = JobStatus(local_job.state, reason)
                if local_job.state is JobState.ENDED:
                    del self._jobs[job.job_id]  # reported once; the pool knows now
        return statuses

    def delete(self, jobs: Sequence[Job]) -> None:
        with self._lock:
            for job in jobs:
                local_job = self._jobs.pop(job.job_id, None)
                if local_job is None:
                    continue
                local_job.deleted = True
                if local_job.process is not None and local_job.state is JobState.RUNNING:
                    _kill_group(local_job.process)

    def _run_pending(self) -> None:
        """Run pending jobs one after the other until none is left (a runner thread)."""
        while True:
            with self._lock:
                if not self._pending or self._num_runners > self._limit:
                    self._num_runners -= 1
                    return
                local_job = self._pending.popleft()
                if local_job.deleted:
                    continue
                local_job.state = JobState.RUNNING
            self._run(local_job)

    def _run(self, local_job: _LocalJob) -> None:
        job = local_job.job
        with open(job.stdout_path, "wb") as out, open(job.stderr_path, "wb") as err:
            process = subprocess.Popen(
                local_job.argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                env=_job_environment(),
                start_new_session=True,  # so that delete() can kill the whole group
            )
        with self._lock:
            local_job.process = process
            if local_job.deleted:
                _kill_group(process)
        returncode = process.wait()
        with self._lock:
            local_job.returncode = returncode
            local_job.state = JobState.ENDED


def _job_environment() -> dict[bytes, bytes]:
    """This process's environment without the variables of a scheduler job it may run in:
    a local job belongs to no cluster job."""
    return {k: v for k, v in os.environb.items() if not is_job_variable(k)}


def _kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        return  # it ended by itself meanwhile


class Pool(ProtoPool):
    """A pool whose jobs are subprocesses of this machine, ``processes`` at once.

    Takes every option of :class:`batchpool.proto_pool.ProtoPool`; here
    ``polling_interval`` defaults to 0.5 s and ``lost_job_grace_period_s`` to
    0 s, since asking local processes for their state costs nothing and local
    files are seen at once.
    """

    def __init__(
        self,
        processes: Optional[int] = None,
        initializer: Optional[Callable[..., object]] = None,
        initargs: Iterable[Any] = (),
        maxtasksperchild: Optional[int] = None,
        **options: Any,
    ) -> None:
        if processes is None:
            processes = os.cpu_count() or 1
        options.setdefault("polling_interval", 0.5)
        options.setdefault("lost_job_grace_period_s", 0.0)
        super().__init__(
            processes,
            initializer,
            initargs,
            maxtasksperchild,
            backend=LocalBackend(processes),
            **options,
        )
