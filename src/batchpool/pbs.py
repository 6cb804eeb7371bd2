"""Torque, PBS Pro / OpenPBS and Slurm's Torque wrappers: :class:`PbsBackend` and its :class:`Pool`.

Dialects
--------
Three programs answer to ``qsub``/``qstat``/``qdel`` in PBS syntax; :class:`Dialect` names
them. The dialect is found once per backend, from ``qstat --version`` (:func:`detect_dialect`),
unless the ``dialect`` option gives it:

============  ==================================  ============================================
dialect       ``qstat --version`` says            submission and status
============  ==================================  ============================================
``torque``    ``Version: 6.1.3``                  ``qsub -t 0-N`` arrays (``PBS_ARRAYID``);
                                                  status ``qstat -x -t`` (XML, array
                                                  elements one by one; ``-f -t`` for text)
``pbspro``    ``pbs_version = 2022.1.1``          ``qsub -J 0-N`` arrays of two or more
                                                  (``PBS_ARRAY_INDEX``), a single job else;
                                                  status ``qstat -f -F json -t -x`` (``-x``:
                                                  finished jobs too; ``-f -t -x`` for text)
``slurm``     ``Unknown option: version`` and     Slurm's ``slurm-wlm-torque`` wrappers:
              its ``qstat [-f]`` usage text       one job per ``qsub`` (its ``qstat -f``
                                                  shows an array element only by its own
                                                  Slurm id, so elements cannot be told
                                                  apart); status ``qstat -f`` (all jobs)
============  ==================================  ============================================

Every status query covers all jobs, of every user: one query per poll for the whole
pool. Jobs are matched by job number and array index (``123[4]`` of
``123[4].server.example.org``), and by name. A job's id is ``PBS_JOBID`` in the job
(``{SLURM_JOB_ID}`` under the Slurm wrappers), which the worker reports as its own.

Environment of the scheduler commands
-------------------------------------
A driver that runs inside a job has that job's variables (``PBS_JOBID``, ``PBS_ARRAYID``,
``SLURM_JOB_ID``, ``JOB_ID``...). Torque's and PBS Pro's ``qsub -V``, and ``sbatch``
behind the Slurm wrappers always, export the submitter's environment into the job, where
they would stand for the new job's own. So every command runs in
:func:`scheduler_environment`: the driver's environment without the variables of any job
(:func:`batchpool._layout.is_job_variable`), except the client configuration in
:data:`CLIENT_PBS_VARIABLES` (``PBS_DEFAULT``, ``PBS_SERVER``...) and Slurm's
(``SLURM_CONF``...). The worker restores the driver's environment in the job but takes
the job's own variables from the job, so nothing is lost.

Submission
----------
Each submission writes a private ``/bin/sh`` job script, where
:meth:`batchpool._layout.JobLogs.script` says, beside its logs (starting with ``#!/bin/sh``, which
Slurm's wrapper and some sites require) that changes into the pool's directory and
``exec``-s the worker with the absolute ``python_path``; ``qsub`` gets the script's path.
A single job's output goes to ``-o``/``-e`` files; the elements of an array redirect their
own output to files named by their index (``-o``/``-e`` are ``/dev/null``), as Torque and
PBS Pro name array output files differently.

Resources (:class:`~batchpool.backend.JobResources`): ``queue`` (``-q``), ``time`` or its
alias ``walltime`` (``walltime=HH:MM:SS``), ``mem``, ``cpus`` or its alias ``ncpus`` and
``gpus`` (Torque and the Slurm wrappers: ``mem=<N>mb``, ``nodes=1:ppn=<N>:gpus=<N>``; PBS
Pro: ``select=1:ncpus=<N>:mem=<N>mb:ngpus=<N>``), all in one ``-l`` list (Slurm's
wrapper keeps only the last ``-l`` it is given, so a ``-l`` in ``qsub_args`` replaces them
there), ``account`` (``-A``), and raw ``qsub_args`` last.
``time`` and ``mem`` are read by :mod:`batchpool.units` (``time="90"`` is 90
minutes, ``mem="1.5G"`` 1536 MB); the ``setup`` lines run in the job script before the
worker.
A retry with more memory or time (:class:`~batchpool.backend.Resources`) replaces ``mem``
and ``walltime``; PBS has no way to exclude nodes in a request, so ``exclude_nodes`` is
not applied.

State map (``job_state``)
-------------------------
===========  ===============================================================================
``PENDING``  ``Q`` queued, ``H`` held by a user or operator (``Hold_Types`` ``u``/``o``),
             ``W`` waiting for its start time or stage-in, ``T`` in transit, ``M`` moved
             to another server, ``S`` suspended and ``U`` suspended for workstation
             activity (PBS Pro; both resume by themselves); anything not known (the Slurm
             wrappers print ``U`` for a Slurm state they do not know)
``RUNNING``  ``R`` running, ``E`` exiting after having run, ``B`` an array that has begun
             (PBS Pro)
``FAILED``   ``H`` with a system hold (``Hold_Types`` with ``s``): the server held the job
             after its start failed again and again; it will not start by itself;
             ending ``ERROR_STATE``
``ENDED``    ``C`` completed (Torque, and the Slurm wrappers for every ended Slurm job),
             ``F`` finished (PBS Pro, ``qstat -x``), ``X`` a finished subjob (PBS Pro)
===========  ===============================================================================

Endings of ended jobs, from ``exit_status`` (Torque) or ``Exit_status`` (PBS Pro); the
Slurm wrappers print neither, so their ended jobs have no ending:

=====================  ===========================================================
``0``                  ``COMPLETED``
``1`` to ``128``       ``FAILED``, ``exit_code`` N
``129`` to ``255``     ``FAILED``, ``signal`` N - 128 (the job's shell saw its child
                       killed)
``256`` and more       ``FAILED``, ``signal`` N - 256 (the job was killed by a signal:
                       a ``qdel`` is ``271``, SIGTERM)
Torque ``-10``         ``MEMORY_LIMIT`` (``JOB_EXEC_OVERLIMIT_MEM``)
Torque ``-11``,        ``TIME_LIMIT`` (``JOB_EXEC_OVERLIMIT_WT``, ``_CPUT``)
``-12``
Torque ``-3``          ``PREEMPTED`` (``JOB_EXEC_RETRY``: requeued, to be run again)
PBS Pro ``-26``,       ``MEMORY_LIMIT`` (``JOB_EXEC_KILL_VMEM``, ``_MEM``)
``-27``
PBS Pro ``-28``,       ``TIME_LIMIT`` (``JOB_EXEC_KILL_CPUT``, ``_WALLTIME``)
``-29``
other negative codes   ``FAILED``: the job could not be started (``JOB_EXEC_*``)
=====================  ===========================================================
"""

from __future__ import annotations

import enum
import json
import os
import re
import shlex
import subprocess
import threading
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional

from ._layout import JobLogs, create_exclusively
from .backend import (
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
    script_body,
    still_queued,
)
from .commands import CommandPolicy, parsed, run_command
from .errors import SchedulerError
from .options import BackendPoolOptions
from .proto_pool import BackendPool
from .slurm import CLIENT_SLURM_VARIABLES
from .slurm import scheduler_environment as slurm_environment
from .units import Duration

if TYPE_CHECKING:
    from .options import ResourceOptions, Unpack

__all__ = [
    "Dialect",
    "Pool",
    "PbsBackend",
    "QstatJob",
    "detect_dialect",
    "job_key",
    "job_status",
    "parse_qstat_f",
    "parse_qstat_json",
    "parse_qstat_xml",
    "parse_qsub_output",
    "pbs_job_name",
    "scheduler_environment",
]

CLIENT_PBS_VARIABLES = frozenset(
    ("PBS_DEFAULT", "PBS_SERVER", "PBS_CONF_FILE", "PBS_HOME", "PBS_EXEC", "PBS_SERVER_NAME")
)
"""Variables that tell ``qsub``/``qstat``/``qdel`` which server and configuration to use."""
QDEL_IDS_PER_CALL = 200
DEFAULT_COMMAND_POLICY = CommandPolicy()
MAX_ARRAY_SIZE = 1000
"""Jobs of one array at most: below the default limits of Torque (``max_job_array_size``
unset) and PBS Pro (``max_array_size`` 10000)."""


class Dialect(str, enum.Enum):
    """Which PBS family the ``qsub``/``qstat``/``qdel`` programs belong to."""

    TORQUE = "torque"
    """Torque (Adaptive Computing) 4 to 6."""
    PBSPRO = "pbspro"
    """PBS Professional (Altair) and OpenPBS."""
    SLURM = "slurm"
    """Slurm's Torque wrappers (Debian ``slurm-wlm-torque``) in front of a Slurm cluster."""


def detect_dialect(version_output: str) -> Dialect:
    """The dialect whose ``qstat --version`` printed ``version_output`` (stdout and stderr).

    Raises
    ------
    ValueError
        If the output is none of theirs (SGE's ``qstat`` prints ``SGE 8.1.9`` and its
        usage, for one).
    """
    if re.search(r"^\s*pbs_version\s*=", version_output, re.MULTILINE):
        return Dialect.PBSPRO
    if re.search(r"^\s*Version:\s*\d", version_output, re.MULTILINE):
        return Dialect.TORQUE
    if "Unknown option: version" in version_output and "qstat [-f]" in version_output:
        return Dialect.SLURM
    raise ValueError(
        "qstat --version does not look like Torque, PBS Pro/OpenPBS or Slurm's Torque "
        "wrappers; give the dialect option"
    )


def pbs_job_name(name: str) -> str:
    """``name`` made valid for ``qsub -N``: at most 236 characters of ``A-Z a-z 0-9 _ . + -``
    (others become ``_``), starting with a letter (else ``bp`` is put first)."""
    name = re.sub(r"[^A-Za-z0-9_.+-]", "_", name)
    if not name[:1].isalpha():
        name = "bp" + name
    return name[:236]


def parse_qsub_output(stdout: str) -> str:
    """The job id ``qsub`` printed: ``123.server``, ``123[].server`` (an array), ``9795``
    (the Slurm wrappers). The last line that is a job id counts.

    Raises
    ------
    ValueError
        If no line is a job id.
    """
    for line in reversed(stdout.splitlines()):
        match = re.fullmatch(r"\s*(\d+(?:\[\])?(?:\.\S+)?)\s*", line)
        if match:
            return match.group(1)
    raise ValueError(f"no job id in qsub output {stdout!r}")


def job_key(job_id: str) -> str:
    """A job id without its server: ``123[4]`` of ``123[4].server.example.org``, ``9795``
    of ``9795``; the id itself if it does not start with a job number."""
    match = re.match(r"\d+(?:\[\d*\])?", job_id.strip())
    return match.group(0) if match else job_id.strip()


def scheduler_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """``environ`` without the variables of the driver's own job (module docstring)."""
    return slurm_environment(environ, CLIENT_PBS_VARIABLES | CLIENT_SLURM_VARIABLES)


def format_walltime(seconds: int) -> str:
    """``HH:MM:SS`` (hours may exceed 24)."""
    hours, rest = divmod(max(0, int(seconds)), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}"


# -- qstat: the three formats ---------------------------------------------------------------


@dataclass(frozen=True)
class QstatJob:
    """What ``qstat`` says of one job (or array element, or array summary)."""

    job_id: str
    """As ``qstat`` prints it (``123[4].server``)."""
    name: str
    state: str
    """``job_state``: one letter."""
    exit_status: Optional[int] = None
    hold_types: str = ""
    exec_host: str = ""
    comment: str = ""

    @property
    def key(self) -> str:
        return job_key(self.job_id)

    @property
    def node(self) -> str:
        """The first host of ``exec_host`` (``node01/0+node02/1`` -> ``node01``)."""
        first = self.exec_host.split("+")[0]
        return first.split("/")[0].split(":")[0].strip("()")


def _int_or_none(text: object) -> Optional[int]:
    if text is None:
        return None
    try:
        return int(str(text).strip())
    except ValueError:
        return None


def _qstat_job(job_id: str, fields: Mapping[str, object]) -> QstatJob:
    exit_status = fields.get("exit_status", fields.get("Exit_status"))
    return QstatJob(
        job_id=job_id.strip(),
        name=str(fields.get("Job_Name", "")).strip(),
        state=str(fields.get("job_state", "")).strip(),
        exit_status=_int_or_none(exit_status),
        hold_types=str(fields.get("Hold_Types", "")).strip(),
        exec_host=str(fields.get("exec_host", "")).strip(),
        comment=str(fields.get("comment", "")).strip(),
    )


_JOB_ID_LINE = re.compile(r"^Job Id:\s*(\S+)\s*$")
_ATTRIBUTE_LINE = re.compile(r"^\s+([A-Za-z_][\w.]*)\s*=\s?(.*)$")


def parse_qstat_f(text: str) -> list[QstatJob]:
    """The jobs of ``qstat -f`` text (Torque, PBS Pro, the Slurm wrappers): a ``Job Id:``
    line, then indented ``name = value`` lines; a longer value goes on in lines indented
    with a tab that have no ``=`` of their own.

    Raises
    ------
    ValueError
        If a line outside a job is not blank, or a job has no ``job_state``.
    """
    jobs: list[QstatJob] = []
    current: Optional[str] = None
    fields: dict[str, object] = {}
    last = ""
    for number, line in enumerate(text.splitlines(), 1):
        job_line = _JOB_ID_LINE.match(line)
        if job_line:
            if current is not None:
                jobs.append(_checked_job(current, fields))
            current, fields, last = job_line.group(1), {}, ""
            continue
        if not line.strip():
            continue
        attribute = _ATTRIBUTE_LINE.match(line)
        if current is None:
            raise ValueError(f"qstat -f line {number} is outside a job: {line!r}")
        if attribute:
            last = attribute.group(1)
            fields[last] = attribute.group(2).strip()
        elif last and line[:1].isspace():
            fields[last] = f"{fields[last]}{line.strip()}"
        else:
            raise ValueError(f"qstat -f line {number} is not 'name = value': {line!r}")
    if current is not None:
        jobs.append(_checked_job(current, fields))
    return jobs


def _checked_job(job_id: str, fields: Mapping[str, object]) -> QstatJob:
    if not str(fields.get("job_state", "")).strip():
        raise ValueError(f"job {job_id} has no job_state")
    return _qstat_job(job_id, fields)


def parse_qstat_xml(text: str) -> list[QstatJob]:
    """The jobs of Torque's ``qstat -x`` (``<Data><Job><Job_Id>...``); empty output (no
    jobs) is no jobs.

    Raises
    ------
    ValueError
        If the text is not such XML.
    """
    if not text.strip():
        return []
    try:
        root = ElementTree.fromstring(text.strip())
    except ElementTree.ParseError as error:
        raise ValueError(f"qstat -x output is not XML: {error}") from None
    if root.tag != "Data":
        raise ValueError(f"qstat -x output has <{root.tag}>, not <Data>")
    jobs = []
    for element in root.findall("Job"):
        fields = {child.tag: (child.text or "") for child in element}
        job_id = fields.get("Job_Id", "")
        if not job_id or not fields.get("job_state"):
            raise ValueError("a <Job> of qstat -x has no Job_Id or job_state")
        jobs.append(_qstat_job(job_id, fields))
    return jobs


def parse_qstat_json(text: str) -> list[QstatJob]:
    """The jobs of PBS Pro's ``qstat -f -F json`` (``{"Jobs": {"123.server": {...}}}``);
    no ``Jobs`` (no jobs) is no jobs.

    Raises
    ------
    ValueError
        If the text is not such JSON.
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"qstat -F json output is not JSON: {error}") from None
    if not isinstance(data, dict):
        raise ValueError("qstat -F json output is not a JSON object")
    jobs = data.get("Jobs", {})
    if not isinstance(jobs, dict):
        raise ValueError("qstat -F json output's Jobs is not an object")
    parsed = []
    for job_id, fields in jobs.items():
        if not isinstance(fields, dict) or not fields.get("job_state"):
            raise ValueError(f"job {job_id} of qstat -F json has no job_state")
        parsed.append(_qstat_job(job_id, fields))
    return parsed


# -- states and endings -----------------------------------------------------------------------

RUNNING_STATES = frozenset("REB")
ENDED_STATES = frozenset("CFX")
LIMIT_ENDINGS = {
    Dialect.TORQUE: {-10: Ending.MEMORY_LIMIT, -11: Ending.TIME_LIMIT, -12: Ending.TIME_LIMIT},
    Dialect.PBSPRO: {
        -26: Ending.MEMORY_LIMIT,
        -27: Ending.MEMORY_LIMIT,
        -28: Ending.TIME_LIMIT,
        -29: Ending.TIME_LIMIT,
    },
    Dialect.SLURM: {},
}
"""Negative exit statuses (``JOB_EXEC_*``) that name a limit, by dialect."""
REQUEUED = {Dialect.TORQUE: -3}
"""``JOB_EXEC_RETRY``: Torque requeues the job to run it again."""


def exit_ending(exit_status: int, dialect: Dialect) -> tuple[Ending, Optional[int], Optional[int]]:
    """``(ending, exit_code, signal)`` of an ended job's exit status (module docstring)."""
    if exit_status == 0:
        return Ending.COMPLETED, 0, None
    if 0 < exit_status <= 128:
        return Ending.FAILED, exit_status, None
    if 128 < exit_status < 256:
        return Ending.FAILED, None, exit_status - 128
    if exit_status >= 256:
        return Ending.FAILED, None, exit_status - 256
    if REQUEUED.get(dialect) == exit_status:
        return Ending.PREEMPTED, None, None
    return LIMIT_ENDINGS[dialect].get(exit_status, Ending.FAILED), None, None


def job_status(job: QstatJob, dialect: Dialect) -> JobStatus:
    """A job's :class:`JobStatus` from its ``qstat`` entry (the module's state map)."""
    reason = job.state + (f" (Hold_Types {job.hold_types})" if job.state == "H" else "")
    if job.state == "H" and "s" in job.hold_types:
        return JobStatus(
            JobState.FAILED,
            reason,
            ending=Ending.ERROR_STATE,
            detail=job.comment or "system hold",
        )
    if job.state in RUNNING_STATES:
        return JobStatus(JobState.RUNNING, reason, node=job.node)
    if job.state not in ENDED_STATES:
        return JobStatus(JobState.PENDING, reason, unusual_wait="" if job.state == "Q" else reason)
    if job.exit_status is None:
        return JobStatus(JobState.ENDED, reason, node=job.node)
    ending, exit_code, signal = exit_ending(job.exit_status, dialect)
    detail = "" if ending is Ending.COMPLETED else f"exit_status {job.exit_status}"
    if job.comment and ending is not Ending.COMPLETED:
        detail += f"; comment {job.comment}"
    return JobStatus(
        JobState.ENDED,
        f"{reason}, exit_status {job.exit_status}",
        ending=ending,
        node=job.node,
        exit_code=exit_code,
        signal=signal,
        detail=detail,
    )


def _name_matches(qstat_name: str, job: Job) -> bool:
    """Torque names an array element ``NAME-INDEX``; some servers cut long names."""
    expected = pbs_job_name(job.name)
    base = re.sub(r"-\d+$", "", qstat_name)
    return (
        qstat_name == expected
        or base == expected
        or (len(qstat_name) >= 15 and expected.startswith(qstat_name))
    )


def job_statuses(qstat_jobs: Iterable[QstatJob], jobs: Iterable[Job], dialect: Dialect) -> Statuses:
    """The statuses of ``jobs`` (by job number, array index and name); others are ignored."""
    by_key = {job_key(job.job_id): job for job in jobs}
    answer: dict[str, JobStatus] = {}
    for entry in qstat_jobs:
        job = by_key.get(entry.key)
        if job is not None and _name_matches(entry.name, job):
            answer[job.job_id] = job_status(entry, dialect)
    return answer


# -- the backend --------------------------------------------------------------------------------

_QDEL_GONE = (
    "Unknown Job Id",
    "unknown job id",
    "Job has finished",
    "invalid state for job",
    "Request invalid for state of job",
)


def _qdel_accept(result: subprocess.CompletedProcess) -> bool:
    """``qdel`` of a job that is gone is not a failure: Torque and PBS Pro say ``qdel:
    Unknown Job Id 123.server`` (rc 153) or ``Job has finished``; the Slurm wrappers say
    nothing and exit with the number of jobs they could not kill."""
    if result.returncode == 0:
        return True
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    return all(any(gone in line for gone in _QDEL_GONE) for line in lines)


def _qstat_accept(result: subprocess.CompletedProcess) -> bool:
    """``qstat`` without job ids exits 153 when there is no job at all (the Slurm
    wrappers), with nothing on stdout."""
    return result.returncode == 0 or (result.returncode == 153 and not result.stdout.strip())


def _version_accept(result: subprocess.CompletedProcess) -> bool:
    """``qstat --version`` fails (rc 2) under the Slurm wrappers, which is their answer;
    only a command that printed nothing at all is tried again."""
    return bool((result.stdout + result.stderr).strip())


STATUS_FORMATS = ("text", "xml", "json")


class PbsBackend(Backend):
    """One ``qsub`` per submission (an array of workers where the dialect has arrays);
    status from one ``qstat`` for all jobs; ``qdel`` to delete.

    Parameters
    ----------
    walltime, ncpus
        PBS's names of ``time`` (``-l walltime=``) and ``cpus`` (``ncpus``/``ppn``), for
        those used to them; one of each pair at most.
    qsub_args
        Further raw ``qsub`` arguments, placed last.
    dialect
        ``"torque"``, ``"pbspro"`` or ``"slurm"`` (:class:`Dialect`); None: found from
        ``qstat --version`` on first use.
    status_format
        ``"text"`` (``qstat -f``), ``"xml"`` (Torque ``qstat -x``) or ``"json"`` (PBS Pro
        ``qstat -f -F json``); None: the dialect's richest.
    max_array_size
        Most workers of one array submission (1: no arrays).
    qsub_path, qstat_path, qdel_path
        The programs to run (tests point them at dummies or at wrappers off ``PATH``).
    command_policy
        Timeout and bounded retries of every scheduler command.
    queue, time, mem, cpus, gpus, account, setup
        The resources of every backend (:data:`batchpool.options.RESOURCES`): ``queue``
        ``-q``, ``account`` ``-A``, and in one ``-l`` list ``walltime=HH:MM:SS`` and, PBS
        Pro, ``select=1:ncpus=N:mem=<N>mb:ngpus=N``, Torque and the Slurm wrappers
        ``mem=<N>mb,nodes=1:ppn=N:gpus=N``; ``setup`` lines run in the job script before
        the worker.
    """

    name = "pbs"

    def __init__(
        self,
        *,
        walltime: Optional[Duration] = None,
        ncpus: Optional[int] = None,
        qsub_args: Sequence[str] = (),
        dialect: Optional[str] = None,
        status_format: Optional[str] = None,
        max_array_size: int = MAX_ARRAY_SIZE,
        qsub_path: str = "qsub",
        qstat_path: str = "qstat",
        qdel_path: str = "qdel",
        command_policy: CommandPolicy = DEFAULT_COMMAND_POLICY,
        **resources: Unpack[ResourceOptions],
    ) -> None:
        if status_format is not None and status_format not in STATUS_FORMATS:
            raise ValueError(f"status_format {status_format!r} is not one of {STATUS_FORMATS}")
        if max_array_size < 1:
            raise ValueError(f"max_array_size must be at least 1, not {max_array_size}")
        own = {"walltime": ("time", walltime), "ncpus": ("cpus", ncpus)}
        self.job_resources = job = JobResources.of(resources, own)
        self.queue = job.queue
        self.walltime_s = job.time_s
        self.mem_mb = job.mem_mb
        self.ncpus = job.cpus
        self.account = job.account
        self.qsub_args = [str(a) for a in qsub_args]
        self._dialect = None if dialect is None else Dialect(dialect)
        self.status_format = status_format
        self.max_array_size = max_array_size
        self.qsub_path = qsub_path
        self.qstat_path = qstat_path
        self.qdel_path = qdel_path
        self.command_policy = command_policy
        self._lock = threading.Lock()

    def dialect(self, cancel: Cancel = None) -> Dialect:
        """The dialect: the option, else found once from ``qstat --version``.

        Raises
        ------
        SchedulerError
            If ``qstat --version`` answers like none of them.
        """
        with self._lock:
            if self._dialect is None:
                result = self._run([self.qstat_path, "--version"], cancel, accept=_version_accept)
                result.stdout += "\n" + result.stderr  # the answer may come on either
                self._dialect = parsed(detect_dialect, result)
            return self._dialect

    def max_jobs_per_submit(self) -> int:
        dialect = self.dialect()
        return 1 if dialect is Dialect.SLURM else self.max_array_size

    def base_resources(self) -> Resources:
        return Resources(mem_mb=self.mem_mb, time_s=self.walltime_s)

    def job_id_template(self, dialect: Dialect) -> str:
        return "{SLURM_JOB_ID}" if dialect is Dialect.SLURM else "{PBS_JOBID}"

    def job_script(self, request: JobRequest, dialect: Dialect, array_name: Optional[str]) -> str:
        """The job script: ``cd`` into the pool's directory, ``exec`` the worker; an element
        of the array ``array_name`` first sends its output to the log pair of
        ``array_name.<index>``."""
        lines = ["#!/bin/sh", f"cd {shlex.quote(str(request.pool_dir))} || exit 1"]
        if array_name is not None:
            index = "$PBS_ARRAY_INDEX" if dialect is Dialect.PBSPRO else "$PBS_ARRAYID"
            out, err = (_expanding(p, index) for p in request.logs.pair(f"{array_name}.{index}"))
            lines.append(f"exec >>{out} 2>>{err}")
        argv = request.worker_argv(self.job_id_template(dialect))
        lines.append(script_body(self.job_resources.setup, argv))
        return "\n".join(lines) + "\n"

    def resource_argv(self, dialect: Dialect, changes: Resources) -> list[str]:
        """The one ``-l`` list of a submission: the pool's requests, with a retry's
        ``changes``. One ``-l`` only: Slurm's wrapper keeps just the last ``-l`` it gets."""
        mem_mb = changes.mem_mb if changes.mem_mb is not None else self.mem_mb
        time_s = changes.time_s if changes.time_s is not None else self.walltime_s
        items: list[str] = []
        if time_s is not None:
            items.append(f"walltime={format_walltime(time_s)}")
        gpus = self.job_resources.gpus
        if dialect is Dialect.PBSPRO:
            if self.ncpus is not None or mem_mb is not None or gpus is not None:
                chunk = "select=1"
                chunk += f":ncpus={self.ncpus}" if self.ncpus is not None else ""
                chunk += f":mem={mem_mb}mb" if mem_mb is not None else ""
                chunk += f":ngpus={gpus}" if gpus is not None else ""
                items.append(chunk)
        else:
            if mem_mb is not None:
                items.append(f"mem={mem_mb}mb")
            if self.ncpus is not None or gpus is not None:
                nodes = "nodes=1"
                nodes += f":ppn={self.ncpus}" if self.ncpus is not None else ""
                nodes += f":gpus={gpus}" if gpus is not None else ""
                items.append(nodes)
        return ["-l", ",".join(items)] if items else []

    def qsub_argv(
        self, request: JobRequest, dialect: Dialect, script: str, logs: tuple[str, str]
    ) -> list[str]:
        """``qsub`` for ``request.count`` workers (an array if more than one, whose ``logs``
        are ``/dev/null``: its elements redirect their own)."""
        argv = [self.qsub_path, "-N", pbs_job_name(request.job_name)]
        if request.count > 1:
            flag = "-J" if dialect is Dialect.PBSPRO else "-t"
            argv += [flag, f"0-{request.count - 1}"]
        argv += ["-o", logs[0], "-e", logs[1]]
        if self.queue is not None:
            argv += ["-q", self.queue]
        if self.account is not None:
            argv += ["-A", self.account]
        argv += self.resource_argv(dialect, request.resources)
        return [*argv, *self.qsub_args, script]

    def submit(self, request: JobRequest, cancel: Cancel = None) -> list[Job]:
        """``qsub`` ``request.count`` workers: one job, or one array. The job script and the
        logs are named by :class:`~batchpool._layout.JobLogs` (one new name per submission;
        an array's element ``i`` has the logs of ``NAME.i``)."""
        dialect = self.dialect(cancel)
        limit = self.max_jobs_per_submit()
        if not 1 <= request.count <= limit:
            raise ValueError(
                f"{request.count} jobs in one submission; {dialect.value} takes 1 to {limit}"
            )
        array = request.count > 1
        name = JobLogs.unique_name("pbs")
        logs = (os.devnull, os.devnull) if array else request.logs.created_pair(name)
        script = request.logs.script(name)
        _write_private(script, self.job_script(request, dialect, name if array else None))
        argv = self.qsub_argv(request, dialect, script, logs)
        job_id = parsed(parse_qsub_output, self._run(argv, cancel))
        if not array:
            return [Job(job_id, request.job_name, *map(Path, logs))]
        number, _, server = job_id.partition(".")
        base = number.removesuffix("[]")
        suffix = f".{server}" if server else ""
        logs_of = (map(Path, request.logs.pair(f"{name}.{i}")) for i in range(request.count))
        return [
            Job(f"{base}[{i}]{suffix}", request.job_name, *logs)
            for i, logs in enumerate(logs_of)
        ]

    def qstat_argv(self, dialect: Dialect) -> tuple[list[str], Callable[[str], list[QstatJob]]]:
        """The status query for all jobs and its parser."""
        default = {Dialect.TORQUE: "xml", Dialect.PBSPRO: "json", Dialect.SLURM: "text"}
        fmt = self.status_format or default[dialect]
        if dialect is Dialect.SLURM:
            return [self.qstat_path, "-f"], parse_qstat_f
        if dialect is Dialect.TORQUE:
            if fmt == "xml":
                return [self.qstat_path, "-x", "-t"], parse_qstat_xml
            return [self.qstat_path, "-f", "-t"], parse_qstat_f
        if fmt == "json":
            return [self.qstat_path, "-f", "-F", "json", "-t", "-x"], parse_qstat_json
        return [self.qstat_path, "-f", "-t", "-x"], parse_qstat_f

    def status(self, jobs: Sequence[Job], cancel: Cancel = None) -> Statuses:
        """One ``qstat`` for all jobs; only ``jobs`` are answered."""
        if not jobs:
            return {}
        dialect = self.dialect(cancel)
        return job_statuses(self._qstat(dialect, cancel), jobs, dialect)

    def _qstat(self, dialect: Dialect, cancel: Cancel) -> list[QstatJob]:
        """Every job the status query shows (none if ``qstat`` says there is no job)."""
        argv, parse = self.qstat_argv(dialect)
        result = self._run(argv, cancel, accept=_qstat_accept)
        if result.returncode == 153:
            return []
        return parsed(parse, result)

    def jobs_named(self, name: str, cancel: Cancel = None) -> Statuses:
        """Every job (array element) called ``name`` still pending or running, by the id
        ``qstat`` shows (one status query; an array's ``ID[]`` summary is left out)."""
        dialect = self.dialect(cancel)
        entries = self._qstat(dialect, cancel)
        ours = [Job(e.job_id, name, Path(), Path()) for e in entries if not e.key.endswith("[]")]
        return still_queued(job_statuses(entries, ours, dialect))

    def explain(self, jobs: Sequence[Job], cancel: Cancel = None, nodes: Nodes = None) -> Statuses:
        """What ended ``jobs``: the status query's own ending (``exit_status``) of the jobs
        it still shows (Torque keeps them for ``keep_completed``, PBS Pro in its history),
        and the system hold of a job in an error state. A failing ``qstat`` explains nothing;
        only :class:`~batchpool.commands.Cancelled` is raised."""
        if not jobs:
            return {}
        try:
            statuses = self.status(jobs, cancel)
        except (SchedulerError, OSError):
            return {}
        return {
            job_id: status
            for job_id, status in statuses.items()
            if status.ending is not None and status.state in (JobState.ENDED, JobState.FAILED)
        }

    def delete(self, jobs: Sequence[Job], cancel: Cancel = None) -> None:
        """``qdel`` the jobs, many per call; jobs already gone are not an error."""
        for batch in id_batches(jobs, QDEL_IDS_PER_CALL):
            self._run([self.qdel_path, *batch], cancel, accept=_qdel_accept)

    def _run(self, argv: list[str], cancel: Cancel, **kwargs: Any) -> subprocess.CompletedProcess:
        env = scheduler_environment(os.environ)
        return run_command(argv, self.command_policy, env=env, cancel=cancel, **kwargs)


def _expanding(path: str, variable: str) -> str:
    """``path`` quoted for ``/bin/sh``, except ``variable`` in it, which the shell expands."""
    return f'"{variable}"'.join(shlex.quote(part) for part in path.split(variable))


def _write_private(path: str, text: str) -> None:
    """Write a new file readable by the owner only (the script runs code, logs are private)."""
    if not create_exclusively(path, text.encode()):
        raise FileExistsError(f"{path} exists: a job script's name is never used twice")


def is_pbs_qstat(qstat_path: str = "qstat", timeout_s: float = 10.0) -> bool:
    """True if ``qstat --version`` is a PBS dialect's answer (for :func:`batchpool.pick_backend`:
    SGE's ``qstat`` is also called ``qstat``). A ``qstat`` that cannot be run is not PBS's."""
    try:
        result = subprocess.run(
            [qstat_path, "--version"],
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout_s,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    try:
        detect_dialect(result.stdout + "\n" + result.stderr)
    except ValueError:
        return False
    return True


class PbsPoolOptions(BackendPoolOptions, total=False):
    """What :class:`Pool` takes by keyword: the options of :class:`PbsBackend` (their
    defaults are its own) and those of every pool."""

    walltime: Optional[Duration]
    ncpus: Optional[int]
    qsub_args: Sequence[str]
    dialect: Optional[str]
    status_format: Optional[str]
    max_array_size: int
    qsub_path: str
    qstat_path: str
    qdel_path: str
    command_policy: CommandPolicy


class Pool(BackendPool):
    """A ``multiprocessing.Pool`` whose workers run as Torque, PBS Pro/OpenPBS jobs (or
    through Slurm's Torque wrappers), an array of them per submission where the dialect
    has arrays."""

    backend_class = PbsBackend
    options_type = PbsPoolOptions

    def __init__(self, *args: Any, **options: Unpack[PbsPoolOptions]) -> None:
        super().__init__(*args, **options)
