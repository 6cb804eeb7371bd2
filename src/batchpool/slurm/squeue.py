"""Pure functions around ``squeue``: the command line, its parser, the state map, stderr noise.

Shared by :mod:`batchpool.slurm` (one job per chunk) and :mod:`batchpool.slurm.array`.

State map
---------
``squeue -t all`` prints every state a job can be in while Slurm keeps it
(ended jobs stay visible for ``MinJobAge``). They map to :class:`JobState` as:

==============  ==================================================================
``PENDING``     PENDING, REQUEUED, REQUEUE_FED, REQUEUE_HOLD, RESIZING, SUSPENDED
                (a suspended job resumes by itself and holds no cores), and any
                state this module does not know (it leaves the queue by itself
                after ``MinJobAge``, so the pool's wait stays bounded)
``RUNNING``     RUNNING, COMPLETING, CONFIGURING, STAGE_OUT, SIGNALING,
                STOPPED (SIGSTOP-ed: cores retained, continues when signalled)
``ENDED``       COMPLETED, CANCELLED, FAILED (the job script's exit code is not
                0: the result file tells whether the chunk ran), SPECIAL_EXIT,
                REVOKED (a federation sibling ran it)
``FAILED``      BOOT_FAIL, NODE_FAIL, OUT_OF_MEMORY, TIMEOUT, DEADLINE, PREEMPTED,
                RESV_DEL_HOLD, and PENDING jobs whose reason is in
                :data:`NEVER_STARTING_REASONS` or matches :data:`NEVER_STARTING_PATTERN`
==============  ==================================================================
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Optional

from ..backend import JobState, JobStatus

SQUEUE_FORMAT = "%i|%A|%K|%j|%T|%r"
"""``%i`` job id as the user sees it (``123``, ``7055_3``), ``%A`` the unique job id,
``%K`` the array index (``N/A`` outside arrays), ``%j`` name, ``%T`` state, ``%r`` reason."""

PENDING_STATES = frozenset(
    ("PENDING", "REQUEUED", "REQUEUE_FED", "REQUEUE_HOLD", "RESIZING", "SUSPENDED")
)
RUNNING_STATES = frozenset(
    ("RUNNING", "COMPLETING", "CONFIGURING", "STAGE_OUT", "SIGNALING", "STOPPED")
)
ENDED_STATES = frozenset(("COMPLETED", "CANCELLED", "FAILED", "SPECIAL_EXIT", "REVOKED"))
FAILED_STATES = frozenset(
    (
        "BOOT_FAIL",
        "NODE_FAIL",
        "OUT_OF_MEMORY",
        "TIMEOUT",
        "DEADLINE",
        "PREEMPTED",
        "RESV_DEL_HOLD",
    )
)

NEVER_STARTING_REASONS = frozenset(
    (
        "JobHeldAdmin",
        "JobHoldMaxRequeue",
        "JobLaunchFailure",
        "launch failed requeued held",
        "SystemFailure",
        "BadConstraints",
        "NodeDown",
        "PartitionDown",
        "PartitionInactive",
        "ReqNodeNotAvail",
        "PartitionNodeLimit",
        "PartitionTimeLimit",
        "InvalidAccount",
        "InvalidQOS",
        "AccountNotAllowed",
        "QOSNotAllowed",
        "DependencyNeverSatisfied",
        "BurstBufferOperation",
    )
)
"""Reasons (``%r``, Slurm's ``job_reason_string``) of a PENDING job that will not start
by itself: it needs someone to act, so waiting would never end.

- ``JobHeldAdmin``: held by an administrator. Slurm also holds a batch job this way when
  its launch failed (``squeue``'s ``%R`` then says ``launch failed requeued held``);
  ``JobHoldMaxRequeue``: requeued too often and held; ``JobLaunchFailure``,
  ``SystemFailure``: the launch failed. A new job gets a new node and a new try.
- ``NodeDown``: a node the job needs is down; ``ReqNodeNotAvail``: the nodes it needs
  are down, drained or reserved; ``PartitionDown``, ``PartitionInactive``: the partition
  takes no jobs. These last until an administrator acts (often a maintenance window).
- ``BadConstraints``, ``PartitionNodeLimit``, ``PartitionTimeLimit``, ``InvalidAccount``,
  ``InvalidQOS``, ``AccountNotAllowed``, ``QOSNotAllowed``, ``DependencyNeverSatisfied``,
  ``BurstBufferOperation``: the request itself can never be satisfied.

``JobHeldUser`` is not here: the user held the job on purpose and releases it. Limits
that clear when other jobs end (``Priority``, ``Resources``, ``QOSMaxJobsPerUserLimit``,
``AssocGrp*``, ``JobArrayTaskLimit``, ...) are waits, not failures.

The pool resubmits a FAILED job at most ``max_num_resubmissions`` times and then raises
:class:`~batchpool.JobsLostError` naming the reason, instead of waiting forever.
"""

NEVER_STARTING_PATTERN = re.compile(r"^(QOS|Assoc)Max\w*Per(Job|Node)")
"""``QOSMax*PerJob*``, ``AssocMax*PerNode*``, ...: one job asks for more than any job may
ever have (per-user and per-account limits, by contrast, clear as other jobs end)."""


@dataclass(frozen=True)
class SqueueLine:
    """One line of ``squeue -o SQUEUE_FORMAT`` (one job or one array element)."""

    job_id: str
    """As ``%i`` prints it: ``123``, or ``7055_3`` for an array element."""
    unique_job_id: str
    """``%A``: the job's own number (for a pending element, the array's base number)."""
    array_task_id: Optional[int]
    name: str
    state: str
    reason: str

    @property
    def array_job_id(self) -> Optional[str]:
        """The array's base id (``7055`` of ``7055_3``), None outside arrays."""
        base, sep, _ = self.job_id.partition("_")
        return base if sep else None


def squeue_argv(squeue_path: str, job_names: Sequence[str]) -> list[str]:
    """The one ``squeue`` call that lists every job of ``job_names``, ended ones too.

    ``-h`` no header; ``-r`` one line per array element; ``-t all`` also ended jobs (for
    ``MinJobAge``); an explicit ``-o`` so that site defaults (``SQUEUE_FORMAT``) do not matter.
    """
    names = ",".join(job_names)
    return [squeue_path, "-h", "-r", "-t", "all", "--name", names, "-o", SQUEUE_FORMAT]


def parse_squeue(text: str) -> list[SqueueLine]:
    """Parse ``squeue -h -o SQUEUE_FORMAT`` output.

    A collapsed pending array (``7055_[0-3%2]``, shown without ``-r``) is expanded into
    one line per element. Blank lines are skipped.

    Raises
    ------
    ValueError
        For a line that does not have the six fields of :data:`SQUEUE_FORMAT`.
    """
    lines = []
    for raw in text.splitlines():
        if raw.strip():
            lines.extend(_parse_line(raw.strip()))
    return lines


def _parse_line(raw: str) -> list[SqueueLine]:
    fields = raw.split("|")
    if len(fields) < 6:
        raise ValueError(f"an squeue line with fewer than 6 '|'-separated fields: {raw!r}")
    job_id, unique_job_id, task = fields[0], fields[1], fields[2]
    name = "|".join(fields[3:-2])  # a job name may contain the separator
    state, reason = fields[-2], fields[-1]
    state = (state.split() or [""])[0]  # "CANCELLED by 0" -> "CANCELLED"
    base, sep, tasks = job_id.partition("_")
    if sep and tasks.startswith("["):
        return [
            SqueueLine(f"{base}_{i}", unique_job_id, i, name, state, reason)
            for i in expand_array_indices(tasks)
        ]
    array_task_id = int(task) if task.isdigit() else None
    return [SqueueLine(job_id, unique_job_id, array_task_id, name, state, reason)]


def expand_array_indices(spec: str) -> list[int]:
    """``"[0-3%2]"`` -> ``[0, 1, 2, 3]``; also ``"1,3,5-9:2"``, with or without brackets.

    The ``%N`` throttle is dropped, ``:S`` is a step.
    """
    spec = spec.strip().lstrip("[").rstrip("]").partition("%")[0]
    indices: list[int] = []
    for part in filter(None, spec.split(",")):
        span, _, step = part.partition(":")
        first, _, last = span.partition("-")
        indices.extend(range(int(first), int(last or first) + 1, int(step or 1)))
    return indices


def job_state(state: str, reason: str) -> JobState:
    """Map Slurm's ``%T`` state and ``%r`` reason to a :class:`JobState` (module docstring)."""
    if state in FAILED_STATES:
        return JobState.FAILED
    if state in ENDED_STATES:
        return JobState.ENDED
    if state in RUNNING_STATES:
        return JobState.RUNNING
    if state == "PENDING" and is_never_starting(reason):
        return JobState.FAILED
    return JobState.PENDING


def is_never_starting(reason: str) -> bool:
    """True if a PENDING job with this ``%r`` reason will not start by itself."""
    reason = reason.strip().strip("()")
    head = reason.split(",")[0].strip()  # "ReqNodeNotAvail, Reserved for maintenance"
    return (
        head in NEVER_STARTING_REASONS
        or "launch failed" in reason
        or bool(NEVER_STARTING_PATTERN.match(head))
    )


def job_statuses(lines: Iterable[SqueueLine], job_ids: Iterable[str]) -> dict[str, JobStatus]:
    """The statuses of ``job_ids`` found among ``lines``; other jobs are ignored."""
    wanted = set(job_ids)
    return {
        line.job_id: JobStatus(job_state(line.state, line.reason), f"{line.state} {line.reason}")
        for line in lines
        if line.job_id in wanted
    }


STDERR_NOISE_PATTERNS: Sequence[re.Pattern] = tuple(
    re.compile(p)
    for p in (
        r"^slurmstepd(-[\w.-]+)?: error: Unable to create TMPDIR",
        r"^slurmstepd(-[\w.-]+)?: error: Setting TMPDIR to /tmp",
        r"^slurmstepd(-[\w.-]+)?: error: couldn't chdir to",
        r"^slurmstepd(-[\w.-]+)?: error: _get_user_env: Unable to get user's local environment",
        r"^slurmstepd(-[\w.-]+)?: (info|debug\d?|verbose):",
    )
)
"""slurmstepd lines that say nothing about why a chunk failed.

- ``Unable to create TMPDIR`` / ``Setting TMPDIR to /tmp``: the node's ``TmpFS`` path is
  missing; Slurm falls back to /tmp and the job runs.
- ``couldn't chdir to ...: ... going to /tmp instead``: the submit directory is not
  mounted on the node; our worker ``chdir``-s to the driver's directory itself.
- ``_get_user_env: Unable to get user's local environment``: the login environment
  (``--get-user-env``) is not needed, the worker restores the driver's environment.
- slurmstepd ``info:``/``debug:``/``verbose:`` lines.

Lines that tell why a job died are *not* noise and are kept, e.g.
``slurmstepd: error: *** JOB 123 ON node CANCELLED AT ... DUE TO TIME LIMIT ***``,
``... DUE TO NODE FAILURE``, ``... DUE TO PREEMPTION``,
``slurmstepd: error: Detected 1 oom_kill event ...`` and
``slurmstepd: error: Exceeded job memory limit``; so are other slurmstepd errors, such
as a failed user lookup (``_get_primary_group``), which may explain a failed launch.
"""


def filter_stderr_noise(text: str) -> str:
    """``text`` without the slurmstepd lines of :data:`STDERR_NOISE_PATTERNS`.

    For reporting the tail of a failed job's stderr; kept lines keep their line ends.
    """
    return "".join(
        line
        for line in text.splitlines(keepends=True)
        if not any(p.match(line) for p in STDERR_NOISE_PATTERNS)
    )
