"""One dispatcher per pool: every chunk of every map in one table, one thread, one poller.

The public API (:mod:`batchpool.proto_pool`) hands work to :meth:`Dispatcher.submit`
as a :class:`Call` (a map, an ``imap``, or ``apply`` calls, each with a *sink* that
turns envelopes into results) and returns at once. The dispatcher thread then, in
:meth:`Dispatcher.step`:

1. opens a session for each new call (or re-attaches to the unfinished session of
   the same map) and writes its tasks;
2. reads what its jobs' mailboxes say (a ticket claimed, a chunk finished, a worker
   ready, exited or dead) and hands finished chunks' results to the calls' sinks;
3. cuts the next chunks (:mod:`batchpool.chunking`) and posts them as tickets, about
   one unclaimed ticket per live worker;
4. once per ``polling_interval``, asks the scheduler for the state of all the pool's
   jobs in one query; a chunk whose job ended or failed without its result goes back
   to the queue, up to ``max_num_resubmissions`` times; a scheduler that cannot be
   asked is waited out for ``scheduler_outage_s``, and no job is deleted meanwhile;
5. asks the backend for more workers while unclaimed work exceeds what the live
   ones will take (:func:`batchpool.chunking.workers_wanted`), within the cap.

``step`` never blocks on the filesystem for long and takes its time from ``clock``,
so that tests drive it with a fake clock and :mod:`batchpool.testing.fake_backend`.
"""

from __future__ import annotations

import collections
import dataclasses
import enum
import errno
import functools
import hashlib
import io
import os
import pickle
import shutil
import sys
import threading
import time
import types
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Protocol

import cloudpickle

from . import chunking
from ._layout import (
    DETACHED_FILE,
    NO_SPACE_ERRNOS,
    NO_SPACE_EXIT,
    Claim,
    Failure,
    Ticket,
    process_alive,
    process_space,
    read_file,
    read_tasks,
    record_file_name,
    write_atomically,
)
from .backend import Backend, Ending, Job, JobRequest, JobState, JobStatus, Resources
from .commands import Cancelled
from .errors import (
    BrokenEnvironmentError,
    JobsLostError,
    PoolError,
    SchedulerError,
    SessionBusyError,
    TaskKilledError,
    TaskMemoryError,
    TaskTimeoutError,
    WorkerCrashedError,
)
from .policy import Action, Cause, Loss, RetryPolicy, WorkerExit, classify, summary_line
from .progress import Progress
from .session import (
    HEARTBEAT_S,
    ChunkEvent,
    ChunkResult,
    Manifest,
    PoolDirectory,
    Session,
    SessionKey,
    describe_filesystem,
    no_room_left,
    read_text,
)
from .worker import NOT_SHARED_EXIT, NOT_SHARED_MARK

MIN_POLL_S = 0.002
"""Shortest wait between two looks at the mailboxes, right after progress..."""
MAX_POLL_S = 0.05
"""...growing by half each time up to this. Both are at least :data:`POLL_S_PER_CHUNK`
times the number of jobs and chunks out: one look is one ``open`` per mailbox, and a
shared filesystem should not see more than about 2,000 of them a second."""
POLL_S_PER_CHUNK = 0.0005
TASKS_AHEAD = 1000
"""An ``imap`` reads at most this many tasks ahead of what its caller has consumed."""
DEATH_RECHECK_S = 1.0
"""After a worker was seen dead holding a chunk, the scheduler is asked at once, then
again after this while it still lists the job (a job takes a moment to end there),
doubling up to ``polling_interval``."""
EXIT_WAIT_S = 5.0
"""How long closing a pool waits for its workers on this host to exit before deleting them."""
ORDINARY_WAITS = frozenset(("", "None", "Priority", "Resources", "qw", "not in queue"))
"""Pending reasons that are just a job's turn; others (a hold, a node down, a limit) are
shown in the progress line and logged."""
CLAIM_AGE_FOR_ESTIMATE_S = 1.0
"""A chunk claimed this long ago tells that its tasks take at least ``age / size``."""


class Sink(Protocol):
    """Where a call's results go (implemented by the result objects of the proto-pool)."""

    def deliver(self, start: int, envelopes: list, session_dir: Path) -> None:
        """Tasks ``start, start+1, ...`` ended with ``envelopes`` (a task that raised does
        not end its call: the others still run, as in ``multiprocessing``)."""
        ...

    def fail(self, error: BaseException) -> None:
        """The call ended without all its results."""
        ...

    def finish(self) -> None:
        """Every task of the call has been delivered."""
        ...


@dataclass(frozen=True)
class PoolSettings:
    """The options of a pool that the dispatcher acts on (see :class:`~batchpool.Pool`)."""

    work_dir: Path
    python_path: str
    polling_interval: float
    max_num_resubmissions: int
    max_workers: Optional[int]
    keep_work_dir: bool
    verbose: bool
    lost_job_grace_period_s: float
    resume: bool
    worker_idle_s: float
    maxtasksperchild: Optional[int]
    scheduler_outage_s: float
    retry_policy: RetryPolicy = RetryPolicy()


class CallKind(enum.Enum):
    MAP = "map"
    IMAP = "imap"
    APPLY = "apply"


class Call:
    """The work of one ``map``, ``imap`` or batch of ``apply`` calls, and its session."""

    def __init__(
        self,
        kind: CallKind,
        function: Callable[..., Any],
        tasks: Optional[list],
        sink: Sink,
        chunksize: Optional[int] = None,
        inputs: Optional[Iterator] = None,
    ) -> None:
        self.kind = kind
        self.function = function
        self.tasks = tasks
        self.sink = sink
        self.chunksize = chunksize
        self.inputs = inputs
        self.session: Optional[Session] = None
        self.function_key = ""
        self.progress: Optional[Progress] = None
        self.uncut: collections.deque[range] = collections.deque()
        self.num_tasks_known = 0
        self.input_done = inputs is None
        self.input_error: Optional[tuple[int, BaseException]] = None
        self.num_delivered = 0
        self.num_failed_tasks = 0
        self.next_chunk = 0
        self.ended = False
        self.failed = False
        self.attach_to: Optional[Path] = None
        """The session of a detached map to drive (:func:`batchpool.attach`), instead of
        ``function`` and ``tasks``."""

    @property
    def num_uncut(self) -> int:
        return sum(len(r) for r in self.uncut)

    def describe(self) -> str:
        return f"{self.kind.value} of {_describe(self.function)}"


class ChunkState(enum.Enum):
    QUEUED = "queued"
    """Cut, waiting to be posted (again, after its job was lost)."""
    POSTED = "posted"
    """A ticket nobody claimed yet (as far as the driver has seen)."""
    CLAIMED = "claimed"
    """A worker took it; its result is awaited."""
    DONE = "done"


@dataclass(eq=False)
class Chunk:
    """One chunk: tasks ``tasks`` of ``call``, and where it is."""

    call: Call
    number: int
    tasks: range
    attempt: int = 0
    """Resubmissions spent on these tasks (by the policy: :mod:`batchpool.policy`)."""
    tries: int = 0
    """Times the chunk was posted: names its record file (one per try)."""
    state: ChunkState = ChunkState.QUEUED
    ticket: int = -1
    """The ticket it was posted as (-1: a chunk adopted from a dead driver's pool)."""
    posted_at: float = 0.0
    job_id: str = ""
    claimed_at: float = 0.0
    claimed_pid: int = 0
    resources: Resources = Resources()
    tier: int = 0
    history: tuple[Loss, ...] = ()
    """Every loss of these tasks so far."""


@dataclass(eq=False)
class WorkerJob:
    """A job of this pool (or, after a resume, of the dead driver's pool)."""

    job: Job
    submitted_at: float
    state: JobState = JobState.PENDING
    reason: str = ""
    status: Optional[JobStatus] = None
    """The scheduler's latest word on the job."""
    tier: int = 0
    resources: Resources = Resources()
    gone_since: Optional[float] = None
    started: bool = False
    adopted: bool = False
    host: str = ""
    pid: int = 0
    space: str = ""
    """The process space of ``pid`` (:func:`batchpool._layout.process_space`)."""

    @property
    def node(self) -> str:
        return (self.status.node if self.status is not None else "") or self.host


class _State(enum.Enum):
    RUN = "run"
    CLOSE = "close"
    TERMINATE = "terminate"


class Dispatcher:
    """Drives every call of one pool (module docstring)."""

    def __init__(
        self,
        backend: Backend,
        settings: PoolSettings,
        initializer: Optional[Callable[..., object]] = None,
        initargs: tuple = (),
        clock: Callable[[], float] = time.monotonic,
        threaded: bool = True,
    ) -> None:
        """``threaded=False``: no thread is started; the caller calls :meth:`step`."""
        self.backend = backend
        self.threaded = threaded
        self.settings = settings
        self.initializer = (initializer, initargs)
        self.clock = clock
        self.cancel = threading.Event()
        """Set by terminate: running scheduler commands give up."""
        self._inbox: collections.deque[tuple[str, Any]] = collections.deque()
        self._wake = threading.Event()
        self._state = _State.RUN
        self._thread: Optional[threading.Thread] = None
        self._lock = threading.Lock()
        self.calls: list[Call] = []
        self.posted: dict[int, Chunk] = {}
        self.claimed: list[Chunk] = []
        self.queued: collections.deque[Chunk] = collections.deque()
        self.jobs: dict[str, WorkerJob] = {}
        self.pool_dir: Optional[PoolDirectory] = None
        self.next_ticket = 0
        self.task_s: dict[str, float] = {}
        self.outage_since: Optional[float] = None
        self.last_status = -float("inf")
        self._status_query: Optional[_StatusQuery] = None
        self.last_heartbeat = -float("inf")
        self.last_exit_check = -float("inf")
        self.last_claims_listing = -float("inf")
        self.heartbeats = 0
        self.failed_starts = 0
        self.start_failures: list[Loss] = []
        self.policy = settings.retry_policy
        self.tiers: dict[Resources, int] = {Resources(): 0}
        """Workers of tier N run the chunks that need resources N (0: the pool's own)."""
        self._base_resources: Optional[Resources] = None
        self.something_failed = False
        self._waiting_for = ""
        self.num_status_queries = 0
        self.num_submissions = 0
        self.unanswered_submission = False
        """A submission was cut off (terminated, or its command failed): jobs of it may exist."""
        self.died_seen: set[str] = set()
        """Jobs whose worker was seen dead holding a chunk (an early status query was made)."""
        self.no_work_since: dict[int, float] = {}
        """Tier -> when the work for its queued jobs ran out."""
        self.deleted_idle: set[str] = set()
        """Jobs the pool deleted as idle: a chunk one of them took as it died is no fault."""
        self._death_recheck_s = DEATH_RECHECK_S
        self._poll_s = MIN_POLL_S
        self.finished = threading.Event()

    # -- the API side (any thread) ----------------------------------------------------

    def submit(self, call: Call) -> None:
        """Register ``call``; the dispatcher thread takes it from here."""
        self._send("call", call)

    def more_tasks(self, call: Call, pickled: list[bytes], done: bool, error: Any) -> None:
        """The feeder read more tasks of an ``imap`` (``error``: (index, exception))."""
        self._send("tasks", (call, pickled, done, error))

    def close(self) -> None:
        self._send("close", None)

    def terminate(self) -> None:
        self.cancel.set()
        self._send("terminate", None)

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self.run, name="batchpool-dispatcher", daemon=True
                )
                self._thread.start()

    def join(self, timeout: Optional[float] = None) -> None:
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _send(self, kind: str, payload: Any) -> None:
        self._inbox.append((kind, payload))
        self._wake.set()
        if self.threaded:
            self.start()

    # -- the dispatcher thread --------------------------------------------------------

    def run(self) -> None:
        """The dispatcher thread: step until closed and done, or terminated."""
        try:
            while not self.finished.is_set():
                self.step()
                if not self.finished.is_set():
                    self._wake.wait(self._next_wait())
                    self._wake.clear()
        except BaseException as error:  # a bug here must not leave callers waiting forever
            self._fail_all(error)
            self._stop_workers(delete_all=True)
            self.finished.set()
            raise

    def step(self) -> None:
        """One round (module docstring); never waits for long."""
        try:
            self._step()
        except OSError as error:
            if error.errno not in NO_SPACE_ERRNOS:
                raise
            # The driver's own files: every map of this pool stops, its files as they were.
            self._fail_all(_unwritable(self.settings.work_dir, error, during_map=True))

    def _step(self) -> None:
        progressed = self._take_inbox()
        if self._state is _State.TERMINATE:
            self._terminate_now()
            return
        progressed |= self._look_for_claims()
        progressed |= self._collect_results()
        self._query_status()
        self._post_tickets()  # after the status: what a loss queued again goes out now
        self._adjust_workers()
        self._heartbeat()
        self._end_calls()
        if self._state is _State.CLOSE and not self.calls:
            self._stop_workers(delete_all=False)
            self.finished.set()
        per_look = POLL_S_PER_CHUNK * (len(self.jobs) + len(self.claimed))
        shortest, longest = max(MIN_POLL_S, per_look), max(MAX_POLL_S, per_look)
        self._poll_s = shortest if progressed else min(self._poll_s * 1.5, longest)

    def _next_wait(self) -> float:
        if self.posted or self.claimed or self.queued:
            return self._poll_s
        until_status = self.last_status + self.settings.polling_interval - self.clock()
        return max(MIN_POLL_S, min(until_status, HEARTBEAT_S)) if self.jobs else HEARTBEAT_S

    # -- new work ----------------------------------------------------------------------

    def _take_inbox(self) -> bool:
        applies: list[Call] = []
        progressed = False
        while self._inbox:
            kind, payload = self._inbox.popleft()
            progressed = True
            if kind == "call" and payload.kind is CallKind.APPLY:
                applies.append(payload)
                continue
            self._open_applies(applies)
            applies = []
            if kind == "call":
                self._open(payload)
            elif kind == "tasks":
                self._add_tasks(*payload)
            elif kind == "close" and self._state is _State.RUN:
                self._state = _State.CLOSE
            elif kind == "terminate":
                self._state = _State.TERMINATE
        self._open_applies(applies)
        return progressed

    def _open_applies(self, applies: list[Call]) -> None:
        """``apply`` calls that arrived together with the same function become one call."""
        while applies:
            first = _inner(applies[0].function)
            same = [c for c in applies if _inner(c.function) is first]
            applies = [c for c in applies if _inner(c.function) is not first]
            self._open(batch_of_applies(same))

    def _open(self, call: Call) -> None:
        try:
            self._ensure_pool_dir()
            if call.attach_to is not None:
                self._attach(call)
            else:
                self._open_session(call)
        except BaseException as error:  # pickling errors, full disks: this call fails alone
            if isinstance(error, OSError) and error.errno in NO_SPACE_ERRNOS:
                # while resuming: what was kept stays, for a later resume
                error = _for_session(_unwritable(self.settings.work_dir, error, True), call)
            call.sink.fail(error)
            if call.session is not None:
                self._end_session(call, error)
            return
        self.calls.append(call)

    def _ensure_pool_dir(self) -> None:
        if self.pool_dir is not None:
            return
        initializer = pickle_for_jobs("the initializer", self.initializer)
        try:
            pool_dir = PoolDirectory.create(self.settings.work_dir)
            pool_dir.write_setup(
                initializer, self.settings.worker_idle_s, self.settings.maxtasksperchild
            )
            pool_dir.heartbeat(0)  # from now on, whoever finds it can tell if its driver lives
        except OSError as error:
            raise _unwritable(self.settings.work_dir, error) from error
        self.pool_dir = pool_dir
        self._sweep_dead_pools()

    def _sweep_dead_pools(self) -> None:
        """Delete the jobs that dead drivers left waiting in the queue (a driver killed
        while it submitted, or before it could delete them): they would start only to
        find their driver gone. Their running jobs are left alone: each exits by itself
        once it sees its driver gone, after the chunk it holds (which a resumed map
        adopts). Found by the pools' journals and job names (:meth:`Backend.jobs_named`)."""
        for pool in PoolDirectory.dead_ones_with_jobs(self.settings.work_dir):
            waiting = self._jobs_named(
                pool, self.cancel, lambda job_id, status: status.state is JobState.PENDING
            )
            if waiting is None:
                continue
            self._delete(waiting, f"left waiting by the dead driver of {pool.name}")
            pool.journal("swept", deleted=[job.job_id for job in waiting], by=os.getpid())

    def _open_session(self, call: Call) -> None:
        """Write the call's function and tasks into its session: a new one, or the
        unfinished session of the same map, resumed. The tasks are pickled and written
        one by one (into the pool's staging directory while the session's key, their
        digest, is not known yet), so that the driver never holds all their pickles."""
        assert self.pool_dir is not None
        function = pickle_for_jobs("the function", call.function)
        call.function_key = hashlib.sha256(function).hexdigest()[:16]
        resumable = call.kind is not CallKind.IMAP and self.settings.resume
        same_map = [function, self.backend.name.encode(), repr(call.chunksize).encode()]
        key = SessionKey(same_map)
        tasks, call.tasks = call.tasks or [], None

        def pickled_tasks() -> Iterator[bytes]:
            for task in tasks:
                pickled = pickle_for_jobs("a task", task)
                key.add(pickled)
                yield pickled

        work_dir = self.settings.work_dir
        staging = self.pool_dir.staging_dir()
        try:
            try:
                num_tasks = Session.stage_tasks(staging, pickled_tasks())
            except OSError as error:
                raise _unwritable(work_dir, error) from error
            if not resumable:
                key = SessionKey([function, str(id(call)).encode(), str(time.time()).encode()])
            if resumable and self._reattach(call, key.hexdigest(), num_tasks):
                return
            try:
                session = Session.create(work_dir, key.hexdigest(), tasks_from=staging)
                call.session = session
                session.write_function(function)
                known = num_tasks if call.input_done else None
                session.write_manifest(self._manifest(call, known))
            except OSError as error:
                if call.session is not None:
                    call.session.remove()  # half made: nothing in it to resume
                    call.session = None
                raise _unwritable(work_dir, error) from error
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        call.num_tasks_known = num_tasks
        if num_tasks:
            call.uncut.append(range(num_tasks))
        if call.kind is CallKind.MAP:
            call.progress = Progress(num_tasks, session.name, self.settings.verbose)
        self._say(call, "session", tasks=num_tasks, function=_describe(call.function))

    def _manifest(self, call: Call, num_tasks: Optional[int]) -> Manifest:
        created = time.strftime("%Y-%m-%dT%H:%M:%S")
        return Manifest(
            num_tasks, call.chunksize, self.backend.name, _describe(call.function), created
        )

    def _add_tasks(
        self, call: Call, pickled: list[bytes], done: bool, error: Optional[tuple]
    ) -> None:
        if call.ended or call.session is None:
            return
        start = call.num_tasks_known
        try:
            call.session.append_tasks(pickled)
        except OSError as os_error:
            self._fail(call, _unwritable(self.settings.work_dir, os_error))
            return
        call.num_tasks_known += len(pickled)
        if pickled:
            call.uncut.append(range(start, call.num_tasks_known))
        if error is not None:
            call.input_error = error
        if done:
            call.input_done = True
            call.session.write_manifest(self._manifest(call, call.num_tasks_known))

    # -- resume ------------------------------------------------------------------------

    def _attach(self, call: Call) -> None:
        """Drive the session of a detached map (``call.attach_to``) as a resume of it, its
        function and tasks read from the session instead of given (:mod:`batchpool.detach`)."""
        assert call.attach_to is not None
        session = Session(call.attach_to)
        manifest = session.manifest()
        call.function_key = hashlib.sha256(session.function_path.read_bytes()).hexdigest()[:16]
        key = session.dir.name.split("_")[1]
        if manifest.num_tasks is None or not self._reattach(call, key, manifest.num_tasks):
            raise PoolError(f"{session.dir} is no unfinished session of a map", session.dir)

    def detach(self, marker: bytes = b"") -> list[Path]:
        """Let the calls submitted run without this driver (:func:`batchpool.submit`; a
        dispatcher that is not ``threaded``, instead of :meth:`step`): open their sessions,
        post every chunk as a ticket, mark the pool directory ``detached`` with ``marker``
        (its workers then stay when this process is gone), ask for the workers, and leave
        the sessions unfinished, for :func:`batchpool.attach`. The sessions' directories."""
        assert not self.threaded
        self._take_inbox()  # opens the sessions; a call that cannot be opened fails alone
        if self.pool_dir is None or not self.calls:
            return []
        chunks: list[Chunk] = []
        chunk = self._next_chunk()
        while chunk is not None:  # bounded: each chunk takes tasks from what is uncut
            chunks.append(chunk)
            chunk = self._next_chunk()
        self._post(chunks)
        write_atomically(str(self.pool_dir.dir / DETACHED_FILE), marker)
        self._adjust_workers()
        sessions = []
        for call in self.calls:
            assert call.session is not None
            self._say(call, "detached", chunks=call.next_chunk, jobs=len(self.jobs))
            call.session.close_log()
            call.session.release()
            sessions.append(call.session.dir)
        self.calls.clear()
        self.jobs.clear()
        self.finished.set()
        return sessions

    def _reattach(self, call: Call, key: str, num_tasks: int) -> bool:
        """Take over the unfinished session of the same map: keep its results, adopt the
        chunks that live workers of the dead driver hold, withdraw its other tickets."""
        session = Session.find_unfinished(self.settings.work_dir, key)
        if session is None:
            return False
        try:
            session.acquire()
        except SessionBusyError as error:
            holder = session.lock_holder()
            if holder is not None and holder.is_mine():
                return False  # an identical map of this very driver: run side by side
            raise PoolError(
                f"Cannot run this map: {error}. Two drivers never drive one session; wait "
                "for the other one, or stop it.",
                session.dir,
            ) from None
        call.session = session
        session.reopen_tasks()
        call.num_tasks_known = num_tasks
        results = self._resumed_results(session)
        kept = []
        for result in results:
            envelopes = result.envelopes()
            # A chunk whose tasks raised runs again (the failure may have been passing).
            if all(ok for ok, _ in envelopes):
                self._deliver(call, result, envelopes)
                kept.append(result.tasks)
        adopted = self._adopt_claimed_chunks(call, session, {r.chunk for r in results})
        call.uncut.extend(_complement(num_tasks, kept + adopted))
        if call.kind is CallKind.MAP:
            call.progress = Progress(num_tasks, session.name, self.settings.verbose)
            call.progress.advance(call.num_delivered)
        self._say(call, "resumed", results=call.num_delivered, adopted_chunks=len(adopted))
        return True

    def _resumed_results(self, session: Session) -> list[ChunkResult]:
        """Every result of the session, the files not yet collected folded in. Results
        that fail their checks are left out (their tasks run again), and said so."""
        archive = session.read_archive()
        for span in archive.damaged:
            session.log(
                "archive damaged: skipped, its tasks run again",
                offset=span.offset,
                length=span.length,
            )
        results = list(archive.results)
        archived = {r.chunk for r in results}
        for chunk, tries in session.record_files():
            if chunk not in archived:  # else the driver died between archiving and removing
                taken = session.take_record(chunk, tries, whole_only=True)
                if taken is not None and taken.tasks:
                    results.append(taken)
                    archived.add(chunk)
        return results

    def _adopt_claimed_chunks(self, call: Call, session: Session, finished: set[int]) -> list:
        """The chunks of ``session`` that a live worker of the dead driver may still hold:
        their tickets were claimed and they have no result. Its other tickets are
        withdrawn, so that no worker takes them now."""
        latest: dict[int, ChunkEvent] = {}
        for event in session.chunk_events():
            call.next_chunk = max(call.next_chunk, event.chunk + 1)
            if event.event == "posted" and event.chunk not in finished:
                latest[event.chunk] = event
        adopted = []
        for event in latest.values():
            pool = PoolDirectory(Path(event.pool))
            if not pool.dir.is_dir():
                continue  # that pool ended: no worker of it holds anything
            claim = session.record_claim(event.chunk, event.attempt)
            if claim is None and session.withdraw(event.chunk, event.attempt):
                continue
            claim = claim or session.record_claim(event.chunk, event.attempt)
            claim = claim or Claim("?", "", 0, "")
            if claim.withdrawn:
                continue
            chunk = Chunk(call, event.chunk, range(event.start, event.stop), tries=event.attempt)
            self._mark_claimed(chunk, claim, self.clock(), pool.job_name)
            adopted.append(chunk.tasks)
        return adopted

    # -- claims and results ------------------------------------------------------------

    def _look_for_claims(self) -> bool:
        pool_dir = self.pool_dir
        if pool_dir is None:
            return False
        pool_dir.read_mailboxes(w.job.job_id for w in self.jobs.values() if not w.adopted)
        seen = False
        now = self.clock()
        for number, chunk in list(self.posted.items()):
            claim = pool_dir.claim(number)
            if claim is None:
                continue
            del self.posted[number]
            seen = True
            self._mark_claimed(chunk, claim, now, pool_dir.job_name)
        self._look_for_unsaid_claims(now)
        return seen

    def _look_for_unsaid_claims(self, now: float) -> None:
        """A worker that died between claiming a ticket and saying so in its mailbox left
        a claim nobody hears of: once per ``polling_interval``, the record files of the
        tickets out for that long are looked for in a fresh listing of their sessions'
        ``results/`` (a listing, not a lookup by name: that could be cached as missing)."""
        interval = self.settings.polling_interval
        old = [c for c in self.posted.values() if now - c.posted_at >= interval]
        if not old or now - self.last_claims_listing < interval:
            return
        self.last_claims_listing = now
        listed: dict[int, set[tuple[int, int]]] = {}
        for chunk in old:
            session = chunk.call.session
            assert session is not None and self.pool_dir is not None
            files = listed.setdefault(id(session), set(session.record_files()))
            if (chunk.number, chunk.tries) not in files:
                continue
            claim = session.record_claim(chunk.number, chunk.tries)
            if claim is not None and not claim.withdrawn:
                del self.posted[chunk.ticket]
                self._mark_claimed(chunk, claim, now, self.pool_dir.job_name)

    def _mark_claimed(self, chunk: Chunk, claim: Claim, now: float, job_name: str) -> None:
        chunk.state = ChunkState.CLAIMED
        chunk.job_id = claim.job_id
        chunk.claimed_pid = claim.pid
        chunk.claimed_at = now
        self.claimed.append(chunk)
        worker = self.jobs.get(claim.job_id)
        if worker is None:  # a job of a dead driver's pool, or one we have not heard of
            unknown = Path(self.settings.work_dir) / "?"  # its logs are not ours to read
            job = Job(claim.job_id, job_name, unknown, unknown)
            worker = WorkerJob(job, now, JobState.RUNNING, adopted=True)
            worker.host, worker.pid, worker.space = claim.host, claim.pid, claim.space
            self.jobs[claim.job_id] = worker
        worker.space = worker.space or claim.space
        worker.started = True
        self.failed_starts = 0  # "in a row"
        self.start_failures.clear()
        session = chunk.call.session
        if session is not None:
            session.record_chunks([ChunkEvent("claimed", chunk.number, job_id=claim.job_id)])

    def _collect_results(self) -> bool:
        for chunk in [c for c in self.claimed if c.call.ended]:
            self.claimed.remove(chunk)
        done = [chunk for chunk in self.claimed if self._finished(chunk)]
        collected = False
        for chunk in done:
            result = self._take(chunk)
            if result is None:
                continue  # not to be seen here yet: at a later look
            collected = True
            self.claimed.remove(chunk)
            self._collected(chunk, result)
        return collected

    def _finished(self, chunk: Chunk) -> bool:
        """Whether the worker that holds ``chunk`` said it finished it; for a chunk of a dead
        driver's pool, whether its record file is whole."""
        if chunk.ticket >= 0:
            return self.pool_dir is not None and chunk.ticket in self.pool_dir.finished
        assert chunk.call.session is not None
        data = read_file(str(chunk.call.session.record_path(chunk.number, chunk.tries)))
        return data is not None and ChunkResult.parse(chunk.number, data).complete

    def _take(self, chunk: Chunk) -> Optional[ChunkResult]:
        """What the record file of ``chunk`` holds, folded into the archive, and the file
        removed: first its ticket is closed in the log, so that no worker that read it
        earlier claims it again once the file is gone."""
        session = chunk.call.session
        assert session is not None  # an open call has its session
        if chunk.ticket >= 0 and self.pool_dir is not None:
            self.pool_dir.close_tickets([chunk.ticket])
            self.pool_dir.forget(chunk.ticket)
        return session.take_record(chunk.number, chunk.tries)

    def _collected(self, chunk: Chunk, result: ChunkResult) -> None:
        """Deliver a chunk's result; a damaged one (kept aside by the session) gives
        what passed its checks, and the rest of the chunk runs again."""
        if result.complete and _kept_tasks(chunk.tasks, result) == chunk.tasks:
            self._finish_chunk(chunk, result)
            return
        rest = self._keep_finished(chunk, result)
        name = record_file_name(chunk.number, chunk.tries)
        where = f"results/{name} failed its checks; the tasks before are kept"
        loss = Loss(Cause.RESULT_DAMAGED, chunk.job_id, task=None, detail=where)
        self._act_on_loss(chunk, rest, loss)

    def _finish_chunk(self, chunk: Chunk, result: ChunkResult) -> None:
        chunk.state = ChunkState.DONE
        self._say(chunk.call, "collected", chunk=chunk.number, tasks=len(result.tasks))
        self._learn_task_time(chunk.call.function_key, result)
        self._deliver(chunk.call, result)

    def _deliver(self, call: Call, result: ChunkResult, envelopes: Optional[list] = None) -> None:
        envelopes = result.envelopes() if envelopes is None else envelopes
        self._deliver_envelopes(call, result.tasks.start, envelopes)

    def _deliver_envelopes(self, call: Call, start: int, envelopes: list) -> None:
        call.sink.deliver(start, envelopes, result_dir(call))
        call.num_delivered += len(envelopes)
        call.num_failed_tasks += sum(1 for succeeded, _ in envelopes if not succeeded)
        if call.progress is not None:
            call.progress.advance(len(envelopes))

    def _learn_task_time(self, function_key: str, result: ChunkResult) -> None:
        per_task = result.elapsed_s / max(1, len(result.tasks))
        old = self.task_s.get(function_key)
        self.task_s[function_key] = per_task if old is None else 0.5 * old + 0.5 * per_task

    def _task_time(self, call: Call) -> Optional[float]:
        """Measured seconds per task of the call's function, raised by what chunks that
        are still running tell."""
        estimate = self.task_s.get(call.function_key)
        now = self.clock()
        for chunk in self.claimed:
            age = now - chunk.claimed_at
            if chunk.call is call and age >= CLAIM_AGE_FOR_ESTIMATE_S:
                bound = age / len(chunk.tasks)
                estimate = bound if estimate is None else max(estimate, bound)
        return estimate

    # -- posting tickets -----------------------------------------------------------------

    def _post_tickets(self) -> None:
        if self.pool_dir is None:
            return
        target = max(1, self._num_live_workers()) * chunking.tickets_ahead(self._chunk_time())
        chunks: list[Chunk] = []
        while len(self.posted) + len(chunks) < target:
            chunk = self._next_chunk()
            if chunk is None:
                break
            chunks.append(chunk)
        self._post(chunks)

    def _chunk_time(self) -> Optional[float]:
        """Measured seconds a chunk of the first call with work to post takes (None if
        not measured yet, or it has no ``chunksize``: then chunks are cut by time)."""
        for call in self.calls:
            if not call.ended and call.uncut and call.chunksize:
                task_s = self._task_time(call)
                return None if task_s is None else task_s * call.chunksize
        return None

    def _next_chunk(self) -> Optional[Chunk]:
        while self.queued:
            chunk = self.queued.popleft()
            if not chunk.call.ended:
                return chunk
        for call in self.calls:
            if call.ended or not call.uncut:
                continue
            if call.chunksize and not call.input_done and call.num_uncut < call.chunksize:
                continue  # an imap chunk is whole, as in multiprocessing
            span = call.uncut[0]
            size = chunking.chunk_size(
                call.num_uncut, self._task_time(call), self._num_live_workers(), call.chunksize
            )
            size = min(size, len(span))
            tasks = range(span.start, span.start + size)
            if size == len(span):
                call.uncut.popleft()
            else:
                call.uncut[0] = range(span.start + size, span.stop)
            chunk = Chunk(call, call.next_chunk, tasks)
            call.next_chunk += 1
            return chunk
        return None

    def _post(self, chunks: list[Chunk]) -> None:
        """Post ``chunks`` as tickets: each session journals its chunks first (what a
        resumed map looks for), then the tickets go out in one append to the log."""
        assert self.pool_dir is not None
        events: dict[Session, list[ChunkEvent]] = {}
        tickets = []
        for chunk in chunks:
            ticket, event = self._ticket(chunk)
            assert chunk.call.session is not None
            events.setdefault(chunk.call.session, []).append(event)
            tickets.append(ticket)
        for session, posted in events.items():
            session.record_chunks(posted)
        self.pool_dir.post(tickets)
        now = self.clock()
        for chunk, ticket in zip(chunks, tickets):
            chunk.state = ChunkState.POSTED
            chunk.ticket = ticket.number
            chunk.posted_at = now
            self.posted[ticket.number] = chunk

    def _ticket(self, chunk: Chunk) -> tuple[Ticket, ChunkEvent]:
        """The next ticket, for ``chunk``, and its event in the session's journal."""
        assert self.pool_dir is not None and chunk.call.session is not None
        number = self.next_ticket
        self.next_ticket += 1
        session = chunk.call.session
        ticket = Ticket(
            number,
            str(session.dir),
            chunk.number,
            chunk.tries,
            chunk.tasks.start,
            chunk.tasks.stop,
            chunk.call.function_key,
            chunk.tier,
        )
        event = ChunkEvent(
            "posted",
            chunk.number,
            chunk.tasks.start,
            chunk.tasks.stop,
            chunk.tries,
            str(self.pool_dir.dir),
            number,
        )
        return ticket, event

    # -- jobs ----------------------------------------------------------------------------

    def _live_workers(self) -> list[WorkerJob]:
        return [w for w in self.jobs.values() if not w.adopted and w.gone_since is None]

    def _num_live_workers(self, tier: Optional[int] = None) -> int:
        """Live workers (of ``tier``; of every tier by default)."""
        return sum(1 for w in self._live_workers() if tier is None or w.tier == tier)

    def _adjust_workers(self) -> None:
        """Ask for workers while unclaimed work exceeds what the live ones will take; delete
        the queued ones once no work came for them for ``worker_idle_s``. Chunks that need
        other resources (a retry with more memory or time) get workers of their own tier,
        one each."""
        if self.pool_dir is None or self.outage_since is not None:
            return
        calls = [c for c in self.calls if not c.ended]
        waiting = [c for c in (*self.posted.values(), *self.queued) if not c.call.ended]
        self._notice_exited_workers()
        self._adjust_tiers(waiting)
        waiting = [c for c in waiting if c.tier == 0]
        unclaimed = sum(len(c.tasks) for c in waiting) + sum(c.num_uncut for c in calls)
        if unclaimed == 0:
            self._delete_idle_pending(0)
            return
        self.no_work_since.pop(0, None)
        chunks = len(waiting) + sum(_most_chunks(c) for c in calls)
        busy = sum(1 for c in self.claimed if not c.call.ended)
        task_s = self._slowest_task_time(calls, waiting)
        cap = self.settings.max_workers
        wanted = chunking.workers_wanted(busy, unclaimed, task_s, cap, chunks)
        missing = self._within_cap(wanted - self._num_live_workers(tier=0))
        if missing > 0:
            self._request_workers(missing)

    def _adjust_tiers(self, waiting: list[Chunk]) -> None:
        for resources, tier in self.tiers.items():
            if tier == 0:
                continue
            needed = sum(1 for c in waiting if c.tier == tier)
            if needed == 0:
                self._delete_idle_pending(tier)
                continue
            self.no_work_since.pop(tier, None)
            missing = self._within_cap(needed - self._num_live_workers(tier))
            if missing > 0:
                self._request_workers(missing, tier, resources)

    def _within_cap(self, missing: int) -> int:
        """``missing`` workers, or fewer if the pool's cap on jobs would be exceeded."""
        cap = self.settings.max_workers
        return missing if cap is None else min(missing, cap - self._num_live_workers())

    def _slowest_task_time(self, calls: list[Call], waiting: list[Chunk]) -> Optional[float]:
        """The longest measured task time of the calls with unclaimed work; None while one of
        them has none measured yet."""
        with_work = {id(c.call): c.call for c in waiting}
        with_work.update({id(c): c for c in calls if c.num_uncut})
        times = [self._task_time(call) for call in with_work.values()]
        if any(t is None for t in times):
            return None
        return max(times)  # type: ignore[type-var]

    def _request_workers(
        self, count: int, tier: int = 0, resources: Optional[Resources] = None
    ) -> None:
        resources = resources or Resources()
        assert self.pool_dir is not None
        while count > 0:
            size = min(count, self.backend.max_jobs_per_submit())
            request = JobRequest(
                self.pool_dir.dir,
                self.pool_dir.job_name,
                size,
                self.settings.python_path,
                self.pool_dir.log_dir,
                resources,
                tier,
            )
            # Journaled first: whoever finds this pool with its driver dead looks for
            # the jobs of this submission even if its answer never got here.
            self.pool_dir.journal("submitting", count=size, tier=tier)
            try:
                jobs = self.backend.submit(request, self.cancel)
            except (Cancelled, SchedulerError) as error:
                self.unanswered_submission = True  # it may have gone through all the same
                if isinstance(error, SchedulerError):
                    self._fail_all(error)
                return
            self.num_submissions += 1
            self.pool_dir.open_mailboxes(job.job_id for job in jobs)
            now = self.clock()
            for job in jobs:
                self.jobs[job.job_id] = WorkerJob(job, now, tier=tier, resources=resources)
            self.pool_dir.journal("submitted", jobs=[job.job_id for job in jobs])
            self._say_pool(
                "submitted",
                jobs=len(jobs),
                first_job=jobs[0].job_id if jobs else "",
                resources=resources.describe(),
            )
            count -= size

    def _notice_exited_workers(self) -> None:
        """Workers that idled out, seen by their exit marker before the scheduler says so,
        so that new work does not wait a status query for a new worker; and workers that
        died holding a chunk (their watcher wrote ``workers/JOB_ID.exit``): the scheduler
        is asked about them now, not a ``polling_interval`` later."""
        now = self.clock()
        started = [w for w in self._live_workers() if w.state is JobState.RUNNING or w.started]
        if not started or now - self.last_exit_check < max(0.25, POLL_S_PER_CHUNK * len(started)):
            return
        self.last_exit_check = now
        assert self.pool_dir is not None
        claimed_pids: dict[str, set[int]] = collections.defaultdict(set)
        for chunk in self.claimed:
            claimed_pids[chunk.job_id].add(chunk.claimed_pid)
        for worker in started:
            if self.pool_dir.worker_exited(worker.job.job_id):
                worker.gone_since = now
                if not self._holds(worker):
                    self._job_gone(worker)
            elif self._restarted(worker, claimed_pids.get(worker.job.job_id, set())):
                self._requeued(worker, worker.status or JobStatus(JobState.RUNNING))
            elif self._died_holding_work(worker):
                self.died_seen.add(worker.job.job_id)
                self.last_status = -float("inf")  # ask the scheduler at once

    def _died_holding_work(self, worker: WorkerJob) -> bool:
        """The worker's watcher wrote how it ended while it held a chunk (seen once)."""
        assert self.pool_dir is not None
        if worker.job.job_id in self.died_seen or not self._holds(worker):
            return False
        return self.pool_dir.worker_exit(worker.job.job_id) is not None

    def _restarted(self, worker: WorkerJob, claimed_pids: set[int]) -> bool:
        """The job runs a new worker process, not the one that claimed its chunks (with
        ``claimed_pids``): the scheduler requeued it and started it again between two
        status queries, or before one saw it pending."""
        if not claimed_pids:
            return False
        assert self.pool_dir is not None
        claim = self.pool_dir.worker_claim(worker.job.job_id)
        return claim is not None and any(pid not in (0, claim.pid) for pid in claimed_pids)

    def _delete_idle_pending(self, tier: int) -> None:
        """Jobs (of ``tier``) still waiting in the queue ``worker_idle_s`` after the work
        for them ran out would only start to idle: they are deleted, as a running worker
        exits after as long. Until then they keep their place in the queue for the next
        map. One whose worker started since the last status query is left alone: it may
        have claimed a chunk already. (One that starts as it is deleted and takes a chunk
        posted meanwhile costs that chunk no resubmission.)"""
        now = self.clock()
        if now - self.no_work_since.setdefault(tier, now) < self.settings.worker_idle_s:
            return
        assert self.pool_dir is not None
        idle = [
            w
            for w in self._live_workers()
            if w.tier == tier
            and w.state is JobState.PENDING
            and not w.started
            and not self.pool_dir.worker_started(w.job.job_id)
        ]
        if idle:
            self._delete([w.job for w in idle], "no work left for them")
            for worker in idle:
                del self.jobs[worker.job.job_id]
                self.deleted_idle.add(worker.job.job_id)

    def _query_status(self) -> None:
        """Once per ``polling_interval``, ask for the state of all the pool's jobs. The
        query runs in the background (a scheduler may take minutes to answer, or not
        answer at all), so that tickets are posted and results collected meanwhile; its
        answer is taken at the first step after it came."""
        query = self._status_query
        if query is not None:
            if query.done.is_set():
                self._status_query = None
                self._take_status(query)
            return
        now = self.clock()
        if not self.jobs or now - self.last_status < self.settings.polling_interval:
            return
        self.last_status = now
        workers = list(self.jobs.values())
        remote = [w.job for w in workers if not self._is_local_process(w)]
        # Only jobs whose end would be a loss are worth the scheduler's accounting; for
        # a running one that holds work, where it ran tells if it goes back to the queue.
        holding = {c.job_id for c in self.claimed}
        worth = {w.job.job_id for w in workers if w.job.job_id in holding or not w.started}
        running = {
            w.job.job_id: w.node
            for w in workers
            if w.job.job_id in holding and w.state is JobState.RUNNING
        }
        query = _StatusQuery(workers, now, self.backend, self.cancel, self._wake, worth, running)
        if self.threaded and remote:
            self._status_query = query
            query.start(remote)
            return
        if remote:
            query.run(remote)
        self._take_status(query)

    def _take_status(self, query: _StatusQuery) -> None:
        self._look_for_claims()  # a job that claimed, then ended, before the answer came
        now = self.clock()
        if isinstance(query.error, Cancelled):
            return
        if isinstance(query.error, SchedulerError):
            self._scheduler_unreachable(query.started, query.error)
            return
        if query.error is not None:
            raise query.error
        if query.asked:
            self.num_status_queries += 1
        if self.outage_since is not None:
            self._say_pool("scheduler reachable again", after_s=round(now - self.outage_since, 1))
            self.outage_since = None
        for worker in query.workers:
            if self.jobs.get(worker.job.job_id) is not worker:
                continue  # gone meanwhile
            if self._is_local_process(worker):
                alive = process_alive(worker.pid)
                status = JobStatus(JobState.RUNNING if alive else JobState.ENDED, "")
            else:
                missing = JobStatus(JobState.ENDED, "not in queue")
                status = query.statuses.get(worker.job.job_id, missing)
            self._update_job(worker, status, now)
        self._show_counts()
        self._recheck_the_dead(now)

    def _recheck_the_dead(self, now: float) -> None:
        """Ask again soon while the scheduler still lists a job whose worker died holding
        a chunk (:data:`DEATH_RECHECK_S`), so that its chunk does not wait a whole
        ``polling_interval`` to run again."""
        interval = self.settings.polling_interval
        if not any(job_id in self.jobs for job_id in self.died_seen):
            self._death_recheck_s = DEATH_RECHECK_S
            return
        self.last_status = now - interval + min(self._death_recheck_s, interval)
        self._death_recheck_s *= 2

    def _is_local_process(self, worker: WorkerJob) -> bool:
        return worker.adopted and worker.pid > 0 and worker.space == process_space()

    def _update_job(self, worker: WorkerJob, status: JobStatus, now: float) -> None:
        worker.reason = status.reason or worker.reason
        if status.state is JobState.PENDING and worker.state is JobState.RUNNING:
            self._requeued(worker, status)
        # An ending seen once (TIMEOUT in squeue -t all) outlives the job's leaving the queue.
        keep = status.state is JobState.ENDED and status.ending is None
        if worker.status is None or worker.status.ending is None or not keep:
            worker.status = status
        if status.state in (JobState.PENDING, JobState.RUNNING):
            worker.state = status.state
            worker.gone_since = None
            return
        if status.state is JobState.FAILED:
            self._delete([worker.job], f"error state {status.reason}")
            self._job_gone(worker)
            return
        if worker.gone_since is None:
            worker.gone_since = now
        if now - worker.gone_since >= self.settings.lost_job_grace_period_s or not self._holds(
            worker
        ):
            self._job_gone(worker)

    def _requeued(self, worker: WorkerJob, status: JobStatus) -> None:
        """The scheduler put a running job back in the queue (a requeue, a preemption, a
        node failure with requeueing): its worker process is gone, the job will start
        another. What it held is lost, through no fault of the tasks."""
        ending = status.ending or Ending.PREEMPTED  # NODE_FAILURE where the node is down
        worker.status = dataclasses.replace(status, ending=ending, node=status.node or worker.node)
        worker.started = False
        for chunk in [c for c in self.claimed if c.job_id == worker.job.job_id]:
            self.claimed.remove(chunk)
            self._lose(chunk, worker)
        worker.status = JobStatus(status.state, status.reason)  # its next run starts afresh

    def _holds(self, worker: WorkerJob) -> bool:
        return any(c.job_id == worker.job.job_id for c in self.claimed)

    def _job_gone(self, worker: WorkerJob) -> None:
        """The job left the queue: what it held without a result is lost."""
        del self.jobs[worker.job.job_id]
        lost = [c for c in self.claimed if c.job_id == worker.job.job_id]
        if not worker.started and not worker.adopted and not self._worker_started(worker):
            self._failed_start(worker)
            if self.something_failed:
                return
        for chunk in lost:
            self.claimed.remove(chunk)
            self._lose(chunk, worker)

    def _failed_start(self, worker: WorkerJob) -> None:
        """A job ended before its worker took any work. Two that said the same on stderr
        (or were put in the same error state) stop the map: retrying cannot help."""
        loss = self._classify(worker, None, started=False)
        key = summary_line(loss.detail)
        same = [f for f in self.start_failures if key and summary_line(f.detail) == key]
        self.start_failures.append(loss)
        self.failed_starts += 1
        self._say_pool("job failed before its first task", loss=loss.describe())
        evidence = self._work_dir_unseen(worker, loss)
        if evidence:
            self._fail_all(self._not_shared_error(loss, evidence))
        elif same:
            self._fail_all(self._broken_environment_error(loss, same[0]))
        elif self.failed_starts > self.settings.max_num_resubmissions:
            self._fail_all(self._failed_starts_error(worker))

    def _worker_started(self, worker: WorkerJob) -> bool:
        """A worker that ended without claiming anything may just have idled out."""
        return self.pool_dir is not None and self.pool_dir.worker_started(worker.job.job_id)

    def _classify(self, worker: WorkerJob, in_task: Optional[int], started: bool) -> Loss:
        """What ended ``worker``'s job, as a :class:`~batchpool.policy.Loss`."""
        status = worker.status
        exit_text = None
        if self.pool_dir is not None and not worker.adopted:
            exit_text = self.pool_dir.worker_exit(worker.job.job_id)
        worker_exit = WorkerExit.parse(exit_text) if exit_text else None
        # The worker could not write its records; or it could not even say so.
        no_space = (worker_exit is not None and worker_exit.exit_code == NO_SPACE_EXIT) or (
            worker_exit is None and no_room_left(self.settings.work_dir)
        )
        deleted = worker.job.job_id in self.deleted_idle
        cause = classify(status, worker_exit, in_task, started, no_space, deleted)
        detail = status.detail if status is not None else ""
        if cause in (Cause.CRASHED, Cause.NOT_STARTED, Cause.VANISHED):
            detail = self._stderr_tail(worker, 12) or detail  # what the job itself said
        return Loss(
            cause,
            worker.job.job_id,
            state=worker.reason,
            node=(status.node if status is not None else "") or worker.node,
            how=worker_exit.describe() if worker_exit is not None else "",
            task=in_task,
            resources=self._effective(worker.resources).describe(),
            detail=detail,
        )

    def _lose(self, chunk: Chunk, worker: WorkerJob) -> None:
        """The job that held ``chunk`` is gone: keep the tasks it finished, and act on the
        rest by the cause of the loss (:mod:`batchpool.policy`)."""
        call = chunk.call
        if call.ended:
            return
        result = self._take(chunk)
        if result is not None and result.complete:  # late on a shared filesystem
            self._collected(chunk, result)
            return
        rest = chunk.tasks
        if result is not None:
            rest = self._keep_finished(chunk, result)
        in_task = rest.start if result is not None and result.began and rest else None
        self._act_on_loss(chunk, rest, self._classify(worker, in_task, started=True))

    def _keep_finished(self, chunk: Chunk, result: ChunkResult) -> range:
        """Deliver the tasks of ``chunk`` that ``result`` holds; the tasks left to run."""
        kept = _kept_tasks(chunk.tasks, result)
        if kept:
            envelopes = [pickle.loads(e) for e in result.pickled_envelopes[: len(kept)]]
            self._deliver_envelopes(chunk.call, kept.start, envelopes)
        return range(kept.stop, chunk.tasks.stop)

    def _act_on_loss(self, chunk: Chunk, rest: range, loss: Loss) -> None:
        """Record the loss of tasks ``rest`` of ``chunk``; run them again, or not, as the
        policy decides."""
        call = chunk.call
        session = call.session
        assert session is not None  # an open call has its session
        event = ChunkEvent(
            "lost",
            chunk.number,
            rest.start,
            rest.stop,
            chunk.tries,
            job_id=loss.job_id,
            cause=loss.cause.value,
            detail=loss.describe(),
        )
        session.record_chunks([event])
        if not rest:
            return
        decision = self.policy.decide(
            loss,
            chunk.history,
            chunk.attempt,
            self.settings.max_num_resubmissions,
            self._effective(chunk.resources),
        )
        history = (*chunk.history, loss)
        then = decision.action.value
        self._say(call, "lost", chunk=chunk.number, loss=loss.describe(), then=then)
        if call.progress is not None:
            call.progress.counts.resubmitted += 1
        action = decision.action
        if action is Action.FAIL and loss.cause is Cause.NO_SPACE:
            error = OSError(errno.ENOSPC, f"a worker could not write: {loss.describe()}")
            self._fail_all(_unwritable(self.settings.work_dir, error, during_map=True))
            return
        if action is Action.FAIL:
            self._fail(call, self._lost_error(chunk, rest, history))
            return
        if action in (Action.RETRY, Action.RETRY_FREE):
            spent = 1 if action is Action.RETRY else 0
            self._requeue(chunk, rest, history, chunk.attempt + spent)
            return
        task = range(rest.start, rest.start + 1)
        after = range(rest.start + 1, rest.stop)
        if action is Action.RAISE:
            envelope = self._killed_envelope(call, loss, history)
            self._deliver_envelopes(call, task.start, [envelope])
            session.archive_result(call.next_chunk, task.start, pickle.dumps(envelope))
            call.next_chunk += 1
        elif action is Action.ESCALATE:
            self._requeue(chunk, task, history, chunk.attempt + 1, decision.resources)
        else:  # ISOLATE
            self._requeue(chunk, task, history, chunk.attempt + 1, chunk.resources)
        if after:
            self._requeue(chunk, after, history, chunk.attempt)

    def _requeue(
        self,
        chunk: Chunk,
        tasks: range,
        history: tuple[Loss, ...],
        attempt: int,
        resources: Optional[Resources] = None,
    ) -> None:
        """Queue ``tasks`` of ``chunk`` to be posted again, as the same chunk if they are
        all of its tasks, else as a new one."""
        call = chunk.call
        if tasks == chunk.tasks:
            number, tries = chunk.number, chunk.tries + 1
        else:
            number, tries = call.next_chunk, 0
            call.next_chunk += 1
        resources = chunk.resources if resources is None else resources
        new = Chunk(
            call,
            number,
            tasks,
            attempt=attempt,
            tries=tries,
            resources=resources,
            tier=self._tier(resources),
            history=history,
        )
        self.queued.append(new)

    def _tier(self, resources: Resources) -> int:
        return self.tiers.setdefault(resources, len(self.tiers))

    def _effective(self, own: Resources) -> Resources:
        """What jobs with the changes ``own`` have: the pool's own resources, changed."""
        if self._base_resources is None:
            self._base_resources = self.backend.base_resources()
        base = self._base_resources
        return Resources(
            own.mem_mb if own.mem_mb is not None else base.mem_mb,
            own.time_s if own.time_s is not None else base.time_s,
            own.exclude_nodes or base.exclude_nodes,
        )

    def _killed_envelope(self, call: Call, loss: Loss, history: tuple[Loss, ...]) -> tuple:
        """The failure envelope of the task that ``loss`` says was killed, as if it had
        raised a :class:`~batchpool.TaskKilledError`."""
        assert loss.task is not None and call.session is not None
        index = loss.task
        argument = _short_repr(call.session, index)
        attempts = [h.describe() for h in history if h.task == index]
        error_type: type[TaskKilledError]
        resources = f" ({loss.resources})" if loss.resources else ""
        if loss.cause is Cause.TIME_LIMIT:
            error_type = TaskTimeoutError
            what = (
                f"was stopped by the jobs' time limit{resources} {len(attempts)} times, the "
                "last time in a chunk of its own. Give the jobs more time (`time`, `h_rt`), "
                "or let the pool retry with more: retry_policy=RetryPolicy(max_time=...)."
            )
        elif loss.cause is Cause.MEMORY_LIMIT:
            error_type = TaskMemoryError
            what = (
                f"was stopped by the jobs' memory limit{resources} {len(attempts)} times. Give "
                "the jobs more memory (`mem`, `h_vmem`), or let the pool retry with more: "
                "retry_policy=RetryPolicy(max_mem=...)."
            )
        else:
            error_type = WorkerCrashedError
            what = (
                f"ended the worker running it {len(attempts)} times ({loss.how or loss.state}): "
                "a crash in C code, os._exit(), or a signal. Its other tasks ran on."
            )
        message = f"Task {index} of {call.describe()} (argument {argument}) {what}"
        message += "".join(f"\n  attempt: {a}" for a in attempts)
        error = error_type(message, call.session.dir, index, argument, attempts)
        text = f"{loss.detail}\n" if loss.detail else "(no stderr)\n"
        return (False, Failure(pickle.dumps(error), error_type.__name__, message, text))

    def _lost_error(self, chunk: Chunk, rest: range, history: tuple[Loss, ...]) -> JobsLostError:
        limit = self.settings.max_num_resubmissions
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
            f"Tasks {rest.start}-{rest.stop - 1} of {chunk.call.describe()} were lost: {why}.",
            "  history:",
            *(f"    {h.describe()}" for h in history),
        ]
        if last.detail:
            lines.append("  stderr: " + last.detail.replace("\n", "\n          "))
        session_dir = chunk.call.session.dir if chunk.call.session else None
        return JobsLostError("\n".join(lines), session_dir, (chunk.number,))

    def _failed_starts_error(self, worker: WorkerJob) -> JobsLostError:
        lines = [
            f"{self.failed_starts} jobs in a row ended before their worker took any work "
            f"(last: job {worker.job.job_id}, {worker.reason or 'left the queue'}). Check that "
            f"python_path ({self.settings.python_path}) exists on the compute nodes with "
            "batchpool installed, and that the work_dir is reachable there.",
            "  history:",
            *(f"    {loss.describe()}" for loss in self.start_failures),
        ]
        return JobsLostError("\n".join(lines), self._session_dirs_hint())

    def _broken_environment_error(self, loss: Loss, first: Loss) -> BrokenEnvironmentError:
        said = loss.detail.strip() or "(nothing)"
        lines = [
            f"Jobs {first.job_id} and {loss.job_id} ended before their worker took any task, "
            f"both with: {summary_line(said)}",
            f"Check that python_path ({self.settings.python_path}) runs on the compute nodes "
            "and has batchpool and your modules installed there, and that the work_dir "
            f"({self.settings.work_dir}) is visible from them. Last job ({loss.describe()}) said:",
            "    " + said.replace("\n", "\n    "),
        ]
        return BrokenEnvironmentError("\n".join(lines), self._session_dirs_hint(), said)

    def _work_dir_unseen(self, worker: WorkerJob, loss: Loss) -> str:
        """Why ``worker``'s job, which ended before its worker was ready, could not have
        seen the work_dir (the worker said so, or the job left no trace in it although the
        scheduler ran it); empty if nothing says so."""
        status = worker.status
        said_so = status is not None and status.exit_code == NOT_SHARED_EXIT
        if said_so or NOT_SHARED_MARK in loss.detail:
            return f"the worker of job {worker.job.job_id} did not find its pool directory"
        if status is None or status.ending not in (Ending.FAILED, Ending.COMPLETED):
            return ""  # it may never have run: cancelled, preempted, its node lost...
        if worker.adopted or self.pool_dir is None:
            return ""
        if self.pool_dir.worker_exit(worker.job.job_id) is not None:
            return ""  # its watcher wrote into the work_dir
        logs = (worker.job.stdout_path, worker.job.stderr_path)
        if any(os.path.exists(path) for path in logs):
            return ""
        return (
            f"job {worker.job.job_id} ran ({loss.state or status.reason}) but its log "
            f"files ({worker.job.stderr_path.name}...) are not in {worker.job.stderr_path.parent}"
        )

    def _not_shared_error(self, loss: Loss, evidence: str) -> BrokenEnvironmentError:
        said = loss.detail.strip() or "(nothing)"
        lines = [
            f"The jobs do not see the work_dir {self.settings.work_dir}: {evidence}. The "
            "work_dir must be on a filesystem that the compute nodes share with this "
            "machine: on most clusters a directory under your home or project space, not "
            "/tmp or another node-local disk. Pass work_dir=... (or set BATCHPOOL_WORK_DIR).",
            f"Last: {loss.describe()}; it said:",
            "    " + said.replace("\n", "\n    "),
        ]
        return BrokenEnvironmentError("\n".join(lines), self._session_dirs_hint(), said)

    def _session_dirs_hint(self) -> Optional[Path]:
        for call in self.calls:
            if call.session is not None:
                return call.session.dir
        return None

    def _stderr_tail(self, worker: WorkerJob, num_lines: int = 10) -> str:
        """The end of a job's stderr; from Python's own report of a fatal error (a
        segfault's stack, most recent call first) if there is one."""
        text = self.backend.filter_stderr(read_text(worker.job.stderr_path))
        fatal = text.rfind("Fatal Python error")
        if fatal >= 0:
            return "\n".join(text[fatal:].rstrip("\n").splitlines()[:num_lines])
        return "\n".join(text.rstrip("\n").splitlines()[-num_lines:])

    def _scheduler_unreachable(self, now: float, error: SchedulerError) -> None:
        if self.outage_since is None:
            self.outage_since = now
            self._say_pool("scheduler unreachable", error=error.message)
        for call in self.calls:
            if call.progress is not None:
                call.progress.counts.unreachable_since = time.strftime("%H:%M:%S")
        if now - self.outage_since < self.settings.scheduler_outage_s:
            return
        error.message = (
            f"The scheduler could not be asked for {now - self.outage_since:.0f} s "
            f"(scheduler_outage_s={self.settings.scheduler_outage_s}). The jobs are left in "
            "place: run the same script again to resume the map once the scheduler "
            f"answers. Last try: {error.message}"
        )
        self._fail_all(error, delete_jobs=False)

    def _delete(self, jobs: Sequence[Job], why: str) -> None:
        if not jobs:
            return
        self._say_pool("deleting", jobs=len(jobs), why=why)
        try:
            self.backend.delete(jobs, None)
        except SchedulerError as error:
            sys.stderr.write(f"batchpool: could not delete {len(jobs)} job(s): {error}\n")

    def _show_counts(self) -> None:
        pending = [w for w in self.jobs.values() if w.state is JobState.PENDING]
        running = sum(1 for w in self.jobs.values() if w.state is JobState.RUNNING)
        reasons = collections.Counter(
            _reason(w.reason) for w in pending if _reason(w.reason) not in ORDINARY_WAITS
        )
        waiting_for = ", ".join(f"{r} ({n} jobs)" for r, n in sorted(reasons.items()))
        if waiting_for != self._waiting_for:
            self._waiting_for = waiting_for
            if waiting_for:
                self._say_pool("jobs wait", waiting_for=waiting_for)
        for call in self.calls:
            if call.progress is not None:
                call.progress.counts.pending = len(pending)
                call.progress.counts.running = running
                call.progress.counts.waiting_for = waiting_for
                call.progress.counts.unreachable_since = ""
                call.progress.show_counts()

    def _heartbeat(self) -> None:
        now = self.clock()
        if now - self.last_heartbeat < HEARTBEAT_S / 5:
            return
        self.last_heartbeat = now
        if self.pool_dir is not None:
            self.heartbeats += 1
            self.pool_dir.heartbeat(self.heartbeats)
        if self.heartbeats % 5 == 0:
            for call in self.calls:
                if call.session is not None:
                    call.session.heartbeat()

    # -- the end of calls and of the pool ------------------------------------------------

    def _end_calls(self) -> None:
        for call in list(self.calls):
            if call.ended:
                self.calls.remove(call)
                continue
            if self._all_delivered(call):
                call.ended = True
                self.calls.remove(call)
                failed = call.num_failed_tasks or call.input_error is not None
                error = PoolError(f"{call.num_failed_tasks} task(s) raised") if failed else None
                self.something_failed |= bool(failed)  # its jobs' logs are kept too
                self._end_session(call, error)  # kept, to be resumed, when a task raised
                call.sink.finish()

    def _all_delivered(self, call: Call) -> bool:
        # Tasks after an input error are never read: they are not among those known.
        return call.input_done and not call.uncut and call.num_delivered >= call.num_tasks_known

    def _fail(self, call: Call, error: BaseException) -> None:
        """End ``call`` early: withdraw its tickets, tell its workers, keep its session."""
        if call.ended:
            return
        call.ended = True
        self.something_failed = True
        if call in self.calls:
            self.calls.remove(call)
        try:
            self._withdraw_tickets(call)
        except OSError as trouble:  # a full disk: the workers learn it when the pool ends
            if trouble.errno not in NO_SPACE_ERRNOS:
                raise
            sys.stderr.write(f"batchpool: could not withdraw the map's tickets: {trouble}\n")
        call.sink.fail(error)
        self._end_session(call, error)

    def _withdraw_tickets(self, call: Call) -> None:
        """Take back the tickets of ``call`` that no worker claimed, and tell the workers
        to skip its session."""
        withdrawn = []
        for number, chunk in list(self.posted.items()):
            session = chunk.call.session
            if chunk.call is call and session and session.withdraw(chunk.number, chunk.tries):
                del self.posted[number]
                withdrawn.append(chunk)
        if self.pool_dir is not None and call.session is not None:
            self.pool_dir.close_tickets(chunk.ticket for chunk in withdrawn)
            self.pool_dir.cancel(call.session.dir)
        for chunk in withdrawn:
            assert chunk.call.session is not None
            chunk.call.session.remove_record(chunk.number, chunk.tries)

    def _fail_all(self, error: BaseException, delete_jobs: bool = True) -> None:
        for call in list(self.calls):
            self._fail(call, _for_session(error, call))
        if not delete_jobs:
            self.jobs.clear()  # left in place for a resume

    def _end_session(self, call: Call, error: Optional[BaseException]) -> None:
        session = call.session
        if session is None:
            return
        if call.progress is not None:
            call.progress.close()
        if error is None:
            self._say(call, "done")
            session.mark_done()
            if self.settings.keep_work_dir:
                session.close_log()
                session.release()
            else:
                session.remove()
        else:
            self._say(call, "stopped", error=repr(error), kept=str(session.dir))
            session.close_log()
            session.release()

    def _terminate_now(self) -> None:
        for call in list(self.calls):
            self._fail(call, PoolError("The pool was terminated while the map ran."))
        self._stop_workers(delete_all=True)
        self.finished.set()

    def _stop_workers(self, delete_all: bool) -> None:
        """Tell the workers to exit; delete the jobs that would never start (all of them
        when terminating). On closing, wait a little for the workers on this host to
        exit (``join`` then returns with them gone, as in ``multiprocessing``). The pool
        directory goes unless something went wrong."""
        if self.pool_dir is None:
            return
        try:
            self.pool_dir.stop_workers()
        except OSError as error:
            sys.stderr.write(f"batchpool: could not tell the workers to stop: {error}\n")
        workers = [w for w in self.jobs.values() if not w.adopted]
        if not delete_all:
            here = self._wait_for_workers_here(workers, EXIT_WAIT_S)
            workers = [w for w in workers if w.state is JobState.PENDING or w in here]
        self._delete([w.job for w in workers], "the pool ended")
        if self.unanswered_submission:
            self._delete(self._unknown_jobs(), "submitted, but the answer was cut off")
        try:
            self.pool_dir.journal("ended")
        except OSError as error:  # a full disk: a later driver looks for the jobs again
            sys.stderr.write(f"batchpool: could not note that the pool ended: {error}\n")
        if not (self.something_failed or self.settings.keep_work_dir):
            self.pool_dir.remove()

    def _unknown_jobs(self) -> list[Job]:
        """The jobs of this pool in the queue that the pool does not know: those of a
        submission whose answer was cut off (asked even while terminating)."""
        assert self.pool_dir is not None
        unknown = self._jobs_named(self.pool_dir, None, lambda job_id, _: job_id not in self.jobs)
        return unknown or []

    def _jobs_named(
        self,
        pool: PoolDirectory,
        cancel: Optional[threading.Event],
        wanted: Callable[[str, JobStatus], bool],
    ) -> Optional[list[Job]]:
        """The jobs of ``pool`` in the queue that are ``wanted``; None (and a line on
        stderr) if the scheduler could not be asked."""
        try:
            statuses = self.backend.jobs_named(pool.job_name, cancel)
        except SchedulerError as error:
            sys.stderr.write(f"batchpool: could not look for the jobs of {pool.dir}: {error}\n")
            return None
        return [
            Job(job_id, pool.job_name, pool.log_dir, pool.log_dir)
            for job_id, status in statuses.items()
            if wanted(job_id, status)
        ]

    def _wait_for_workers_here(self, workers: list[WorkerJob], timeout_s: float) -> list:
        """Wait for the workers running on this host to exit; those still alive after
        ``timeout_s``."""
        assert self.pool_dir is not None
        alive = []
        for worker in workers:
            claim = self.pool_dir.worker_claim(worker.job.job_id)
            if claim is not None and claim.here:
                alive.append((worker, claim.pid))
        deadline = time.monotonic() + timeout_s
        while alive and time.monotonic() < deadline:
            alive = [(w, pid) for w, pid in alive if process_alive(pid)]
            if alive:
                time.sleep(MIN_POLL_S)
        return [w for w, _ in alive]

    # -- telling -------------------------------------------------------------------------

    def _say(self, call: Call, message: str, **fields: object) -> None:
        if call.session is None:
            return
        call.session.log(message, **fields)
        if self.settings.verbose:
            extra = " ".join(f"{k}={v}" for k, v in fields.items())
            sys.stderr.write(f"batchpool {call.session.name}: {message} {extra}\n")

    def _say_pool(self, message: str, **fields: object) -> None:
        for call in self.calls:
            self._say(call, message, **fields)
        if self.settings.verbose and not self.calls:
            extra = " ".join(f"{k}={v}" for k, v in fields.items())
            sys.stderr.write(f"batchpool: {message} {extra}\n")


class _StatusQuery:
    """One status query of the pool's jobs, run in a thread of its own or in the caller's."""

    def __init__(
        self,
        workers: list[WorkerJob],
        started: float,
        backend: Backend,
        cancel: threading.Event,
        wake: threading.Event,
        explain: frozenset[str] | set[str] = frozenset(),
        running: Optional[dict[str, str]] = None,
    ) -> None:
        self.workers = workers
        self.explain = explain
        self.running = running or {}
        """Jobs that were running (and where): one back in the queue is asked about."""
        self.started = started
        self.backend = backend
        self.cancel = cancel
        self.wake = wake
        self.statuses: dict[str, JobStatus] = {}
        self.error: Optional[BaseException] = None
        self.asked = False
        self.done = threading.Event()

    def start(self, jobs: list[Job]) -> None:
        thread = threading.Thread(target=self.run, args=(jobs,), name="batchpool-status")
        thread.daemon = True
        thread.start()

    def run(self, jobs: list[Job]) -> None:
        try:
            self.statuses = self.backend.status(jobs, self.cancel)
            self.asked = True
            self._explain_ended(jobs)
        except BaseException as error:  # handed to the dispatcher thread
            self.error = error
        finally:
            self.done.set()
            self.wake.set()


    def _explain_ended(self, jobs: list[Job]) -> None:
        """Ask the scheduler's accounting why the jobs in ``explain`` that left the queue,
        or sit in an error state, ended; fold the answers into :attr:`statuses`."""
        ended = [
            job
            for job in jobs
            if job.job_id in self.explain and _says_too_little(self.statuses.get(job.job_id))
        ]
        requeued = {
            job.job_id: self.running[job.job_id]
            for job in jobs
            if job.job_id in self.running
            and job.job_id in self.statuses
            and self.statuses[job.job_id].state is JobState.PENDING
        }
        ended += [job for job in jobs if job.job_id in requeued]
        if not ended:
            return
        for job_id, told in self.backend.explain(ended, self.cancel, requeued).items():
            known = self.statuses.get(job_id)
            self.statuses[job_id] = told if known is None else _told_more(known, told)


def _says_too_little(status: Optional[JobStatus]) -> bool:
    """Gone from the queue, in an error state, or ended without saying why."""
    return (
        status is None
        or status.state is JobState.FAILED
        or (status.state is JobState.ENDED and status.ending in (None, Ending.FAILED))
    )


def _told_more(known: JobStatus, told: JobStatus) -> JobStatus:
    """``known`` with what the scheduler's accounting ``told`` on top: its state stays."""
    return dataclasses.replace(
        known,
        ending=told.ending or known.ending,
        node=told.node or known.node,
        exit_code=told.exit_code if told.exit_code is not None else known.exit_code,
        signal=told.signal if told.signal is not None else known.signal,
        detail=told.detail or known.detail,
    )


def batch_of_applies(calls: list[Call]) -> Call:
    """One call for several ``apply`` calls of the same function: task ``i`` is call ``i``."""
    if len(calls) == 1:
        return calls[0]
    tasks = [task for call in calls for task in (call.tasks or [])]
    return Call(CallKind.APPLY, calls[0].function, tasks, _ApplyBatch([c.sink for c in calls]))


class _ApplyBatch:
    """The sink of a batch of ``apply`` calls: each task goes to its own call's sink."""

    def __init__(self, sinks: list[Sink]) -> None:
        self.sinks = sinks

    def deliver(self, start: int, envelopes: list, session_dir: Path) -> None:
        for i, envelope in enumerate(envelopes, start):
            self.sinks[i].deliver(0, [envelope], session_dir)

    def fail(self, error: BaseException) -> None:
        for sink in self.sinks:
            sink.fail(error)

    def finish(self) -> None:
        for sink in self.sinks:
            sink.finish()


def result_dir(call: Call) -> Path:
    assert call.session is not None
    return call.session.dir


def _most_chunks(call: Call) -> int:
    """How many chunks the uncut tasks of ``call`` make at most."""
    if call.chunksize:
        return sum(-(-len(span) // call.chunksize) for span in call.uncut)
    return call.num_uncut


def _complement(num_tasks: int, covered: list[range]) -> list[range]:
    """The task ranges of ``range(num_tasks)`` that no range of ``covered`` holds."""
    gaps = []
    position = 0
    for span in sorted(covered, key=lambda r: r.start):
        if span.start > position:
            gaps.append(range(position, span.start))
        position = max(position, span.stop)
    if position < num_tasks:
        gaps.append(range(position, num_tasks))
    return gaps


class _JobPickler(cloudpickle.Pickler):  # type: ignore[misc]
    """cloudpickle, but a bound method that its object gives by name travels as that
    object and the name, as ``pickle`` sends it: a method of a class that the workers
    can import keeps its code, its file and its lines (cloudpickle 3.1.3 sends such a
    method's function by value, and its tracebacks then name no file)."""

    def reducer_override(self, obj: object) -> Any:
        if isinstance(obj, types.MethodType):
            owner, name = obj.__self__, obj.__func__.__name__
            if getattr(owner, name, None) == obj:
                return getattr, (owner, name)
        return super().reducer_override(obj)


def pickle_for_jobs(what: str, obj: object) -> bytes:
    """``obj`` cloudpickled (:class:`_JobPickler`); a failure says that nothing was
    submitted for it."""
    try:
        buffer = io.BytesIO()
        _JobPickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(obj)
        return buffer.getvalue()
    except Exception as error:
        if hasattr(error, "add_note"):
            error.add_note(f"batchpool: {what} cannot be pickled; nothing was submitted.")
        raise


def _unwritable(work_dir: Path, error: OSError, during_map: bool = False) -> PoolError:
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


def _kept_tasks(tasks: range, result: ChunkResult) -> range:
    """The tasks of a chunk (``tasks``) that its record file holds: none unless the file
    began this very chunk."""
    if not result.began or result.tasks.start != tasks.start:
        return range(tasks.start, tasks.start)
    return range(tasks.start, min(result.tasks.stop, tasks.stop))


def _for_session(error: BaseException, call: Call) -> BaseException:
    if isinstance(error, PoolError) and error.session_dir is None and call.session is not None:
        error.session_dir = call.session.dir
    return error


def _reason(scheduler_words: str) -> str:
    """``"PENDING NodeDown"`` -> ``"NodeDown"``: the reason part of a status."""
    return scheduler_words.split(" ", 1)[-1].strip().strip("()")


def _short_repr(session: Session, index: int, limit: int = 200) -> str:
    """A short ``repr`` of task ``index``'s argument, for an error message."""
    try:
        (pickled,) = read_tasks(str(session.dir), index, index + 1)
        text = repr(pickle.loads(pickled))
    except Exception as error:  # the message must not fail for want of a repr
        text = f"<not shown: {error!r}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _inner(func: Callable) -> Callable:
    """The caller's function inside our star/apply wrappers (``functools.partial``)."""
    return func.args[0] if isinstance(func, functools.partial) and func.args else func


def _describe(func: Callable) -> str:
    """``module.qualname`` of a task function, seen through our star/apply wrappers."""
    inner = _inner(func)
    module = getattr(inner, "__module__", None) or "?"
    return f"{module}.{getattr(inner, '__qualname__', type(inner).__qualname__)}"


__all__ = ["Call", "CallKind", "Chunk", "ChunkState", "Dispatcher", "PoolSettings", "Sink"]
