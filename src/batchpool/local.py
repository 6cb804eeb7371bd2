"""The local backend: each job is a subprocess of this machine.

Its jobs are the same standing workers, reading the same pool directory and
sessions as on a cluster, so a map that works here works on the cluster.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO, Callable, Optional, Union

from ._layout import is_job_variable
from .backend import Job, JobRequest, JobState, JobStatus, Resources
from .policy import RetryPolicy
from .proto_pool import (
    DEFAULT_MAX_NUM_RESUBMISSIONS,
    DEFAULT_SCHEDULER_OUTAGE_S,
    DEFAULT_WORK_DIR,
    DEFAULT_WORKER_IDLE_S,
    POOL_ARGUMENTS_DOC,
    POOL_OPTIONS_DOC,
    PROFILE_DOC,
    configured,
    pool_doc,
)
from .proto_pool import Pool as _Pool


class LocalBackend:
    """Runs each job as a subprocess (its own process group), started at once."""

    name = "local"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._processes: dict[str, subprocess.Popen] = {}
        self._names: dict[str, str] = {}
        self._ids = itertools.count(1)
        self._prefix = f"{os.getpid()}."

    def max_jobs_per_submit(self) -> int:
        return 64

    def submit(self, request: JobRequest, cancel: Optional[threading.Event] = None) -> list[Job]:
        jobs = []
        for _ in range(request.count):
            job_id = f"{self._prefix}{next(self._ids)}"
            job = Job(
                job_id,
                request.job_name,
                *map(Path, request.logs.pair(job_id)),
            )
            with _private(job.stdout_path) as out, _private(job.stderr_path) as err:
                process = subprocess.Popen(
                    request.worker_argv(job_id),
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=err,
                    env=_job_environment(),
                    start_new_session=True,  # so that delete() can kill the whole group
                )
            with self._lock:
                self._processes[job_id] = process
                self._names[job_id] = request.job_name
            jobs.append(job)
        return jobs

    def status(
        self, jobs: Sequence[Job], cancel: Optional[threading.Event] = None
    ) -> dict[str, JobStatus]:
        statuses = {}
        with self._lock:
            for job in jobs:
                process = self._processes.get(job.job_id)
                if process is None:
                    continue
                returncode = process.poll()
                if returncode is None:
                    statuses[job.job_id] = JobStatus(JobState.RUNNING)
                else:
                    statuses[job.job_id] = JobStatus(JobState.ENDED, _exit_reason(returncode))
                    del self._processes[job.job_id]  # reported once; the dispatcher knows now
        return statuses

    def delete(self, jobs: Sequence[Job], cancel: Optional[threading.Event] = None) -> None:
        with self._lock:
            for job in jobs:
                process = self._processes.pop(job.job_id, None)
                if process is not None and process.poll() is None:
                    _kill_group(process)
                    process.wait()

    def jobs_named(
        self, name: str, cancel: Optional[threading.Event] = None
    ) -> dict[str, JobStatus]:
        """This pool's processes that are still running (those of a dead driver's pool
        are not known here: they exit by themselves once they see their driver gone)."""
        with self._lock:
            return {
                job_id: JobStatus(JobState.RUNNING)
                for job_id, process in self._processes.items()
                if process.poll() is None and self._names.get(job_id) == name
            }

    def explain(
        self,
        jobs: Sequence[Job],
        cancel: Optional[threading.Event] = None,
        nodes: Optional[Mapping[str, str]] = None,
    ) -> dict[str, JobStatus]:
        """Nothing more than :meth:`status` said (the exit code)."""
        return {}

    def base_resources(self) -> Resources:
        """Local jobs have no memory or time limit."""
        return Resources()

    def num_nodes(self, cancel: Optional[threading.Event] = None) -> Optional[int]:
        """None: local jobs all run on this one machine."""
        return None

    def filter_stderr(self, text: str) -> str:
        return text


def _private(path: Path) -> BinaryIO:
    """A new log file readable by the owner only (it may show the user's data)."""
    return os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb")


def _exit_reason(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit code {returncode}"


def _job_environment() -> dict[bytes, bytes]:
    """This process's environment without the variables of a scheduler job it may run in:
    a local job belongs to no cluster job."""
    return {k: v for k, v in os.environb.items() if not is_job_variable(k)}


def _kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        return  # it ended by itself meanwhile


LOCAL_POLLING_INTERVAL = 0.5
"""Asking local processes for their state costs nothing."""
LOCAL_GRACE_PERIOD_S = 0.0
"""Local files are seen at once."""


class Pool(_Pool):
    __doc__ = pool_doc(
        """A pool whose workers are subprocesses of this machine, ``processes`` at most
        (default: the number of CPUs).

        Here ``polling_interval`` defaults to 0.5 s and ``lost_job_grace_period_s`` to 0 s,
        since asking local processes for their state costs nothing and local files are seen
        at once.""",
        POOL_ARGUMENTS_DOC,
        POOL_OPTIONS_DOC,
        PROFILE_DOC,
    )

    @configured("local")
    def __init__(
        self,
        processes: Optional[int] = None,
        initializer: Optional[Callable[..., object]] = None,
        initargs: Iterable[Any] = (),
        maxtasksperchild: Optional[int] = None,
        context: object = None,
        *,
        work_dir: Union[str, os.PathLike[str]] = DEFAULT_WORK_DIR,
        python_path: Optional[Union[str, os.PathLike[str]]] = None,
        polling_interval: float = LOCAL_POLLING_INTERVAL,
        max_num_resubmissions: int = DEFAULT_MAX_NUM_RESUBMISSIONS,
        num_simultaneously_running_tasks: Optional[int] = None,
        keep_work_dir: bool = False,
        verbose: bool = False,
        lost_job_grace_period_s: float = LOCAL_GRACE_PERIOD_S,
        resume: bool = True,
        worker_idle_s: float = DEFAULT_WORKER_IDLE_S,
        scheduler_outage_s: float = DEFAULT_SCHEDULER_OUTAGE_S,
        retry_policy: Optional[RetryPolicy] = None,
        profile: Optional[str] = None,
    ) -> None:
        if processes is None:
            processes = os.cpu_count() or 1
        # ``profile`` was applied by @configured: it filled in the options not given.
        super().__init__(
            processes,
            initializer,
            initargs,
            maxtasksperchild,
            context,
            backend=LocalBackend(),
            work_dir=work_dir,
            python_path=python_path,
            polling_interval=polling_interval,
            max_num_resubmissions=max_num_resubmissions,
            num_simultaneously_running_tasks=num_simultaneously_running_tasks,
            keep_work_dir=keep_work_dir,
            verbose=verbose,
            lost_job_grace_period_s=lost_job_grace_period_s,
            resume=resume,
            worker_idle_s=worker_idle_s,
            scheduler_outage_s=scheduler_outage_s,
            retry_policy=retry_policy,
        )
