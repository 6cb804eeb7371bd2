"""One dispatcher per pool: the loop that connects the pool's calls, chunks and jobs.

The fronts (:mod:`batchpool.proto_pool`, the Executor) hand work to
:meth:`Dispatcher.submit` as a :class:`~batchpool.calls.Call` and return at once. The
dispatcher thread then, in :meth:`Dispatcher.step`:

1. opens a session for each new call (:func:`batchpool.calls.open_session`: a new one,
   or the unfinished session of the same map, resumed) and writes its tasks;
2. reads what its jobs' mailboxes say (a ticket claimed, a chunk finished, a worker
   ready, exited or dead) and hands finished chunks' results to the calls' sinks
   (:class:`~batchpool.tickets.ChunkTable`);
3. cuts the next chunks (:mod:`batchpool.chunking`) and posts them as tickets, a few
   unclaimed tickets per live worker;
4. once per ``polling_interval``, asks the scheduler for the state of all the pool's
   jobs in one query (:class:`~batchpool.fleet.Fleet`); a chunk whose job ended or
   failed without its result is a loss, and :mod:`batchpool.policy` decides whether its
   tasks run again, with what, or fail; a scheduler that cannot be asked is waited out
   for ``scheduler_outage_s``, and no job is deleted meanwhile;
5. asks for more workers while unclaimed work exceeds what the live ones will take
   (:func:`batchpool.chunking.workers_wanted`), within the cap.

Each part owns its state (DESIGN, "The engine"): the calls their tasks and sinks, the
table the chunks, the fleet the jobs, the policy what a loss means. The dispatcher owns
only the inbox, the pool directory and the loop. ``step`` never blocks on the
filesystem for long and takes its time from ``clock``, so that tests drive it with a
fake clock and :mod:`batchpool.testing.fake_backend`.
"""

from __future__ import annotations

import collections
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from . import chunking
from ._layout import NO_SPACE_ERRNOS, Claim
from .backend import Backend, Resources
from .calls import (
    Adopted,
    Call,
    CallKind,
    PoolState,
    attach,
    batch_of_applies,
    describe_function,
    open_session,
    pickle_for_jobs,
)
from .errors import PoolError
from .fleet import Fleet
from .losses import Losses
from .options import PoolSettings
from .policy import unwritable_error
from .progress import tell
from .session import HEARTBEAT_S, PoolDirectory, Summaries
from .tickets import Chunk, ChunkTable

MIN_POLL_S = 0.002
"""Shortest wait between two looks at the mailboxes, right after progress..."""
MAX_POLL_S = 0.05
"""...growing by half each time up to this. Both are at least :data:`POLL_S_PER_CHUNK`
times the number of jobs and chunks out: one look is one ``open`` per mailbox, and a
shared filesystem should not see more than about 2,000 of them a second."""
POLL_S_PER_CHUNK = 0.0005
TASKS_AHEAD = 1000
"""An ``imap`` reads at most this many tasks ahead of what its caller has consumed."""


@dataclass(frozen=True)
class PoolStatistics:
    """What a pool did so far (:meth:`batchpool.proto_pool.Pool.statistics`): the
    submission commands it ran and the jobs they started, the status queries the
    scheduler answered, its directory in the work_dir and the
    name its jobs are submitted with (None and "" before the first map), and whether the
    last status query failed (an outage is being waited out)."""

    num_submissions: int
    num_jobs_submitted: int
    num_status_queries: int
    pool_dir: Optional[Path]
    job_name: str
    scheduler_unreachable: bool


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
        self._inbox: collections.deque[tuple[str, Any]] = collections.deque()
        self._wake = threading.Event()
        self._state = PoolState.RUN
        self._thread: Optional[threading.Thread] = None
        self._lock = threading.Lock()
        self.calls: list[Call] = []
        self.pool_dir: Optional[PoolDirectory] = None
        self.table = ChunkTable(clock)
        self.fleet = Fleet(backend, settings, clock, self._say_pool, self._wake, threaded)
        self.losses = Losses(
            settings,
            self.table,
            self.fleet,
            self._fail,
            self._fail_all,
            self._say,
            self._say_pool,
            self._session_dir_hint,
        )
        self.last_heartbeat = -float("inf")
        self.heartbeats = 0
        self.something_failed = False
        self.summaries = Summaries(settings.work_dir)
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
        self.fleet.cancel.set()
        self._send("terminate", None)

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

    @property
    def started(self) -> bool:
        """The dispatcher thread was started (it may have ended since)."""
        return self._thread is not None

    def statistics(self) -> PoolStatistics:
        fleet = self.fleet
        return PoolStatistics(
            fleet.num_submissions,
            fleet.num_jobs_submitted,
            fleet.num_status_queries,
            self.pool_dir.dir if self.pool_dir is not None else None,
            self.pool_dir.job_name if self.pool_dir is not None else "",
            fleet.outage_since is not None,
        )

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
            self._fail_all(unwritable_error(self.settings.work_dir, error, during_map=True))

    def _step(self) -> None:
        progressed = self._take_inbox()
        if self._state is PoolState.TERMINATE:
            for call in list(self.calls):
                self._fail(call, PoolError("The pool was terminated while the map ran."))
            self._stop_workers(delete_all=True)
            self.finished.set()
            return
        progressed |= self._look_for_claims()
        progressed |= self._collect_results() | self.losses.deliver_early()
        self._query_status()
        if self.pool_dir is not None:  # after the status: what a loss queued again goes out
            self.table.fill(self.calls, self.pool_dir, len(self.fleet.live()))
        self._adjust_workers()
        self._heartbeat()
        self._end_calls()
        if self._state is PoolState.CLOSE and not self.calls:
            self._stop_workers(delete_all=False)
            self.finished.set()
        per_look = POLL_S_PER_CHUNK * (len(self.fleet.jobs) + len(self.table.claimed))
        shortest, longest = max(MIN_POLL_S, per_look), max(MAX_POLL_S, per_look)
        self._poll_s = shortest if progressed else min(self._poll_s * 1.5, longest)

    def _next_wait(self) -> float:
        if self.table.busy():
            return self._poll_s
        if not self.fleet.jobs:
            return HEARTBEAT_S
        until_status = self.fleet.last_status + self.settings.polling_interval - self.clock()
        return max(MIN_POLL_S, min(until_status, HEARTBEAT_S))

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
            for batch in batch_of_applies(applies):  # those that came together, by function
                self._open(batch)
            applies = []
            if kind == "call":
                self._open(payload)
            elif kind == "tasks":
                self._add_tasks(*payload)
            elif kind == "close" and self._state is PoolState.RUN:
                self._state = PoolState.CLOSE
            elif kind == "terminate":
                self._state = PoolState.TERMINATE
        for batch in batch_of_applies(applies):
            self._open(batch)
        return progressed

    def _open(self, call: Call) -> None:
        work_dir = self.settings.work_dir
        try:
            pool_dir = self._ensure_pool_dir()
            call.backend_name = self.backend.name
            verbose, progress = self.settings.verbose, self.settings.progress
            if call.attach_to is not None:
                adopted: Optional[list[Adopted]] = attach(call, work_dir, verbose, progress)
            else:
                resume = self.settings.resume
                adopted = open_session(call, pool_dir, work_dir, resume, verbose, progress)
        except BaseException as error:  # pickling errors, full disks: this call fails alone
            if isinstance(error, OSError) and error.errno in NO_SPACE_ERRNOS:
                # while resuming: what was kept stays, for a later resume
                error = _for_session(unwritable_error(work_dir, error, True), call)
            call.sink.fail(error)
            if call.session is not None:
                self._end_session(call, error)
            return
        self.calls.append(call)
        if adopted is None:
            function = describe_function(call.function)
            self._say(call, "session", tasks=call.num_tasks_known, function=function)
            return
        for held in adopted:
            chunk = Chunk(call, held.number, held.tasks, tries=held.tries)
            self._claimed(chunk, held.claim, held.job_name)
        self._say(call, "resumed", results=call.num_delivered, adopted_chunks=len(adopted))

    def _ensure_pool_dir(self) -> PoolDirectory:
        if self.pool_dir is not None:
            return self.pool_dir
        initializer = pickle_for_jobs("the initializer", self.initializer)
        try:
            pool_dir = PoolDirectory.create(self.settings.work_dir)
            pool_dir.write_setup(
                initializer, self.settings.worker_idle_s, self.settings.maxtasksperchild
            )
            pool_dir.heartbeat(0)  # from now on, whoever finds it can tell if its driver lives
        except OSError as error:
            raise unwritable_error(self.settings.work_dir, error) from error
        self.pool_dir = self.fleet.pool_dir = pool_dir
        self.fleet.sweep_dead_pools()
        return pool_dir

    def _add_tasks(
        self, call: Call, pickled: list[bytes], done: bool, error: Optional[tuple]
    ) -> None:
        try:
            call.add_tasks(pickled, done, error)
        except OSError as os_error:
            self._fail(call, unwritable_error(self.settings.work_dir, os_error))

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
        chunk = self.table.next_chunk(self.calls, 0)
        while chunk is not None:  # bounded: each chunk takes tasks from what is uncut
            chunks.append(chunk)
            chunk = self.table.next_chunk(self.calls, 0)
        self.table.post(chunks, self.pool_dir)
        self.pool_dir.mark_detached(marker)
        self._adjust_workers()
        sessions = []
        for call in self.calls:
            assert call.session is not None
            self._say(call, "detached", chunks=call.next_chunk, jobs=len(self.fleet.jobs))
            call.session.close_log()
            call.session.release()
            sessions.append(call.session.dir)
        self.calls.clear()
        self.fleet.jobs.clear()
        self.finished.set()
        return sessions

    # -- claims and results ------------------------------------------------------------

    def _look_for_claims(self) -> bool:
        pool_dir = self.pool_dir
        if pool_dir is None:
            return False
        pool_dir.read_mailboxes(w.job_id for w in self.fleet.jobs.values() if not w.adopted)
        claims = self.table.new_claims(pool_dir, self.settings.polling_interval)
        for chunk, claim in claims:
            self._claimed(chunk, claim, pool_dir.job_name)
        return bool(claims)

    def _claimed(self, chunk: Chunk, claim: Claim, job_name: str) -> None:
        self.table.claim(chunk, claim)
        self.fleet.claimed(claim.job_id, claim.host, claim.pid, claim.space, job_name)
        self.losses.start_failures.clear()  # "in a row"

    def _collect_results(self) -> bool:
        if self.pool_dir is None:
            return False
        done = self.table.finished(self.pool_dir)
        for chunk, result in done:
            self.losses.collected(chunk, result)
        return bool(done)

    # -- jobs --------------------------------------------------------------------------

    def _adjust_workers(self) -> None:
        """Ask for workers while unclaimed work exceeds what the live ones will take; delete
        the queued ones once no work came for them for ``worker_idle_s``. Chunks that need
        other resources (a retry with more memory or time) get workers of their own tier,
        one each."""
        fleet = self.fleet
        if self.pool_dir is None or fleet.outage_since is not None:
            return
        self.losses.news(fleet.notice_exits(self.table.holders(), self.table.claimed_pids()))
        waiting = self.table.waiting()
        for resources, tier in self.table.tiers.items():
            needed = sum(1 for c in waiting if c.tier == tier) if tier else 0
            if tier and needed == 0:
                fleet.delete_idle_pending(tier)
            elif tier:
                fleet.no_work_since.pop(tier, None)
                self._request(fleet.within_cap(needed - len(fleet.live(tier))), tier, resources)
        calls = [c for c in self.calls if not c.ended]
        first_tier = [c for c in waiting if c.tier == 0]
        unclaimed = sum(len(c.tasks) for c in first_tier) + sum(c.num_uncut for c in calls)
        if unclaimed == 0:
            fleet.delete_idle_pending(0)
            return
        fleet.no_work_since.pop(0, None)
        chunks = len(first_tier) + sum(c.most_chunks for c in calls)
        task_s = self.table.slowest_task_time(calls)
        cap = self.settings.max_jobs
        wanted = chunking.workers_wanted(self.table.num_held(), unclaimed, task_s, cap, chunks)
        self._request(fleet.within_cap(wanted - len(fleet.live(tier=0))), 0, Resources())

    def _request(self, count: int, tier: int, resources: Resources) -> None:
        if count > 0:
            refused = self.fleet.request(count, tier, resources)
            if refused is not None:
                self._fail_all(refused)

    def _query_status(self) -> None:
        """Once per ``polling_interval``, the state of all the pool's jobs; what left the
        queue holding work is lost (:meth:`Fleet.query_status`)."""
        if not self.fleet.query_status(self.table.holders()):
            return
        self._look_for_claims()  # a job that claimed, then ended, before the answer came
        self.losses.news(self.fleet.take_status(self.table.holders()))
        if self.fleet.outage_error is not None:
            self._fail_all(self.fleet.outage_error, delete_jobs=False)
        self._show_counts()

    def _show_counts(self) -> None:
        jobs = self.fleet.counts()
        for call in self.calls:
            if call.progress is not None:
                call.progress.show_jobs(
                    jobs.pending, jobs.running, jobs.waiting_for, jobs.unreachable
                )

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
            elif call.all_delivered:
                call.ended = True
                self.calls.remove(call)
                failed = call.num_failed_tasks or call.input_error is not None
                error = PoolError(f"{call.num_failed_tasks} task(s) raised") if failed else None
                self.something_failed |= bool(failed)  # its jobs' logs are kept too
                if call.num_failed_tasks and call.session is not None:
                    call.session.mark_failed(call.num_failed_tasks)  # "failed" in status
                self._end_session(call, error)  # kept, to be resumed, when a task raised
                call.sink.finish()

    def _fail(self, call: Call, error: BaseException) -> None:
        """End ``call`` early: withdraw its tickets, tell its workers, keep its session."""
        if call.ended:
            return
        call.ended = True
        self.something_failed = True
        if call in self.calls:
            self.calls.remove(call)
        try:
            self.table.withdraw(call, self.pool_dir)
        except OSError as trouble:  # a full disk: the workers learn it when the pool ends
            if trouble.errno not in NO_SPACE_ERRNOS:
                raise
            sys.stderr.write(f"batchpool: could not withdraw the map's tickets: {trouble}\n")
        call.sink.fail(error)
        self._end_session(call, error)

    def _fail_all(self, error: BaseException, delete_jobs: bool = True) -> None:
        for call in list(self.calls):
            self._fail(call, _for_session(error, call))
        if not delete_jobs:
            self.fleet.jobs.clear()  # left in place for a resume

    def _end_session(self, call: Call, error: Optional[BaseException]) -> None:
        session = call.session
        if session is None:
            return
        if call.progress is not None:
            call.progress.close()
        if error is not None:
            self._say(call, "stopped", error=repr(error), kept=str(session.dir))
        else:
            self._say(call, "done")
            session.mark_done()
        if error is None and not self.settings.keep_work_dir:
            self.summaries.keep(session)  # for `batchpool report` and `status`; no results
        else:
            session.close_log()
            session.release()

    def _stop_workers(self, delete_all: bool) -> None:
        """Stop the jobs (:meth:`Fleet.stop`); the pool directory goes unless something
        went wrong."""
        if self.pool_dir is None:
            return
        self.fleet.stop(delete_all)
        try:
            self.pool_dir.journal("ended")
        except OSError as error:  # a full disk: a later driver looks for the jobs again
            sys.stderr.write(f"batchpool: could not note that the pool ended: {error}\n")
        if not (self.something_failed or self.settings.keep_work_dir):
            self.pool_dir.remove()

    def _session_dir_hint(self) -> Optional[Path]:
        for call in self.calls:
            if call.session is not None:
                return call.session.dir
        return None

    # -- telling -------------------------------------------------------------------------

    def _say(self, call: Call, message: str, **fields: object) -> None:
        if call.session is not None:
            tell(call.session, self.settings.verbose, message, **fields)

    def _say_pool(self, message: str, **fields: object) -> None:
        for call in self.calls:
            self._say(call, message, **fields)
        if not self.calls:
            tell(None, self.settings.verbose, message, **fields)


def _for_session(error: BaseException, call: Call) -> BaseException:
    if isinstance(error, PoolError) and error.session_dir is None and call.session is not None:
        error.session_dir = call.session.dir
    return error


__all__ = ["Dispatcher", "PoolStatistics"]
