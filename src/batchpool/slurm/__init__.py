"""Slurm, one ``sbatch`` per worker: :class:`SlurmBackend` and its :class:`Pool`.

``batchpool.slurm.array`` submits one ``sbatch --array`` per map instead; both share
the status query (:mod:`batchpool.slurm.squeue`), the deletion and the rules below.

Environment of the scheduler commands
-------------------------------------
A driver that itself runs inside a Slurm job has the ``SLURM_*`` variables of *its*
job (``SLURM_JOB_ID``, ``SLURM_CPUS_PER_TASK``, ``SLURM_MEM_PER_NODE``, ...). ``sbatch``
exports its environment into the new job, where variables the new job does not set
itself would leak into it and change it (``srun`` in the job reads them). So every
scheduler command runs in :func:`scheduler_environment`: the driver's environment

- without every ``SLURM_*`` variable and every other job's variable
  (:func:`batchpool.worker.is_job_variable`: ``JOB_ID``, ``SGE_*``, ``TMPDIR``, ...),
  except the client configuration in :data:`CLIENT_SLURM_VARIABLES` (``SLURM_CONF``,
  ``SLURM_CLUSTERS``, ...);
- with ``SBATCH_*``, ``SQUEUE_*``, ``SCANCEL_*`` kept: they are the user's preferences
  (account, partition, ...) and our explicit arguments take precedence over them;
- except the ``SBATCH_*`` variables in :data:`SUBMISSION_CHANGING_VARIABLES`, which would
  change what a submission is (``SBATCH_ARRAY_INX`` turns a job into an array,
  ``SBATCH_WAIT`` makes ``sbatch`` block until the job ends).

The worker restores the driver's environment in the job but takes ``SLURM_*`` from
the job (:mod:`batchpool.worker`), so nothing is lost by dropping them here.
"""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import threading
from collections.abc import Mapping, Sequence
from typing import Any, Optional

from ..backend import Job, JobRequest, JobStatus
from ..commands import CommandPolicy, run_command
from ..errors import SchedulerError
from ..proto_pool import BackendPool
from ..worker import is_job_variable
from .squeue import filter_stderr_noise, job_statuses, parse_squeue, squeue_argv

__all__ = ["Pool", "SlurmBackend", "scheduler_environment"]

CLIENT_SLURM_VARIABLES = frozenset(
    ("SLURM_CONF", "SLURM_CLUSTERS", "SLURM_TIME_FORMAT", "SLURM_BITSTR_LEN", "SLURM_DEBUG_FLAGS")
)
SUBMISSION_CHANGING_VARIABLES = frozenset(("SBATCH_ARRAY_INX", "SBATCH_WAIT"))
SCANCEL_IDS_PER_CALL = 500
DEFAULT_COMMAND_POLICY = CommandPolicy()


def scheduler_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """``environ`` without the variables of the driver's own job (module docstring).

    ``sbatch`` exports its environment into the job, so this also keeps the
    variables of any other job the driver runs in (``JOB_ID``, ``SGE_*``, ``TMPDIR``,
    ...; see :func:`batchpool.worker.is_job_variable`) out of our jobs.
    """
    return {
        name: value
        for name, value in environ.items()
        if not (is_job_variable(name.encode()) and name not in CLIENT_SLURM_VARIABLES)
        and name not in SUBMISSION_CHANGING_VARIABLES
    }


DEFINITIVE_REJECTIONS = (
    "Invalid job array specification",
    "MaxSubmitJob",
    "job submit limit",
    "Invalid partition",
    "invalid partition",
    "Invalid account",
    "Invalid qos",
    "Requested node configuration is not available",
    "Requested time limit is invalid",
    "Invalid time limit",
    "Memory required by task is not available",
    "More processors requested than permitted",
    "Invalid generic resource",
    "Invalid --",
    "unrecognized option",
    "invalid option",
)
"""Parts of ``sbatch`` error messages that another try would only repeat."""


def is_definitive_rejection(result: subprocess.CompletedProcess) -> bool:
    """True if ``sbatch`` failed in a way that retrying cannot fix (a rejected request)."""
    return result.returncode != 0 and any(r in result.stderr for r in DEFINITIVE_REJECTIONS)


def rejection_advice(stderr: str, max_array_size: Optional[int] = None) -> str:
    """What to tell the user about a definitive ``sbatch`` rejection."""
    if "Invalid job array specification" in stderr:
        limit = f"MaxArraySize = {max_array_size}" if max_array_size else "MaxArraySize"
        return (
            f"Slurm rejected the job array: it has more elements than the cluster's {limit} "
            "allows. Use the one-job-per-worker batchpool.slurm.Pool."
        )
    if "MaxSubmitJob" in stderr or "job submit limit" in stderr:
        return (
            "Slurm rejected the submission: you reached the limit of jobs you may have in the "
            "queue (QOS/association MaxSubmitJobs; every array element counts as one job). "
            "Give the pool a cap (processes=...), or wait for your other jobs to leave "
            "the queue."
        )
    return "Slurm rejected the submission; retrying would not help. Check the options given."


def parse_sbatch_parsable(stdout: str) -> str:
    """The job id from ``sbatch --parsable`` output: ``123`` or ``123;cluster`` -> ``"123"``.

    Raises
    ------
    ValueError
        If no line of ``stdout`` is a job id.
    """
    for line in reversed(stdout.splitlines()):
        match = re.fullmatch(r"\s*(\d+)(;\S+)?\s*", line)
        if match:
            return match.group(1)
    raise ValueError(f"no job id in sbatch --parsable output {stdout!r}")


class SlurmBackend:
    """One ``sbatch --wrap`` per worker; status from one ``squeue``; ``scancel`` to delete.

    Parameters
    ----------
    partition, time, mem, cpus_per_task, account, qos
        ``sbatch`` ``--partition``, ``--time`` (Slurm time string, e.g. ``"1:00:00"``),
        ``--mem`` (e.g. ``"4G"``), ``--cpus-per-task``, ``--account``, ``--qos``;
        ``None`` leaves them to the cluster's defaults.
    sbatch_args
        Further raw ``sbatch`` arguments, placed after the ones above.
    sbatch_path, squeue_path, scancel_path
        The programs to run (tests point them at dummies).
    command_policy
        Timeout and bounded retries of every scheduler command.
    """

    name = "slurm"

    def __init__(
        self,
        *,
        partition: Optional[str] = None,
        time: Optional[str] = None,
        mem: Optional[str] = None,
        cpus_per_task: Optional[int] = None,
        account: Optional[str] = None,
        qos: Optional[str] = None,
        sbatch_args: Sequence[str] = (),
        sbatch_path: str = "sbatch",
        squeue_path: str = "squeue",
        scancel_path: str = "scancel",
        command_policy: CommandPolicy = DEFAULT_COMMAND_POLICY,
    ) -> None:
        self.resource_args = _resource_args(
            partition=partition,
            time=time,
            mem=mem,
            cpus_per_task=cpus_per_task,
            account=account,
            qos=qos,
        )
        self.sbatch_args = [str(a) for a in sbatch_args]
        self.sbatch_path = sbatch_path
        self.squeue_path = squeue_path
        self.scancel_path = scancel_path
        self.command_policy = command_policy

    job_id_template = "{SLURM_JOB_ID}"
    """How a worker knows its job id (:func:`batchpool._layout.job_id_from_environment`)."""

    def filter_stderr(self, text: str) -> str:
        """A job's stderr without slurmstepd's noise lines (:func:`filter_stderr_noise`)."""
        return filter_stderr_noise(text)

    def max_jobs_per_submit(self) -> int:
        return 1

    def sbatch_argv(self, request: JobRequest) -> list[str]:
        """``sbatch`` for one worker of ``request``."""
        return [
            self.sbatch_path,
            "--parsable",
            "--job-name",
            request.job_name,
            "--output",
            f"{request.log_dir}/%j.out",
            "--error",
            f"{request.log_dir}/%j.err",
            *self.resource_args,
            *self.sbatch_args,
            "--wrap",
            request.worker_command(self.job_id_template),
        ]

    def submit(self, request: JobRequest, cancel: Optional[threading.Event] = None) -> list[Job]:
        """Submit the workers of ``request`` (at most :meth:`max_jobs_per_submit`)."""
        if request.count > self.max_jobs_per_submit():
            raise ValueError(
                f"{request.count} jobs in one submission; "
                f"{self.name} takes at most {self.max_jobs_per_submit()}"
            )
        job_id = self._sbatch(self.sbatch_argv(request), cancel)
        return self.jobs_of(request, job_id)

    def jobs_of(self, request: JobRequest, job_id: str) -> list[Job]:
        """The :class:`Job` of ``request`` once ``sbatch`` returned ``job_id``."""
        log = request.log_dir
        return [Job(job_id, request.job_name, log / f"{job_id}.out", log / f"{job_id}.err")]

    def status(
        self, jobs: Sequence[Job], cancel: Optional[threading.Event] = None
    ) -> dict[str, JobStatus]:
        """One ``squeue`` for every job of the names of ``jobs``; only ``jobs`` are answered."""
        if not jobs:
            return {}
        names = sorted({job.name for job in jobs})
        argv = squeue_argv(self.squeue_path, names)
        result = self._run(argv, cancel=cancel)
        try:
            lines = parse_squeue(result.stdout)
        except ValueError as error:
            raise SchedulerError(
                f"squeue printed a line batchpool cannot read: {error}",
                command=argv,
                returncode=result.returncode,
                stdout=result.stdout,
                stderr=result.stderr,
            ) from None
        return job_statuses(lines, (job.job_id for job in jobs))

    def delete(self, jobs: Sequence[Job], cancel: Optional[threading.Event] = None) -> None:
        """``scancel`` the jobs (array elements by ``BASE_TASK``, never the whole array)."""
        ids = [job.job_id for job in jobs]
        for start in range(0, len(ids), SCANCEL_IDS_PER_CALL):
            batch = ids[start : start + SCANCEL_IDS_PER_CALL]
            self._run([self.scancel_path, *batch], accept=_scancel_accept, cancel=cancel)

    def rejection_advice(self, stderr: str) -> str:
        return rejection_advice(stderr)

    def _sbatch(self, argv: list[str], cancel: Optional[threading.Event]) -> str:
        result = self._run(
            argv,
            accept=lambda r: r.returncode == 0 or is_definitive_rejection(r),
            cancel=cancel,
        )
        if result.returncode != 0:
            raise SchedulerError(
                self.rejection_advice(result.stderr),
                command=argv,
                returncode=result.returncode,
                stdout=result.stdout,
                stderr=result.stderr,
            )
        try:
            return parse_sbatch_parsable(result.stdout)
        except ValueError as error:
            raise SchedulerError(
                str(error), command=argv, returncode=0, stdout=result.stdout, stderr=result.stderr
            ) from None

    def _run(self, argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess:
        env = scheduler_environment(os.environ)
        return run_command(argv, self.command_policy, env=env, **kwargs)


def _resource_args(**options: object) -> list[str]:
    args: list[str] = []
    for name, value in options.items():
        if value is not None:
            args += [f"--{name.replace('_', '-')}", str(value)]
    return args


_SCANCEL_GONE = ("Invalid job id specified", "already completing or completed")


def _scancel_accept(result: subprocess.CompletedProcess) -> bool:
    """scancel exits 0 when nothing matches; some versions exit 1 for jobs already gone."""
    if result.returncode == 0:
        return True
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    return bool(lines) and all(any(g in line for g in _SCANCEL_GONE) for line in lines)


class Pool(BackendPool):
    """A ``multiprocessing.Pool`` whose workers run as one Slurm job each.

    Takes ``processes, initializer, initargs, maxtasksperchild`` like
    ``multiprocessing.Pool``, the options of :class:`SlurmBackend` as keywords, and the
    keyword options common to every pool (``work_dir``, ``python_path``,
    ``polling_interval``, ``max_num_resubmissions``, ``num_simultaneously_running_tasks``,
    ``keep_work_dir``, ``verbose``, ``lost_job_grace_period_s``, ``resume``,
    ``worker_idle_s``, ``scheduler_outage_s``), which go to
    :class:`~batchpool.proto_pool.Pool`.
    """

    backend_class = SlurmBackend


def __getattr__(name: str) -> object:
    """``batchpool.slurm.array`` after ``import batchpool.slurm``, imported on first use."""
    if name == "array":
        return importlib.import_module(".array", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
