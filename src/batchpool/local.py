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
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Optional

from ._layout import is_job_variable
from .backend import (
    Backend,
    Cancel,
    Job,
    JobRequest,
    JobResources,
    JobState,
    JobStatus,
    Statuses,
    script_body,
)
from .options import BackendPoolOptions
from .progress import logger
from .proto_pool import BackendPool

if TYPE_CHECKING:
    from .options import ResourceOptions, Unpack


IGNORED_HERE = ("queue", "time", "mem", "cpus", "account")
"""Resources that mean nothing to a subprocess of this machine: accepted, so that a
script written for a cluster runs here unchanged, and said once to be ignored."""


class LocalBackend(Backend):
    """Runs each job as a subprocess (its own process group), started at once. Its jobs have
    no memory or time limit, and nothing explains their end more than their exit code.

    Parameters
    ----------
    queue, time, mem, cpus, gpus, account, setup
        The resources of every backend (:data:`batchpool.options.RESOURCES`): ``queue``,
        ``time``, ``mem``, ``cpus`` and ``account`` mean nothing here and are ignored
        (one INFO line on the ``batchpool`` logger says so); ``setup`` lines run in
        ``/bin/sh`` before each worker; with ``gpus=N`` each worker gets N of the devices
        in ``CUDA_VISIBLE_DEVICES`` (in turn), which must list at least N.
    """

    name = "local"

    def __init__(self, **resources: Unpack[ResourceOptions]) -> None:
        self.job_resources = job = JobResources.of(resources)
        ignored = job.given(*IGNORED_HERE)
        if ignored:
            said = ", ".join(f"{name}={value!r}" for name, value in ignored.items())
            logger.info("batchpool: the local backend ignores %s (they mean nothing here)", said)
        self._gpu_groups = gpu_groups(job.gpus, os.environ.get("CUDA_VISIBLE_DEVICES"))
        self._lock = threading.Lock()
        self._processes: dict[str, subprocess.Popen] = {}
        self._names: dict[str, str] = {}
        self._ids = itertools.count(1)
        self._prefix = f"{os.getpid()}."
        self._gpu_turns = itertools.count()

    def max_jobs_per_submit(self) -> int:
        return 64

    def submit(self, request: JobRequest, cancel: Cancel = None) -> list[Job]:
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
                    self.job_argv(request, job_id),
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=err,
                    env=self.job_environment(),
                    start_new_session=True,  # so that delete() can kill the whole group
                )
            with self._lock:
                self._processes[job_id] = process
                self._names[job_id] = request.job_name
            jobs.append(job)
        return jobs

    def job_argv(self, request: JobRequest, job_id: str) -> list[str]:
        """The worker's command line, after the ``setup`` lines in ``/bin/sh`` if any."""
        argv = request.worker_argv(job_id)
        setup = self.job_resources.setup
        return ["/bin/sh", "-c", script_body(setup, argv)] if setup else argv

    def job_environment(self) -> dict[bytes, bytes]:
        """:func:`_job_environment`, with the next group of GPUs if the pool asks for any."""
        env = _job_environment()
        if self._gpu_groups:
            with self._lock:
                group = self._gpu_groups[next(self._gpu_turns) % len(self._gpu_groups)]
            env[b"CUDA_VISIBLE_DEVICES"] = group.encode()
        return env

    def status(self, jobs: Sequence[Job], cancel: Cancel = None) -> Statuses:
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

    def delete(self, jobs: Sequence[Job], cancel: Cancel = None) -> None:
        with self._lock:
            for job in jobs:
                process = self._processes.pop(job.job_id, None)
                if process is not None and process.poll() is None:
                    _kill_group(process)
                    process.wait()

    def jobs_named(self, name: str, cancel: Cancel = None) -> Statuses:
        """This pool's processes that are still running (those of a dead driver's pool
        are not known here: they exit by themselves once they see their driver gone)."""
        with self._lock:
            return {
                job_id: JobStatus(JobState.RUNNING)
                for job_id, process in self._processes.items()
                if process.poll() is None and self._names.get(job_id) == name
            }


def gpu_groups(gpus: Optional[int], visible: Optional[str]) -> list[str]:
    """The devices of ``CUDA_VISIBLE_DEVICES`` (``visible``) in groups of ``gpus``, one
    group per worker in turn (``"0,1"``, ``"2,3"``); none without ``gpus``.

    Raises
    ------
    ValueError
        If ``visible`` lists fewer than ``gpus`` devices.
    """
    if not gpus:
        return []
    devices = [d.strip() for d in (visible or "").split(",") if d.strip()]
    if len(devices) < gpus:
        raise ValueError(
            f"gpus={gpus}: the local backend gives each worker {gpus} of the devices listed "
            f"in CUDA_VISIBLE_DEVICES, which lists {len(devices)} ({visible or 'not set'}); "
            f"list them (CUDA_VISIBLE_DEVICES={','.join(map(str, range(gpus)))}) or ask "
            f"for fewer, like gpus={max(len(devices), 1)}"
        )
    return [",".join(devices[i : i + gpus]) for i in range(0, len(devices) - gpus + 1, gpus)]


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


class Pool(BackendPool):
    """A pool whose workers are subprocesses of this machine, ``processes`` at most
    (default: the number of CPUs).

    Here ``polling_interval`` defaults to 0.5 s and ``lost_job_grace_period_s`` to 0 s,
    since asking local processes for their state costs nothing and local files are seen
    at once."""

    backend_class = LocalBackend
    option_defaults = {
        "polling_interval": LOCAL_POLLING_INTERVAL,
        "lost_job_grace_period_s": LOCAL_GRACE_PERIOD_S,
    }

    def __init__(self, *args: Any, **options: Unpack[BackendPoolOptions]) -> None:
        super().__init__(*args, **options)

    @staticmethod
    def _default_processes() -> int:
        return os.cpu_count() or 1
