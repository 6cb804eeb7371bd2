"""Sun/Son of Grid Engine, one ``qsub`` per worker: :class:`SgeBackend` and its :class:`Pool`.

Submission
----------
Stock SGE (``shell_start_mode posix_compliant``) starts the ``-S`` interpreter by bare
name with a minimal ``PATH``, so a virtualenv's python would lose its environment.
Each worker is therefore a tiny ``/bin/sh`` job script, given to ``qsub`` on stdin,
whose body ``exec``-s the worker with the absolute ``python_path``.

A retry with more (:class:`~batchpool.backend.Resources`) replaces the pool's ``h_vmem``
(``-l h_vmem=<N>M``) and ``h_rt`` (``-l h_rt=<seconds>``); excluded nodes become
``-l h=!a&!b``, and-ed with the pool's own host request if it has one
(``-l h=(<pool's>)&!a&!b``): for one resource, SGE keeps only the last ``-l``.

State map (``qstat -xml`` ``<state>`` letters)
----------------------------------------------
===========  ==========================================================================
``FAILED``   any state with ``E`` (``Eqw``, ``Ehqw``, ...): the job will not start;
             ending ``ERROR_STATE`` (:meth:`SgeBackend.explain` adds the error reason);
             any state with ``d`` (``dr``, ``dt``, ...): the job is being deleted, by
             someone else than this pool, and will not finish its chunk (a job on a
             lost node can stay in ``dr`` for good); ending ``CANCELLED``: the one
             sign of a ``qdel`` SGE gives, as its accounting records a running job
             deleted with ``qdel`` like one killed by SIGKILL
``PENDING``  ``qw``, ``hqw`` (held jobs too), ``Rq``, and the suspended ``s``, ``S``,
             ``T`` (they resume by themselves); anything not known
``RUNNING``  ``r``, ``t`` (transferring to its node), ``Rr``, ``Rt``
===========  ==========================================================================

A running job's ``node`` is the host of its queue instance (``all.q@node7`` ->
``node7``). SGE shows no ended jobs: a job that ended is not in the answer at all.

Endings (:meth:`SgeBackend.explain`)
------------------------------------
A job still in the queue with an ``error reason`` (``qstat -j``) is ``ERROR_STATE``.
A job that left the queue is looked up in the accounting (``qacct -j``; SGE 8.1.9
writes a record when a job that had been dispatched ends, none for a job deleted while
pending). Its ``failed`` and ``exit_status`` lines give the ending:

================================  ====================================================
``failed 0``, ``exit_status 0``   ``COMPLETED``
``failed 0``, ``exit_status N``   ``FAILED``, ``exit_code`` N
``failed 37`` ("qmaster           ``MEMORY_LIMIT`` if ``maxvmem`` reached the job's
enforced h_rt, h_cpu, or h_vmem   ``h_vmem``, else ``TIME_LIMIT`` if ``ru_wallclock``
limit")                           reached its ``h_rt`` or ``s_rt`` (both from the
                                  record's ``category``), else ``FAILED``
``failed 100`` ("assumedly        ``FAILED``; ``exit_status`` 128+N is ``signal`` N.
after job")                       A running job deleted with ``qdel`` is recorded
                                  exactly as one killed by SIGKILL (``100``, ``137``)
other ``failed`` codes            ``FAILED`` (its launch failed: no ``exit_code`` if
                                  it never started)
================================  ====================================================

A job that exceeds ``h_vmem`` in a single process is not killed: the address-space
limit SGE sets makes its allocation fail (Python: ``MemoryError``, ``failed 0``,
``exit_status 1``).
"""

from __future__ import annotations

import math
import os
import pwd
import re
import subprocess
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

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
)
from .commands import CommandPolicy, parsed, run_command
from .errors import SchedulerError
from .options import BackendPoolOptions
from .proto_pool import BackendPool

if TYPE_CHECKING:
    from .options import ResourceOptions, Unpack

__all__ = [
    "Pool",
    "SgeBackend",
    "QstatJob",
    "QstatJobDetail",
    "AcctRecord",
    "parse_qstat_xml",
    "parse_qstat_j",
    "parse_qacct",
    "sge_job_name",
]

QDEL_IDS_PER_CALL = 500
QSTAT_J_IDS_PER_CALL = 500
DEFAULT_COMMAND_POLICY = CommandPolicy()


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


JOB_ID_TEMPLATE = "{JOB_ID}"


def job_script(request: JobRequest, setup: Sequence[str] = ()) -> str:
    """The job script of a worker: the ``setup`` lines, then ``exec`` the worker with the
    absolute python path (:func:`batchpool.backend.script_body`)."""
    return f"#!/bin/sh\n{script_body(setup, request.worker_argv(JOB_ID_TEMPLATE))}\n"


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


# -- resources: SGE's -l lists, memory and time values ----------------------------------------

HOST_RESOURCES = ("h", "hostname")
"""The names (shortcut and full) of the host a job runs on, as in ``-l h=node1``."""
_MEMORY_UNITS = {
    "": 1,
    "k": 1000,
    "K": 1024,
    "m": 1000**2,
    "M": 1024**2,
    "g": 1000**3,
    "G": 1024**3,
    "t": 1000**4,
    "T": 1024**4,
}
_MB = 1024**2
"""A :class:`~batchpool.backend.Resources` ``mem_mb`` is in units of 1024 * 1024 bytes,
which SGE writes ``M``."""


def resource_requests(lists: Iterable[str]) -> list[tuple[str, str]]:
    """The ``(name, value)`` pairs of ``-l`` lists (``"h_rt=30,h_vmem=2G"``), in order.

    An item without ``=`` (a boolean resource) has the value ``""``.
    """
    pairs = []
    for text in lists:
        for item in text.split(","):
            name, _, value = item.strip().partition("=")
            if name:
                pairs.append((name.strip(), value.strip()))
    return pairs


def last_request(pairs: Sequence[tuple[str, str]], *names: str) -> Optional[str]:
    """The value of the last request of any of ``names``: for one resource SGE keeps only
    the last (``-l h=a -l h=b`` asks for ``b``)."""
    values = [value for name, value in pairs if name in names]
    return values[-1] if values else None


def parse_sge_memory(text: str) -> Optional[float]:
    """Bytes of an SGE ``memory_specifier`` (``sge_types(5)``): a number with an optional
    multiplier, ``k m g t`` 1000-based and ``K M G T`` 1024-based (``"4G"`` -> 4 * 1024**3,
    ``"1500m"`` -> 1.5e9, ``"0x10M"``, ``"1.5G"``); None for ``INFINITY`` or anything else.
    """
    match = re.fullmatch(r"\s*(0[xX][0-9a-fA-F]+|\d+(?:\.\d*)?|\.\d+)([kKmMgGtT]?)\s*", text)
    if match is None:
        return None
    number, unit = match.groups()
    value = int(number, 16) if number[:2].lower() == "0x" else float(number)
    return value * _MEMORY_UNITS[unit]


def parse_sge_time(text: str) -> Optional[int]:
    """Seconds of an SGE ``time_specifier`` (``sge_types(5)``): seconds (``"30"``) or
    ``hours:minutes:seconds`` where a zero may be left out (``"1::1"`` = 3601); None for
    ``INFINITY`` or anything else."""
    text = text.strip()
    if re.fullmatch(r"\d*:\d*:\d*", text):
        hours, minutes, seconds = (int(part or 0) for part in text.split(":"))
        return hours * 3600 + minutes * 60 + seconds
    if re.fullmatch(r"0[xX][0-9a-fA-F]+", text):
        return int(text, 16)
    if re.fullmatch(r"\d+(?:\.\d*)?", text):
        return math.ceil(float(text))
    return None


def base_resources_of(lists: Iterable[str]) -> Resources:
    """Memory (``h_vmem``, in MB of 1024 * 1024 bytes, rounded up) and time (``h_rt``) of
    ``-l`` lists; None where not given or not a number."""
    pairs = resource_requests(lists)
    memory = last_request(pairs, "h_vmem")
    time = last_request(pairs, "h_rt")
    mem_bytes = None if memory is None else parse_sge_memory(memory)
    return Resources(
        mem_mb=None if mem_bytes is None else math.ceil(mem_bytes / _MB),
        time_s=None if time is None else parse_sge_time(time),
    )


def job_resource_lists(pool_lists: Sequence[str], changes: Resources) -> list[str]:
    """The ``-l`` lists of a job: the pool's, where ``changes`` replace ``h_vmem``
    (``mem_mb`` -> ``h_vmem=<N>M``), ``h_rt`` (``time_s`` -> ``h_rt=<N>``) and the host
    (``exclude_nodes`` -> ``h=!a&!b``, and-ed with the pool's own host request)."""
    replaced: set[str] = set()
    added: list[str] = []
    if changes.time_s is not None:
        replaced.add("h_rt")
        added.append(f"h_rt={changes.time_s}")
    if changes.mem_mb is not None:
        replaced.add("h_vmem")
        added.append(f"h_vmem={changes.mem_mb}M")
    if changes.exclude_nodes:
        replaced.update(HOST_RESOURCES)
        added.append(f"h={host_exclusion(pool_lists, changes.exclude_nodes)}")
    kept = []
    for text in pool_lists:
        items = [f"{name}={value}" if value else name for name, value in resource_requests([text])]
        remaining = [item for item in items if item.partition("=")[0] not in replaced]
        if remaining == items:
            kept.append(text)
        elif remaining:
            kept.append(",".join(remaining))
    return kept + added


def own_resource_lists(job: JobResources, gpu_resource: str = "gpu") -> list[str]:
    """The ``-l`` list of a pool's resources, if any: ``h_rt=<seconds>``,
    ``h_vmem=<N>M`` per slot (SGE multiplies ``h_vmem`` by the slots of a parallel
    job, so the job's ``mem`` is divided among its ``cpus``) and ``<gpu_resource>=N``."""
    items = []
    if job.time_s is not None:
        items.append(f"h_rt={job.time_s}")
    if job.mem_mb is not None:
        items.append(f"h_vmem={math.ceil(job.mem_mb / (job.cpus or 1))}M")
    if job.gpus is not None:
        items.append(f"{gpu_resource}={job.gpus}")
    return [",".join(items)] if items else []


def host_exclusion(pool_lists: Sequence[str], nodes: Sequence[str]) -> str:
    """The host expression of a job kept off ``nodes``: ``!a&!b``, or
    ``(<pool's expression>)&!a&!b`` if the pool asks for hosts itself."""
    own = last_request(resource_requests(pool_lists), *HOST_RESOURCES)
    exclusion = "&".join(f"!{node}" for node in nodes)
    return f"({own})&{exclusion}" if own else exclusion


# -- qstat -xml ------------------------------------------------------------------------------


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
    queue: str = ""
    """The queue instance (``<queue_name>``, ``all.q@node7``) of a running job; empty
    for a pending one."""


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
            queue=_text(element, "queue_name"),
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


def state_ending(state: str) -> Optional[Ending]:
    """What SGE's state letters say of a job's end: ``E`` an error state, ``d`` a
    deletion; None otherwise."""
    if "E" in state:
        return Ending.ERROR_STATE
    if "d" in state:
        return Ending.CANCELLED
    return None


def queue_host(queue: str) -> str:
    """The host of a queue instance: ``all.q@node7`` -> ``node7``; ``""`` if none."""
    return queue.partition("@")[2]


ORDINARY_WAIT = "qw"
"""The state of a job that waits for its turn (held ``hqw``, suspended ``s``... do not)."""


def job_status(job: QstatJob) -> JobStatus:
    """The :class:`JobStatus` of one job of ``qstat -xml`` (module docstring)."""
    state = job_state(job.state)
    unusual = state is JobState.PENDING and job.state != ORDINARY_WAIT
    return JobStatus(
        state,
        job.state,
        ending=state_ending(job.state),
        node=queue_host(job.queue),
        unusual_wait=job.state if unusual else "",
    )


def job_statuses(qstat_jobs: Iterable[QstatJob], jobs: Iterable[Job]) -> Statuses:
    """The statuses of ``jobs`` (by id and name); other jobs are ignored."""
    wanted = {(job.job_id, sge_job_name(job.name)) for job in jobs}
    return {job.job_id: job_status(job) for job in qstat_jobs if (job.job_id, job.name) in wanted}


# -- qstat -j: the error reason of a job in an error state -----------------------------------

_BLOCK_SEPARATOR = re.compile(r"^=+\s*$", re.MULTILINE)


@dataclass(frozen=True)
class QstatJobDetail:
    """What ``qstat -j`` says of one job that is in the queue."""

    job_id: str
    name: str
    error_reasons: tuple[str, ...] = ()
    """The ``error reason N:`` lines (N: the array task), without their label."""


def parse_qstat_j(text: str) -> list[QstatJobDetail]:
    """The jobs of ``qstat -j ID[,ID...]`` output (one block each, after a ``=====``
    line); jobs it does not know are simply not there."""
    details = []
    for block in _BLOCK_SEPARATOR.split(text):
        job_id = name = ""
        reasons = []
        for line in block.splitlines():
            key, _, value = line.partition(":")
            if key == "job_number":
                job_id = value.strip()
            elif key == "job_name":
                name = value.strip()
            elif re.fullmatch(r"error reason\s+\d+", key):
                reasons.append(value.strip())
        if job_id:
            details.append(QstatJobDetail(job_id, name, tuple(reasons)))
    return details


def _qstat_j_accept(result: subprocess.CompletedProcess) -> bool:
    """``qstat -j`` exits 1 when none of the jobs exists (``Following jobs do not exist``);
    jobs that do not exist among others are left out silently, rc 0."""
    return result.returncode == 0 or "do not exist" in result.stdout + result.stderr


_REASON_STAMP = re.compile(r"^\d\d/\d\d/\d{4} \d\d:\d\d:\d\d \[\d+:\d+\]: ")
"""What SGE puts before an error reason: when and which execd process (uid:pid) met it,
``11/21/2026 18:22:24 [0:23963]: `` (different for every job)."""


def error_reason_text(reason: str) -> str:
    """An ``error reason`` without its time and process stamp, so that jobs that failed
    alike say the same: ``error: can't open output file "/x/y": No such file or directory``."""
    return _REASON_STAMP.sub("", reason)


def error_state_status(detail: QstatJobDetail) -> JobStatus:
    return JobStatus(
        JobState.FAILED,
        "E",
        ending=Ending.ERROR_STATE,
        detail="; ".join(error_reason_text(r) for r in detail.error_reasons),
    )


# -- qacct -j: how a job that left the queue ended -------------------------------------------

FAILED_LIMIT = 37
"""``failed 37 : qmaster enforced h_rt, h_cpu, or h_vmem limit``."""
FAILED_AFTER_JOB = 100
"""``failed 100 : assumedly after job``: the job died by a signal (a ``qdel`` too)."""
_SIZE_UNITS = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4, "PB": 1024**5}


@dataclass(frozen=True)
class AcctRecord:
    """The fields of one ``qacct -j`` record that tell how a job ended."""

    job_id: str
    name: str
    hostname: str = ""
    failed: int = 0
    failed_text: str = ""
    """The ``failed`` line's value as qacct prints it (``37  : qmaster enforced ...``)."""
    exit_status: int = 0
    started: bool = True
    """False if ``start_time`` is ``-/-``: the job never ran (its launch failed)."""
    wallclock_s: Optional[float] = None
    maxvmem_bytes: Optional[float] = None
    maxvmem_text: str = ""
    category: str = ""
    """The job's requests (``-l h_rt=5,h_vmem=300M -q all.q``), ``NONE`` without."""


def parse_qacct(text: str) -> list[AcctRecord]:
    """The records of ``qacct -j`` output, in the order of the accounting file (oldest
    first); records without a job number are left out."""
    records = []
    for block in _BLOCK_SEPARATOR.split(text):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            parts = line.split(None, 1)
            if parts:
                fields[parts[0]] = parts[1].strip() if len(parts) > 1 else ""
        if fields.get("jobnumber"):
            records.append(_acct_record(fields))
    return records


def _acct_record(fields: dict[str, str]) -> AcctRecord:
    failed = re.match(r"(\d+)", fields.get("failed", ""))
    exit_status = re.match(r"(\d+)", fields.get("exit_status", ""))
    return AcctRecord(
        job_id=fields["jobnumber"],
        name=fields.get("jobname", ""),
        hostname=fields.get("hostname", ""),
        failed=int(failed.group(1)) if failed else 0,
        failed_text=fields.get("failed", ""),
        exit_status=int(exit_status.group(1)) if exit_status else 0,
        started=fields.get("start_time", "") not in ("", "-/-"),
        wallclock_s=_seconds(fields.get("ru_wallclock", "")),
        maxvmem_bytes=_size(fields.get("maxvmem", "")),
        maxvmem_text=fields.get("maxvmem", ""),
        category=fields.get("category", ""),
    )


def _seconds(text: str) -> Optional[float]:
    """``6s`` (8.1.9) or ``6`` / ``6.000`` (older qacct)."""
    match = re.fullmatch(r"(\d+(?:\.\d*)?)s?", text)
    return float(match.group(1)) if match else None


def _size(text: str) -> Optional[float]:
    """qacct's ``476.164MB``, ``0.000B`` (1024-based units) in bytes."""
    match = re.fullmatch(r"(\d+(?:\.\d*)?)\s*([KMGTP]?B)", text)
    return float(match.group(1)) * _SIZE_UNITS[match.group(2)] if match else None


def category_requests(category: str) -> list[tuple[str, str]]:
    """The hard ``-l`` requests of a record's ``category`` (``-l h_rt=5,h_vmem=1G``)."""
    words = category.split()
    lists = [
        words[i + 1]
        for i, word in enumerate(words[:-1])
        if word == "-l" and (i == 0 or words[i - 1] != "-soft")
    ]
    return resource_requests(lists)


def limit_ending(record: AcctRecord) -> Optional[Ending]:
    """Which limit a ``failed 37`` job exceeded, from its own requests: memory if its
    ``maxvmem`` reached its ``h_vmem``, time if its wallclock reached its ``h_rt`` or
    ``s_rt``; None if neither (a queue's limit, ``h_cpu``)."""
    requests = category_requests(record.category)
    memory = last_request(requests, "h_vmem")
    mem_limit = None if memory is None else parse_sge_memory(memory)
    if mem_limit and record.maxvmem_bytes is not None and record.maxvmem_bytes >= mem_limit:
        return Ending.MEMORY_LIMIT
    times = [parse_sge_time(value) for name, value in requests if name in ("h_rt", "s_rt")]
    time_limit = min((t for t in times if t), default=None)
    if time_limit and record.wallclock_s is not None and record.wallclock_s >= time_limit:
        return Ending.TIME_LIMIT
    return None


def acct_status(record: AcctRecord) -> JobStatus:
    """The ending of a job from its accounting record (module docstring)."""
    signal = None
    if record.failed and record.started and record.exit_status > 128:
        signal = record.exit_status - 128
    exit_code = record.exit_status if record.started and signal is None else None
    if record.failed == 0:
        ending = Ending.COMPLETED if record.exit_status == 0 else Ending.FAILED
    elif record.failed == FAILED_LIMIT:
        ending = limit_ending(record) or Ending.FAILED
    else:
        ending = Ending.FAILED
    detail = ""
    if ending is not Ending.COMPLETED:
        detail = "; ".join(
            f"{key} {value}"
            for key, value in (
                ("failed", record.failed_text),
                ("exit_status", str(record.exit_status)),
                ("maxvmem", record.maxvmem_text),
                ("category", record.category),
            )
            if value
        )
    return JobStatus(
        JobState.ENDED,
        f"failed {record.failed}, exit_status {record.exit_status}",
        ending=ending,
        node=record.hostname,
        exit_code=exit_code,
        signal=signal,
        detail=detail,
    )


def acct_statuses(records: Iterable[AcctRecord], jobs: Iterable[Job]) -> dict[str, JobStatus]:
    """The statuses of ``jobs`` (by id and name) from their last record; a job rescheduled
    has several, an id SGE gave again (after its counter wrapped) has another name."""
    wanted = {(job.job_id, sge_job_name(job.name)) for job in jobs}
    last = {r.job_id: r for r in records if (r.job_id, r.name) in wanted}
    return {job_id: acct_status(record) for job_id, record in last.items()}


def qacct_queries(jobs: Sequence[Job]) -> list[tuple[str, list[Job]]]:
    """The ``qacct -j`` arguments that find ``jobs``, each with the jobs it is for.

    ``qacct`` reads the whole accounting file on each call and takes one ``-j``: a job
    id, or a job name (an ``fnmatch`` pattern). Several jobs of one name are found by one
    call with the name (``[`` and ``]`` escaped), a job alone by its id.
    """
    by_name: dict[str, list[Job]] = {}
    for job in jobs:
        by_name.setdefault(sge_job_name(job.name), []).append(job)
    queries: list[tuple[str, list[Job]]] = []
    for name, group in by_name.items():
        if len(group) > 1 and not name.startswith("-"):
            queries.append((re.sub(r"([\[\]])", r"\\\1", name), group))
        else:
            queries += [(job.job_id, [job]) for job in group]
    return queries


def _qacct_accept(result: subprocess.CompletedProcess) -> bool:
    """``qacct`` exits 1 for a job it does not know (``error: job id 9 not found``, ``job
    name x not found``) and without an accounting file (``no jobs running since
    startup``): answers, not failures."""
    text = result.stdout + result.stderr
    return result.returncode == 0 or "not found" in text or "no jobs running" in text


# -- the backend ----------------------------------------------------------------------------


_QDEL_DONE = ("does not exist", "registered the job", "deleted job", "already in deletion")


def _qdel_accept(result: subprocess.CompletedProcess) -> bool:
    """``qdel`` exits 1 if a job is already gone (``denied: job "9" does not exist``)."""
    if result.returncode == 0:
        return True
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    return any("does not exist" in line for line in lines) and all(
        any(done in line for done in _QDEL_DONE) for line in lines
    )


class SgeBackend(Backend):
    """One ``qsub`` per worker; status from one ``qstat -xml``; ``qdel`` to delete;
    endings from ``qstat -j`` and ``qacct -j``.

    Parameters
    ----------
    queue_name
        Another name of ``queue`` (``qsub -q``), the one of batchpool 0.2.
    pe_name
        The parallel environment (``qsub -pe NAME N``) that gives a job ``cpus`` slots;
        SGE has no standard one (``qconf -spl`` lists the site's: ``smp``...), so
        ``cpus`` above 1 needs it.
    gpu_resource
        The site's consumable complex for GPUs, requested as ``-l <gpu_resource>=N``
        (default ``gpu``; ``qconf -sc`` lists the site's).
    resources
        Each becomes ``-l X`` (e.g. ``"h_vmem=4G"``, ``"h_rt=1:00:00,h_vmem=2G"``), after
        the pool's own: for one resource SGE keeps the last. ``h_vmem`` and ``h_rt`` are
        the memory and time a retry with more starts from.
    qsub_args
        Further raw ``qsub`` arguments, placed last (a ``-l`` there wins over a retry's).
    qsub_path, qstat_path, qdel_path, qacct_path
        The programs to run (tests point them at dummies).
    command_policy
        Timeout and bounded retries of every scheduler command.
    queue, time, mem, cpus, gpus, account, setup
        The resources of every backend (:data:`batchpool.options.RESOURCES`): ``queue``
        ``-q``, ``time`` ``-l h_rt=<seconds>``, ``mem`` ``-l h_vmem=<N>M`` (per slot,
        as SGE counts it: the job's ``mem`` divided among its ``cpus``), ``cpus``
        ``-pe <pe_name> N``, ``gpus`` ``-l <gpu_resource>=N``, ``account`` ``-A``,
        ``setup`` lines in the job script before the worker.
    """

    name = "sge"

    def __init__(
        self,
        *,
        queue_name: Optional[str] = None,
        pe_name: Optional[str] = None,
        gpu_resource: str = "gpu",
        resources: Sequence[str] = (),
        qsub_args: Sequence[str] = (),
        qsub_path: str = "qsub",
        qstat_path: str = "qstat",
        qdel_path: str = "qdel",
        qacct_path: str = "qacct",
        command_policy: CommandPolicy = DEFAULT_COMMAND_POLICY,
        **job_resources: Unpack[ResourceOptions],
    ) -> None:
        alias = {"queue_name": ("queue", queue_name)}
        self.job_resources = job = JobResources.of(job_resources, alias)
        if job.cpus is not None and job.cpus > 1 and pe_name is None:
            raise ValueError(
                f"cpus={job.cpus} on SGE needs a parallel environment: give pe_name, "
                "like pe_name='smp' (qconf -spl lists this cluster's)"
            )
        self.queue_name = job.queue
        self.pe_name = pe_name
        self.gpu_resource = gpu_resource
        self.resources = [*own_resource_lists(job, gpu_resource), *map(str, resources)]
        self.qsub_args = [str(a) for a in qsub_args]
        self.qsub_path = qsub_path
        self.qstat_path = qstat_path
        self.qdel_path = qdel_path
        self.qacct_path = qacct_path
        self.command_policy = command_policy

    def base_resources(self) -> Resources:
        """``h_vmem`` and ``h_rt`` of :attr:`resources` (:func:`base_resources_of`)."""
        return base_resources_of(self.resources)

    def qsub_argv(self, request: JobRequest, logs: tuple[str, str]) -> list[str]:
        """``qsub`` for one worker, its output into the ``logs`` pair; the job script comes
        on stdin (:func:`job_script`)."""
        argv = [
            self.qsub_path,
            "-terse",
            "-S",
            "/bin/sh",
            "-N",
            sge_job_name(request.job_name),
            "-o",
            logs[0],
            "-e",
            logs[1],
            "-wd",
            str(request.pool_dir),
        ]
        if self.queue_name is not None:
            argv += ["-q", self.queue_name]
        if self.job_resources.account is not None:
            argv += ["-A", self.job_resources.account]
        if self.pe_name is not None and self.job_resources.cpus is not None:
            argv += ["-pe", self.pe_name, str(self.job_resources.cpus)]
        for resource in job_resource_lists(self.resources, request.resources):
            argv += ["-l", resource]
        return argv + self.qsub_args

    def submit(self, request: JobRequest, cancel: Cancel = None) -> list[Job]:
        """``qsub`` one worker, its logs created empty and private first: SGE creates them
        with its own umask (0644) but keeps the mode of files that exist."""
        if request.count != 1:
            raise ValueError(f"{request.count} jobs in one submission; sge takes 1")
        logs = request.logs.new_pair("sge")
        argv = self.qsub_argv(request, logs)
        result = run_command(
            argv,
            self.command_policy,
            stdin_text=job_script(request, self.job_resources.setup),
            cancel=cancel,
        )
        job_id = parsed(parse_qsub_terse, result)
        return [Job(job_id, request.job_name, *map(Path, logs))]

    def qstat_argv(self) -> list[str]:
        """``qstat -xml`` for the jobs of the user running this process."""
        return [self.qstat_path, "-xml", "-u", pwd.getpwuid(os.getuid()).pw_name]

    def status(self, jobs: Sequence[Job], cancel: Cancel = None) -> Statuses:
        """One ``qstat -xml``; only ``jobs`` are answered."""
        if not jobs:
            return {}
        result = run_command(self.qstat_argv(), self.command_policy, cancel=cancel)
        return job_statuses(parsed(parse_qstat_xml, result), jobs)

    def jobs_named(self, name: str, cancel: Cancel = None) -> Statuses:
        """Every job called ``name`` still in the queue (one ``qstat -xml``)."""
        result = run_command(self.qstat_argv(), self.command_policy, cancel=cancel)
        named = [j for j in parsed(parse_qstat_xml, result) if j.name == sge_job_name(name)]
        return job_statuses(named, [Job(j.job_id, name, Path(), Path()) for j in named])

    def explain(self, jobs: Sequence[Job], cancel: Cancel = None, nodes: Nodes = None) -> Statuses:
        """Why ``jobs`` ended or sit in an error state (module docstring): ``qstat -j`` for
        all of them, then ``qacct -j`` for those no longer in the queue.

        A job still in the queue without an error, a job the accounting does not know
        (yet), and every job of a command that fails are missing from the answer;
        nothing is raised but :class:`~batchpool.commands.Cancelled`.
        """
        if not jobs:
            return {}
        in_queue = self._in_queue(jobs, cancel)
        if in_queue is None:
            return {}
        answer = {
            job_id: error_state_status(detail)
            for job_id, detail in in_queue.items()
            if detail.error_reasons
        }
        gone = [job for job in jobs if job.job_id not in in_queue]
        for query, group in qacct_queries(gone):
            try:
                result = run_command(
                    [self.qacct_path, "-j", query],
                    self.command_policy,
                    accept=_qacct_accept,
                    cancel=cancel,
                )
            except (SchedulerError, OSError):  # OSError: a qacct_path not executable
                continue  # qacct missing or failing: these jobs stay unexplained
            answer.update(acct_statuses(parse_qacct(result.stdout), group))
        return answer

    def _in_queue(
        self, jobs: Sequence[Job], cancel: Cancel
    ) -> Optional[dict[str, QstatJobDetail]]:
        """``qstat -j`` of the jobs that are still in the queue (by id and name), or None
        if ``qstat`` fails."""
        wanted = {(job.job_id, sge_job_name(job.name)) for job in jobs}
        found: dict[str, QstatJobDetail] = {}
        for batch in id_batches(jobs, QSTAT_J_IDS_PER_CALL):
            try:
                result = run_command(
                    [self.qstat_path, "-j", ",".join(batch)],
                    self.command_policy,
                    accept=_qstat_j_accept,
                    cancel=cancel,
                )
            except (SchedulerError, OSError):
                return None  # which jobs are still queued is not known
            found.update(
                (d.job_id, d) for d in parse_qstat_j(result.stdout) if (d.job_id, d.name) in wanted
            )
        return found

    def delete(self, jobs: Sequence[Job], cancel: Cancel = None) -> None:
        """``qdel`` the jobs, many per call; jobs already gone are not an error."""
        for batch in id_batches(jobs, QDEL_IDS_PER_CALL):
            run_command(
                [self.qdel_path, *batch], self.command_policy, accept=_qdel_accept, cancel=cancel
            )


class SgePoolOptions(BackendPoolOptions, total=False):
    """What :class:`Pool` takes by keyword: the options of :class:`SgeBackend` (their
    defaults are its own) and those of every pool."""

    queue_name: Optional[str]
    pe_name: Optional[str]
    gpu_resource: str
    resources: Sequence[str]
    qsub_args: Sequence[str]
    qsub_path: str
    qstat_path: str
    qdel_path: str
    qacct_path: str
    command_policy: CommandPolicy


class Pool(BackendPool):
    """A ``multiprocessing.Pool`` whose workers run as one Grid Engine job each."""

    backend_class = SgeBackend
    options_type = SgePoolOptions

    def __init__(self, *args: Any, **options: Unpack[SgePoolOptions]) -> None:
        super().__init__(*args, **options)
