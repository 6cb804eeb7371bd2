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
  (:func:`batchpool._layout.is_job_variable`: ``JOB_ID``, ``SGE_*``, ``TMPDIR``, ...),
  except the client configuration in :data:`CLIENT_SLURM_VARIABLES` (``SLURM_CONF``,
  ``SLURM_CLUSTERS``, ...);
- with ``SBATCH_*``, ``SQUEUE_*``, ``SCANCEL_*`` kept: they are the user's preferences
  (account, partition, ...) and our explicit arguments take precedence over them;
- except the ``SBATCH_*`` variables in :data:`SUBMISSION_CHANGING_VARIABLES`, which would
  change what a submission is (``SBATCH_ARRAY_INX`` turns a job into an array,
  ``SBATCH_WAIT`` makes ``sbatch`` block until the job ends).

The worker restores the driver's environment in the job but takes ``SLURM_*`` from
the job (:mod:`batchpool.worker`), so nothing is lost by dropping them here.

Resources of a retry
--------------------
A :class:`~batchpool.backend.JobRequest` may change the pool's memory, time and nodes
(:class:`~batchpool.backend.Resources`, a chunk retried with more). Its options come
last in the ``sbatch`` command line, ``--mem=<N>M``, ``--time=[D-]HH:MM:SS`` and
``--exclude=a,b``, and the options they replace are left out: the pool's ``mem`` and
``time``, and in ``sbatch_args`` ``--mem``, ``--mem-per-cpu``, ``--mem-per-gpu`` (``sbatch``
refuses two of them together), ``--time``/``-t`` and ``--exclude``/``-x`` (whose nodes
stay excluded, followed by the new ones). :meth:`SlurmBackend.base_resources` reads the
pool's ``mem`` and ``time``, or the last ``--mem``/``--time`` in ``sbatch_args``.

The pool's resources (:class:`~batchpool.backend.JobResources`: ``queue`` or its alias
``partition``, ``time``, ``mem``, ``cpus`` or ``cpus_per_task``, ``gpus``, ``account``)
become ``--partition``, ``--time HH:MM:SS``, ``--mem <N>M``, ``--cpus-per-task``,
``--gres gpu:<N>`` and ``--account``; its ``setup`` lines run before the worker in the
``--wrap`` command (:func:`batchpool.backend.with_setup`). ``time`` and ``mem`` are read
by :mod:`batchpool.units` (``time="90"`` is 90 minutes, ``mem="1.5G"`` 1536 MB);
``sbatch_args`` are Slurm's to read (:func:`parse_slurm_time_s`,
:func:`parse_slurm_mem_mb`), and there ``--time=UNLIMITED`` and ``--mem=0`` (all of a
node's memory) still work.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import re
import subprocess
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional

from .._layout import is_job_variable
from ..backend import (
    Backend,
    Cancel,
    Ending,
    Job,
    JobRequest,
    JobResources,
    JobState,
    JobStatus,
    Nodes,
    Resources,
    Statuses,
    id_batches,
    read_job_stderr,
    still_queued,
    with_setup,
)
from ..commands import CommandPolicy, parsed, run_command
from ..errors import SchedulerError
from ..options import BackendPoolOptions
from ..proto_pool import BackendPool
from ..units import parse_time_s
from .squeue import (
    SqueueLine,
    filter_stderr_noise,
    is_sacct_unavailable,
    job_statuses,
    node_failed,
    parse_sacct,
    parse_sinfo_nodes,
    parse_squeue,
    partition_nodes,
    partition_nodes_argv,
    sacct_argv,
    sacct_statuses,
    sinfo_argv,
    squeue_argv,
    stderr_ending,
)

if TYPE_CHECKING:
    from ..options import ResourceOptions, Unpack

__all__ = ["Pool", "SlurmBackend", "scheduler_environment"]

CLIENT_SLURM_VARIABLES = frozenset(
    ("SLURM_CONF", "SLURM_CLUSTERS", "SLURM_TIME_FORMAT", "SLURM_BITSTR_LEN", "SLURM_DEBUG_FLAGS")
)
SUBMISSION_CHANGING_VARIABLES = frozenset(("SBATCH_ARRAY_INX", "SBATCH_WAIT"))
SCANCEL_IDS_PER_CALL = 500
SACCT_IDS_PER_CALL = 500
DEFAULT_COMMAND_POLICY = CommandPolicy()


def scheduler_environment(
    environ: Mapping[str, str], keep: frozenset[str] = CLIENT_SLURM_VARIABLES
) -> dict[str, str]:
    """``environ`` without the variables of the driver's own job (module docstring), but
    with the client configuration ``keep``.

    ``sbatch`` exports its environment into the job, so this also keeps the
    variables of any other job the driver runs in (``JOB_ID``, ``SGE_*``, ``TMPDIR``,
    ...; see :func:`batchpool._layout.is_job_variable`) out of our jobs.
    """
    return {
        name: value
        for name, value in environ.items()
        if not (is_job_variable(name.encode()) and name not in keep)
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


# -- resources ------------------------------------------------------------------------------

_MB_PER_UNIT = {"M": 1, "G": 1024, "T": 1024 * 1024}


def parse_slurm_mem_mb(text: str) -> int:
    """Slurm's ``--mem`` syntax in MB: ``"4096"`` (MB), ``"500M"``, ``"4G"``, ``"1T"``,
    ``"512K"`` (rounded up), a unit letter in either case and optionally ``B``
    (``"4GB"``), as Slurm's ``str_to_mbytes`` reads it. ``"0"`` is 0 (Slurm: all of
    the node's memory).

    Raises
    ------
    ValueError
        For anything else.
    """
    match = re.fullmatch(r"\s*(\d+)\s*(?:([KMGTkmgt])[Bb]?)?\s*", str(text))
    if match is None:
        raise ValueError(f"not a Slurm memory size: {text!r}")
    number, unit = int(match.group(1)), (match.group(2) or "M").upper()
    if unit == "K":
        return -(-number // 1024)  # rounded up, as Slurm does
    return number * _MB_PER_UNIT[unit]


def parse_slurm_time_s(text: str) -> Optional[int]:
    """Slurm's ``--time`` syntax in seconds; None for no limit.

    ``minutes``, ``minutes:seconds``, ``hours:minutes:seconds``, ``days-hours``,
    ``days-hours:minutes``, ``days-hours:minutes:seconds``: the clock forms of
    :mod:`batchpool.units`, without its units; ``UNLIMITED``, ``INFINITE``, ``-1`` (any
    case) and ``0`` are None. (Slurm rounds a limit up to whole minutes.)

    Raises
    ------
    ValueError
        For anything else.
    """
    text = str(text).strip()
    if text.upper() in ("UNLIMITED", "INFINITE", "-1") or re.fullmatch(r"[0:-]+", text):
        return None
    if not re.fullmatch(r"[\d:-]+", text):
        raise ValueError(f"not a Slurm time limit: {text!r}")
    return parse_time_s(text)


def format_time(seconds: int) -> str:
    """Seconds as ``sbatch --time`` takes them: ``D-HH:MM:SS``, or ``HH:MM:SS`` under a day."""
    if seconds < 0:
        raise ValueError(f"a negative time limit: {seconds}")
    days, rest = divmod(int(seconds), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    clock = f"{hours:02d}:{minutes:02d}:{secs:02d}"
    return f"{days}-{clock}" if days else clock


def _option_name(arg: str, names: Sequence[str]) -> Optional[str]:
    """Which of ``names`` (``--long`` or ``-s``) the argument ``arg`` is, if any:
    ``--mem``, ``--mem=4G``, ``-t``, ``-t10``."""
    for name in names:
        if arg == name or (name.startswith("--") and arg.startswith(name + "=")):
            return name
        if not name.startswith("--") and arg.startswith(name) and len(arg) > len(name):
            return name
    return None


def option_values(args: Sequence[str], names: Sequence[str]) -> list[str]:
    """The values of the options ``names`` in raw ``sbatch`` arguments, in order:
    ``--time=10``, ``--time 10``, ``-t 10`` and ``-t10`` each give ``"10"``."""
    values, i = [], 0
    while i < len(args):
        name = _option_name(args[i], names)
        if name is not None:
            value = args[i][len(name) :].removeprefix("=")
            if args[i] == name and i + 1 < len(args):
                i += 1
                value = args[i]
            values.append(value)
        i += 1
    return values


def without_options(args: Sequence[str], names: Sequence[str]) -> list[str]:
    """Raw ``sbatch`` arguments without the options ``names`` and their values."""
    kept, i = [], 0
    while i < len(args):
        name = _option_name(args[i], names)
        if name is None:
            kept.append(args[i])
        elif args[i] == name:
            i += 1  # its value
        i += 1
    return kept


MEM_OPTIONS = ("--mem", "--mem-per-cpu", "--mem-per-gpu")
TIME_OPTIONS = ("--time", "-t")
EXCLUDE_OPTIONS = ("--exclude", "-x")
PARTITION_OPTIONS = ("--partition", "-p")


def resource_change_args(sbatch_args: Sequence[str], resources: Resources) -> list[str]:
    """``sbatch_args`` without what ``resources`` replaces, then ``resources``' options
    (module docstring): ``--mem=<N>M``, ``--time=...``, ``--exclude=...``."""
    args = list(sbatch_args)
    changes = []
    if resources.mem_mb is not None:
        args = without_options(args, MEM_OPTIONS)
        changes.append(f"--mem={resources.mem_mb}M")
    if resources.time_s is not None:
        args = without_options(args, TIME_OPTIONS)
        changes.append(f"--time={format_time(resources.time_s)}")
    if resources.exclude_nodes:
        excluded = [n for v in option_values(args, EXCLUDE_OPTIONS) for n in v.split(",") if n]
        args = without_options(args, EXCLUDE_OPTIONS)
        nodes = list(dict.fromkeys([*excluded, *resources.exclude_nodes]))
        changes.append("--exclude=" + ",".join(nodes))
    return [*args, *changes]


def base_resources(
    mem_mb: Optional[int], time_s: Optional[int], sbatch_args: Sequence[str]
) -> Resources:
    """The memory and time per job of a pool with these options (module docstring): the
    pool's own, else the last of ``sbatch_args``.

    None where they are not set, where the memory in ``sbatch_args`` is ``0`` (all of a
    node's) or the time unlimited, and where Slurm's syntax is not understood (``sbatch``
    judges the options itself; a retry then cannot raise what it cannot read).
    """
    if mem_mb is None:
        mem_mb = _parsed_last(parse_slurm_mem_mb, option_values(sbatch_args, ("--mem",))) or None
    if time_s is None:
        time_s = _parsed_last(parse_slurm_time_s, option_values(sbatch_args, TIME_OPTIONS))
    return Resources(mem_mb=mem_mb, time_s=time_s)


def _last(values: Sequence[str]) -> Optional[str]:
    return values[-1] if values else None


def _parsed_last(parse: Callable[[str], Optional[int]], values: Sequence[str]) -> Optional[int]:
    """The last of ``values`` parsed; None if there is none or it cannot be read."""
    try:
        return parse(values[-1]) if values else None
    except ValueError:
        return None


class SlurmBackend(Backend):
    """One ``sbatch --wrap`` per worker; status from one ``squeue``; ``scancel`` to delete;
    what ended a job from ``sacct``, where the cluster keeps accounting.

    Parameters
    ----------
    partition, cpus_per_task
        Slurm's names of ``queue`` (``--partition``) and ``cpus`` (``--cpus-per-task``),
        for those used to them; one of each pair at most.
    qos
        ``sbatch --qos``.
    sbatch_args
        Further raw ``sbatch`` arguments, placed after the ones above.
    sbatch_path, squeue_path, scancel_path, sacct_path, sinfo_path
        The programs to run (tests point them at dummies).
    command_policy
        Timeout and bounded retries of every scheduler command.
    queue, time, mem, cpus, gpus, account, setup
        The resources of every backend (:data:`batchpool.options.RESOURCES`): ``queue``
        ``--partition``, ``time`` ``--time`` (``"90"`` is 90 minutes, ``"1:30:00"``),
        ``mem`` ``--mem`` (``"1.5G"``, ``4096`` MB), ``cpus`` ``--cpus-per-task``, ``gpus``
        ``--gres=gpu:N``, ``account`` ``--account``, ``setup`` lines run before the worker
        in the ``--wrap`` command. None leaves each to the cluster's defaults.
    """

    name = "slurm"

    def __init__(
        self,
        *,
        partition: Optional[str] = None,
        cpus_per_task: Optional[int] = None,
        qos: Optional[str] = None,
        sbatch_args: Sequence[str] = (),
        sbatch_path: str = "sbatch",
        squeue_path: str = "squeue",
        scancel_path: str = "scancel",
        sacct_path: str = "sacct",
        sinfo_path: str = "sinfo",
        command_policy: CommandPolicy = DEFAULT_COMMAND_POLICY,
        **resources: Unpack[ResourceOptions],
    ) -> None:
        own = {"partition": ("queue", partition), "cpus_per_task": ("cpus", cpus_per_task)}
        self.job_resources = job = JobResources.of(resources, own)
        self.time_s = job.time_s
        self.mem_mb = job.mem_mb
        self.options: dict[str, Any] = dict(
            partition=job.queue,
            time=None if self.time_s is None else format_time(self.time_s),
            mem=None if self.mem_mb is None else f"{self.mem_mb}M",
            cpus_per_task=job.cpus,
            account=job.account,
            qos=qos,
            gres=None if job.gpus is None else f"gpu:{job.gpus}",
        )
        self.resource_args = _resource_args(**self.options)
        self.sbatch_args = [str(a) for a in sbatch_args]
        self.sbatch_path = sbatch_path
        self.squeue_path = squeue_path
        self.scancel_path = scancel_path
        self.sacct_path = sacct_path
        self.sinfo_path = sinfo_path
        self.command_policy = command_policy
        self._accounting_disabled = False
        self._num_nodes: Optional[int] = None

    job_id_template = "{SLURM_JOB_ID}"
    """How a worker knows its job id (:func:`batchpool._layout.job_id_from_environment`)."""

    def filter_stderr(self, text: str) -> str:
        """A job's stderr without slurmstepd's noise lines (:func:`filter_stderr_noise`)."""
        return filter_stderr_noise(text)

    def base_resources(self) -> Resources:
        """The pool's memory and time per job (:func:`base_resources`)."""
        return base_resources(self.mem_mb, self.time_s, self.sbatch_args)

    def num_nodes(self, cancel: Optional[threading.Event] = None) -> Optional[int]:
        """How many nodes the pool's jobs can run on: those of its partition (``sinfo``;
        the cluster's default partition if the pool names none), less the ones its own
        ``--exclude`` leaves out. Asked once; None if ``sinfo`` does not tell."""
        if self._num_nodes is None:
            named = self.options["partition"] or _last(
                option_values(self.sbatch_args, PARTITION_OPTIONS)
            )
            argv = partition_nodes_argv(self.sinfo_path, named)
            try:
                result = self._run(argv, cancel=cancel)
            except SchedulerError:
                return None
            own = option_values(self.sbatch_args, EXCLUDE_OPTIONS)
            excluded = {node for value in own for node in value.split(",")}
            self._num_nodes = len(partition_nodes(result.stdout, named) - excluded)
        return self._num_nodes or None

    def request_args(self, request: JobRequest) -> list[str]:
        """The pool's resource options, ``sbatch_args`` and ``request.resources``' changes
        (module docstring), in that order."""
        resources = request.resources
        replaced = {"mem": resources.mem_mb is not None, "time": resources.time_s is not None}
        options = {k: (None if replaced.get(k) else v) for k, v in self.options.items()}
        return [*_resource_args(**options), *resource_change_args(self.sbatch_args, resources)]

    def wrap_command(self, request: JobRequest) -> str:
        """The ``--wrap`` command of a worker of ``request``, after the ``setup`` lines."""
        return with_setup(self.job_resources.setup, request.worker_argv(self.job_id_template))

    def sbatch_argv(self, request: JobRequest) -> list[str]:
        """``sbatch`` for one worker of ``request``."""
        out, err = request.logs.pair("%j")
        return [
            self.sbatch_path,
            "--parsable",
            "--job-name",
            request.job_name,
            "--output",
            out,
            "--error",
            err,
            *self.request_args(request),
            "--wrap",
            self.wrap_command(request),
        ]

    def submit(self, request: JobRequest, cancel: Cancel = None) -> list[Job]:
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
        out, err = request.logs.pair(job_id)
        return [Job(job_id, request.job_name, Path(out), Path(err))]

    def status(self, jobs: Sequence[Job], cancel: Cancel = None) -> Statuses:
        """One ``squeue`` for every job of the names of ``jobs``; only ``jobs`` are answered."""
        if not jobs:
            return {}
        names = sorted({job.name for job in jobs})
        argv = squeue_argv(self.squeue_path, names)
        return job_statuses(self._squeue(argv, cancel), (job.job_id for job in jobs))

    def jobs_named(self, name: str, cancel: Cancel = None) -> Statuses:
        """Every job (array element) called ``name`` still pending or running."""
        lines = self._squeue(squeue_argv(self.squeue_path, [name]), cancel)
        return still_queued(job_statuses(lines, (ln.job_id for ln in lines if ln.name == name)))

    def _squeue(self, argv: list[str], cancel: Optional[threading.Event]) -> list[SqueueLine]:
        return parsed(parse_squeue, self._run(argv, cancel=cancel))

    def explain(self, jobs: Sequence[Job], cancel: Cancel = None, nodes: Nodes = None) -> Statuses:
        """What ended ``jobs``, from one ``sacct`` (per 500 jobs); best effort.

        ``{}`` where ``sacct`` fails (tried twice at most: this only explains better) or
        prints what cannot be read. A cluster without accounting
        (``accounting_storage/none``, as the CI Slurm) answers ``Slurm accounting storage
        is disabled``: not retried, and not asked again. Only
        :class:`~batchpool.commands.Cancelled` is raised.
        """
        statuses: dict[str, JobStatus] = {}
        for batch in id_batches(jobs, SACCT_IDS_PER_CALL):
            if self._accounting_disabled:
                break
            statuses.update(self._sacct(batch, cancel))
        for job in jobs:  # without accounting: what slurmstepd wrote into the job's stderr
            told = statuses.get(job.job_id)
            if told is None or told.ending in (None, Ending.FAILED):
                said = stderr_ending(read_job_stderr(job))
                if said is not None:
                    ending, line = said
                    statuses[job.job_id] = JobStatus(JobState.ENDED, "", ending, detail=line)
        unexplained = {
            job_id: node
            for job_id, node in (nodes or {}).items()
            if node and statuses.get(job_id, JobStatus(JobState.ENDED)).ending is None
        }
        if unexplained:
            statuses.update(self._failed_nodes(unexplained, cancel))
        return statuses

    def _failed_nodes(
        self, nodes: Mapping[str, str], cancel: Optional[threading.Event]
    ) -> dict[str, JobStatus]:
        """Jobs whose node is down or not responding: a node failure (with Slurm's
        default ``JobRequeue=1`` such jobs go back to the queue, never ``NODE_FAIL``)."""
        argv = sinfo_argv(self.sinfo_path, sorted(set(nodes.values())))
        try:
            result = self._run(argv, dataclasses.replace(self.command_policy, num_retries=0))
        except SchedulerError:
            return {}
        states = parse_sinfo_nodes(result.stdout)
        return {
            job_id: JobStatus(
                JobState.ENDED, "", Ending.NODE_FAILURE, node, detail=f"node {node} {states[node]}"
            )
            for job_id, node in nodes.items()
            if node_failed(states.get(node, ""))
        }

    def _sacct(self, ids: list[str], cancel: Optional[threading.Event]) -> dict[str, JobStatus]:
        argv = sacct_argv(self.sacct_path, ids)
        try:
            result = self._run(
                argv,
                policy=dataclasses.replace(
                    self.command_policy, num_retries=min(1, self.command_policy.num_retries)
                ),
                accept=lambda r: r.returncode == 0 or is_sacct_unavailable(r.stderr),
                cancel=cancel,
            )
        except SchedulerError:
            return {}
        if result.returncode != 0:
            self._accounting_disabled = True
            return {}
        try:
            return sacct_statuses(parse_sacct(result.stdout), ids)
        except ValueError:
            return {}

    def delete(self, jobs: Sequence[Job], cancel: Cancel = None) -> None:
        """``scancel`` the jobs (array elements by ``BASE_TASK``, never the whole array)."""
        for batch in id_batches(jobs, SCANCEL_IDS_PER_CALL):
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
        return parsed(parse_sbatch_parsable, result)

    def _run(
        self, argv: list[str], policy: Optional[CommandPolicy] = None, **kwargs: Any
    ) -> subprocess.CompletedProcess:
        env = scheduler_environment(os.environ)
        return run_command(argv, policy or self.command_policy, env=env, **kwargs)


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


class SlurmPoolOptions(BackendPoolOptions, total=False):
    """What :class:`Pool` takes by keyword: the options of :class:`SlurmBackend` (their
    defaults are its own) and those of every pool."""

    partition: Optional[str]
    cpus_per_task: Optional[int]
    qos: Optional[str]
    sbatch_args: Sequence[str]
    sbatch_path: str
    squeue_path: str
    scancel_path: str
    sacct_path: str
    sinfo_path: str
    command_policy: CommandPolicy


class Pool(BackendPool):
    """A ``multiprocessing.Pool`` whose workers run as one Slurm job each."""

    backend_class = SlurmBackend
    options_type = SlurmPoolOptions

    def __init__(self, *args: Any, **options: Unpack[SlurmPoolOptions]) -> None:
        super().__init__(*args, **options)


def __getattr__(name: str) -> object:
    """``batchpool.slurm.array`` after ``import batchpool.slurm``, imported on first use."""
    if name == "array":
        return importlib.import_module(".array", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

