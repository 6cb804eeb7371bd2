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
Each submission writes a private ``/bin/sh`` job script (starting with ``#!/bin/sh``, which
Slurm's wrapper and some sites require) that changes into the pool's directory and
``exec``-s the worker with the absolute ``python_path``; ``qsub`` gets the script's path.
A single job's output goes to ``-o``/``-e`` files; the elements of an array redirect their
own output to files named by their index (``-o``/``-e`` are ``/dev/null``), as Torque and
PBS Pro name array output files differently.

Resources: ``queue`` (``-q``), ``walltime`` (``walltime=HH:MM:SS``), ``mem`` and ``ncpus``
(Torque and the Slurm wrappers: ``mem=<N>mb``, ``nodes=1:ppn=<N>``; PBS Pro:
``select=1:ncpus=<N>:mem=<N>mb``), all in one ``-l`` list (Slurm's wrapper keeps only the
last ``-l`` it is given, so a ``-l`` in ``qsub_args`` replaces them there), ``account``
(``-A``), and raw ``qsub_args`` last.
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
from typing import Any, Callable, Optional, Union

from ._layout import JobLogs, create_exclusively, is_job_variable
from .backend import Ending, Job, JobRequest, JobState, JobStatus, Resources
from .commands import CommandPolicy, parsed, run_command
from .errors import SchedulerError
from .policy import RetryPolicy
from .proto_pool import (
    DEFAULT_GRACE_PERIOD_S,
    DEFAULT_MAX_NUM_RESUBMISSIONS,
    DEFAULT_POLLING_INTERVAL,
    DEFAULT_SCHEDULER_OUTAGE_S,
    DEFAULT_WORK_DIR,
    DEFAULT_WORKER_IDLE_S,
    POOL_ARGUMENTS_DOC,
    POOL_OPTIONS_DOC,
    PROFILE_DOC,
    configured,
    parameters_of,
    pool_doc,
)
from .proto_pool import Pool as _Pool
from .slurm import CLIENT_SLURM_VARIABLES, SUBMISSION_CHANGING_VARIABLES

__all__ = [
    "Dialect",
    "Pool",
    "PbsBackend",
    "QstatJob",
    "detect_dialect",
    "job_key",
    "job_status",
    "parse_pbs_size",
    "parse_qstat_f",
    "parse_qstat_json",
    "parse_qstat_xml",
    "parse_qsub_output",
    "parse_walltime",
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
    keep = CLIENT_PBS_VARIABLES | CLIENT_SLURM_VARIABLES
    return {
        name: value
        for name, value in environ.items()
        if not (is_job_variable(name.encode()) and name not in keep)
        and name not in SUBMISSION_CHANGING_VARIABLES
    }


# -- sizes and times ------------------------------------------------------------------------

_SIZE_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4, "p": 1024**5}
_MB = 1024**2


def parse_pbs_size(text: str) -> int:
    """Bytes of a PBS ``size`` (``4gb``, ``512mb``, ``100kb``, ``2048``: 1024-based, the
    unit ``b`` or ``w`` (words of 8 bytes), no unit: bytes).

    Raises
    ------
    ValueError
        If ``text`` is not a size.
    """
    match = re.fullmatch(r"\s*(\d+)\s*([kmgtp]?)([bw]?)\s*", text, re.IGNORECASE)
    if match is None:
        raise ValueError(f"{text!r} is not a PBS size (like 4gb or 512mb)")
    number, prefix, unit = match.groups()
    word = 8 if unit.lower() == "w" else 1
    return int(number) * _SIZE_UNITS[prefix.lower()] * word


def parse_walltime(text: str) -> int:
    """Seconds of a PBS duration: ``[[HH:]MM:]SS`` (``01:30:00``, ``90:00``, ``5400``).

    Raises
    ------
    ValueError
        If ``text`` is not a duration.
    """
    parts = text.strip().split(":")
    if not 1 <= len(parts) <= 3 or not all(re.fullmatch(r"\d+", p) for p in parts):
        raise ValueError(f"{text!r} is not a PBS walltime (like 01:30:00 or 5400)")
    seconds = 0
    for part in parts:
        seconds = seconds * 60 + int(part)
    return seconds


def format_walltime(seconds: int) -> str:
    """``HH:MM:SS`` (hours may exceed 24)."""
    hours, rest = divmod(max(0, int(seconds)), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}"


def _mem_mb(mem: Union[int, str, None]) -> Optional[int]:
    """``mem`` in MB: an int is MB already, a string a PBS size (rounded up)."""
    if mem is None:
        return None
    if isinstance(mem, int):
        return mem
    return -(-parse_pbs_size(mem) // _MB)


def _walltime_s(walltime: Union[int, str, None]) -> Optional[int]:
    if walltime is None:
        return None
    return walltime if isinstance(walltime, int) else parse_walltime(walltime)


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
        return JobStatus(JobState.PENDING, reason)
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


def job_statuses(
    qstat_jobs: Iterable[QstatJob], jobs: Iterable[Job], dialect: Dialect
) -> dict[str, JobStatus]:
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


class PbsBackend:
    """One ``qsub`` per submission (an array of workers where the dialect has arrays);
    status from one ``qstat`` for all jobs; ``qdel`` to delete.

    Parameters
    ----------
    queue
        ``qsub -q``; None leaves it to the server.
    walltime
        Time limit per job: seconds, or a PBS duration (``"01:30:00"``).
    mem
        Memory per job: MB, or a PBS size (``"4gb"``).
    ncpus
        CPUs per job (``-l nodes=1:ppn=N``, PBS Pro ``-l select=1:ncpus=N``).
    account
        ``qsub -A``.
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
    """

    name = "pbs"

    def __init__(
        self,
        *,
        queue: Optional[str] = None,
        walltime: str | int | None = None,
        mem: str | int | None = None,
        ncpus: Optional[int] = None,
        account: Optional[str] = None,
        qsub_args: Sequence[str] = (),
        dialect: Optional[str] = None,
        status_format: Optional[str] = None,
        max_array_size: int = MAX_ARRAY_SIZE,
        qsub_path: str = "qsub",
        qstat_path: str = "qstat",
        qdel_path: str = "qdel",
        command_policy: CommandPolicy = DEFAULT_COMMAND_POLICY,
    ) -> None:
        if status_format is not None and status_format not in STATUS_FORMATS:
            raise ValueError(f"status_format {status_format!r} is not one of {STATUS_FORMATS}")
        if ncpus is not None and ncpus < 1:
            raise ValueError(f"ncpus must be at least 1, not {ncpus}")
        if max_array_size < 1:
            raise ValueError(f"max_array_size must be at least 1, not {max_array_size}")
        self.queue = queue
        self.walltime_s = _walltime_s(walltime)
        self.mem_mb = _mem_mb(mem)
        self.ncpus = ncpus
        self.account = account
        self.qsub_args = [str(a) for a in qsub_args]
        self._dialect = None if dialect is None else Dialect(dialect)
        self.status_format = status_format
        self.max_array_size = max_array_size
        self.qsub_path = qsub_path
        self.qstat_path = qstat_path
        self.qdel_path = qdel_path
        self.command_policy = command_policy
        self._lock = threading.Lock()

    # -- the dialect ----------------------------------------------------------------------

    def dialect(self, cancel: Optional[threading.Event] = None) -> Dialect:
        """The dialect: the option, else found once from ``qstat --version``.

        Raises
        ------
        SchedulerError
            If ``qstat --version`` answers like none of them.
        """
        with self._lock:
            if self._dialect is None:
                result = run_command(
                    [self.qstat_path, "--version"],
                    self.command_policy,
                    accept=_version_accept,
                    env=scheduler_environment(os.environ),
                    cancel=cancel,
                )
                text = result.stdout + "\n" + result.stderr
                try:
                    self._dialect = detect_dialect(text)
                except ValueError as error:
                    raise SchedulerError(
                        str(error),
                        command=result.args,
                        returncode=result.returncode,
                        stdout=result.stdout,
                        stderr=result.stderr,
                    ) from None
            return self._dialect

    def max_jobs_per_submit(self) -> int:
        dialect = self.dialect()
        return 1 if dialect is Dialect.SLURM else self.max_array_size

    def base_resources(self) -> Resources:
        return Resources(mem_mb=self.mem_mb, time_s=self.walltime_s)

    def num_nodes(self, cancel: Optional[threading.Event] = None) -> Optional[int]:
        """None: PBS cannot exclude nodes in a request (module docstring)."""
        return None

    # -- submission -------------------------------------------------------------------------

    def job_id_template(self, dialect: Dialect) -> str:
        return "{SLURM_JOB_ID}" if dialect is Dialect.SLURM else "{PBS_JOBID}"

    def job_script(self, request: JobRequest, dialect: Dialect, log_stem: Optional[Path]) -> str:
        """The job script: ``cd`` into the pool's directory, ``exec`` the worker; an array
        element first sends its output to ``log_stem.<index>.out`` and ``.err``."""
        lines = ["#!/bin/sh", f"cd {shlex.quote(str(request.pool_dir))} || exit 1"]
        if log_stem is not None:
            index = "$PBS_ARRAY_INDEX" if dialect is Dialect.PBSPRO else "$PBS_ARRAYID"
            stem = shlex.quote(str(log_stem))
            lines.append(f'exec >>{stem}."{index}".out 2>>{stem}."{index}".err')
        lines.append(f"exec {request.worker_command(self.job_id_template(dialect))}")
        return "\n".join(lines) + "\n"

    def resource_argv(self, dialect: Dialect, changes: Resources) -> list[str]:
        """The one ``-l`` list of a submission: the pool's requests, with a retry's
        ``changes``. One ``-l`` only: Slurm's wrapper keeps just the last ``-l`` it gets."""
        mem_mb = changes.mem_mb if changes.mem_mb is not None else self.mem_mb
        time_s = changes.time_s if changes.time_s is not None else self.walltime_s
        items: list[str] = []
        if time_s is not None:
            items.append(f"walltime={format_walltime(time_s)}")
        if dialect is Dialect.PBSPRO:
            if self.ncpus is not None or mem_mb is not None:
                chunk = "select=1"
                chunk += f":ncpus={self.ncpus}" if self.ncpus is not None else ""
                chunk += f":mem={mem_mb}mb" if mem_mb is not None else ""
                items.append(chunk)
        else:
            if mem_mb is not None:
                items.append(f"mem={mem_mb}mb")
            if self.ncpus is not None:
                items.append(f"nodes=1:ppn={self.ncpus}")
        return ["-l", ",".join(items)] if items else []

    def qsub_argv(
        self, request: JobRequest, dialect: Dialect, script: Path, log_stem: Path
    ) -> list[str]:
        """``qsub`` for ``request.count`` workers (an array if more than one)."""
        argv = [self.qsub_path, "-N", pbs_job_name(request.job_name)]
        if request.count > 1:
            flag = "-J" if dialect is Dialect.PBSPRO else "-t"
            argv += [flag, f"0-{request.count - 1}", "-o", os.devnull, "-e", os.devnull]
        else:
            argv += ["-o", f"{log_stem}.out", "-e", f"{log_stem}.err"]
        if self.queue is not None:
            argv += ["-q", self.queue]
        if self.account is not None:
            argv += ["-A", self.account]
        argv += self.resource_argv(dialect, request.resources)
        return [*argv, *self.qsub_args, str(script)]

    def submit(self, request: JobRequest, cancel: Optional[threading.Event] = None) -> list[Job]:
        """``qsub`` ``request.count`` workers: one job, or one array."""
        dialect = self.dialect(cancel)
        limit = self.max_jobs_per_submit()
        if not 1 <= request.count <= limit:
            raise ValueError(
                f"{request.count} jobs in one submission; {dialect.value} takes 1 to {limit}"
            )
        array = request.count > 1
        if array:
            stem = request.log_dir / JobLogs.unique_name("pbs")
        else:
            stem = Path(request.logs.new_pair("pbs")[0]).with_suffix("")
        script = Path(f"{stem}.sh")
        _write_private(script, self.job_script(request, dialect, stem if array else None))
        argv = self.qsub_argv(request, dialect, script, stem)
        env = scheduler_environment(os.environ)
        result = run_command(argv, self.command_policy, env=env, cancel=cancel)
        job_id = parsed(parse_qsub_output, result)
        if not array:
            return [Job(job_id, request.job_name, Path(f"{stem}.out"), Path(f"{stem}.err"))]
        number, _, server = job_id.partition(".")
        base = number.removesuffix("[]")
        suffix = f".{server}" if server else ""
        return [
            Job(
                f"{base}[{i}]{suffix}",
                request.job_name,
                Path(f"{stem}.{i}.out"),
                Path(f"{stem}.{i}.err"),
            )
            for i in range(request.count)
        ]

    # -- status -----------------------------------------------------------------------------

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

    def status(
        self, jobs: Sequence[Job], cancel: Optional[threading.Event] = None
    ) -> dict[str, JobStatus]:
        """One ``qstat`` for all jobs; only ``jobs`` are answered."""
        if not jobs:
            return {}
        dialect = self.dialect(cancel)
        return job_statuses(self._qstat(dialect, cancel), jobs, dialect)

    def _qstat(self, dialect: Dialect, cancel: Optional[threading.Event]) -> list[QstatJob]:
        """Every job the status query shows (none if ``qstat`` says there is no job)."""
        argv, parse = self.qstat_argv(dialect)
        result = run_command(
            argv,
            self.command_policy,
            accept=_qstat_accept,
            env=scheduler_environment(os.environ),
            cancel=cancel,
        )
        if result.returncode == 153:
            return []
        return parsed(parse, result)

    def jobs_named(
        self, name: str, cancel: Optional[threading.Event] = None
    ) -> dict[str, JobStatus]:
        """Every job (array element) called ``name`` still pending or running, by the id
        ``qstat`` shows (one status query; an array's ``ID[]`` summary is left out)."""
        dialect = self.dialect(cancel)
        answer = {}
        for entry in self._qstat(dialect, cancel):
            ours = Job(entry.job_id, name, Path(), Path())
            if entry.key.endswith("[]") or not _name_matches(entry.name, ours):
                continue
            status = job_status(entry, dialect)
            if status.state in (JobState.PENDING, JobState.RUNNING):
                answer[entry.job_id] = status
        return answer

    def explain(
        self,
        jobs: Sequence[Job],
        cancel: Optional[threading.Event] = None,
        nodes: Optional[Mapping[str, str]] = None,
    ) -> dict[str, JobStatus]:
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

    def delete(self, jobs: Sequence[Job], cancel: Optional[threading.Event] = None) -> None:
        """``qdel`` the jobs, many per call; jobs already gone are not an error."""
        ids = [job.job_id for job in jobs]
        for start in range(0, len(ids), QDEL_IDS_PER_CALL):
            batch = ids[start : start + QDEL_IDS_PER_CALL]
            run_command(
                [self.qdel_path, *batch],
                self.command_policy,
                accept=_qdel_accept,
                env=scheduler_environment(os.environ),
                cancel=cancel,
            )

    def filter_stderr(self, text: str) -> str:
        return text


def _write_private(path: Path, text: str) -> None:
    """Write a new file readable by the owner only (the script runs code, logs are private)."""
    if not create_exclusively(str(path), text.encode()):
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


class Pool(_Pool):
    __doc__ = pool_doc(
        """A ``multiprocessing.Pool`` whose workers run as Torque, PBS Pro/OpenPBS jobs (or
        through Slurm's Torque wrappers), an array of them per submission where the dialect
        has arrays.""",
        POOL_ARGUMENTS_DOC,
        parameters_of(PbsBackend),
        POOL_OPTIONS_DOC,
        PROFILE_DOC,
    )

    @configured("pbs")
    def __init__(
        self,
        processes: Optional[int] = None,
        initializer: Optional[Callable[..., object]] = None,
        initargs: Iterable[Any] = (),
        maxtasksperchild: Optional[int] = None,
        context: object = None,
        *,
        queue: Optional[str] = None,
        walltime: Union[str, int, None] = None,
        mem: Union[str, int, None] = None,
        ncpus: Optional[int] = None,
        account: Optional[str] = None,
        qsub_args: Sequence[str] = (),
        dialect: Optional[str] = None,
        status_format: Optional[str] = None,
        max_array_size: int = MAX_ARRAY_SIZE,
        qsub_path: str = "qsub",
        qstat_path: str = "qstat",
        qdel_path: str = "qdel",
        command_policy: CommandPolicy = DEFAULT_COMMAND_POLICY,
        work_dir: Union[str, os.PathLike[str]] = DEFAULT_WORK_DIR,
        python_path: Optional[Union[str, os.PathLike[str]]] = None,
        polling_interval: float = DEFAULT_POLLING_INTERVAL,
        max_num_resubmissions: int = DEFAULT_MAX_NUM_RESUBMISSIONS,
        num_simultaneously_running_tasks: Optional[int] = None,
        keep_work_dir: bool = False,
        verbose: bool = False,
        lost_job_grace_period_s: float = DEFAULT_GRACE_PERIOD_S,
        resume: bool = True,
        worker_idle_s: float = DEFAULT_WORKER_IDLE_S,
        scheduler_outage_s: float = DEFAULT_SCHEDULER_OUTAGE_S,
        retry_policy: Optional[RetryPolicy] = None,
        profile: Optional[str] = None,
    ) -> None:
        backend = PbsBackend(
            queue=queue,
            walltime=walltime,
            mem=mem,
            ncpus=ncpus,
            account=account,
            qsub_args=qsub_args,
            dialect=dialect,
            status_format=status_format,
            max_array_size=max_array_size,
            qsub_path=qsub_path,
            qstat_path=qstat_path,
            qdel_path=qdel_path,
            command_policy=command_policy,
        )
        # ``profile`` was applied by @configured: it filled in the options not given.
        super().__init__(
            processes,
            initializer,
            initargs,
            maxtasksperchild,
            context,
            backend=backend,
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
