"""What a backend is: :class:`JobRequest`, :class:`Job`, :class:`JobStatus` and :class:`Backend`.

A backend only speaks its scheduler's syntax. It builds a command line, runs
it through :func:`batchpool.commands.run_command` and parses the output. It
never sleeps, retries on its own, or decides where files live: the dispatcher
and the session own all of that.

Every job a backend starts runs the same standing worker,
``python -m batchpool.worker POOL_DIR --job-id TEMPLATE``, which takes chunks from
the pool's queue until it is idle; the backend only says how many such jobs it
submits in one call and how a job knows its own id (``TEMPLATE``).
"""

from __future__ import annotations

import enum
import shlex
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Protocol, runtime_checkable

from ._layout import JobLogs


class JobState(enum.Enum):
    """A job's state as far as the pool cares."""

    PENDING = "pending"
    """Waiting in the queue (held jobs too)."""
    RUNNING = "running"
    """Running, or finishing (Slurm ``COMPLETING``)."""
    FAILED = "failed"
    """An error state: the job will not finish by itself. The pool deletes it."""
    ENDED = "ended"
    """The scheduler says the job ended."""


class Ending(enum.Enum):
    """What the scheduler says ended a job (or put it in an error state)."""

    COMPLETED = "completed"
    """Ended by itself with exit code 0."""
    FAILED = "failed"
    """Ended by itself with another exit code, or its launch failed."""
    TIME_LIMIT = "time limit"
    MEMORY_LIMIT = "memory limit"
    NODE_FAILURE = "node failure"
    PREEMPTED = "preempted"
    """Preempted, or requeued by the scheduler: not the job's fault."""
    CANCELLED = "cancelled"
    """Deleted by someone other than this pool (``scancel``, ``qdel``)."""
    ERROR_STATE = "error state"
    """Held by the scheduler after an error (SGE ``Eqw``), or a request that can never
    start (Slurm ``BadConstraints``, ``InvalidAccount``...)."""


@dataclass(frozen=True)
class JobStatus:
    state: JobState
    reason: str = ""
    """The scheduler's own words (Slurm state and reason, SGE state letters)."""
    ending: Optional[Ending] = None
    """For an ENDED or FAILED job, what ended it, where the scheduler tells."""
    node: str = ""
    """Where the job runs or ran, where the scheduler tells."""
    exit_code: Optional[int] = None
    signal: Optional[int] = None
    """Exit code or signal of the job's script, where the scheduler tells."""
    detail: str = ""
    """More of the scheduler's own words on an ending (SGE's ``error reason``, ``qacct``'s
    ``failed`` line), for the history and error messages."""


@dataclass(frozen=True)
class Resources:
    """Per-job changes to a pool's resources, for a chunk retried with more (see
    :mod:`batchpool.policy`). None and ``()`` leave the pool's own settings."""

    mem_mb: Optional[int] = None
    time_s: Optional[int] = None
    exclude_nodes: tuple[str, ...] = ()

    def describe(self) -> str:
        parts = []
        if self.mem_mb is not None:
            parts.append(f"mem={self.mem_mb}M")
        if self.time_s is not None:
            parts.append(f"time={self.time_s}s")
        if self.exclude_nodes:
            parts.append("exclude=" + ",".join(self.exclude_nodes))
        return " ".join(parts)


@dataclass(frozen=True)
class Job:
    """One submitted job (or one array element): a standing worker of a pool."""

    job_id: str
    """As the scheduler's status command prints it (``123``, ``7055_3``)."""
    name: str
    """The job name it was submitted with (the pool's ``job_name``)."""
    stdout_path: Path
    stderr_path: Path


@dataclass(frozen=True)
class JobRequest:
    """What the dispatcher asks a backend to submit: ``count`` workers of one pool."""

    pool_dir: Path
    job_name: str
    count: int
    python_path: str
    log_dir: Path
    resources: Resources = Resources()
    """Changes to the pool's resources for these jobs (a retry with more memory or time)."""
    tier: int = 0
    """Workers of tier N take only tickets of tier N (0: the pool's own resources)."""

    @property
    def logs(self) -> JobLogs:
        """Where the jobs of this request write their stdout and stderr."""
        return JobLogs(self.log_dir)

    def worker_argv(self, job_id_template: str) -> list[str]:
        """The worker's command line; ``job_id_template`` tells it its job id from the
        scheduler's variables (:func:`batchpool._layout.job_id_from_environment`)."""
        return [
            self.python_path,
            "-m",
            "batchpool.worker",
            str(self.pool_dir),
            "--job-id",
            job_id_template,
            *(["--tier", str(self.tier)] if self.tier else []),
        ]

    def worker_command(self, job_id_template: str) -> str:
        """:meth:`worker_argv` as one shell-quoted line, for ``--wrap`` and job scripts."""
        return shlex.join(self.worker_argv(job_id_template))


@runtime_checkable
class Backend(Protocol):
    """The things a scheduler must do for the dispatcher."""

    name: str
    """Short name used in sessions (``local``, ``slurm``, ``slurm.array``, ``sge``)."""

    def max_jobs_per_submit(self) -> int:
        """How many jobs one :meth:`submit` may start (1 without job arrays)."""
        ...

    def submit(self, request: JobRequest, cancel: Optional[threading.Event] = None) -> list[Job]:
        """Submit ``request.count`` workers (at most :meth:`max_jobs_per_submit`)."""
        ...

    def status(
        self, jobs: Sequence[Job], cancel: Optional[threading.Event] = None
    ) -> dict[str, JobStatus]:
        """One query for all ``jobs``. Jobs missing from the answer are no longer in the queue."""
        ...

    def delete(self, jobs: Sequence[Job], cancel: Optional[threading.Event] = None) -> None:
        """Delete ``jobs``; a job that is already gone is not an error."""
        ...

    def jobs_named(
        self, name: str, cancel: Optional[threading.Event] = None
    ) -> dict[str, JobStatus]:
        """Every job called ``name`` that is still in the queue, pending or running, by
        job id: the jobs of a pool whose driver cannot tell them (it died, or its
        submission was cut off before the scheduler's answer came)."""
        ...

    def explain(
        self,
        jobs: Sequence[Job],
        cancel: Optional[threading.Event] = None,
        nodes: Optional[Mapping[str, str]] = None,
    ) -> dict[str, JobStatus]:
        """What ended ``jobs``, which left the queue or sit in an error state, from the
        scheduler's accounting (``qacct``, ``qstat -j``...), or why a running job went
        back to the queue (its node failed?). Called only for jobs that held work or
        never started; ``nodes``: the node each job was last seen on. Jobs it knows
        nothing more of are missing from the answer."""
        ...

    def base_resources(self) -> Resources:
        """The pool's memory and time per job as its options give them (None: not set),
        which a retry with more memory or time starts from."""
        ...

    def filter_stderr(self, text: str) -> str:
        """A job's stderr without the scheduler's own noise lines, for error messages."""
        ...

    def num_nodes(self, cancel: Optional[threading.Event] = None) -> Optional[int]:
        """How many nodes the pool's jobs can run on, where this backend can exclude
        nodes from a job (:attr:`Resources.exclude_nodes`) and the scheduler tells; None
        otherwise. The policy never excludes so many that none is left."""
        ...
