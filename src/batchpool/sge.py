"""Sun/Son of Grid Engine, one ``qsub`` per worker: :class:`SgeBackend` and its :class:`Pool`.

Submission
----------
Stock SGE (``shell_start_mode posix_compliant``) starts the ``-S`` interpreter by bare
name with a minimal ``PATH``, so a virtualenv's python would lose its environment.
Each worker is therefore a tiny ``/bin/sh`` job script, given to ``qsub`` on stdin,
whose body ``exec``-s the worker with the absolute ``python_path``.

State map (``qstat -xml`` ``<state>`` letters)
----------------------------------------------
==========  =====================================================================
``FAILED``  any state with ``E`` (``Eqw``, ``Ehqw``, ...): the job will not start;
            any state with ``d`` (``dr``, ``dt``, ...): the job is being deleted, by
            someone else than this pool, and will not finish its chunk (a job on a
            lost node can stay in ``dr`` for good)
``PENDING`` ``qw``, ``hqw`` (held jobs too), ``Rq``, and the suspended ``s``, ``S``,
            ``T`` (they resume by themselves); anything not known
``RUNNING`` ``r``, ``t`` (transferring to its node), ``Rr``, ``Rt``
==========  =====================================================================

SGE shows no ended jobs: a job that ended is not in the answer at all.
"""

from __future__ import annotations

import os
import pwd
import re
import subprocess
import threading
import uuid
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, TypeVar

from .backend import Job, JobRequest, JobState, JobStatus
from .commands import CommandPolicy, run_command
from .errors import SchedulerError
from .proto_pool import BackendPool

__all__ = ["Pool", "SgeBackend", "QstatJob", "parse_qstat_xml", "sge_job_name"]

QDEL_IDS_PER_CALL = 500
DEFAULT_COMMAND_POLICY = CommandPolicy()
T = TypeVar("T")


def sge_job_name(name: str) -> str:
    """``name`` made valid for ``qsub -N``.

    SGE names must not start with a digit nor contain ``/ : @ \\ * ?`` or white space;
    such characters become ``_`` and a leading digit gets the prefix ``bp``
    (``2026-11-21T05:41:54`` -> ``bp2026-11-21T05_41_54``).
    """
    name = re.sub(r"[/:@\\*?\s]|[^\x21-\x7e]", "_", name)
    if not name or name[0].isdigit():
        name = "bp" + name
    return name


def private_log_files(log_dir: Path) -> Path:
    """Create a job's empty ``.out`` and ``.err`` files, readable by the owner only, and
    return their common stem.

    SGE creates output files with its own umask (0644) but keeps the mode of files that
    exist, so they are made here, under a name of their own for every submission.
    """
    stem = log_dir / f"sge.{uuid.uuid4().hex[:12]}"
    for suffix in (".out", ".err"):
        os.close(os.open(f"{stem}{suffix}", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    return stem


JOB_ID_TEMPLATE = "{JOB_ID}"


def job_script(request: JobRequest) -> str:
    """The job script of a worker: ``exec`` it with the absolute python path."""
    return f"#!/bin/sh\nexec {request.worker_command(JOB_ID_TEMPLATE)}\n"


def parse_qsub_terse(stdout: str) -> str:
    """The job id from ``qsub -terse``: ``12``, or ``12`` of an array's ``12.1-10:1``.

    Raises
    ------
    ValueError
        If no line of ``stdout`` starts with a job id.
    """
    for line in stdout.splitlines():
        match = re.fullmatch(r"\s*(\d+)(\.\d+-\d+:\d+)?\s*", line)
        if match:
            return match.group(1)
    raise ValueError(f"no job id in qsub -terse output {stdout!r}")


@dataclass(frozen=True)
class QstatJob:
    """One ``<job_list>`` of ``qstat -xml``."""

    job_id: str
    name: str
    owner: str
    state: str
    """SGE's state letters: ``qw``, ``hqw``, ``r``, ``t``, ``dr``, ``Eqw``, ..."""
    tasks: str = ""
    """Array task ids (``<tasks>``) for array jobs; empty otherwise."""


def parse_qstat_xml(xml_text: str) -> list[QstatJob]:
    """Every job of ``qstat -xml`` output, running (``<queue_info>``) and pending (``<job_info>``).

    Raises
    ------
    ValueError
        If the text is not XML.
    """
    try:
        root = ElementTree.fromstring(xml_text)
    except ElementTree.ParseError as error:
        raise ValueError(f"qstat -xml output is not XML: {error}") from None
    return [
        QstatJob(
            job_id=_text(element, "JB_job_number"),
            name=_text(element, "JB_name"),
            owner=_text(element, "JB_owner"),
            state=_text(element, "state"),
            tasks=_text(element, "tasks"),
        )
        for element in root.iter("job_list")
    ]


def _text(element: ElementTree.Element, tag: str) -> str:
    return (element.findtext(tag) or "").strip()


def job_state(state: str) -> JobState:
    """Map SGE's state letters to a :class:`JobState` (module docstring)."""
    if "E" in state or "d" in state:
        return JobState.FAILED
    if any(letter in state for letter in "sST"):
        return JobState.PENDING
    if "r" in state or "t" in state:
        return JobState.RUNNING
    return JobState.PENDING


def job_statuses(qstat_jobs: Iterable[QstatJob], jobs: Iterable[Job]) -> dict[str, JobStatus]:
    """The statuses of ``jobs`` (by id and name); other jobs are ignored."""
    wanted = {(job.job_id, sge_job_name(job.name)) for job in jobs}
    return {
        job.job_id: JobStatus(job_state(job.state), job.state)
        for job in qstat_jobs
        if (job.job_id, job.name) in wanted
    }


_QDEL_DONE = ("does not exist", "registered the job", "deleted job", "already in deletion")


def _qdel_accept(result: subprocess.CompletedProcess) -> bool:
    """``qdel`` exits 1 if a job is already gone (``denied: job "9" does not exist``)."""
    if result.returncode == 0:
        return True
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    return any("does not exist" in line for line in lines) and all(
        any(done in line for done in _QDEL_DONE) for line in lines
    )


def _parsed(parse: Callable[[str], T], result: subprocess.CompletedProcess) -> T:
    """``parse(result.stdout)``; a ValueError becomes a SchedulerError with the output."""
    try:
        return parse(result.stdout)
    except ValueError as error:
        raise SchedulerError(
            str(error),
            command=result.args,
            returncode=result.returncode,
            stdout=result.stdout,
            stderr=result.stderr,
        ) from None


class SgeBackend:
    """One ``qsub`` per worker; status from one ``qstat -xml``; ``qdel`` to delete.

    Parameters
    ----------
    queue_name
        ``qsub -q``; None leaves it to SGE.
    resources
        Each becomes ``-l X`` (e.g. ``"h_vmem=4G"``).
    qsub_args
        Further raw ``qsub`` arguments, placed last.
    qsub_path, qstat_path, qdel_path
        The programs to run (tests point them at dummies).
    command_policy
        Timeout and bounded retries of every scheduler command.
    """

    name = "sge"

    def __init__(
        self,
        *,
        queue_name: Optional[str] = None,
        resources: Sequence[str] = (),
        qsub_args: Sequence[str] = (),
        qsub_path: str = "qsub",
        qstat_path: str = "qstat",
        qdel_path: str = "qdel",
        command_policy: CommandPolicy = DEFAULT_COMMAND_POLICY,
    ) -> None:
        self.queue_name = queue_name
        self.resources = [str(r) for r in resources]
        self.qsub_args = [str(a) for a in qsub_args]
        self.qsub_path = qsub_path
        self.qstat_path = qstat_path
        self.qdel_path = qdel_path
        self.command_policy = command_policy

    def max_jobs_per_submit(self) -> int:
        return 1

    def qsub_argv(self, request: JobRequest, log_stem: Path) -> list[str]:
        """``qsub`` for one worker, its output into ``log_stem.out`` and ``.err``; the job
        script comes on stdin (:func:`job_script`)."""
        argv = [
            self.qsub_path,
            "-terse",
            "-S",
            "/bin/sh",
            "-N",
            sge_job_name(request.job_name),
            "-o",
            f"{log_stem}.out",
            "-e",
            f"{log_stem}.err",
            "-wd",
            str(request.pool_dir),
        ]
        if self.queue_name is not None:
            argv += ["-q", self.queue_name]
        for resource in self.resources:
            argv += ["-l", resource]
        return argv + self.qsub_args

    def submit(self, request: JobRequest, cancel: Optional[threading.Event] = None) -> list[Job]:
        """``qsub`` one worker."""
        if request.count != 1:
            raise ValueError(f"{request.count} jobs in one submission; sge takes 1")
        stem = private_log_files(request.log_dir)
        argv = self.qsub_argv(request, stem)
        result = run_command(
            argv, self.command_policy, stdin_text=job_script(request), cancel=cancel
        )
        job_id = _parsed(parse_qsub_terse, result)
        return [Job(job_id, request.job_name, Path(f"{stem}.out"), Path(f"{stem}.err"))]

    def qstat_argv(self) -> list[str]:
        """``qstat -xml`` for the jobs of the user running this process."""
        return [self.qstat_path, "-xml", "-u", pwd.getpwuid(os.getuid()).pw_name]

    def status(
        self, jobs: Sequence[Job], cancel: Optional[threading.Event] = None
    ) -> dict[str, JobStatus]:
        """One ``qstat -xml``; only ``jobs`` are answered."""
        if not jobs:
            return {}
        result = run_command(self.qstat_argv(), self.command_policy, cancel=cancel)
        return job_statuses(_parsed(parse_qstat_xml, result), jobs)

    def delete(self, jobs: Sequence[Job], cancel: Optional[threading.Event] = None) -> None:
        """``qdel`` the jobs, many per call; jobs already gone are not an error."""
        ids = [job.job_id for job in jobs]
        for start in range(0, len(ids), QDEL_IDS_PER_CALL):
            batch = ids[start : start + QDEL_IDS_PER_CALL]
            run_command(
                [self.qdel_path, *batch], self.command_policy, accept=_qdel_accept, cancel=cancel
            )

    def filter_stderr(self, text: str) -> str:
        return text


class Pool(BackendPool):
    """A ``multiprocessing.Pool`` whose workers run as one Grid Engine job each.

    Takes ``processes, initializer, initargs, maxtasksperchild`` like
    ``multiprocessing.Pool``, the options of :class:`SgeBackend` as keywords, and the
    keyword options common to every pool (``work_dir``, ``python_path``,
    ``polling_interval``, ``max_num_resubmissions``, ``num_simultaneously_running_tasks``,
    ``keep_work_dir``, ``verbose``, ``lost_job_grace_period_s``, ``resume``,
    ``worker_idle_s``, ``scheduler_outage_s``), which go to
    :class:`~batchpool.proto_pool.Pool`.
    """

    backend_class = SgeBackend
