"""Pure functions around ``squeue`` and ``sacct``: command lines, parsers, the state map,
stderr noise and slurmstepd's verdict lines.

Shared by :mod:`batchpool.slurm` (one job per chunk) and :mod:`batchpool.slurm.array`.

State map
---------
``squeue -t all`` prints every state a job can be in while Slurm keeps it
(ended jobs stay visible for ``MinJobAge``); ``sacct`` prints the same states. They map
to :class:`JobState` and :class:`Ending` as:

==============  ==================================================================
``PENDING``     PENDING, REQUEUED, REQUEUE_FED, REQUEUE_HOLD, RESIZING, SUSPENDED
                (a suspended job resumes by itself and holds no cores),
                RESV_DEL_HOLD (held because its reservation was deleted), PENDING
                jobs that wait for the cluster or a person (``JobHeldUser``,
                ``JobHeldAdmin``, ``NodeDown``, ``PartitionDown``, ``ReqNodeNotAvail``,
                ``job requeued in held state``, ...: waited out, not failures), and
                any state this module does not know (it leaves the queue by itself
                after ``MinJobAge``, so the pool's wait stays bounded)
``RUNNING``     RUNNING, COMPLETING, CONFIGURING, STAGE_OUT, SIGNALING,
                STOPPED (SIGSTOP-ed: cores retained, continues when signalled)
``ENDED``       the job has ended; the pool must not delete it, the dispatcher acts
                on its ending:

                - COMPLETED: ``COMPLETED``
                - FAILED (the job script's exit code is not 0, or it was killed by
                  a signal: Slurm then says ``FAILED`` with reason
                  ``JobLaunchFailure``; the result file tells whether the chunk ran),
                  SPECIAL_EXIT: ``FAILED``
                - TIMEOUT, DEADLINE: ``TIME_LIMIT``
                - OUT_OF_MEMORY: ``MEMORY_LIMIT``
                - NODE_FAIL, BOOT_FAIL: ``NODE_FAILURE``
                - PREEMPTED: ``PREEMPTED``
                - CANCELLED, REVOKED (a federation sibling ran it): ``CANCELLED``
``FAILED``      ending ``ERROR_STATE``: jobs not running whose reason is in
                :data:`NEVER_STARTING_REASONS` or matches :data:`NEVER_STARTING_PATTERN`
                (a request that can never be satisfied, a launch that failed)
==============  ==================================================================

A job that exceeds its ``--mem`` ends ``OUT_OF_MEMORY`` only where Slurm enforces
memory with ``task/cgroup``. Killed by ``JobAcctGatherParams=OverMemoryKill`` instead
(clusters without cgroups, and the CI Slurm of ``ci/slurm/start.sh``), it ends
``FAILED`` with reason ``JobLaunchFailure`` and exit code ``0:9``, like any job killed by
a signal; only slurmstepd's lines in its stderr tell (:func:`stderr_ending`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Optional

from ..backend import Ending, JobState, JobStatus
from ..units import parse_time_s

SQUEUE_FORMAT = "%i|%A|%K|%N|%j|%T|%r"
"""``%i`` job id as the user sees it (``123``, ``7055_3``), ``%A`` the unique job id,
``%K`` the array index (``N/A`` outside arrays), ``%N`` the node(s) it runs or ran on
(empty while pending), ``%j`` name, ``%T`` state, ``%r`` reason. The name is the only
field that may contain the separator; the reason (Slurm's ``state_desc`` where it has
one, e.g. ``job requeued in held state``) stays last."""

PENDING_STATES = frozenset(
    (
        "PENDING",
        "REQUEUED",
        "REQUEUE_FED",
        "REQUEUE_HOLD",
        "RESIZING",
        "SUSPENDED",
        "RESV_DEL_HOLD",
    )
)
RUNNING_STATES = frozenset(
    ("RUNNING", "COMPLETING", "CONFIGURING", "STAGE_OUT", "SIGNALING", "STOPPED")
)
ENDINGS: Mapping[str, Ending] = {
    "COMPLETED": Ending.COMPLETED,
    "FAILED": Ending.FAILED,
    "SPECIAL_EXIT": Ending.FAILED,
    "TIMEOUT": Ending.TIME_LIMIT,
    "DEADLINE": Ending.TIME_LIMIT,
    "OUT_OF_MEMORY": Ending.MEMORY_LIMIT,
    "NODE_FAIL": Ending.NODE_FAILURE,
    "BOOT_FAIL": Ending.NODE_FAILURE,
    "PREEMPTED": Ending.PREEMPTED,
    "CANCELLED": Ending.CANCELLED,
    "REVOKED": Ending.CANCELLED,
}
"""The states of a job that has ended, and what ended it (module docstring)."""
ENDED_STATES = frozenset(ENDINGS)

NEVER_STARTING_REASONS = frozenset(
    (
        "JobHoldMaxRequeue",
        "JobLaunchFailure",
        "launch failed requeued held",
        "SystemFailure",
        "BadConstraints",
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
"""Reasons (``%r``: Slurm's ``job_reason_string`` or ``state_desc``) of a job that is not
running and will not start: the pool treats it as an error state
(:attr:`Ending.ERROR_STATE`) instead of waiting forever.

- ``launch failed requeued held`` (Slurm held a batch job whose launch failed),
  ``JobHoldMaxRequeue`` (requeued too often and held), ``JobLaunchFailure``,
  ``SystemFailure``: the launch failed. A new job gets a new node and a new try.
- ``BadConstraints``, ``PartitionNodeLimit``, ``PartitionTimeLimit``, ``InvalidAccount``,
  ``InvalidQOS``, ``AccountNotAllowed``, ``QOSNotAllowed``, ``DependencyNeverSatisfied``,
  ``BurstBufferOperation``: the request itself can never be satisfied.

Not here, because they wait for the cluster or a person and end by themselves:
``JobHeldUser`` and ``JobHeldAdmin`` (held; released by the user or an administrator;
``scontrol requeuehold`` shows ``job requeued in held state``), ``NodeDown``,
``ReqNodeNotAvail`` (nodes down, drained or reserved, often a maintenance window),
``PartitionDown``, ``PartitionInactive``, ``BeginTime`` (a requeued job waits a
moment), and the limits that clear when other jobs end (``Priority``, ``Resources``,
``QOSMaxJobsPerUserLimit``, ``AssocGrp*``, ``JobArrayTaskLimit``, ...).

The pool resubmits a FAILED job at most ``max_num_resubmissions`` times and then raises
:class:`~batchpool.JobsLostError` naming the reason, instead of waiting forever.
"""

NEVER_STARTING_PATTERN = re.compile(r"^(QOS|Assoc)Max\w*Per(Job|Node)")
"""``QOSMax*PerJob*``, ``AssocMax*PerNode*``, ...: one job asks for more than any job may
ever have (per-user and per-account limits, by contrast, clear as other jobs end)."""

_NO_NODE = frozenset(("", "(null)", "None assigned", "N/A", "n/a"))


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
    node: str = ""
    """``%N``: the node(s) the job runs or ran on; empty while it waits."""

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
        For a line that does not have the seven fields of :data:`SQUEUE_FORMAT`.
    """
    lines = []
    for raw in text.splitlines():
        if raw.strip():
            lines.extend(_parse_line(raw.strip()))
    return lines


def _parse_line(raw: str) -> list[SqueueLine]:
    fields = raw.split("|")
    if len(fields) < 7:
        raise ValueError(f"an squeue line with fewer than 7 '|'-separated fields: {raw!r}")
    job_id, unique_job_id, task, node = fields[:4]
    name = "|".join(fields[4:-2])  # a job name may contain the separator
    state, reason = fields[-2], fields[-1]
    state = (state.split() or [""])[0]  # "CANCELLED by 0" -> "CANCELLED"
    node = normalize_node(node)
    base, sep, tasks = job_id.partition("_")
    if sep and tasks.startswith("["):
        return [
            SqueueLine(f"{base}_{i}", unique_job_id, i, name, state, reason, node)
            for i in expand_array_indices(tasks)
        ]
    array_task_id = int(task) if task.isdigit() else None
    return [SqueueLine(job_id, unique_job_id, array_task_id, name, state, reason, node)]


def normalize_node(text: str) -> str:
    """A node list as Slurm prints it, ``""`` for none (``(null)``, ``None assigned``)."""
    text = text.strip()
    return "" if text in _NO_NODE else text


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
    """Map Slurm's state (``%T``) and reason (``%r``) to a :class:`JobState` (module docstring)."""
    if state in ENDED_STATES:
        return JobState.ENDED
    if state in RUNNING_STATES:
        return JobState.RUNNING
    if is_never_starting(reason):
        return JobState.FAILED
    return JobState.PENDING


def job_ending(state: str, reason: str) -> Optional[Ending]:
    """What ended a job in ``state`` (module docstring); None while it waits or runs."""
    if state in ENDINGS:
        return ENDINGS[state]
    if job_state(state, reason) is JobState.FAILED:
        return Ending.ERROR_STATE
    return None


def is_never_starting(reason: str) -> bool:
    """True if a job that is not running, with this ``%r`` reason, will not start by itself."""
    reason = reason.strip().strip("()")
    head = reason.split(",")[0].strip()  # "ReqNodeNotAvail, Reserved for maintenance"
    return (
        head in NEVER_STARTING_REASONS
        or "launch failed" in reason
        or bool(NEVER_STARTING_PATTERN.match(head))
    )


ORDINARY_WAITS = frozenset(("", "None", "Priority", "Resources"))
"""Reasons (``%r``) of a pending job that only waits for its turn."""


def unusual_wait(state: str, reason: str) -> str:
    """The reason a job in ``state`` waits when it is not its ordinary turn (``NodeDown``,
    ``JobHeldUser``, ``ReqNodeNotAvail, Reserved for maintenance``); "" otherwise."""
    reason = reason.strip().strip("()")
    pending = job_state(state, reason) is JobState.PENDING
    return reason if pending and reason not in ORDINARY_WAITS else ""


def job_status(state: str, reason: str, node: str = "") -> JobStatus:
    """The :class:`JobStatus` of a job in ``state`` with ``reason`` on ``node``;
    its ``reason`` is ``"STATE REASON"``."""
    return JobStatus(
        job_state(state, reason),
        f"{state} {reason}",
        ending=job_ending(state, reason),
        node=node,
        unusual_wait=unusual_wait(state, reason),
    )


def job_statuses(lines: Iterable[SqueueLine], job_ids: Iterable[str]) -> dict[str, JobStatus]:
    """The statuses of ``job_ids`` found among ``lines``; other jobs are ignored."""
    wanted = set(job_ids)
    return {
        line.job_id: job_status(line.state, line.reason, line.node)
        for line in lines
        if line.job_id in wanted
    }


# -- sacct ---------------------------------------------------------------------------------

SACCT_FIELDS = "JobID,State,ExitCode,NodeList,Reason"
"""``sacct -o``: the job id as ``squeue``'s ``%i`` prints it (``7055_3`` for an array
element), the state (``CANCELLED by 0``), the exit code ``CODE:SIGNAL`` of the job
script, the node(s) (``None assigned`` if it never ran), and the last reason the job
waited for (other than ``Priority`` or ``Resources``). Names as in Slurm 22.05's
``sacct --helpformat``."""

SACCT_UNAVAILABLE = ("accounting storage is disabled",)
"""Parts of ``sacct`` error messages that mean it will never answer on this cluster
(``AccountingStorageType=accounting_storage/none``: ``Slurm accounting storage is
disabled``)."""


@dataclass(frozen=True)
class SacctLine:
    """One line of ``sacct -n -P -X -o SACCT_FIELDS`` (one job or one array element)."""

    job_id: str
    state: str
    """The first word of the state (``CANCELLED`` of ``CANCELLED by 0``)."""
    raw_state: str
    """The state as ``sacct`` printed it."""
    exit_code: str
    """``CODE:SIGNAL`` as printed (``0:9``)."""
    node: str
    reason: str


def sacct_argv(sacct_path: str, job_ids: Sequence[str]) -> list[str]:
    """One ``sacct`` call for the allocations (``-X``, no steps) of ``job_ids``.

    ``-n`` no header, ``-P`` ``|``-separated without a trailing ``|`` and without
    truncation. With ``-j`` the time window starts at the Epoch, so old jobs are found.
    """
    return [sacct_path, "-n", "-P", "-X", "-j", ",".join(job_ids), "-o", SACCT_FIELDS]


def parse_sacct(text: str) -> list[SacctLine]:
    """Parse ``sacct -n -P -X -o SACCT_FIELDS`` output.

    Step lines (``123.batch``) are skipped should they appear; a never-started rest of an
    array (``7055_[4-9]``) is expanded into one line per element. Blank lines are skipped.

    Raises
    ------
    ValueError
        For a line that does not have the five fields of :data:`SACCT_FIELDS`.
    """
    lines: list[SacctLine] = []
    for raw in text.splitlines():
        if not raw.strip():
            continue
        fields = raw.strip().split("|")
        if len(fields) < 5:
            raise ValueError(f"an sacct line with fewer than 5 '|'-separated fields: {raw!r}")
        job_id, raw_state, exit_code, node = (f.strip() for f in fields[:4])
        reason = "|".join(fields[4:]).strip()
        if "." in job_id:
            continue
        state = (raw_state.split() or [""])[0].rstrip("+")  # "CANCELLED by 0", "CANCELLED+"
        base, sep, tasks = job_id.partition("_")
        ids = (
            [f"{base}_{i}" for i in expand_array_indices(tasks)]
            if sep and tasks.startswith("[")
            else [job_id]
        )
        node = normalize_node(node)
        lines.extend(SacctLine(i, state, raw_state, exit_code, node, reason) for i in ids)
    return lines


def parse_exit_code(text: str) -> tuple[Optional[int], Optional[int]]:
    """``sacct``'s ``CODE:SIGNAL`` -> ``(exit code, signal)``.

    ``"3:0"`` -> ``(3, None)``, ``"0:0"`` -> ``(0, None)``, ``"0:9"`` -> ``(None, 9)``
    (killed by signal 9: there is no exit code). ``0:125`` is Slurm's own mark of an
    out-of-memory kill (``SIG_OOM``), not a real signal; it is returned as it is.
    Anything else -> ``(None, None)``.
    """
    match = re.fullmatch(r"\s*(\d+):(\d+)\s*", text)
    if match is None:
        return None, None
    code, signal = int(match.group(1)), int(match.group(2))
    if signal:
        return (code or None), signal
    return code, None


def sacct_statuses(lines: Iterable[SacctLine], job_ids: Iterable[str]) -> dict[str, JobStatus]:
    """The statuses of ``job_ids`` found among ``lines`` (the last line of a job wins)."""
    wanted = set(job_ids)
    statuses = {}
    for line in lines:
        if line.job_id not in wanted:
            continue
        exit_code, signal = parse_exit_code(line.exit_code)
        status = job_status(line.state, line.reason, line.node)
        statuses[line.job_id] = JobStatus(
            status.state,
            status.reason,
            ending=status.ending,
            node=status.node,
            exit_code=exit_code,
            signal=signal,
            detail=f"sacct: {line.raw_state}, exit code {line.exit_code}, reason {line.reason}",
        )
    return statuses


USAGE_FIELDS = "JobID,Elapsed,MaxRSS"
"""``sacct -o`` for what a job used: its wall time (``00:00:06``, ``1-02:03:04``) on the
allocation's line, and the largest resident memory of a step (``219968K``) on the steps'
lines (``ID.batch``); the allocation's own ``MaxRSS`` is empty."""


def usage_argv(sacct_path: str, job_ids: Sequence[str]) -> list[str]:
    """One ``sacct`` call for the usage of ``job_ids``, steps included (no ``-X``)."""
    return [sacct_path, "-n", "-P", "-j", ",".join(job_ids), "-o", USAGE_FIELDS]


@dataclass(frozen=True)
class JobUsage:
    """What Slurm's accounting says a job used."""

    elapsed_s: Optional[int]
    max_rss_kb: Optional[int]
    """The largest ``MaxRSS`` of its steps (KiB); None if no step has one."""


_RSS_UNITS = {"": 1 / 1024, "K": 1, "M": 1024, "G": 1024**2, "T": 1024**3}


def parse_max_rss_kb(text: str) -> Optional[int]:
    """``sacct``'s ``MaxRSS`` (``219968K``, ``1.50G``, ``0``) in KiB; None if empty."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)([KMGT]?)\s*", text)
    return None if match is None else round(float(match.group(1)) * _RSS_UNITS[match.group(2)])


def parse_usage(text: str) -> dict[str, JobUsage]:
    """``sacct -n -P -o JobID,Elapsed,MaxRSS`` output -> job id -> :class:`JobUsage`."""
    elapsed: dict[str, Optional[int]] = {}
    rss: dict[str, int] = {}
    for raw in text.splitlines():
        fields = raw.strip().split("|")
        if len(fields) < 3:
            continue
        job_id, step = fields[0].partition(".")[::2]
        if not step:
            text = fields[1].strip()
            try:  # sacct's HH:MM:SS or D-HH:MM:SS; all zeros for a job that took no time
                elapsed[job_id] = 0 if re.fullmatch(r"[0:-]+", text) else parse_time_s(text)
            except ValueError:
                elapsed[job_id] = None
        kb = parse_max_rss_kb(fields[2])
        if kb is not None:
            rss[job_id] = max(rss.get(job_id, 0), kb)
    return {job: JobUsage(elapsed.get(job), rss.get(job)) for job in {*elapsed, *rss}}


def is_sacct_unavailable(stderr: str) -> bool:
    """True if ``sacct`` said it will never answer here (:data:`SACCT_UNAVAILABLE`)."""
    return any(message in stderr for message in SACCT_UNAVAILABLE)


# -- the job's stderr ------------------------------------------------------------------------

_STEPD = r"^slurmstepd(-[\w.-]+)?: error: "
STDERR_ENDINGS: Sequence[tuple[re.Pattern, Ending]] = tuple(
    (re.compile(pattern, re.MULTILINE), ending)
    for pattern, ending in (
        (_STEPD + r"Detected \d+ oom[-_]kill event", Ending.MEMORY_LIMIT),
        (_STEPD + r"\S+ exceeded memory limit \(", Ending.MEMORY_LIMIT),
        (_STEPD + r"Exceeded job memory limit", Ending.MEMORY_LIMIT),
        (_STEPD + r"\*\*\* .* DUE TO TIME LIMIT \*\*\*", Ending.TIME_LIMIT),
        (_STEPD + r"\*\*\* .* DUE TO NODE FAILURE", Ending.NODE_FAILURE),
        (_STEPD + r"\*\*\* .* DUE TO (PREEMPTION|JOB REQUEUE) \*\*\*", Ending.PREEMPTED),
    )
)
"""slurmstepd's lines that say why it killed a job, most telling first.

- ``Detected 1 oom_kill event in StepId=123.batch`` (``task/cgroup``),
  ``StepId=123.batch exceeded memory limit (434597888 > 209715200), being killed`` and
  ``Exceeded job memory limit`` (``JobAcctGatherParams=OverMemoryKill``, which also
  prints a plain ``*** JOB 123 ON vm CANCELLED AT ... ***``): the memory limit.
- ``*** JOB 123 ON vm CANCELLED AT ... DUE TO TIME LIMIT ***``, ``... DUE TO NODE
  FAILURE ...``, ``... DUE TO PREEMPTION ***``, ``... DUE TO JOB REQUEUE ***`` (``scontrol
  requeue``: the same job id runs again).

A plain ``*** JOB 123 ON vm CANCELLED AT ... ***`` (``scancel``) is not here: the
scheduler's state says ``CANCELLED`` itself.
"""


def stderr_ending(text: str) -> Optional[tuple[Ending, str]]:
    """What slurmstepd says in a job's stderr ``text`` ended the job, and its line;
    None if it says nothing (:data:`STDERR_ENDINGS`).

    For jobs whose state does not tell: a job killed for its memory by
    ``OverMemoryKill`` ends ``FAILED`` (module docstring).
    """
    for pattern, ending in STDERR_ENDINGS:
        match = pattern.search(text)
        if match is not None:
            end = text.find("\n", match.start())
            return ending, text[match.start() : end if end >= 0 else len(text)].strip()
    return None


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


SINFO_FORMAT = "%N|%T"


def sinfo_argv(sinfo_path: str, nodes: Sequence[str]) -> list[str]:
    """One ``sinfo`` line per node of ``nodes``: its name and state."""
    return [sinfo_path, "-h", "-N", "-n", ",".join(nodes), "-o", SINFO_FORMAT]


def parse_sinfo_nodes(text: str) -> dict[str, str]:
    """``sinfo -h -N -o "%N|%T"`` -> node -> state (``idle``, ``down*``, ...)."""
    states = {}
    for line in text.splitlines():
        node, sep, state = line.strip().partition("|")
        if sep:
            states[node] = state.strip()
    return states


def partition_nodes_argv(sinfo_path: str, partitions: Optional[str]) -> list[str]:
    """One ``sinfo`` line per node and partition, ``NODE|PARTITION`` (the default partition
    marked ``*``), of ``partitions`` (``a,b``) or of every partition."""
    argv = [sinfo_path, "-h", "-N", "-o", "%N|%P"]
    return [*argv, "-p", partitions] if partitions else argv


def partition_nodes(text: str, partitions: Optional[str]) -> set[str]:
    """The nodes of ``sinfo -h -N -o "%N|%P"`` output in ``partitions`` (``a,b``), or,
    for None, in the default partition (the one marked ``*``)."""
    wanted = set(partitions.split(",")) if partitions else None
    nodes = set()
    for line in text.splitlines():
        node, sep, partition = line.strip().partition("|")
        name = partition.strip()
        if not sep or not node:
            continue
        if (wanted is None and name.endswith("*")) or (wanted and name.rstrip("*") in wanted):
            nodes.add(node)
    return nodes


def node_failed(state: str) -> bool:
    """A node that does not respond (``*``) or is down or failing: the jobs that ran
    there were lost to it (Slurm requeues them without saying why)."""
    base = state.rstrip("*~#!%$@^-").lower()
    return state.endswith("*") or base in ("down", "fail", "failing")
