"""Every chunk of every call of a pool, and where it is: the :class:`ChunkTable`.

A chunk is cut from a call's uncut tasks (:mod:`batchpool.chunking` decides how many),
posted as a ticket in the pool's log, claimed by a worker (its record file created),
and finished; or lost with its job and queued to be posted again, perhaps for workers
of another *tier* (a retry with more memory or time). The table owns those three
collections and nothing else (DESIGN, "The engine": one table for every map of the
pool). It reads the pool directory and the sessions, never the scheduler: which jobs
live is :mod:`batchpool.fleet`'s to know, what a loss means is :mod:`batchpool.policy`'s.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass
from typing import Callable, Optional

from . import chunking
from ._layout import Claim, Ticket, read_file
from .backend import Resources
from .calls import Call
from .policy import Loss
from .session import ChunkEvent, ChunkResult, PoolDirectory, Session

CLAIM_AGE_FOR_ESTIMATE_S = 1.0
"""A chunk claimed this long ago bounds its call's task time from below."""


@dataclass(eq=False)
class Chunk:
    """Tasks ``tasks`` of ``call``, and where they are."""

    call: Call
    number: int
    tasks: range
    spent: int = 0
    """Resubmissions spent on these tasks (by the policy: :mod:`batchpool.policy`)."""
    tries: int = 0
    """Times the chunk was posted: names its record file (one per try)."""
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
    delivered: int = 0
    """Its first tasks whose results were delivered while it ran (:attr:`Call.per_task`)."""
    peeked_at: float = -float("inf")

    @property
    def session(self) -> Session:
        assert self.call.session is not None  # an open call has its session
        return self.call.session


class ChunkTable:
    """Posted, claimed and queued chunks of one pool (module docstring)."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.posted: dict[int, Chunk] = {}
        """Tickets nobody claimed yet (as far as the driver has seen), by number."""
        self.claimed: list[Chunk] = []
        """Chunks a worker took; their results are awaited."""
        self.queued: collections.deque[Chunk] = collections.deque()
        """Chunks lost with their job, to be posted again."""
        self.next_ticket = 0
        self.tiers: dict[Resources, int] = {Resources(): 0}
        """Workers of tier N run the chunks that need resources N (0: the pool's own)."""
        self.task_s: dict[str, float] = {}
        """Measured seconds per task, by function."""
        self.last_listing = -float("inf")

    # -- what the others ask ---------------------------------------------------------

    def busy(self) -> bool:
        return bool(self.posted or self.claimed or self.queued)

    def waiting(self) -> list[Chunk]:
        """Chunks no worker holds (posted or queued) of calls that go on."""
        return [c for c in (*self.posted.values(), *self.queued) if not c.call.ended]

    def num_held(self) -> int:
        return sum(1 for c in self.claimed if not c.call.ended)

    def holders(self) -> set[str]:
        """The jobs that hold a chunk."""
        return {c.job_id for c in self.claimed}

    def claimed_pids(self) -> dict[str, set[int]]:
        """By job: the worker processes that claimed its chunks."""
        pids: dict[str, set[int]] = collections.defaultdict(set)
        for chunk in self.claimed:
            pids[chunk.job_id].add(chunk.claimed_pid)
        return pids

    def held_by(self, job_id: str) -> list[Chunk]:
        """Take the chunks job ``job_id`` holds out of the table (its job is lost)."""
        held = [c for c in self.claimed if c.job_id == job_id]
        self.claimed = [c for c in self.claimed if c.job_id != job_id]
        return held

    def tier(self, resources: Resources) -> int:
        return self.tiers.setdefault(resources, len(self.tiers))

    # -- cutting and posting ---------------------------------------------------------

    def fill(self, calls: list[Call], pool_dir: PoolDirectory, num_workers: int) -> None:
        """Post tickets until about :func:`chunking.tickets_ahead` are out per live worker."""
        target = max(1, num_workers) * chunking.tickets_ahead(self.chunk_time(calls))
        chunks: list[Chunk] = []
        while len(self.posted) + len(chunks) < target:
            chunk = self.next_chunk(calls, num_workers)
            if chunk is None:
                break
            chunks.append(chunk)
        self.post(chunks, pool_dir)

    def next_chunk(self, calls: list[Call], num_workers: int) -> Optional[Chunk]:
        """A queued chunk, else the next one cut from the first call with uncut tasks."""
        while self.queued:
            chunk = self.queued.popleft()
            if not chunk.call.ended:
                return chunk
        for call in calls:
            if call.ended or not call.uncut:
                continue
            if call.chunksize and not call.input_done and call.num_uncut < call.chunksize:
                continue  # an imap chunk is whole, as in multiprocessing
            span = call.uncut[0]
            size = chunking.chunk_size(
                call.num_uncut, self.task_time(call), num_workers, call.chunksize
            )
            size = min(size, len(span))
            if size == len(span):
                call.uncut.popleft()
            else:
                call.uncut[0] = range(span.start + size, span.stop)
            return Chunk(call, call.new_chunk_number(), range(span.start, span.start + size))
        return None

    def post(self, chunks: list[Chunk], pool_dir: PoolDirectory) -> None:
        """Post ``chunks`` as tickets: each session journals its chunks first (what a
        resumed map looks for), then the tickets go out in one append to the log."""
        events: dict[Session, list[ChunkEvent]] = {}
        tickets = []
        for chunk in chunks:
            ticket = Ticket(
                self.next_ticket,
                str(chunk.session.dir),
                chunk.number,
                chunk.tries,
                chunk.tasks.start,
                chunk.tasks.stop,
                chunk.call.function_key,
                chunk.tier,
            )
            self.next_ticket += 1
            tasks = chunk.tasks
            event = ChunkEvent(
                "posted",
                chunk.number,
                tasks.start,
                tasks.stop,
                chunk.tries,
                str(pool_dir.dir),
                ticket.number,
            )
            events.setdefault(chunk.session, []).append(event)
            tickets.append(ticket)
        for session, posted in events.items():
            session.record_chunks(posted)
        pool_dir.post(tickets)
        now = self.clock()
        for chunk, ticket in zip(chunks, tickets):
            chunk.ticket = ticket.number
            chunk.posted_at = now
            self.posted[ticket.number] = chunk

    def requeue(
        self,
        chunk: Chunk,
        tasks: range,
        history: tuple[Loss, ...],
        spent: int,
        resources: Optional[Resources] = None,
    ) -> None:
        """Queue ``tasks`` of ``chunk`` to be posted again: as the same chunk if they are
        all of its tasks, else as a new one; with ``resources`` (default: its own)."""
        call = chunk.call
        if tasks == chunk.tasks:
            number, tries = chunk.number, chunk.tries + 1
        else:
            number, tries = call.new_chunk_number(), 0
        resources = chunk.resources if resources is None else resources
        self.queued.append(
            Chunk(
                call,
                number,
                tasks,
                spent,
                tries,
                resources=resources,
                tier=self.tier(resources),
                history=history,
            )
        )

    # -- claims ----------------------------------------------------------------------

    def new_claims(self, pool_dir: PoolDirectory, interval: float) -> list[tuple[Chunk, Claim]]:
        """Tickets claimed since the last look, by what the workers' mailboxes say; once
        per ``interval``, also the claims of workers that died before saying so."""
        claims = []
        for number, chunk in list(self.posted.items()):
            claim = pool_dir.claim(number)
            if claim is not None:
                del self.posted[number]
                claims.append((chunk, claim))
        return claims + self._unsaid_claims(interval)

    def _unsaid_claims(self, interval: float) -> list[tuple[Chunk, Claim]]:
        """A worker that died between claiming a ticket and saying so in its mailbox left
        a claim nobody hears of: once per ``interval``, the record files of the tickets
        out for that long are looked for in a fresh listing of their sessions'
        ``results/`` (a listing, not a lookup by name: that could be cached as missing)."""
        now = self.clock()
        old = [c for c in self.posted.values() if now - c.posted_at >= interval]
        if not old or now - self.last_listing < interval:
            return []
        self.last_listing = now
        listed: dict[int, set[tuple[int, int]]] = {}
        claims = []
        for chunk in old:
            session = chunk.session
            files = listed.setdefault(id(session), set(session.record_files()))
            if (chunk.number, chunk.tries) not in files:
                continue
            claim = session.record_claim(chunk.number, chunk.tries)
            if claim is not None and not claim.withdrawn:
                del self.posted[chunk.ticket]
                claims.append((chunk, claim))
        return claims

    def claim(self, chunk: Chunk, claim: Claim) -> None:
        chunk.job_id = claim.job_id
        chunk.claimed_pid = claim.pid
        chunk.claimed_at = self.clock()
        self.claimed.append(chunk)
        chunk.session.record_chunks([ChunkEvent("claimed", chunk.number, job_id=claim.job_id)])

    # -- results ---------------------------------------------------------------------

    def finished(self, pool_dir: PoolDirectory) -> list[tuple[Chunk, ChunkResult]]:
        """The chunks whose workers said they finished them, with their results, taken
        out of the table (a chunk of a dead driver's pool: once its record file is whole).
        A result not to be seen here yet is looked for again at the next call."""
        self.claimed = [c for c in self.claimed if not c.call.ended]
        done = []
        for chunk in list(self.claimed):
            if chunk.ticket >= 0:
                said = chunk.ticket in pool_dir.finished
            else:
                data = read_file(chunk.session.paths.record(chunk.number, chunk.tries))
                said = data is not None and ChunkResult.parse(chunk.number, data).complete
            result = self.take(chunk, pool_dir) if said else None
            if result is not None:
                self.claimed.remove(chunk)
                done.append((chunk, result))
        return done

    def take(self, chunk: Chunk, pool_dir: PoolDirectory) -> Optional[ChunkResult]:
        """What the record file of ``chunk`` holds, folded into the archive, and the file
        removed: first its ticket is closed in the log, so that no worker that read it
        earlier claims it again once the file is gone."""
        if chunk.ticket >= 0:
            pool_dir.close_tickets([chunk.ticket])
            pool_dir.forget(chunk.ticket)
        return chunk.session.take_record(chunk.number, chunk.tries)

    def withdraw(self, call: Call, pool_dir: Optional[PoolDirectory]) -> None:
        """Take back the tickets of ``call`` that no worker claimed, and tell the workers
        to skip its session."""
        withdrawn = []
        for number, chunk in list(self.posted.items()):
            if chunk.call is call and chunk.session.withdraw(chunk.number, chunk.tries):
                del self.posted[number]
                withdrawn.append(chunk)
        if pool_dir is not None and call.session is not None:
            pool_dir.close_tickets(chunk.ticket for chunk in withdrawn)
            pool_dir.cancel(call.session.dir)
        for chunk in withdrawn:
            chunk.session.remove_record(chunk.number, chunk.tries)

    # -- how long tasks take ---------------------------------------------------------

    def learn_task_time(self, function_key: str, result: ChunkResult) -> None:
        per_task = result.elapsed_s / max(1, len(result.tasks))
        old = self.task_s.get(function_key)
        self.task_s[function_key] = per_task if old is None else 0.5 * old + 0.5 * per_task

    def task_time(self, call: Call) -> Optional[float]:
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

    def chunk_time(self, calls: list[Call]) -> Optional[float]:
        """Measured seconds a chunk of the first call with work to post takes (None if
        not measured yet, or it has no ``chunksize``: then chunks are cut by time)."""
        for call in calls:
            if not call.ended and call.uncut and call.chunksize:
                task_s = self.task_time(call)
                return None if task_s is None else task_s * call.chunksize
        return None

    def slowest_task_time(self, calls: list[Call]) -> Optional[float]:
        """The longest measured task time of the calls with unclaimed work (of tier 0);
        None while one of them has none measured yet."""
        with_work = {id(c.call): c.call for c in self.waiting() if c.tier == 0}
        with_work.update({id(c): c for c in calls if c.num_uncut and not c.ended})
        times = [self.task_time(call) for call in with_work.values()]
        if any(t is None for t in times):
            return None
        return max(times)  # type: ignore[type-var]
