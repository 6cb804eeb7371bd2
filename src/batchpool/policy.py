"""Why a chunk's job was lost, and what the pool does about it: the one policy table.

A lost job is classified (:func:`classify`) from three witnesses: what the scheduler
says ended it (:attr:`JobStatus.ending <batchpool.backend.JobStatus.ending>`), how the
worker process ended (``workers/JOB_ID.exit``, :class:`WorkerExit`, written by the
process that watched it), and the chunk's records (which task the worker was in).

Policy table (:class:`RetryPolicy` holds its numbers; ``Pool(retry_policy=...)``):

=====================  ===============================================================
cause                  what the pool does
=====================  ===============================================================
time limit             the unfinished tasks run again, the task that was running in a
                       chunk of its own; a task the limit killed ``time_limits_per_task``
                       (2) times runs once more with twice the time if ``max_time``
                       allows, else raises :class:`~batchpool.TaskTimeoutError`
memory limit           the running task runs alone with twice the memory, up to
                       ``max_mem``; else alone once more, then raises
                       :class:`~batchpool.TaskMemoryError`
worker crashed in      the task runs alone once more; the second time it raises
task *i*               :class:`~batchpool.WorkerCrashedError` (``crashes_per_task``, 2)
preempted / requeued   the unfinished tasks run again; not counted against
                       ``max_num_resubmissions`` (at most ``max_preemptions`` times)
node failure,          the unfinished tasks run again, counted; after
vanished, result       ``max_num_resubmissions``: :class:`~batchpool.JobsLostError`.
damaged                After a node failure they run on other nodes: the failed node is
                       excluded from the retry's job where the scheduler can exclude
                       nodes and tells how many the pool can use, never so many that
                       none is left (the oldest exclusions are dropped first)
cancelled from         run again once; deleted a second time, the map stops with
outside, error state   :class:`~batchpool.JobsLostError` (someone meant it)
failed before its      counted per job; two such jobs with the same stderr stop the
first task             map with :class:`~batchpool.BrokenEnvironmentError`
no space for results   the map stops at once with :class:`~batchpool.PoolError` naming
                       the session and the filesystem; what was kept is resumed from
deleted by the pool    run again, not counted: the pool deleted a job that waited with
                       no work left just as its worker started and took a new chunk
=====================  ===============================================================

The tasks a chunk had finished before its job died are kept and never run again.
Every loss is kept in the chunk's history (:class:`Loss`): in ``chunks.jsonl``, in
``batchpool status``, in :func:`batchpool.load` and in the errors.
"""

from __future__ import annotations

import enum
import pickle
import re
import signal
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ._layout import Failure
from .backend import SETUP_FAILED_MARK, Ending, JobStatus, Resources
from .errors import (
    BrokenEnvironmentError,
    JobsLostError,
    PoolError,
    TaskMemoryError,
    TaskTimeoutError,
    WorkerCrashedError,
)
from .files import describe_filesystem
from .units import Duration, Memory, parse_mem_mb, parse_time_s


class Cause(enum.Enum):
    TIME_LIMIT = "time limit"
    MEMORY_LIMIT = "memory limit"
    NODE_FAILURE = "node failure"
    PREEMPTED = "preempted or requeued"
    CANCELLED = "cancelled from outside"
    ERROR_STATE = "error state"
    CRASHED = "worker crashed in a task"
    NOT_STARTED = "failed before its first task"
    VANISHED = "vanished without trace"
    RESULT_DAMAGED = "result damaged"
    """The chunk's record file failed its checks (it is kept, renamed ``.damaged``)."""
    NO_SPACE = "no space for results"
    """The session's filesystem is full or read-only: nothing run now could be kept."""
    DELETED_BY_POOL = "deleted by the pool"
    """The pool deleted the job as idle (queued with no work left) just as its worker
    started and took a chunk posted since: nothing went wrong."""


_CAUSE_OF_ENDING = {
    Ending.TIME_LIMIT: Cause.TIME_LIMIT,
    Ending.MEMORY_LIMIT: Cause.MEMORY_LIMIT,
    Ending.NODE_FAILURE: Cause.NODE_FAILURE,
    Ending.PREEMPTED: Cause.PREEMPTED,
    Ending.CANCELLED: Cause.CANCELLED,
    Ending.ERROR_STATE: Cause.ERROR_STATE,
}


@dataclass(frozen=True)
class WorkerExit:
    """How a worker process ended (``workers/JOB_ID.exit``: ``exit N`` or ``signal N``,
    then ``after signal M`` if a signal came from outside first)."""

    exit_code: Optional[int] = None
    signal: Optional[int] = None
    signalled_first: Optional[int] = None

    @classmethod
    def parse(cls, text: str) -> Optional[WorkerExit]:
        match = re.fullmatch(r"(exit|signal) (-?\d+)(?: after signal (\d+))?", text.strip())
        if match is None:
            return None
        number = int(match.group(2))
        first = int(match.group(3)) if match.group(3) else None
        if match.group(1) == "exit":
            return cls(exit_code=number, signalled_first=first)
        return cls(signal=number, signalled_first=first)

    def describe(self) -> str:
        text = (
            f"killed by {signal_name(self.signal)}"
            if self.signal is not None
            else f"exit code {self.exit_code}"
        )
        if self.signalled_first is not None:
            text += f" after {signal_name(self.signalled_first)} from outside"
        return text


def signal_name(number: int) -> str:
    try:
        return f"signal {number} ({signal.Signals(number).name})"
    except ValueError:
        return f"signal {number}"


@dataclass(frozen=True)
class Loss:
    """One lost attempt of a chunk (or one job that failed before its first task)."""

    cause: Cause
    job_id: str
    state: str = ""
    """The scheduler's words (state and reason)."""
    node: str = ""
    how: str = ""
    """How the worker process ended (:meth:`WorkerExit.describe`), if it told."""
    task: Optional[int] = None
    """The task the worker was in, if it had begun the chunk."""
    resources: str = ""
    detail: str = ""
    """The scheduler's own explanation (SGE's error reason), or the end of the stderr."""

    def describe(self) -> str:
        parts = [f"job {self.job_id}", self.cause.value]
        if self.task is not None:
            parts.append(f"in task {self.task}")
        if self.node:
            parts.append(f"on {self.node}")
        if self.state:
            parts.append(f"state {self.state.strip()}")
        if self.how:
            parts.append(self.how)
        if self.resources:
            parts.append(f"resources: {self.resources}")
        said = summary_line(self.detail)
        return ", ".join(parts + ([f"said: {said}"] if said else []))


def summary_line(text: str) -> str:
    """The line of a stderr excerpt that says most: Python's fatal error, else the last."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    fatal = [line for line in lines if line.startswith("Fatal Python error")]
    return (fatal or lines[-1:] or [""])[0]


def classify(
    status: Optional[JobStatus],
    worker_exit: Optional[WorkerExit],
    in_task: Optional[int],
    started: bool,
    no_space: bool = False,
    deleted_by_pool: bool = False,
) -> Cause:
    """The cause of a loss (module docstring). ``in_task``: the task the worker was
    running (its chunk had begun and that task had no record); ``started``: the worker
    got ready to take work; ``no_space``: it could not write its records;
    ``deleted_by_pool``: the pool itself deleted the job."""
    if deleted_by_pool:
        return Cause.DELETED_BY_POOL
    ending = status.ending if status is not None else None
    if ending in _CAUSE_OF_ENDING:
        return _CAUSE_OF_ENDING[ending]
    if no_space:
        return Cause.NO_SPACE
    if worker_exit is not None and worker_exit.signalled_first is not None:
        return Cause.CANCELLED  # the scheduler signalled it without saying why
    if worker_exit is None and status is not None and status.signal is not None:
        return Cause.CANCELLED  # killed with its watcher: from outside (SGE's qdel)
    if in_task is not None and worker_exit is not None:
        return Cause.CRASHED  # the watcher saw the worker end inside a task
    if not started:
        return Cause.NOT_STARTED
    return Cause.VANISHED


# -- what a loss tells the user ------------------------------------------------------------

_KILLED = {
    Cause.TIME_LIMIT: (
        TaskTimeoutError,
        "was stopped by the jobs' time limit{resources} {times} times, the last time in a "
        "chunk of its own. Give the jobs more `time`, or let the pool retry "
        "with more: retry_policy=RetryPolicy(max_time=...).",
    ),
    Cause.MEMORY_LIMIT: (
        TaskMemoryError,
        "was stopped by the jobs' memory limit{resources} {times} times. Give the jobs more "
        "memory (`mem`), or let the pool retry with more: "
        "retry_policy=RetryPolicy(max_mem=...).",
    ),
}
_CRASHED = (
    WorkerCrashedError,
    "ended the worker running it {times} times ({how}): a crash in C code, os._exit(), "
    "or a signal. Its other tasks ran on.",
)


def killed_envelope(
    what: str, session_dir: Path, argument: str, loss: Loss, history: Sequence[Loss]
) -> tuple:
    """The failure envelope of the task that ``loss`` says was killed (the action
    RAISE), as if it had raised a :class:`~batchpool.TaskKilledError`; ``what``: the
    call (``map of module.f``), ``argument``: a short repr of the task's argument."""
    assert loss.task is not None
    index = loss.task
    attempts = [h.describe() for h in history if h.task == index]
    error_type, text = _KILLED.get(loss.cause, _CRASHED)
    resources = f" ({loss.resources})" if loss.resources else ""
    said = text.format(resources=resources, times=len(attempts), how=loss.how or loss.state)
    message = f"Task {index} of {what} (argument {argument}) {said}"
    message += "".join(f"\n  attempt: {a}" for a in attempts)
    error = error_type(message, session_dir, index, argument, attempts)
    stderr = f"{loss.detail}\n" if loss.detail else "(no stderr)\n"
    return (False, Failure(pickle.dumps(error), error_type.__name__, message, stderr))


def lost_error(
    what: str,
    chunk: int,
    tasks: range,
    history: Sequence[Loss],
    limit: int,
    session_dir: Optional[Path],
) -> JobsLostError:
    """Tasks ``tasks`` of chunk ``chunk`` of the call ``what`` were lost once too often
    (the action FAIL)."""
    last = history[-1]
    same = sum(1 for h in history if h.cause is last.cause)
    if last.cause in (Cause.CANCELLED, Cause.ERROR_STATE) and same > 1:
        why = f"their jobs ended twice by {last.cause.value}: someone or something means it"
    else:
        times = "once" if len(history) == 1 else f"{len(history)} times"
        why = (
            f"their jobs were lost {times} (max_num_resubmissions={limit}); "
            f"last cause: {last.cause.value}"
        )
    lines = [
        f"Tasks {tasks.start}-{tasks.stop - 1} of {what} were lost: {why}.",
        "  history:",
        *(f"    {h.describe()}" for h in history),
    ]
    if last.detail:
        lines.append("  stderr: " + last.detail.replace("\n", "\n          "))
    return JobsLostError("\n".join(lines), session_dir, (chunk,))


def failed_starts_error(
    failures: Sequence[Loss], python_path: str, session_dir: Optional[Path]
) -> JobsLostError:
    """More jobs in a row than resubmissions allow ended before their worker took work."""
    last = failures[-1]
    lines = [
        f"{len(failures)} jobs in a row ended before their worker took any work "
        f"(last: job {last.job_id}, {last.state or 'left the queue'}). Check that "
        f"python_path ({python_path}) exists on the compute nodes with "
        "batchpool installed, and that the work_dir is reachable there.",
        "  history:",
        *(f"    {loss.describe()}" for loss in failures),
    ]
    return JobsLostError("\n".join(lines), session_dir)


def broken_environment_error(
    loss: Loss, first: Loss, python_path: str, work_dir: Path, session_dir: Optional[Path]
) -> BrokenEnvironmentError:
    """Two jobs ended before their first task saying the same: retrying cannot help."""
    said = loss.detail.strip() or "(nothing)"
    lines = [
        f"Jobs {first.job_id} and {loss.job_id} ended before their worker took any task, "
        f"both with: {summary_line(said)}",
        f"Check that python_path ({python_path}) runs on the compute nodes "
        "and has batchpool and your modules installed there, and that the work_dir "
        f"({work_dir}) is visible from them. Last job ({loss.describe()}) said:",
        "    " + said.replace("\n", "\n    "),
    ]
    return BrokenEnvironmentError("\n".join(lines), session_dir, said)


def not_shared_error(
    loss: Loss, evidence: str, work_dir: Path, session_dir: Optional[Path]
) -> BrokenEnvironmentError:
    """A job could not see the work_dir (``evidence`` says how we know)."""
    said = loss.detail.strip() or "(nothing)"
    lines = [
        f"The jobs do not see the work_dir {work_dir}: {evidence}. The "
        "work_dir must be on a filesystem that the compute nodes share with this "
        "machine: on most clusters a directory under your home or project space, not "
        "/tmp or another node-local disk. Pass work_dir=... (or set BATCHPOOL_WORK_DIR).",
        f"Last: {loss.describe()}; it said:",
        "    " + said.replace("\n", "\n    "),
    ]
    return BrokenEnvironmentError("\n".join(lines), session_dir, said)


def failed_setup_line(stderr: str) -> Optional[str]:
    """The line of a job's stderr that says a ``setup`` line failed
    (:data:`batchpool.backend.SETUP_FAILED_MARK`), or None."""
    for line in reversed(stderr.splitlines()):
        if line.startswith(SETUP_FAILED_MARK):
            return line
    return None


def setup_failed_error(
    loss: Loss, said: str, session_dir: Optional[Path]
) -> BrokenEnvironmentError:
    """A job's ``setup`` line failed (``said``: the job's line that says so): every job
    would fail the same, so the map stops at the first."""
    failure = re.match(r".*?\(exit (\d+)\): (.*)", said)
    code, line = failure.groups() if failure else ("?", said)
    lines = [
        f"A setup line failed (exit {code}), so no worker started: {line}",
        "Fix or remove that line of setup=... (run it by hand in a job's shell to see "
        "why: a module that is not there, a path that is not on the compute nodes...).",
        f"Job {loss.job_id}'s stderr ends:",
        "    " + (loss.detail.strip() or said).replace("\n", "\n    "),
    ]
    return BrokenEnvironmentError("\n".join(lines), session_dir, loss.detail)


def unwritable_error(work_dir: Path, error: OSError, during_map: bool = False) -> PoolError:
    """The driver (or, ``during_map``, a worker: the action STOP) cannot write in the work_dir."""
    where = describe_filesystem(Path(work_dir))
    if not during_map:
        return PoolError(
            f"Cannot write the session into work_dir {work_dir} ({where}): {error}. "
            "Nothing was submitted. The work_dir must be writable, have free space, "
            "and be reachable from the compute nodes; once it is, run the same script "
            "again (an unfinished map resumes where it stopped)."
        )
    return PoolError(
        f"The map stopped: its files cannot be written in work_dir {work_dir} ({where}): "
        f"{error}. Every result collected so far is kept. Free space there (or make it "
        "writable again), then run the same script again: the map resumes where it stopped."
    )


class Action(enum.Enum):
    RETRY = "retry"
    """The unfinished tasks run again; one resubmission is spent."""
    RETRY_FREE = "retry, not counted"
    ISOLATE = "retry the task alone"
    """The task that was running runs alone, the rest as another chunk; one is spent."""
    ESCALATE = "retry the task alone with more"
    RAISE = "raise for the task"
    """The task that was running gets its error; the rest run again, nothing spent."""
    FAIL = "fail"
    """The call fails with :func:`lost_error`."""
    STOP = "stop every map"
    """No results can be written: every map of the pool stops (:func:`unwritable_error`)."""


@dataclass(frozen=True)
class Decision:
    action: Action
    resources: Optional[Resources] = None
    """The new resources of what runs again: for ESCALATE the task's, for a RETRY after
    a node failure the chunk's with the node excluded; None: its own."""


@dataclass(frozen=True)
class RetryPolicy:
    """The numbers of the policy table (module docstring of :mod:`batchpool.policy`).

    Give one to a pool as ``retry_policy=RetryPolicy(max_mem="16G")``.
    """

    max_mem: Optional[Memory] = None
    """Up to how much memory per job a task killed by the memory limit is retried with
    (``"16G"``, ``"500M"``; a plain number is MB: :mod:`batchpool.units`). None: no more
    than the pool's ``mem``."""
    max_time: Optional[Duration] = None
    """Up to how much time per job a task killed twice by the time limit is retried with
    (``"4:00:00"``, ``"1-00:00:00"``, ``"6h"``; a plain number is minutes:
    :mod:`batchpool.units`). None: never more."""
    crashes_per_task: int = 2
    time_limits_per_task: int = 2
    memory_limits_per_task: int = 2
    max_preemptions: int = 100

    def __post_init__(self) -> None:
        for name in ("crashes_per_task", "time_limits_per_task", "memory_limits_per_task"):
            if getattr(self, name) < 1:
                raise ValueError(f"RetryPolicy.{name} must be at least 1")
        if self.max_mem is not None:  # a wrong value is refused now, not at the first loss
            parse_mem_mb(self.max_mem, "max_mem")
        if self.max_time is not None:
            parse_time_s(self.max_time, "max_time")

    @property
    def max_mem_mb(self) -> Optional[int]:
        return None if self.max_mem is None else parse_mem_mb(self.max_mem, "max_mem")

    @property
    def max_time_s(self) -> Optional[int]:
        return None if self.max_time is None else parse_time_s(self.max_time, "max_time")

    def decide(
        self,
        loss: Loss,
        earlier: Sequence[Loss],
        attempt: int,
        max_num_resubmissions: int,
        resources: Resources,
        num_nodes: Optional[int] = None,
    ) -> Decision:
        """What to do about ``loss`` of a chunk whose lineage lost ``earlier`` before
        and spent ``attempt`` resubmissions; ``resources``: what its jobs had;
        ``num_nodes``: how many nodes the pool's jobs can run on (None: not known, or
        the scheduler cannot exclude nodes)."""
        cause = loss.cause
        same = [e for e in earlier if e.cause is cause]
        in_task = loss.task is not None
        same_task = [e for e in same if in_task and e.task == loss.task]
        spent_out = attempt >= max_num_resubmissions
        if cause is Cause.DELETED_BY_POOL:
            return Decision(Action.RETRY_FREE)  # bounded: the pool deletes each job once
        if cause is Cause.PREEMPTED:
            return Decision(
                Action.RETRY_FREE if len(same) < self.max_preemptions else Action.FAIL
            )
        # A task that killed its worker gets its error once no retry is left, rather than
        # failing the whole map: the others run on.
        if cause is Cause.CRASHED and in_task:
            if len(same_task) + 1 >= self.crashes_per_task or spent_out:
                return Decision(Action.RAISE)
            return Decision(Action.ISOLATE)
        if cause is Cause.TIME_LIMIT and in_task:
            if len(same_task) + 1 < self.time_limits_per_task and not spent_out:
                return Decision(Action.ISOLATE)
            more = _more(resources.time_s, self.max_time_s)
            if more is not None and not spent_out:
                return Decision(Action.ESCALATE, _with(resources, time_s=more))
            return Decision(Action.RAISE)
        if cause is Cause.MEMORY_LIMIT and in_task:
            more = _more(resources.mem_mb, self.max_mem_mb)
            if more is not None and not spent_out:
                return Decision(Action.ESCALATE, _with(resources, mem_mb=more))
            if len(same_task) + 1 < self.memory_limits_per_task and not spent_out:
                return Decision(Action.ISOLATE)
            return Decision(Action.RAISE)
        if cause is Cause.NO_SPACE:
            return Decision(Action.STOP)
        if cause in (Cause.CANCELLED, Cause.ERROR_STATE) and same:
            return Decision(Action.FAIL)
        if spent_out:
            return Decision(Action.FAIL)
        if cause is Cause.NODE_FAILURE and loss.node:
            return Decision(Action.RETRY, _excluding(resources, loss.node, num_nodes))
        return Decision(Action.RETRY)


def _excluding(resources: Resources, node: str, num_nodes: Optional[int]) -> Optional[Resources]:
    """``resources`` with ``node`` excluded too, keeping at most ``num_nodes - 1``
    exclusions (the newest); None when no node can be excluded."""
    if num_nodes is None or num_nodes < 2:
        return None
    nodes = tuple(n for n in resources.exclude_nodes if n != node) + (node,)
    return Resources(resources.mem_mb, resources.time_s, nodes[-(num_nodes - 1) :])


def _more(current: Optional[int], limit: Optional[int]) -> Optional[int]:
    """Twice ``current``, capped at ``limit``; None when there is no more to give."""
    if current is None or limit is None or current >= limit:
        return None
    return min(2 * current, limit)


def _with(resources: Resources, **changes: Optional[int]) -> Resources:
    return Resources(
        mem_mb=changes.get("mem_mb", resources.mem_mb),
        time_s=changes.get("time_s", resources.time_s),
        exclude_nodes=resources.exclude_nodes,
    )

