"""What a backend is: :class:`JobRequest`, :class:`Job`, :class:`JobStatus` and :class:`Backend`.

A backend only speaks its scheduler's syntax. It builds a command line, runs
it through :func:`batchpool.commands.run_command` and parses the output. It
never sleeps or retries on its own, and it never names a file: every path it
uses comes from its :class:`JobRequest` (the pool's directory and the names of
:class:`batchpool._layout.JobLogs`), and it writes only there (the job's log files
and, for a scheduler that takes one, the job script). The dispatcher and the
session own all the rest.

A backend subclasses :class:`Backend` and spells only what differs from its
defaults: one job per submission, no ``explain``, no resources, a stderr without
noise. What its jobs ask for comes in one vocabulary for every backend
(:data:`batchpool.options.RESOURCES`), read once into a :class:`JobResources` (times
and amounts of memory by :mod:`batchpool.units`); the backend writes it in its
scheduler's syntax, and its ``setup`` lines before the worker's command
(:func:`with_setup`).

Every job a backend starts runs the same standing worker,
``python -m batchpool.worker POOL_DIR --job-id TEMPLATE``, which takes chunks from
the pool's queue until it is idle; the backend only says how many such jobs it
submits in one call and how a job knows its own id (``TEMPLATE``).
"""

from __future__ import annotations

import enum
import shlex
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Protocol, runtime_checkable

from ._layout import JobLogs, read_file
from .units import parse_mem_mb, parse_time_s
from .worker import SETUP_SNAPSHOT, SNAPSHOT_CODE


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
    unusual_wait: str = ""
    """Why a PENDING job waits, in the scheduler's words, when it is something other than
    its ordinary turn (a hold, a node down, a limit: ``JobHeldUser``, ``NodeDown``,
    ``hqw``); empty for an ordinary wait and for a job that does not wait."""


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


RESOURCE_NAMES = frozenset(("queue", "time", "mem", "cpus", "gpus", "account", "setup"))
"""The options :class:`JobResources` is read from (:data:`batchpool.options.RESOURCES`)."""


@dataclass(frozen=True)
class JobResources:
    """What every job of a pool asks for, in the vocabulary of every backend
    (:data:`batchpool.options.RESOURCES`), times and memory read by :mod:`batchpool.units`;
    made by :meth:`of`. None and ``()``: the scheduler's default."""

    queue: Optional[str] = None
    time_s: Optional[int] = None
    mem_mb: Optional[int] = None
    cpus: Optional[int] = None
    gpus: Optional[int] = None
    account: Optional[str] = None
    setup: tuple[str, ...] = ()
    """Shell lines run in the job before its worker (:func:`with_setup`)."""

    @classmethod
    def of(
        cls,
        given: Mapping[str, Any],
        aliases: Mapping[str, tuple[str, Any]] = {},  # noqa: B006 (read only)
    ) -> JobResources:
        """The resources of the options ``given`` (``queue``, ``time``, ... as a pool takes
        them), where ``aliases`` give a scheduler's own names for some:
        ``{"partition": ("queue", "short")}``. An alias and its name both given is a
        ``TypeError``; a bad value a ``ValueError`` that names the option."""
        unknown = sorted(given.keys() - RESOURCE_NAMES)
        if unknown:
            raise TypeError(f"unknown resource options {unknown}; known: {sorted(RESOURCE_NAMES)}")
        values = {k: v for k, v in given.items() if v is not None}
        spelt = {name: name for name in RESOURCE_NAMES}  # as the user wrote it
        for alias, (name, value) in aliases.items():
            if value is None:
                continue
            if name in values:
                raise TypeError(
                    f"{alias}={value!r} and {name}={values[name]!r} both given: {alias} is "
                    f"another name for {name}; give one of them, like {name}={value!r}"
                )
            values[name], spelt[name] = value, alias
        setup = values.get("setup", ())
        return cls(
            queue=values.get("queue"),
            time_s=parse_time_s(values["time"], spelt["time"]) if "time" in values else None,
            mem_mb=parse_mem_mb(values["mem"], "mem") if "mem" in values else None,
            cpus=_count(values, spelt["cpus"], 1),
            gpus=_count(values, "gpus", 0) or None,
            account=values.get("account"),
            setup=tuple(setup.splitlines() if isinstance(setup, str) else setup),
        )

    def given(self, *names: str) -> dict[str, Any]:
        """Which of the options ``names`` (``"queue"``, ``"time"``...) are set, with the
        values they were read as: for a backend to say what it ignores."""
        values = {
            "queue": self.queue,
            "time": None if self.time_s is None else f"{self.time_s}s",
            "mem": None if self.mem_mb is None else f"{self.mem_mb}M",
            "cpus": self.cpus,
            "gpus": self.gpus,
            "account": self.account,
        }
        return {n: values[n] for n in names if values.get(n) is not None}


def _count(values: Mapping[str, Any], name: str, minimum: int) -> Optional[int]:
    value = values.get("cpus" if name in ("cpus_per_task", "ncpus") else name)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name}={value!r}: must be an integer >= {minimum}, like {name}=2")
    return value


SETUP_FAILED_MARK = "batchpool: setup line failed"
"""How a job's stderr says that a ``setup`` line failed: ``batchpool: setup line failed
(exit 127): module load nosuch`` (:func:`setup_commands`)."""


def setup_commands(setup: Sequence[str]) -> list[str]:
    """Shell lines that run each line of ``setup`` in the job's shell (so ``source`` and
    ``export`` hold for the worker) and, if one fails, end the job with its exit code and
    :data:`SETUP_FAILED_MARK`, the code and the line on stderr."""
    commands = []
    for line in setup:
        report = " ".join(
            [
                "printf '%s (exit %s): %s\\n'",
                shlex.quote(SETUP_FAILED_MARK),
                '"$batchpool_rc"',
                shlex.quote(line),
                ">&2",
            ]
        )
        commands.append(
            f"{{ {line}\n}} || {{ batchpool_rc=$?; {report}; exit \"$batchpool_rc\"; }}"
        )
    return commands


def script_body(setup: Sequence[str], argv: Sequence[str]) -> str:
    """The lines of a job script after its ``#!``: ``exec argv`` (the worker's command,
    the interpreter first), after the :func:`setup_commands` of ``setup`` if any. The
    worker keeps what they set or unset in the environment (it restores the driver's
    otherwise): the interpreter writes down the variables before them
    (:data:`batchpool.worker.SETUP_SNAPSHOT`)."""
    command = f"exec {shlex.join(argv)}"
    if not setup:
        return command
    python = shlex.quote(argv[0])
    snapshot = f'export {SETUP_SNAPSHOT.decode()}="$({python} -c {shlex.quote(SNAPSHOT_CODE)})"'
    return "\n".join([snapshot, *setup_commands(setup), command])


def with_setup(setup: Sequence[str], argv: Sequence[str]) -> str:
    """The shell text of a job (Slurm's ``--wrap``): ``argv`` as one line without
    ``setup``, else its :func:`script_body`."""
    return script_body(setup, argv) if setup else shlex.join(argv)


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


Statuses = dict[str, JobStatus]
"""Statuses by job id."""
Cancel = Optional[threading.Event]
"""Set to make a scheduler command give up (:class:`batchpool.commands.Cancelled`)."""
Nodes = Optional[Mapping[str, str]]
"""The node each job was last seen on, by job id."""

STDERR_TAIL_BYTES = 65536


def read_job_stderr(job: Job, size: int = STDERR_TAIL_BYTES) -> str:
    """The last ``size`` bytes of ``job``'s stderr as the job wrote it, the scheduler's
    lines included, as the file's server has it (:func:`batchpool._layout.read_file`);
    "" if there is none (yet) or it cannot be read."""
    try:
        data = read_file(str(job.stderr_path))
    except OSError:
        return ""
    return "" if data is None else data[-size:].decode(errors="replace")


@runtime_checkable
class Backend(Protocol):
    """The things a scheduler must do for the dispatcher.

    A backend subclasses it and overrides :meth:`submit`, :meth:`status`, :meth:`delete`
    and whichever of the defaults below differ for its scheduler.
    """

    name: str
    """Short name used in sessions (``local``, ``slurm``, ``slurm.array``, ``sge``)."""

    def max_jobs_per_submit(self) -> int:
        """How many jobs one :meth:`submit` may start: 1, without job arrays."""
        return 1

    def submit(self, request: JobRequest, cancel: Cancel = None) -> list[Job]:
        """Submit ``request.count`` workers (at most :meth:`max_jobs_per_submit`)."""
        ...

    def status(self, jobs: Sequence[Job], cancel: Cancel = None) -> Statuses:
        """One query for all ``jobs``. Jobs missing from the answer are no longer in the queue."""
        ...

    def delete(self, jobs: Sequence[Job], cancel: Cancel = None) -> None:
        """Delete ``jobs``; a job that is already gone is not an error."""
        ...

    def jobs_named(self, name: str, cancel: Cancel = None) -> Statuses:
        """Every job called ``name`` that is still in the queue, pending or running, by
        job id: the jobs of a pool whose driver cannot tell them (it died, or its
        submission was cut off before the scheduler's answer came)."""
        ...

    def explain(self, jobs: Sequence[Job], cancel: Cancel = None, nodes: Nodes = None) -> Statuses:
        """What ended ``jobs``, which left the queue or sit in an error state, from the
        scheduler's accounting (``qacct``, ``qstat -j``...), or why a running job went
        back to the queue (its node failed?). Called only for jobs that held work or
        never started; ``nodes``: the node each job was last seen on. Jobs it knows
        nothing more of are missing from the answer: by default, all of them."""
        return {}

    def base_resources(self) -> Resources:
        """The pool's memory and time per job as its options give them (None: not set),
        which a retry with more memory or time starts from; by default neither."""
        return Resources()

    def filter_stderr(self, text: str) -> str:
        """A job's stderr without the scheduler's own noise lines, for error messages; by
        default all of it."""
        return text

    def job_stderr(self, job: Job) -> str:
        """The end of ``job``'s stderr without the scheduler's noise (:func:`read_job_stderr`,
        :meth:`filter_stderr`): what the job itself said, for error messages."""
        return self.filter_stderr(read_job_stderr(job))

    def num_nodes(self, cancel: Cancel = None) -> Optional[int]:
        """How many nodes the pool's jobs can run on, where this backend can exclude
        nodes from a job (:attr:`Resources.exclude_nodes`) and the scheduler tells; by
        default None (not known: a node failure's retry excludes no node). The policy
        never excludes so many that none is left."""
        return None


def id_batches(jobs: Sequence[Job], size: int) -> Iterator[list[str]]:
    """The ids of ``jobs``, ``size`` at a time: for a command that takes many ids."""
    ids = [job.job_id for job in jobs]
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


def still_queued(statuses: Statuses) -> Statuses:
    """The statuses of jobs that are pending or running (for :meth:`Backend.jobs_named`)."""
    return {
        job_id: status
        for job_id, status in statuses.items()
        if status.state in (JobState.PENDING, JobState.RUNNING)
    }
