"""The files of a pool and of its maps: the one owner of the layout on disk.

Every name comes from :mod:`batchpool._layout`, which the worker shares.

A pool's queue, :class:`PoolDirectory` (``WORK_DIR/pool_<time>_<pid>_<random>/``): the
driver's log of tickets, its jobs' mailboxes and logs, the driver's heartbeat (see
:mod:`batchpool._layout`, which also says what the shared filesystem may and may not be
trusted with).

A map's session, :class:`Session` (``WORK_DIR/<time>_<key>/``, re-attached by key): its
function, tasks, manifest, the record files of its chunks (a record file that failed its
checks is kept aside for inspection), the archive of collected results, the journals of
its chunks and of what the pool did, its driver's lock and, once the map succeeded, its
``done`` marker, or once it ended on task errors, its ``failed`` marker
(:class:`batchpool._layout.SessionPaths` names each).

Directories are 0700 and files 0600. Whole files are written atomically
(temporary name, then rename). The archive and the journals are appended to; an append
that fails (a full disk) is cut off again, and a record that is torn or damaged anyway
(its checksum, or a line that is not JSON) is skipped when read, the records after it
kept. A chunk whose result is skipped has no result: it runs again.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import datetime
import enum
import hashlib
import json
import os
import pickle
import secrets
import shutil
import socket
import struct
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

from . import _layout
from ._layout import (
    Claim,
    DriverBeat,
    PoolPaths,
    RecordReader,
    SessionPaths,
    Ticket,
    file_age_s,
    process_alive,
)
from .errors import NotASessionError, SessionBusyError
from .files import (
    append_durably,
    append_text,
    file_size,
    private_directory,
    read_json_lines,
    write_file,
)

_RECORD_HEADER = struct.Struct("<Q")

LOG_KEYS = frozenset(("t", "l", "m"))
"""The fields of every ``log.jsonl`` line: time, level, message; the rest are the event's."""

STALE_LOCK_S = 120.0
"""A lock of a driver on another host whose heartbeat is older than this is stale."""
HEARTBEAT_S = 10.0
"""How often a live driver renews its locks and its pool's heartbeat."""

LAYOUT_VERSION = 5
"""Changes with the format of the session's files (4: checksummed archive records; 3: tasks
indexed one by one, results per chunk with their task range; the pool's ticket queue).
It is part of the session key, so a session written in another layout is never resumed,
only started anew."""


class SessionState(enum.Enum):
    """Where the map of a session stands, as the session's files tell (no scheduler is
    asked): :meth:`Session.state`, in :mod:`batchpool.results` and ``batchpool status``."""

    FINISHED = "finished"
    """The map succeeded (its ``done`` marker)."""
    RUNNING = "running"
    """A live driver holds its lock."""
    FAILED = "failed"
    """Every task ran and some raised: the map ended on their errors
    (:meth:`Session.mark_failed`). A resume (:func:`batchpool.attach` with
    ``retry_failed=True``, or the same map again) runs the failed tasks again."""
    NOT_FINISHED = "not finished"
    """None of these: it stopped early (an error of the pool, a lost job it gave up on,
    an interrupt), was detached, or its driver died; a resume (:func:`batchpool.attach`,
    or the same map again) takes it over."""


@dataclass(frozen=True)
class DriverLock:
    """Who drives a session: the content of ``driver.lock``."""

    host: str
    pid: int
    heartbeat: float
    """When it was written, by the writer's clock (for people to read; nothing compares it)."""
    space: str = ""
    """The process space of ``pid`` (:func:`batchpool._layout.process_space`)."""

    @classmethod
    def mine(cls) -> DriverLock:
        return cls(socket.gethostname(), os.getpid(), time.time(), _layout.process_space())

    def is_mine(self) -> bool:
        return self == dataclasses.replace(DriverLock.mine(), heartbeat=self.heartbeat)

    def is_stale(self, age_s: float) -> bool:
        """Whether its driver is gone: its process, if it is of this process space; else
        whether the lock was not rewritten for :data:`STALE_LOCK_S`, ``age_s`` being its
        age by the filesystem's clock (:func:`file_age_s`)."""
        if self.space == _layout.process_space():
            return not process_alive(self.pid)
        return age_s > STALE_LOCK_S


LOCK_WIDTH = 512
"""``driver.lock`` is padded to this size, so that a heartbeat rewrites it in place."""


class SessionKey:
    """A digest of everything that makes two maps "the same map", and of the layout,
    taken part by part (the tasks as they are written)."""

    def __init__(self, parts: Iterable[bytes] = ()) -> None:
        self._digest = hashlib.sha256(b"layout %d" % LAYOUT_VERSION)
        for part in parts:
            self.add(part)

    def add(self, part: bytes) -> None:
        self._digest.update(_RECORD_HEADER.pack(len(part)))
        self._digest.update(part)

    def hexdigest(self) -> str:
        return self._digest.hexdigest()[:16]


def session_key(parts: Sequence[bytes]) -> str:
    """The :class:`SessionKey` of ``parts``."""
    return SessionKey(parts).hexdigest()


@dataclass(frozen=True)
class Manifest:
    """``session.json``: what the map was, for tools that read a session later."""

    num_tasks: Optional[int]
    """None while the tasks of an ``imap`` are still being read."""
    chunksize: Optional[int]
    """As given to the map; None when chunks are cut by measured time."""
    backend: str
    function: str
    created: str
    layout: int = LAYOUT_VERSION
    """How the session's files are laid out (:data:`LAYOUT_VERSION` when written)."""


@dataclass(frozen=True)
class ChunkResult:
    """What a chunk's record file holds: the tasks that ended (a prefix of the chunk's
    tasks if the chunk did not end), their envelopes (each still pickled) and times."""

    chunk: int
    tasks: range
    elapsed_s: float
    pickled_envelopes: tuple[bytes, ...]
    task_s: tuple[float, ...] = ()
    complete: bool = True
    """The chunk ended (its END record is there)."""
    began: bool = True
    """A worker began the chunk (its BEGIN record is there)."""
    damaged: bool = False
    """The file ends with a torn or damaged record (read up to it)."""
    claim: Optional[Claim] = None
    """Who claimed it: the claim in its first record (None while it is not written)."""

    @property
    def withdrawn(self) -> bool:
        """The claim is the driver's: it took the ticket back, no task ran."""
        return self.claim is not None and self.claim.withdrawn

    @property
    def job_id(self) -> str:
        """The job whose worker claimed it ("" if not known)."""
        return "" if self.claim is None else self.claim.job_id

    @classmethod
    def parse(cls, chunk: int, data: bytes) -> ChunkResult:
        records, whole = _layout.decode_records(data)
        start, began, stop, elapsed = 0, False, None, None
        claim = None
        envelopes: list[bytes] = []
        task_s: list[float] = []
        for kind, number, seconds, payload in records:
            if kind == _layout.BEGIN:
                start, began = number, True
                claim = Claim.decode(payload)
            elif kind == _layout.TASK and began and number == start + len(envelopes):
                envelopes.append(payload)
                task_s.append(seconds)
            elif kind == _layout.END and began:
                stop, elapsed = number, seconds
        complete = stop == start + len(envelopes)
        return cls(
            chunk,
            range(start, start + len(envelopes)),
            sum(task_s) if elapsed is None else elapsed,
            tuple(envelopes),
            tuple(task_s),
            complete,
            began,
            not whole,
            claim,
        )

    def envelopes(self) -> list:
        return [pickle.loads(e) for e in self.pickled_envelopes]

    def measured(self) -> list[tuple[Optional[float], Optional[float]]]:
        """``(cpu_s, max_rss_mb)`` of each task as its worker measured it
        (:func:`batchpool._layout.decode_usage`); ``(None, None)`` where it did not say."""
        found: list[tuple[Optional[float], Optional[float]]] = []
        for payload in self.pickled_envelopes:
            usage = _layout.decode_usage(payload)
            found.append((None, None) if usage is None else (usage[0], usage[1] / 1024))
        return found


@dataclass(frozen=True)
class ChunkEvent:
    """One line of ``chunks.jsonl``: a chunk was posted as a ticket, or claimed by a job."""

    event: str
    """``posted``, ``claimed`` or ``lost``."""
    chunk: int
    start: int = 0
    stop: int = 0
    attempt: int = 0
    pool: str = ""
    ticket: int = -1
    job_id: str = ""
    cause: str = ""
    """For ``lost``: the cause (:class:`batchpool.policy.Cause` value)."""
    detail: str = ""
    """For ``lost``: the whole history line (:meth:`batchpool.policy.Loss.describe`)."""


class Session:
    """The files of one map: :meth:`create` a new one, or ``Session(dir)`` an existing one."""

    def __init__(self, directory: Path) -> None:
        self.dir = Path(directory)
        self.paths = SessionPaths(self.dir)
        self._log_fd: int | None = None
        self._log_failed = False
        self._num_tasks_written = 0
        self._tasks_end = 0

    @classmethod
    def create(cls, work_dir: Path, key: str, tasks_from: Optional[Path] = None) -> Session:
        """Make a new, private session directory inside ``work_dir``, locked by this driver;
        with the tasks written in the directory ``tasks_from`` (see :meth:`stage_tasks`),
        moved in. A session that could not be made whole is removed."""
        directory = private_directory(Path(work_dir), key)
        session = cls(directory)
        try:
            session.acquire()  # before anything else: no one re-attaches to it half-made
            os.mkdir(session.paths.results, mode=0o700)
            if tasks_from is not None:
                staged = SessionPaths(tasks_from)
                for source, target in (
                    (staged.tasks, session.paths.tasks),
                    (staged.tasks_index, session.paths.tasks_index),
                ):
                    if os.path.exists(source):
                        os.rename(source, target)
                session.reopen_tasks()
        except BaseException:
            session.remove()
            raise
        return session

    @classmethod
    def stage_tasks(cls, directory: Path, pickled_tasks: Iterable[bytes]) -> int:
        """Write tasks into the empty private ``directory`` as :meth:`append_tasks` would,
        before the session they belong to is known; their number."""
        staging = cls(directory)
        staging.append_tasks(pickled_tasks)
        return staging.num_tasks_written

    @classmethod
    def find_unfinished(cls, work_dir: Path, key: str) -> Session | None:
        """The newest complete session of ``key`` in ``work_dir`` that has not succeeded.

        Complete: its ``session.json``, written last, exists."""
        work_dir = Path(work_dir).absolute()
        if not work_dir.is_dir():
            return None
        names = [name for name in os.listdir(work_dir) if _layout.key_of(name) == key]
        for name in sorted(names, reverse=True):
            session = cls(work_dir / name)
            if not session.is_done() and os.path.exists(session.paths.manifest):
                return session
        return None

    @property
    def name(self) -> str:
        return self.dir.name

    @property
    def key(self) -> str:
        """The :class:`SessionKey` of the map, from the directory's name."""
        return _layout.key_of(self.name)

    # -- the driver lock -------------------------------------------------------------

    def acquire(self) -> None:
        """Become this session's driver; take over a stale lock.

        Raises
        ------
        SessionBusyError
            If another driver that is alive holds the lock.
        """
        for _ in range(3):  # a lost race against another driver is tried again
            if _layout.create_exclusively(self.paths.lock, _lock_payload()):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.paths.failed)  # a resume: how it ended is not known yet
                return
            holder = self.lock_holder()
            if holder is not None and not holder.is_stale(self.lock_age_s()):
                raise SessionBusyError(
                    f"the session {self.dir} is driven by process {holder.pid} on "
                    f"{holder.host} (heartbeat {time.ctime(holder.heartbeat)})"
                )
            stale = self.paths.stale_lock(os.getpid())
            try:
                os.rename(self.paths.lock, stale)
            except FileNotFoundError:
                continue
            os.unlink(stale)
        raise SessionBusyError(f"could not take the lock of {self.dir}")

    def lock_holder(self) -> DriverLock | None:
        try:
            return DriverLock(**json.loads(Path(self.paths.lock).read_text()))
        except (FileNotFoundError, json.JSONDecodeError, TypeError):
            return None  # gone, or half written by a crashed driver

    def lock_age_s(self) -> float:
        """How long ago the lock was written (:func:`file_age_s`); 0 if it is gone."""
        try:
            return file_age_s(self.paths.lock)
        except FileNotFoundError:
            return 0.0

    def heartbeat(self) -> None:
        """Rewrite the lock in place (the same file: another host that holds it open or
        cached sees the new content and time)."""
        _layout.write_in_place(self.paths.lock, _lock_payload())

    def release(self) -> None:
        holder = self.lock_holder()
        if holder is not None and holder.is_mine():
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.paths.lock)

    def live_driver(self) -> DriverLock | None:
        """The driver that drives the session now, if one holds its lock and is alive."""
        holder = self.lock_holder()
        if holder is None or holder.is_stale(self.lock_age_s()):
            return None
        return holder

    def state(self) -> SessionState:
        """Where the map stands, as the session's files tell."""
        if self.is_done():
            return SessionState.FINISHED
        if self.live_driver():
            return SessionState.RUNNING
        if os.path.exists(self.paths.failed):
            return SessionState.FAILED
        return SessionState.NOT_FINISHED

    # -- what the driver writes before posting tickets -------------------------------

    def write_function(self, payload: bytes) -> None:
        write_file(Path(self.paths.function), payload)

    def append_tasks(self, pickled_tasks: Iterable[bytes]) -> None:
        """Append tasks, each pickled on its own, and their offsets, as they come (the
        pickles are not all held at once); closed before return, so that a worker on
        another host that opens them later sees them (NFS)."""
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND
        tasks_fd = os.open(self.paths.tasks, flags, 0o600)
        index_fd = os.open(self.paths.tasks_index, flags, 0o600)
        with os.fdopen(tasks_fd, "ab") as tasks, os.fdopen(index_fd, "ab") as index:
            for payload in pickled_tasks:
                end = self._tasks_end + len(payload)
                tasks.write(payload)
                index.write(_layout.TASK_INDEX.pack(self._tasks_end, end))
                self._tasks_end = end
                self._num_tasks_written += 1

    def reopen_tasks(self) -> None:
        """Know the tasks already written (a re-attached session)."""
        self._tasks_end = file_size(self.paths.tasks)
        self._num_tasks_written = file_size(self.paths.tasks_index) // _layout.TASK_INDEX.size

    @property
    def num_tasks_written(self) -> int:
        return self._num_tasks_written

    def write_manifest(self, manifest: Manifest) -> None:
        """Written last: a session with a manifest is complete."""
        write_file(self.paths.manifest, json.dumps(asdict(manifest), indent=1).encode())

    def manifest(self) -> Manifest:
        """The manifest; a :class:`NotASessionError` for a session that another
        batchpool version laid out, which this one would misread."""
        fields = json.loads(Path(self.paths.manifest).read_text())
        layout = fields.get("layout")  # batchpool 0.1 wrote none
        if layout != LAYOUT_VERSION:
            writer = "batchpool 0.1" if layout is None else f"session layout {layout}"
            raise NotASessionError(
                f"{self.dir} was written by {writer}, and this batchpool reads only session "
                f"layout {LAYOUT_VERSION}: read it with the batchpool that wrote it (rerunning "
                "the map with this one starts a new session)",
                self.dir,
            )
        return Manifest(**fields)

    # -- results ---------------------------------------------------------------------

    def archive_result(self, chunk: int, start: int, *pickled_envelopes: bytes) -> None:
        """Keep envelopes the driver made itself (a task that killed its worker) as the
        result of a chunk of their own."""
        self._archive(chunk, _layout.encode_chunk(start, list(pickled_envelopes)))

    def take_record(
        self, chunk: int, tries: int, whole_only: bool = False
    ) -> ChunkResult | None:
        """What a try of a chunk recorded, whole or not (``whole_only``: only if whole): the
        tasks that ended are folded into the archive (as chunk ``chunk``), and the file is
        removed. None if there is no such file, or it holds the driver's own claim (a
        ticket it withdrew)."""
        return self._take(Path(self.paths.record(chunk, tries)), chunk, whole_only)

    def record_claim(self, chunk: int, tries: int) -> Claim | None:
        """Who claimed a try of a chunk (the claim in its record file); None if nobody
        yet, or the claim is still being written."""
        data = _layout.read_file(self.paths.record(chunk, tries))
        return None if data is None else ChunkResult.parse(chunk, data).claim

    def withdraw(self, chunk: int, tries: int) -> bool:
        """Take a try of a chunk back before a worker claims it (a record file that holds
        the driver's claim); False if a worker claimed it first."""
        claim = Claim(_layout.WITHDRAWN, socket.gethostname(), os.getpid())
        record = _layout.encode_record(_layout.BEGIN, 0, time.time(), claim.encode())
        path = self.paths.record(chunk, tries)
        try:
            return _layout.create_exclusively(path, record)
        except FileNotFoundError:  # the session's results are gone: nothing to take
            return True
        except OSError as error:
            if error.errno not in _layout.NO_SPACE_ERRNOS or not os.path.exists(path):
                raise
            return True  # created, its claim unwritten for want of room: taken all the same

    def remove_record(self, chunk: int, tries: int) -> None:
        """Remove a record file that is done with (withdrawn, or folded into the archive)."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.paths.record(chunk, tries))

    def _take(self, path: Path, chunk: int, whole_only: bool) -> ChunkResult | None:
        data = _layout.read_file(str(path))
        if data is None:
            return None
        result = ChunkResult.parse(chunk, data)
        if result.withdrawn or (whole_only and not result.complete):
            return None
        if result.tasks:
            self._archive(chunk, data[: _whole_records_end(data)])
        if result.damaged:
            kept_as = self.quarantine(path)
            self.log(
                "result damaged",
                chunk=chunk,
                file=path.name,
                kept_as=kept_as.name,
                tasks_kept=len(result.tasks),
            )
        else:
            path.unlink()
        return result

    def _archive(self, chunk: int, record_file: bytes) -> None:
        record = _layout.encode_record(ARCHIVE_RECORD, chunk, time.time(), record_file)
        append_durably(self.paths.archive, record)

    def quarantine(self, path: Path) -> Path:
        """Keep a damaged file of the session for inspection, out of every reader's way:
        renamed ``NAME.damaged`` (``NAME.damaged.N`` if that exists)."""
        for n in range(1000):
            target = Path(SessionPaths.damaged(path, n))
            if not target.exists():
                os.rename(path, target)
                return target
        raise FileExistsError(f"no free quarantine name for {path}")

    def quarantined(self) -> list[Path]:
        """The damaged record files kept in ``results/``."""
        results_dir = Path(self.paths.results)
        if not results_dir.is_dir():
            return []
        return sorted(p for p in results_dir.iterdir() if SessionPaths.is_damaged(p.name))

    def archived_results(self) -> list[ChunkResult]:
        return self.read_archive().results

    def read_archive(self) -> Archive:
        """The collected results, and the damaged spans of the archive that were skipped."""
        results, damaged = [], []
        for chunk, payload, span in _scan_archive(_layout.read_file(self.paths.archive)):
            if payload is None:
                damaged.append(span)
            else:
                results.append(ChunkResult.parse(chunk, payload))
        return Archive(results, damaged)

    def all_results(self) -> list[ChunkResult]:
        """Every result there is: archived, and whole record files not yet collected."""
        results = {r.chunk: r for r in self.archived_results()}
        for chunk, tries in self.record_files():
            if chunk not in results:
                data = _layout.read_file(self.paths.record(chunk, tries))
                result = None if data is None else ChunkResult.parse(chunk, data)
                if result is not None and result.complete:
                    results[chunk] = result
        return sorted(results.values(), key=lambda r: r.tasks.start)

    def record_files(self) -> list[tuple[int, int]]:
        """``(chunk, tries)`` of the record files in ``results/`` (a fresh listing)."""
        results_dir = self.paths.results
        if not os.path.isdir(results_dir):
            return []
        names = (_layout.parse_record_file_name(entry.name) for entry in os.scandir(results_dir))
        return sorted(name for name in names if name is not None)

    # -- chunks, cancellation, the end -----------------------------------------------

    def record_chunks(self, events: Sequence[ChunkEvent]) -> None:
        lines = "".join(json.dumps(vars(e)) + "\n" for e in events)
        append_text(self.paths.chunk_events, lines)

    def chunk_events(self) -> list[ChunkEvent]:
        return [ChunkEvent(**row) for row in read_json_lines(self.paths.chunk_events)]

    def log(self, message: str, **fields: object) -> None:
        """Append one line to ``log.jsonl``: ``{"t": time, "l": "INFO", "m": message}``
        and ``fields`` as fields of their own (:data:`LOG_KEYS` are not theirs to use).
        The log is what the pool tells, not what it keeps: a line that cannot be written
        (a full disk) is said on stderr, once, and the map goes on."""
        clash = LOG_KEYS.intersection(fields)
        if clash:
            raise ValueError(f"log fields may not be called {sorted(clash)}")
        stamp = datetime.datetime.now().isoformat(timespec="milliseconds")
        row = {"t": stamp, "l": "INFO", "m": message, **fields}
        line = (json.dumps(row, default=str) + "\n").encode()
        try:
            if self._log_fd is None:
                flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND
                self._log_fd = os.open(self.paths.log, flags, 0o600)
            os.write(self._log_fd, line)
        except OSError as error:
            if not self._log_failed:
                sys.stderr.write(f"batchpool: cannot write {self.paths.log}: {error}\n")
            self._log_failed = True

    def close_log(self) -> None:
        if self._log_fd is not None:
            os.close(self._log_fd)
            self._log_fd = None

    def mark_done(self) -> None:
        write_file(self.paths.done, b"")

    def mark_failed(self, num_failed_tasks: int) -> None:
        """The map ended because ``num_failed_tasks`` tasks raised (its state is
        :attr:`SessionState.FAILED` until a driver takes it over again). A marker that
        cannot be written (a full disk) is said on stderr: the map counts as not
        finished then."""
        try:
            write_file(self.paths.failed, json.dumps({"failed_tasks": num_failed_tasks}).encode())
        except OSError as error:
            sys.stderr.write(f"batchpool: cannot mark {self.dir} as failed: {error}\n")

    def is_done(self) -> bool:
        """True once the map of this session succeeded."""
        return os.path.exists(self.paths.done)

    def is_summary(self) -> bool:
        """True for a successful map's session reduced to its summary
        (:meth:`keep_summary`)."""
        return self.is_done() and not os.path.exists(self.paths.function)

    def keep_summary(self) -> None:
        """Reduce a successful map's session to what ``batchpool report`` and
        ``batchpool status`` read: its manifest, log (with each chunk's ``usage``
        line, :meth:`log_usage`), chunk events and ``done`` marker. Its function (first:
        a session without it is a summary), results, tasks and lock are removed, as
        :meth:`remove` removes all: what cannot be is left (``batchpool clean``)."""
        self.close_log()
        for path in (self.paths.function, self.paths.archive, self.paths.tasks):
            with contextlib.suppress(OSError):
                os.unlink(path)
        shutil.rmtree(self.paths.results, ignore_errors=True)
        for path in (self.paths.tasks_index, self.paths.lock):
            with contextlib.suppress(OSError):
                os.unlink(path)

    def log_usage(self, job_id: str, result: ChunkResult) -> None:
        """Log what each task of ``result`` used, as its worker measured it: one
        ``usage`` line per chunk (``start``, and per task ``wall_s``, ``cpu_s`` and
        ``rss_mb``, None where the worker did not say), which the summary keeps."""
        measured = result.measured()
        self.log(
            "usage",
            chunk=result.chunk,
            job=job_id,
            start=result.tasks.start,
            wall_s=[_four_digits(s) for s in result.task_s],
            cpu_s=[None if cpu is None else _four_digits(cpu) for cpu, _ in measured],
            rss_mb=[None if rss is None else round(rss, 1) for _, rss in measured],
        )

    def remove(self) -> None:
        self.close_log()
        shutil.rmtree(self.dir, ignore_errors=True)


def _four_digits(value: float) -> float:
    """``value`` to four significant digits (a ``usage`` line stays short)."""
    return float(f"{value:.4g}")


SUMMARIES_KEPT = 20
"""How many summaries of successful maps (:meth:`Session.keep_summary`) a work_dir
keeps: a pool removes the oldest beyond them, so an MCMC of thousands of maps leaves
20 (``batchpool clean`` removes them all)."""


class Summaries:
    """The summaries of successful maps in one work_dir, oldest first, as one pool keeps
    them: :meth:`keep` reduces a session to its summary and removes the oldest
    summaries beyond ``limit``. The work_dir is read once, at the first summary."""

    def __init__(self, work_dir: Path, limit: int = SUMMARIES_KEPT) -> None:
        self.work_dir = Path(work_dir)
        self.limit = limit
        self._kept: Optional[collections.deque[Path]] = None

    def keep(self, session: Session) -> None:
        if self._kept is None:
            self._kept = collections.deque(self._find())
        session.keep_summary()
        self._kept.append(session.dir)
        while len(self._kept) > self.limit:
            shutil.rmtree(self._kept.popleft(), ignore_errors=True)

    def _find(self) -> list[Path]:
        """The summaries in the work_dir now, by when their map ended (none if it
        cannot be read: then they stay)."""
        found = []
        with contextlib.suppress(OSError), os.scandir(self.work_dir) as entries:
            for entry in entries:
                session = Session(Path(entry.path))
                if entry.name.startswith(_layout.POOL_PREFIX) or not session.is_summary():
                    continue
                with contextlib.suppress(FileNotFoundError):  # removed by another pool
                    found.append((os.stat(session.paths.done).st_mtime, session.dir))
        return [directory for _, directory in sorted(found)]


ARCHIVE_RECORD = b"A"
"""The kind of a ``results.archive`` record: number, the chunk; payload, its record file."""


@dataclass(frozen=True)
class DamagedSpan:
    """Bytes of ``results.archive`` that are no whole record: skipped."""

    offset: int
    length: int


@dataclass(frozen=True)
class Archive:
    results: list[ChunkResult]
    damaged: list[DamagedSpan]


def _scan_archive(
    data: bytes | None,
) -> Iterator[tuple[int, bytes | None, DamagedSpan]]:
    """``(chunk, record file, span)`` for each archive record; ``(-1, None, span)`` for each
    damaged span, after which reading goes on at the next whole record."""
    pos = 0
    while data is not None and pos < len(data):
        found = _layout.decode_record_at(data, pos)
        if found is not None and found[0][0] == ARCHIVE_RECORD:
            (_, chunk, _, payload), end = found
            yield chunk, payload, DamagedSpan(pos, end - pos)
            pos = end
            continue
        resume = _next_archive_record(data, pos + 1)
        yield -1, None, DamagedSpan(pos, resume - pos)
        pos = resume


def _next_archive_record(data: bytes, pos: int) -> int:
    """Where the next whole archive record starts at or after ``pos`` (else the end)."""
    while True:
        pos = data.find(ARCHIVE_RECORD, pos)
        if pos < 0:
            return len(data)
        if _layout.decode_record_at(data, pos) is not None:
            return pos
        pos += 1


def _lock_payload() -> bytes:
    return json.dumps(asdict(DriverLock.mine())).encode().ljust(LOCK_WIDTH)


def _whole_records_end(data: bytes) -> int:
    """Where the whole records at the start of a record file end."""
    pos = 0
    while (found := _layout.decode_record_at(data, pos)) is not None:
        pos = found[1]
    return pos


@dataclass
class WorkerReport:
    """What a job's mailbox said (:mod:`batchpool._layout`), read as it grows."""

    reader: RecordReader
    ready: Optional[Claim] = None
    """The worker's claim once it is ready (host and pid); a new one after a requeue."""
    exited: bool = False
    ended: Optional[str] = None
    """How its process ended, as its watcher wrote."""

    def take(self, kind: bytes, payload: bytes) -> None:
        if kind == _layout.READY:  # a (re)start: what the last run said is past
            self.ready = Claim.decode(payload)
            self.exited, self.ended = False, None
        elif kind == _layout.EXITED:
            self.exited = True
        elif kind == _layout.ENDED:
            self.ended = payload.decode(errors="replace")


class PoolDirectory:
    """The queue of one pool (module docstring of :mod:`batchpool._layout`)."""

    PREFIX = _layout.POOL_PREFIX

    def __init__(self, directory: Path) -> None:
        self.dir = Path(directory)
        self.paths = PoolPaths(self.dir)
        self.reports: dict[str, WorkerReport] = {}
        """What each job's mailbox said so far, by job id."""
        self.claims: dict[int, Claim] = {}
        """Who claimed each ticket, as the mailboxes said."""
        self.finished: set[int] = set()
        """The tickets whose record file a worker finished, as the mailboxes said."""

    @classmethod
    def create(cls, work_dir: Path) -> PoolDirectory:
        key = f"{os.getpid()}_{secrets.token_hex(3)}"
        pool = cls(private_directory(Path(work_dir), key, prefix=cls.PREFIX))
        for sub in (pool.paths.logs, pool.paths.workers):
            os.mkdir(sub, mode=0o700)
        write_file(pool.paths.tickets, b"")  # before any job can look for it
        return pool

    @property
    def name(self) -> str:
        return self.dir.name

    @property
    def job_name(self) -> str:
        """The scheduler job name of this pool's jobs (starts with a letter, as SGE wants)."""
        return "bp_" + self.name[len(self.PREFIX) :]

    @property
    def log_dir(self) -> Path:
        return Path(self.paths.logs)

    def write_setup(
        self, initializer: bytes, worker_idle_s: float, maxtasksperchild: Optional[int]
    ) -> None:
        """What every worker reads when it starts: the driver's environment, the
        initializer and the worker settings."""
        snapshot = {"environ": dict(os.environb), "sys_path": list(sys.path), "cwd": os.getcwd()}
        write_file(self.paths.environment, pickle.dumps(snapshot))
        write_file(self.paths.initializer, initializer)
        write_file(self.paths.config, _layout.format_config(worker_idle_s, maxtasksperchild))

    def staging_dir(self) -> Path:
        """A new private directory for files whose place is not known yet."""
        for n in range(1000):
            path = Path(self.paths.staging(n))
            try:
                path.mkdir(mode=0o700)
            except FileExistsError:
                continue
            return path
        raise FileExistsError(f"no free staging directory in {self.dir}")

    # -- the driver's log --------------------------------------------------------------

    def post(self, tickets: Sequence[Ticket]) -> None:
        """Append ``tickets`` to the log, in one write."""
        posted = _layout.POSTED
        data = b"".join(_layout.encode_record(posted, t.number, 0.0, t.encode()) for t in tickets)
        if data:
            self._log(data)

    def close_tickets(self, numbers: Iterable[int]) -> None:
        """Tell workers that tickets ``numbers`` are done with (collected or withdrawn): a
        worker that read them earlier does not claim them (:mod:`batchpool.worker`)."""
        records = b"".join(_layout.encode_record(_layout.CLOSED, n, 0.0) for n in numbers)
        if records:
            self._log(records)

    def cancel(self, session_dir: Path) -> None:
        """Tell workers to skip the tickets of a session that ended early."""
        self._log(_layout.encode_record(_layout.CANCELLED, 0, 0.0, str(session_dir).encode()))

    def stop_workers(self) -> None:
        self._log(_layout.encode_record(_layout.STOP, 0, 0.0))

    def _log(self, records: bytes) -> None:
        append_durably(self.paths.tickets, records)

    # -- the jobs' mailboxes ----------------------------------------------------------

    def open_mailboxes(self, job_ids: Iterable[str]) -> None:
        """Create the mailboxes of new jobs, before anyone here looks at them (a lookup
        of a name that is not there yet is cached as missing on a shared filesystem)."""
        for job_id in job_ids:
            os.close(os.open(self.paths.mailbox(job_id), os.O_WRONLY | os.O_CREAT, 0o600))
            self._report(job_id)

    def read_mailboxes(self, job_ids: Iterable[str]) -> None:
        """Take in what the workers of ``job_ids`` said since the last look."""
        for job_id in job_ids:
            report = self._report(job_id)
            for kind, number, _, payload in report.reader.read():
                report.take(kind, payload)
                if kind == _layout.CLAIMED:
                    self.claims[number] = report.ready or Claim(job_id, "?", 0, "")
                elif kind == _layout.FINISHED:
                    self.finished.add(number)

    def _report(self, job_id: str) -> WorkerReport:
        report = self.reports.get(job_id)
        if report is None:
            reader = RecordReader(self.paths.mailbox(job_id))
            report = self.reports[job_id] = WorkerReport(reader)
        return report

    def claim(self, number: int) -> Claim | None:
        """Who took ticket ``number``; None if no mailbox said so yet."""
        return self.claims.get(number)

    def forget(self, number: int) -> None:
        """Ticket ``number`` is done with: its claim and finish need not be kept."""
        self.claims.pop(number, None)
        self.finished.discard(number)

    def worker_started(self, job_id: str) -> bool:
        """Whether the worker of job ``job_id`` got as far as taking work."""
        return self._report(job_id).ready is not None

    def worker_exited(self, job_id: str) -> bool:
        """Whether the worker of job ``job_id`` said it exits (it had no work, or was told)."""
        return self._report(job_id).exited

    def worker_exit(self, job_id: str) -> str | None:
        """How the worker process of a job ended, if its watcher said so."""
        return self._report(job_id).ended

    def worker_claim(self, job_id: str) -> Claim | None:
        """Where the worker of job ``job_id`` runs (host, pid), once it started."""
        return self._report(job_id).ready

    def heartbeat(self, counter: int) -> None:
        beat = DriverBeat(socket.gethostname(), _layout.process_space(), os.getpid(), counter)
        _layout.write_in_place(self.paths.heartbeat, beat.encode())

    def driver(self) -> tuple[str, int, bool]:
        """Host, pid and whether the driver of this pool lives: its process, if it is of
        this process space; else whether its heartbeat was rewritten within
        :data:`STALE_LOCK_S` by the filesystem's clock (:func:`file_age_s`). A pool that
        has no heartbeat yet counts as alive while its directory is that young (a driver
        that is starting)."""
        path = self.paths.heartbeat
        try:
            data = Path(path).read_bytes()
            age_s = file_age_s(path)
        except FileNotFoundError:
            try:
                young = file_age_s(self.dir) < STALE_LOCK_S
            except FileNotFoundError:
                young = False
            return "", 0, young
        beat = DriverBeat.decode(data)
        if beat is None:
            return "", 0, age_s < STALE_LOCK_S
        if beat.here:
            return beat.host, beat.pid, process_alive(beat.pid)
        return beat.host, beat.pid, age_s < STALE_LOCK_S

    def driver_alive(self) -> bool:
        """Whether the driver of this pool lives (:meth:`driver`); not if it never beat:
        it died while it made the pool."""
        host, _, alive = self.driver()
        return alive and bool(host)

    # -- the journal of submissions ----------------------------------------------------

    def journal(self, event: str, **fields: object) -> None:
        """Append to ``jobs.jsonl``: ``submitting`` before a submission, ``submitted``
        (with the job ids) after it, ``ended`` once the pool deleted its jobs, ``swept``
        once another driver deleted what this one's death left in the queue."""
        row = {"event": event, "time": time.time(), **fields}
        append_text(self.paths.journal, json.dumps(row) + "\n")

    def mark_detached(self, marker: bytes) -> None:
        """Keep the workers when the driver is gone; ``marker`` is for ``attach`` (JSON)."""
        write_file(self.paths.detached, marker)

    def detached_marker(self) -> bytes | None:
        """What :meth:`mark_detached` wrote; None for a pool that was not detached."""
        return _layout.read_file(self.paths.detached)

    def may_have_left_jobs(self) -> bool:
        """Whether jobs of this pool may be in the queue with nobody to delete them: it
        submitted, did not end, was not swept, was not detached (its jobs are meant to
        run on without it), and its driver is dead."""
        events = {row.get("event") for row in read_json_lines(self.paths.journal)}
        if "submitting" not in events or events & {"ended", "swept"}:
            return False
        if os.path.exists(self.paths.detached):
            return False
        return not self.driver_alive()

    @classmethod
    def dead_ones_with_jobs(cls, work_dir: Path) -> list[PoolDirectory]:
        """The pools in ``work_dir`` that :meth:`may_have_left_jobs`."""
        work_dir = Path(work_dir)
        if not work_dir.is_dir():
            return []
        pools = [cls(p) for p in sorted(work_dir.glob(cls.PREFIX + "*")) if p.is_dir()]
        return [pool for pool in pools if pool.may_have_left_jobs()]

    def remove(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)
