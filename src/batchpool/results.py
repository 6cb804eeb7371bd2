"""Reading a kept session after the fact: what every task returned, raised, or never did.

::

    outcomes = batchpool.load(".batchpool/20260101T120000_0123456789abcdef")
    values = [o.value for o in outcomes if o.status is TaskStatus.DONE]

Nothing is submitted or run. Results are read from ``results.archive`` and from
result files still in ``results/`` (a map that was interrupted before it
collected them); each carries the task range of its chunk, since chunks are cut
by measured time while the map runs. Which chunks were posted, and which jobs
claimed them, comes from ``chunks.jsonl``; what the pool did, and when, from
``log.jsonl``. This module only reads a session, through
:class:`~batchpool.session.Session`, and the pool directories next to it, through
their ``driver`` file.
"""

from __future__ import annotations

import dataclasses
import enum
import io
import os
import pickle
import statistics
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, Optional, Union

from . import _layout
from ._layout import PoolPaths, SessionPaths
from .errors import NotASessionError, RemoteError, ResultsError
from .files import read_json_lines
from .proto_pool import task_error
from .session import (
    ChunkEvent,
    ChunkResult,
    DriverLock,
    Manifest,
    PoolDirectory,
    Session,
    SessionState,
)

PathLike = Union[str, os.PathLike]

__all__ = [
    "ChunkState",
    "ChunkSummary",
    "NotASessionError",
    "PoolDriver",
    "ResultsError",
    "Efficiency",
    "SessionState",
    "SessionSummary",
    "Spread",
    "TaskOutcome",
    "TaskStatus",
    "TaskUsage",
    "Unresolved",
    "find_pool_dirs",
    "find_sessions",
    "is_finished",
    "is_pool_dir",
    "is_session",
    "live_driver",
    "load",
    "load_inputs",
    "num_tasks",
    "open_session",
    "pool_driver",
    "pools_of_session",
    "summarize_chunks",
    "summarize_session",
    "efficiency",
    "task_usage",
]


class TaskStatus(enum.Enum):
    """What became of one task."""

    DONE = "done"
    """The task returned a value."""
    FAILED = "failed"
    """The task raised an exception."""
    MISSING = "missing"
    """No result of the task is in the session (not run, lost or interrupted)."""


@dataclass(frozen=True)
class TaskOutcome:
    """One task of a map, as found in its session.

    Attributes
    ----------
    index
        The task's position in the map's input.
    status
        :class:`TaskStatus`.
    value
        What the task returned (``DONE``), else None.
    exception
        The exception the task raised, rebuilt with its own type where possible,
        else a :class:`batchpool.RemoteError` (``FAILED``); else None.
    traceback
        The remote traceback text (``FAILED``), else ``""``.
    losses
        Each job that died while the task was among the unfinished tasks of the chunk
        it held: cause, job, node, state, exit, resources
        (:meth:`batchpool.policy.Loss.describe`), oldest first.
    """

    index: int
    status: TaskStatus
    value: Any = None
    exception: Optional[BaseException] = None
    traceback: str = ""
    losses: tuple[str, ...] = ()
    wall_s: Optional[float] = None
    """How long the task ran, as its worker measured it (None: no result)."""
    cpu_s: Optional[float] = None
    """CPU seconds the task used, user and system, with the processes it waited for
    (None: no result, or one recorded by a worker older than batchpool 0.2)."""
    max_rss_mb: Optional[float] = None
    """The peak resident memory of the task's job up to the task's end, in MiB (as
    ``cpu_s``)."""
    job_id: str = ""
    """The job that ran the task, where the session tells."""

    def failure_line(self) -> str:
        """``Type: message`` of a failed task (its first line), else ``""``."""
        error = self.exception
        if error is None:
            return ""
        if isinstance(error, RemoteError):  # its message is already "Type: message"
            return error.message.splitlines()[0]
        lines = str(error).strip().splitlines()
        name = type(error).__qualname__
        return f"{name}: {lines[0]}" if lines else name


class Unresolved:
    """Stands in for an object whose class cannot be imported here (``load(strict=False)``).

    ``name`` is the missing ``module.qualname``; ``args`` and ``state`` are what
    the pickle would have given to it.
    """

    name = "?"
    args: tuple[Any, ...]
    state: Any

    def __new__(cls, *args: Any, **kwargs: Any) -> Unresolved:
        obj = super().__new__(cls)
        obj.args = args
        obj.state = None
        return obj

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def __repr__(self) -> str:
        return f"<unresolved {self.name}>"


class _TolerantUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        try:
            return super().find_class(module, name)
        except (ImportError, AttributeError):
            return type(name.rpartition(".")[2], (Unresolved,), {"name": f"{module}.{name}"})


# -- the session ------------------------------------------------------------------------


def open_session(session_dir: PathLike) -> tuple[Session, Manifest]:
    """The session at ``session_dir`` and its manifest.

    Raises
    ------
    NotASessionError
        If ``session_dir`` does not exist, is not a directory, or has no readable
        ``session.json``.
    """
    path = Path(session_dir)
    if not path.exists():
        raise NotASessionError(f"{path} does not exist", path)
    if not path.is_dir():
        raise NotASessionError(f"{path} is not a directory, so not a batchpool session", path)
    session = Session(path)
    try:
        return session, session.manifest()
    except FileNotFoundError:
        hint = ""
        if is_pool_dir(path):
            logs = PoolPaths(path).logs
            hint = f" (it is a pool directory, the queue of a pool's jobs; logs in {logs})"
        manifest = _layout.MANIFEST_FILE
        raise NotASessionError(
            f"{path} is not a batchpool session: it has no {manifest}{hint}", path
        ) from None
    except NotASessionError:
        raise  # it says why
    except (OSError, ValueError, TypeError) as error:
        manifest = _layout.MANIFEST_FILE
        raise NotASessionError(
            f"{path} is not a readable batchpool session: {manifest}: {error}", path
        ) from error


def is_session(path: PathLike) -> bool:
    """Whether ``path`` is a session directory with a readable manifest."""
    try:
        open_session(path)
    except NotASessionError:
        return False
    return True


class FoundSessions(NamedTuple):
    """What :func:`scan_sessions` found directly inside a work_dir."""

    readable: list[Path]
    """The session directories, oldest name first."""
    unreadable: list[NotASessionError]
    """Why each directory with a ``session.json`` that cannot be read as a session
    (another batchpool version wrote it, say) cannot."""


def scan_sessions(work_dir: PathLike) -> FoundSessions:
    """The sessions directly inside ``work_dir``, each manifest read once (pool
    directories and anything else are left out)."""
    found = FoundSessions([], [])
    for entry in sorted(Path(work_dir).iterdir()):
        if not entry.is_dir():
            continue
        try:
            open_session(entry)
        except NotASessionError as error:
            if os.path.isfile(SessionPaths(entry).manifest):
                found.unreadable.append(error)
            continue
        found.readable.append(entry)
    return found


def find_sessions(work_dir: PathLike) -> list[Path]:
    """The session directories directly inside ``work_dir``, oldest name first."""
    return scan_sessions(work_dir).readable


def num_tasks(session: Session, manifest: Manifest) -> int:
    """The number of tasks of the map: ``manifest.num_tasks``, or for an ``imap`` whose
    input was still being read, the number of tasks written so far."""
    if manifest.num_tasks is not None:
        return manifest.num_tasks
    reader = Session(session.dir)
    reader.reopen_tasks()
    return reader.num_tasks_written


def is_finished(session: Session) -> bool:
    """Whether the map of ``session`` succeeded (its ``done`` marker exists)."""
    return session.is_done()


def live_driver(session: Session) -> Optional[DriverLock]:
    """The driver that drives ``session`` now, if one holds its lock and is alive."""
    return session.live_driver()


# -- pool directories -------------------------------------------------------------------


def is_pool_dir(path: PathLike) -> bool:
    """Whether ``path`` looks like a pool directory: ``pool_*`` with a ``tickets``
    log and no ``session.json``."""
    path = Path(path)
    return (
        path.name.startswith(PoolDirectory.PREFIX)
        and os.path.isfile(PoolPaths(path).tickets)
        and not os.path.exists(SessionPaths(path).manifest)
    )


def find_pool_dirs(work_dir: PathLike) -> list[Path]:
    """The pool directories directly inside ``work_dir``, oldest name first."""
    entries = sorted(Path(work_dir).iterdir())
    return [entry for entry in entries if entry.is_dir() and is_pool_dir(entry)]


@dataclass(frozen=True)
class PoolDriver:
    """What a pool directory's ``driver`` file tells about the driver of the pool."""

    host: str
    """Empty if the driver never wrote its heartbeat."""
    pid: int
    alive: bool
    """Same process space: its process is alive. Else: its heartbeat was rewritten within
    :data:`~batchpool.session.STALE_LOCK_S`, by the filesystem's clock."""


def pool_driver(pool_dir: PathLike) -> PoolDriver:
    """Whether the driver of the pool at ``pool_dir`` is alive
    (:meth:`batchpool.session.PoolDirectory.driver`)."""
    return PoolDriver(*PoolDirectory(Path(pool_dir)).driver())


def pools_of_session(session_dir: PathLike) -> list[str]:
    """The names of the pool directories the session's chunks were posted to (where the
    logs of its jobs are, in ``POOL/logs/``), in the order they were first used.

    Names, not paths: the pool directories sit next to the session in the same
    ``work_dir``, which another host may reach by another path."""
    session = Session(Path(session_dir))
    names: dict[str, None] = {}
    for event in _chunk_events(session):
        if event.event == "posted" and event.pool:
            names[Path(event.pool).name] = None
    return list(names)


# -- results ----------------------------------------------------------------------------


def load(session_dir: PathLike, *, strict: bool = True) -> list[TaskOutcome]:
    """What became of every task of the map kept in ``session_dir``, in input order.

    Parameters
    ----------
    session_dir
        A session directory inside a pool's ``work_dir`` (kept after a failed
        or interrupted map, or with ``keep_work_dir=True``).
    strict
        If False, results whose class cannot be imported here come back as
        :class:`Unresolved` stand-ins instead of raising :class:`ResultsError`.

    Returns
    -------
    list of TaskOutcome
        One per task of the map: ``num_tasks`` of its ``session.json``, or, for an
        ``imap`` whose input was still being read, one per task written so far.

    Raises
    ------
    NotASessionError
        ``session_dir`` is not a session (also a ``ValueError``).
    ResultsError
        A chunk's results cannot be unpickled here (with ``strict=True``).
    """
    session, manifest = open_session(session_dir)
    _results_kept(session)
    outcomes = _outcomes(session, manifest, _read_results(session, strict))
    losses: dict[int, list[str]] = {}
    for event in _chunk_events(session):
        if event.event == "lost":
            for index in range(event.start, min(event.stop, len(outcomes))):
                losses.setdefault(index, []).append(event.detail)
    outcomes = [
        dataclasses.replace(o, losses=tuple(losses[o.index])) if o.index in losses else o
        for o in outcomes
    ]
    return _with_usage(outcomes, session)


def load_inputs(session_dir: PathLike, *, strict: bool = True) -> list[Any]:
    """The argument of every task of the map kept in ``session_dir``, in input order, as
    the session holds it: the item of a ``map``, the argument tuple of a ``starmap``,
    ``(args, kwds)`` of an ``apply``. As many as :func:`load` returns outcomes.

    Raises
    ------
    NotASessionError
        ``session_dir`` is not a session.
    ResultsError
        A task cannot be unpickled here (with ``strict=True``; else objects whose class
        cannot be imported come back as :class:`Unresolved` stand-ins).
    """
    session, manifest = open_session(session_dir)
    _results_kept(session)
    total = num_tasks(session, manifest)
    try:
        pickled = _layout.read_tasks(str(session.dir), 0, total)
    except (OSError, ValueError) as error:
        message = f"The tasks of {session.dir} cannot be read: {error}"
        raise ResultsError(message, session.dir) from error
    inputs = []
    for index, payload in enumerate(pickled):
        try:
            unpickler = pickle.Unpickler if strict else _TolerantUnpickler
            inputs.append(unpickler(io.BytesIO(payload)).load())
        except Exception as error:  # anything a foreign pickle may raise
            raise ResultsError(
                f"Task {index} of {session.dir} cannot be read here: {error!r}. Load it where "
                "the modules of the tasks are importable (as the map's driver).",
                session.dir,
            ) from error
    return inputs


def _results_kept(session: Session) -> None:
    """Raises ResultsError for a successful map's summary (:meth:`Session.keep_summary`)."""
    if session.is_summary():
        raise ResultsError(
            f"The results and tasks of {session.dir} were not kept: the map succeeded and "
            "its results went to its caller; the session keeps only a summary (timings, "
            "memory, its log) for `batchpool status` and `batchpool report`. Pass "
            "keep_work_dir=True to keep the results of a successful map.",
            session.dir,
        )


@dataclass(frozen=True)
class _ChunkOutcomes:
    """The result of one chunk, unpickled: one outcome per task of ``tasks``."""

    chunk: int
    tasks: range
    outcomes: tuple[TaskOutcome, ...]


def _read_results(session: Session, strict: bool) -> list[_ChunkOutcomes]:
    """Every result in the session, unpickled, by chunk number (a summary's: every
    task done, no value)."""
    if session.is_summary():
        return _summary_outcomes(session)
    try:
        chunk_results = session.all_results()
    except (struct.error, ValueError) as error:
        raise ResultsError(
            f"The results of {session.dir} are damaged: {error!r}", session.dir
        ) from error
    read = []
    for result in sorted(chunk_results, key=lambda r: r.chunk):
        envelopes = _envelopes(result, session.dir, strict)
        outcomes = tuple(
            _outcome(index, envelope, session.dir)
            for index, envelope in zip(result.tasks, envelopes)
        )
        read.append(_ChunkOutcomes(result.chunk, result.tasks, outcomes))
    return read


def _summary_outcomes(session: Session) -> list[_ChunkOutcomes]:
    by_chunk: dict[int, list[TaskUsage]] = {}
    for usage in _task_usage(session):
        by_chunk.setdefault(usage.chunk, []).append(usage)
    read = []
    for chunk, usages in sorted(by_chunk.items()):
        indexes = sorted(u.index for u in usages)
        outcomes = tuple(TaskOutcome(i, TaskStatus.DONE) for i in indexes)
        read.append(_ChunkOutcomes(chunk, range(indexes[0], indexes[-1] + 1), outcomes))
    return read


def _outcomes(
    session: Session, manifest: Manifest, chunk_outcomes: Sequence[_ChunkOutcomes]
) -> list[TaskOutcome]:
    """One outcome per task. Where two chunks hold the same task (a resumed map cuts the
    tasks of a failed chunk again), the later chunk's outcome counts."""
    total = num_tasks(session, manifest)
    outcomes = [TaskOutcome(i, TaskStatus.MISSING) for i in range(total)]
    for chunk in chunk_outcomes:
        for outcome in chunk.outcomes:
            if outcome.index >= len(outcomes):  # an imap's count written after its results
                outcomes.extend(
                    TaskOutcome(i, TaskStatus.MISSING) for i in range(len(outcomes), outcome.index)
                )
                outcomes.append(outcome)
            else:
                outcomes[outcome.index] = outcome
    return outcomes


def _envelopes(result: ChunkResult, session_dir: Path, strict: bool) -> list:
    try:
        if strict:
            return result.envelopes()
        return [_TolerantUnpickler(io.BytesIO(e)).load() for e in result.pickled_envelopes]
    except Exception as error:  # anything a foreign pickle may raise
        raise ResultsError(
            f"The results of chunk {result.chunk} (tasks {task_span(result.tasks)}) cannot be "
            f"read here: {error!r}. Load them where the modules of the results are "
            "importable (same environment and PYTHONPATH as the map's driver).",
            session_dir,
        ) from error


def task_span(tasks: range) -> str:
    """``"3-7"``, ``"3"``, or ``"-"`` for no task."""
    if len(tasks) == 1:
        return str(tasks.start)
    return f"{tasks.start}-{tasks.stop - 1}" if tasks else "-"


def _outcome(index: int, envelope: tuple, session_dir: Path) -> TaskOutcome:
    ok, value = envelope
    if ok:
        return TaskOutcome(index, TaskStatus.DONE, value=value)
    failure = _layout.Failure(*value)
    error = task_error(failure, session_dir)
    return TaskOutcome(index, TaskStatus.FAILED, exception=error, traceback=failure.traceback)


# -- summaries for the batchpool command -----------------------------------------------


class ChunkState(enum.Enum):
    """What the session tells about one chunk (the scheduler is not asked)."""

    DONE = "done"
    """Its result is in the session and every task returned."""
    FAILED = "failed"
    """Its result is in the session and a task raised."""
    NO_RESULT = "no result"
    """Waiting, running or lost: the session cannot tell which (its job ids tell
    whether a job claimed it)."""
    REPLACED = "replaced"
    """A later driver resumed the map and cut this chunk's tasks again into new chunks
    (a ticket that no job had claimed is withdrawn on resume; a chunk that a job had
    claimed keeps its number, and is posted again if its job is gone)."""


@dataclass(frozen=True)
class ChunkSummary:
    """One chunk of a session: its tasks, what became of them and its jobs."""

    chunk: int
    tasks: range
    state: ChunkState
    job_ids: tuple[str, ...]
    """The jobs that claimed it, first claim first."""
    first_failure: str
    """``Type: message`` of the chunk's first failed task, else ``""``."""
    num_done_tasks: int
    num_attempts: int = 1
    """How often it was posted: 1, plus one per resubmission after its job was lost."""
    losses: tuple[str, ...] = ()
    """Each time a job died holding it: cause, job, node, state, exit, resources
    (:meth:`batchpool.policy.Loss.describe`)."""

    @property
    def num_resubmissions(self) -> int:
        return max(0, self.num_attempts - 1)


@dataclass(frozen=True)
class SessionSummary:
    """One session of a work_dir."""

    directory: Path
    manifest: Manifest
    num_done_tasks: int
    state: SessionState
    num_tasks: int = 0
    """``manifest.num_tasks``, or the tasks written so far of an ``imap`` whose input
    was still being read (``manifest.num_tasks`` is None)."""
    chunks: tuple[ChunkSummary, ...] = ()
    """:func:`summarize_chunks`."""
    num_failed_tasks: int = 0

    @property
    def finished(self) -> bool:
        """Whether the map succeeded."""
        return self.state is SessionState.FINISHED


def summarize_session(session_dir: PathLike) -> SessionSummary:
    """Manifest, number of tasks (done, failed), its chunks and where the map stands."""
    session, manifest = open_session(session_dir)
    chunk_outcomes = _read_results(session, strict=False)
    outcomes = _outcomes(session, manifest, chunk_outcomes)
    return SessionSummary(
        session.dir,
        manifest,
        sum(o.status is TaskStatus.DONE for o in outcomes),
        session.state(),
        len(outcomes),
        tuple(_summarize_chunks(session, chunk_outcomes)),
        sum(o.status is TaskStatus.FAILED for o in outcomes),
    )


def damaged_results(session_dir: PathLike) -> list[str]:
    """What in the session failed its checks, one line each: spans of ``results.archive``
    that were skipped, and record files kept aside as ``*.damaged``. Their tasks count as
    missing, and a resumed map runs them again."""
    session = Session(Path(session_dir))
    archive, damaged = _layout.ARCHIVE_FILE, "result damaged, will rerun"
    lines = [
        f"{archive}, {span.length} bytes at offset {span.offset}: {damaged}"
        for span in session.read_archive().damaged
    ]
    lines += [f"{session.paths.relative(path)}: {damaged}" for path in session.quarantined()]
    return lines


def summarize_chunks(session_dir: PathLike) -> list[ChunkSummary]:
    """Every chunk of the session, by number: from its posts and claims in
    ``chunks.jsonl`` and from its result."""
    session, _ = open_session(session_dir)
    return _summarize_chunks(session, _read_results(session, strict=False))


def _summarize_chunks(
    session: Session, chunk_outcomes: Sequence[_ChunkOutcomes]
) -> list[ChunkSummary]:
    results = {r.chunk: r for r in chunk_outcomes}
    posts: dict[int, list[ChunkEvent]] = {}
    claims: dict[int, list[str]] = {}
    losses: dict[int, list[str]] = {}
    for event in _chunk_events(session):
        if event.event == "lost":
            losses.setdefault(event.chunk, []).append(event.detail)
        elif event.event == "posted":
            posts.setdefault(event.chunk, []).append(event)
        elif event.event == "claimed" and event.job_id:
            ids = claims.setdefault(event.chunk, [])
            if event.job_id not in ids:  # a resumed driver records the claims it adopts
                ids.append(event.job_id)
    tasks_of: dict[int, range] = {}
    for number in sorted(set(posts) | set(results) | set(claims) | set(losses)):
        if number in results:
            tasks_of[number] = results[number].tasks
        elif number in posts:
            tasks_of[number] = range(posts[number][-1].start, posts[number][-1].stop)
        else:
            tasks_of[number] = range(0)
    latest = _latest_chunk_of_tasks(tasks_of)
    summaries = []
    for number, tasks in tasks_of.items():
        replaced = bool(tasks) and max(latest[tasks.start : tasks.stop]) > number
        attempts = max(1, len(posts.get(number, ())))
        summary = _chunk_summary(number, tasks, results.get(number), replaced, claims, attempts)
        summaries.append(dataclasses.replace(summary, losses=tuple(losses.get(number, ()))))
    return summaries


def _latest_chunk_of_tasks(tasks_of: dict[int, range]) -> list[int]:
    """For every task, the highest number of a chunk that holds it. The chunks of one
    driver hold disjoint tasks (a lost chunk is posted again under its own number); a
    resumed map cuts the tasks without a good result again, into new chunks."""
    size = max((tasks.stop for tasks in tasks_of.values()), default=0)
    latest = [-1] * size
    for number in sorted(tasks_of):
        tasks = tasks_of[number]
        latest[tasks.start : tasks.stop] = [number] * len(tasks)
    return latest


def _chunk_summary(
    number: int,
    tasks: range,
    result: Optional[_ChunkOutcomes],
    replaced: bool,
    claims: dict[int, list[str]],
    attempts: int,
) -> ChunkSummary:
    outcomes = result.outcomes if result is not None else ()
    failures = [o for o in outcomes if o.status is TaskStatus.FAILED]
    if result is not None and not failures:
        state = ChunkState.DONE
    elif replaced:
        state = ChunkState.REPLACED
    elif failures:
        state = ChunkState.FAILED
    else:
        state = ChunkState.NO_RESULT
    first = failures[0].failure_line() if failures else ""
    num_done = sum(o.status is TaskStatus.DONE for o in outcomes)
    job_ids = tuple(claims.get(number, ()))
    return ChunkSummary(number, tasks, state, job_ids, first, num_done, attempts)


def _chunk_events(session: Session) -> list[ChunkEvent]:
    try:
        return session.chunk_events()
    except TypeError:  # a line of another format: nothing to show rather than a crash
        return []


# -- what the tasks used (recorded by the workers) -----------------------------------------


@dataclass(frozen=True)
class TaskUsage:
    """What one task used, as the worker that ran it measured it (:mod:`batchpool.worker`)."""

    index: int
    chunk: int
    wall_s: float
    cpu_s: Optional[float]
    """None for a result recorded by a worker older than batchpool 0.2."""
    max_rss_mb: Optional[float]
    """The peak resident memory of the job's worker up to the task's end, in MiB."""
    job_id: str


def task_usage(session_dir: PathLike) -> list[TaskUsage]:
    """Time and memory of every task that has a result, in input order. Where two
    chunks hold the same task (a resumed map), the later chunk's record counts."""
    session, _ = open_session(session_dir)
    return _task_usage(session)


def _task_usage(session: Session) -> list[TaskUsage]:
    if session.is_summary():
        return _logged_usage(session)
    job_of_chunk = _job_of_chunk(session)
    usage: dict[int, TaskUsage] = {}
    for result in sorted(session.all_results(), key=lambda r: r.chunk):
        job = job_of_chunk.get(result.chunk) or result.job_id
        for index, wall_s, (cpu_s, rss_mb) in zip(result.tasks, result.task_s, result.measured()):
            usage[index] = TaskUsage(index, result.chunk, wall_s, cpu_s, rss_mb, job)
    return [usage[index] for index in sorted(usage)]


def _logged_usage(session: Session) -> list[TaskUsage]:
    """The usage of each task as the ``usage`` lines of the log have it
    (:meth:`Session.log_usage`); a later line of a task counts."""
    usage: dict[int, TaskUsage] = {}
    for row in read_json_lines(session.paths.log):
        if row.get("m") != "usage":
            continue
        try:
            chunk, job, start = int(row["chunk"]), str(row["job"]), int(row["start"])
            measured = zip(row["wall_s"], row["cpu_s"], row["rss_mb"])
            for index, (wall_s, cpu_s, rss_mb) in enumerate(measured, start):
                usage[index] = TaskUsage(index, chunk, wall_s, cpu_s, rss_mb, job)
        except (KeyError, TypeError, ValueError):  # a line of another version: left out
            continue
    return [usage[index] for index in sorted(usage)]


def _job_of_chunk(session: Session) -> dict[int, str]:
    """The job that claimed each chunk last, as the driver saw it (a detached map's
    chunks were claimed with no driver to see it: their records name the job)."""
    claimed: dict[int, str] = {}
    for event in _chunk_events(session):
        if event.event == "claimed":
            claimed[event.chunk] = event.job_id
        elif event.event == "posted":
            claimed.pop(event.chunk, None)  # posted again: an earlier claim is not the one
    return claimed


def _with_usage(outcomes: list[TaskOutcome], session: Session) -> list[TaskOutcome]:
    usage = {u.index: u for u in _task_usage(session)}
    return [
        dataclasses.replace(
            o,
            wall_s=usage[o.index].wall_s,
            cpu_s=usage[o.index].cpu_s,
            max_rss_mb=usage[o.index].max_rss_mb,
            job_id=usage[o.index].job_id,
        )
        if o.index in usage and o.status is not TaskStatus.MISSING
        else o
        for o in outcomes
    ]


@dataclass(frozen=True)
class Spread:
    """Median, 95th percentile (nearest rank) and maximum of some numbers."""

    median: float
    p95: float
    max: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        ordered = sorted(values)
        if not ordered:
            raise ValueError("no values")
        median = statistics.median(ordered)
        rank = max(1, -(-95 * len(ordered) // 100))  # nearest rank: ceil(0.95 n)
        return cls(median, ordered[rank - 1], ordered[-1])


MEM_HEADROOM = 1.25
"""The suggested memory is the largest peak of a job times this..."""
MEM_STEP_MB = 100
"""...rounded up to a multiple of this."""
TIME_HEADROOM = 1.5
"""The suggested time is the longest chunk times this, plus :data:`JOB_START_S`, rounded
up to whole minutes: a job must at least finish the chunk it holds."""
JOB_START_S = 60


@dataclass(frozen=True)
class Efficiency:
    """The time and memory the tasks of a session used, and what to ask for next time."""

    num_tasks: int
    """Tasks whose worker measured them (a result of batchpool 0.2 or later)."""
    wall_s: Spread
    cpu_s: Spread
    cpu_fraction: float
    """CPU seconds over wall seconds, of all these tasks together."""
    longest_chunk_s: float
    max_rss_mb_by_job: tuple[tuple[str, float], ...]
    """Each job's peak resident memory (MiB), largest first."""
    suggested_time_s: int
    suggested_mem_mb: int

    @property
    def job_rss_mb(self) -> Spread:
        return Spread.of([mb for _, mb in self.max_rss_mb_by_job])

    def suggestion(self) -> str:
        """``time=H:MM:SS mem=NM``: options for the next run of the same work."""
        hours, rest = divmod(self.suggested_time_s, 3600)
        return f"time={hours}:{rest // 60:02d}:{rest % 60:02d} mem={self.suggested_mem_mb}M"

    def lines(self) -> list[str]:
        """What the tasks used, and what to ask for, as ``batchpool status`` says it."""
        wall, cpu, rss = self.wall_s, self.cpu_s, self.job_rss_mb
        return [
            f"time per task ({self.num_tasks} measured): median {wall.median:.2f} s, "
            f"p95 {wall.p95:.2f} s, max {wall.max:.2f} s; CPU median {cpu.median:.2f} s, "
            f"p95 {cpu.p95:.2f} s, max {cpu.max:.2f} s ({self.cpu_fraction:.0%} of the wall time)",
            f"peak memory per job ({len(self.max_rss_mb_by_job)} jobs): median "
            f"{rss.median:.0f} MiB, p95 {rss.p95:.0f} MiB, max {rss.max:.0f} MiB",
            f"suggested for the next run: {self.suggestion()} (the longest chunk took "
            f"{self.longest_chunk_s:.1f} s)",
        ]


def efficiency(session_dir: PathLike) -> Optional[Efficiency]:
    """:class:`Efficiency` of the session's measured tasks; None if there are none."""
    measured = [u for u in task_usage(session_dir) if u.cpu_s is not None]
    if not measured:
        return None
    by_job: dict[str, float] = {}
    by_chunk: dict[int, float] = {}
    for u in measured:
        job = u.job_id or "?"
        by_job[job] = max(by_job.get(job, 0.0), u.max_rss_mb or 0.0)
        by_chunk[u.chunk] = by_chunk.get(u.chunk, 0.0) + u.wall_s
    wall = [u.wall_s for u in measured]
    cpu = [u.cpu_s or 0.0 for u in measured]
    longest = max(by_chunk.values())
    time_s = 60 * -(-int(longest * TIME_HEADROOM + JOB_START_S) // 60)
    mem_mb = MEM_STEP_MB * -(-int(max(by_job.values()) * MEM_HEADROOM) // MEM_STEP_MB)
    return Efficiency(
        len(measured),
        Spread.of(wall),
        Spread.of(cpu),
        sum(cpu) / sum(wall) if sum(wall) > 0 else 0.0,
        longest,
        tuple(sorted(by_job.items(), key=lambda item: -item[1])),
        time_s,
        max(MEM_STEP_MB, mem_mb),
    )
