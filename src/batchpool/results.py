"""Reading a kept session after the fact: what every task returned, raised, or never did.

::

    outcomes = batchpool.load(".batchpool/20260101T120000_0123456789abcdef")
    values = [o.value for o in outcomes if o.status is TaskStatus.DONE]

Nothing is submitted or run. Results are read from ``results.archive`` and from
result files still in ``results/`` (a map that was interrupted before it
collected them). This module only reads a session, through
:class:`~batchpool.session.Session`.
"""

from __future__ import annotations

import datetime
import enum
import io
import json
import os
import pickle
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Union

from .errors import PoolError, RemoteError
from .proto_pool import _task_error
from .session import DriverLock, JournalEntry, Manifest, Session, read_json_lines

PathLike = Union[str, os.PathLike]

__all__ = [
    "ChunkState",
    "ChunkSummary",
    "LogEvent",
    "NotASessionError",
    "ResultsError",
    "SessionSummary",
    "TaskOutcome",
    "TaskStatus",
    "Timeline",
    "TimelinePoint",
    "Unresolved",
    "find_sessions",
    "is_finished",
    "is_session",
    "live_driver",
    "load",
    "log_events",
    "open_session",
    "summarize_chunks",
    "summarize_session",
    "timeline",
]


class NotASessionError(PoolError, ValueError):
    """A path that is not a batchpool session directory (``session_dir`` is that path)."""


class ResultsError(PoolError):
    """A session whose stored results cannot be read here."""


class TaskStatus(enum.Enum):
    """What became of one task."""

    DONE = "done"
    """The task returned a value."""
    FAILED = "failed"
    """The task raised an exception."""
    MISSING = "missing"
    """No result of the task's chunk is in the session (not run, lost or interrupted)."""


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
    """

    index: int
    status: TaskStatus
    value: Any = None
    exception: Optional[BaseException] = None
    traceback: str = ""

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
        raise NotASessionError(
            f"{path} is not a batchpool session: it has no session.json", path
        ) from None
    except (OSError, ValueError, TypeError) as error:
        raise NotASessionError(
            f"{path} is not a readable batchpool session: session.json: {error}", path
        ) from error


def is_session(path: PathLike) -> bool:
    """Whether ``path`` is a session directory with a readable manifest."""
    try:
        open_session(path)
    except NotASessionError:
        return False
    return True


def find_sessions(work_dir: PathLike) -> list[Path]:
    """The session directories directly inside ``work_dir``, oldest name first."""
    entries = sorted(Path(work_dir).iterdir())
    return [entry for entry in entries if entry.is_dir() and is_session(entry)]


def is_finished(session: Session) -> bool:
    """Whether the map of ``session`` succeeded (its ``done`` marker exists)."""
    return session.is_done()


def live_driver(session: Session) -> Optional[DriverLock]:
    """The driver that drives ``session`` now, if one holds its lock and is alive."""
    holder = session.lock_holder()
    if holder is None or holder.is_stale(time.time()):
        return None
    return holder


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
        One per task of the map (``manifest.num_tasks`` of them).

    Raises
    ------
    NotASessionError
        ``session_dir`` is not a session (also a ``ValueError``).
    ResultsError
        A chunk's results cannot be unpickled here (with ``strict=True``).
    """
    session, manifest = open_session(session_dir)
    outcomes = [TaskOutcome(i, TaskStatus.MISSING) for i in range(manifest.num_tasks)]
    for chunk, payload in sorted(session.result_payloads().items()):
        tasks = manifest.chunk_tasks(chunk)
        envelopes = _envelopes(payload, chunk, session.dir, strict)
        for index, envelope in zip(tasks, envelopes):
            outcomes[index] = _outcome(index, envelope, session.dir)
    return outcomes


def _envelopes(payload: bytes, chunk: int, session_dir: Path, strict: bool) -> list:
    try:
        if strict:
            return pickle.loads(payload)
        return _TolerantUnpickler(io.BytesIO(payload)).load()
    except Exception as error:  # anything a foreign pickle may raise
        raise ResultsError(
            f"The results of chunk {chunk} cannot be read here: {error!r}. "
            "Load them where the modules of the results are importable "
            "(same environment and PYTHONPATH as the map's driver).",
            session_dir,
        ) from error


def _outcome(index: int, envelope: tuple, session_dir: Path) -> TaskOutcome:
    ok, value = envelope
    if ok:
        return TaskOutcome(index, TaskStatus.DONE, value=value)
    traceback_text = value[3]
    error = _task_error(value, session_dir)
    return TaskOutcome(index, TaskStatus.FAILED, exception=error, traceback=traceback_text)


# -- summaries for the batchpool command -----------------------------------------------


class ChunkState(enum.Enum):
    """What the session tells about one chunk (the scheduler is not asked)."""

    DONE = "done"
    FAILED = "failed"
    NO_RESULT = "no result"
    """Pending, running or lost: the session cannot tell which."""


@dataclass(frozen=True)
class ChunkSummary:
    """One chunk of a session: its tasks, what became of them and its jobs."""

    chunk: int
    tasks: range
    state: ChunkState
    job_ids: tuple[str, ...]
    first_failure: str
    """``Type: message`` of the chunk's first failed task, else ``""``."""
    num_done_tasks: int

    @property
    def num_resubmissions(self) -> int:
        return max(0, len(self.job_ids) - 1)


@dataclass(frozen=True)
class SessionSummary:
    """One session of a work_dir."""

    directory: Path
    manifest: Manifest
    num_done_tasks: int
    finished: bool


def summarize_chunks(session_dir: PathLike) -> list[ChunkSummary]:
    """Every chunk of the session, with the job ids recorded for it in ``jobs.jsonl``."""
    session, manifest = open_session(session_dir)
    outcomes = load(session.dir, strict=False)
    job_ids = _job_ids_by_chunk(session.journal())
    return [
        _chunk_summary(chunk, [outcomes[i] for i in manifest.chunk_tasks(chunk)], job_ids)
        for chunk in range(manifest.num_chunks)
    ]


def _job_ids_by_chunk(journal: Sequence[JournalEntry]) -> dict[int, tuple[str, ...]]:
    ids: dict[int, tuple[str, ...]] = {}
    for entry in journal:
        ids[entry.chunk] = (*ids.get(entry.chunk, ()), entry.job_id)
    return ids


def _chunk_summary(
    chunk: int, outcomes: list[TaskOutcome], job_ids: dict[int, tuple[str, ...]]
) -> ChunkSummary:
    failures = [o for o in outcomes if o.status is TaskStatus.FAILED]
    if failures:
        state = ChunkState.FAILED
    elif outcomes and all(o.status is TaskStatus.DONE for o in outcomes):
        state = ChunkState.DONE
    else:
        state = ChunkState.NO_RESULT
    tasks = range(outcomes[0].index, outcomes[-1].index + 1) if outcomes else range(0)
    first = failures[0].failure_line() if failures else ""
    num_done = sum(o.status is TaskStatus.DONE for o in outcomes)
    return ChunkSummary(chunk, tasks, state, job_ids.get(chunk, ()), first, num_done)


def summarize_session(session_dir: PathLike) -> SessionSummary:
    """Name, manifest, number of tasks done and whether the map finished."""
    session, manifest = open_session(session_dir)
    outcomes = load(session.dir, strict=False)
    num_done = sum(o.status is TaskStatus.DONE for o in outcomes)
    return SessionSummary(session.dir, manifest, num_done, is_finished(session))


# -- the pool's log ---------------------------------------------------------------------


@dataclass(frozen=True)
class LogEvent:
    """One line of the session's ``log.jsonl``: what the pool did, and when."""

    time: datetime.datetime
    message: str
    """The first word: ``session``, ``submitted``, ``resubmitting``, ``done``, ..."""
    fields: dict
    """The message's details, e.g. ``{"chunks": 3, "first_job": "17"}``."""


def log_events(session_dir: PathLike) -> list[LogEvent]:
    """The lines of the session's ``log.jsonl``, oldest first; unreadable lines are skipped."""
    session, _ = open_session(session_dir)
    events = []
    for row in read_json_lines(session.log_path):
        event = _log_event(row)
        if event is not None:
            events.append(event)
    return events


def _log_event(row: dict) -> Optional[LogEvent]:
    try:
        time = datetime.datetime.fromisoformat(row["t"])
        message, _, details = str(row["m"]).partition(" ")
        fields = json.loads(details) if details else {}
    except (KeyError, ValueError):
        return None
    return LogEvent(time, message, fields if isinstance(fields, dict) else {})


@dataclass(frozen=True)
class TimelinePoint:
    """The number of jobs submitted and ended so far, ``time_s`` seconds into the map."""

    time_s: float
    submitted: int
    ended: int


@dataclass(frozen=True)
class Timeline:
    """The jobs of a map against time, from its ``log.jsonl``.

    ``log.jsonl`` records every submission (``submitted``), every job that failed
    or vanished (``resubmitting``) and the end of the map (``done`` or
    ``stopped``, when every job has ended); ``collected`` lines, where a pool
    writes them, count finished jobs as they come.
    """

    start: Optional[datetime.datetime]
    points: tuple[TimelinePoint, ...]
    num_resubmissions: int
    end: str
    """``done``, ``stopped`` or ``""`` (still running, or its driver died)."""


def timeline(session_dir: PathLike) -> Timeline:
    """The :class:`Timeline` of the map kept in ``session_dir``."""
    events = log_events(session_dir)
    start = events[0].time if events else None
    submitted = ended = resubmissions = 0
    end = ""
    points = [TimelinePoint(0.0, 0, 0)] if events else []
    for event in events:
        if event.message == "submitted":
            submitted += int(event.fields.get("chunks", 1))
        elif event.message == "resubmitting":
            ended += 1
            resubmissions += 1
        elif event.message == "collected":
            ended += int(event.fields.get("chunks", 1))
        elif event.message in ("done", "stopped"):
            ended, end = submitted, event.message
        else:
            continue
        seconds = (event.time - start).total_seconds()
        points.append(TimelinePoint(seconds, submitted, min(ended, submitted)))
    return Timeline(start, tuple(points), resubmissions, end)
