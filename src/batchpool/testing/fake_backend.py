"""An in-memory scheduler with a fake clock: the dispatcher's policy, tested in milliseconds.

:class:`FakeBackend` is a real :class:`~batchpool.backend.Backend` whose jobs are
not processes: each running job is a :class:`batchpool.worker.Worker` that the test
advances with :meth:`FakeBackend.tick`, in the test's own process, on the real
pool directory and sessions. Time is a :class:`FakeClock` that the test advances;
faults are data (:class:`FakeFaults`)::

    clock = FakeClock()
    backend = FakeBackend(clock, slots=4, start_delay_s=1.0)
    dispatcher = Dispatcher(backend, settings, clock=clock, threaded=False)
    dispatcher.submit(call)
    run_until(dispatcher, backend, clock, lambda: result.ready())

Nothing sleeps and nothing is started as a subprocess.
"""

from __future__ import annotations

import enum
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from .. import _layout
from ..backend import (
    Backend,
    Cancel,
    Ending,
    Job,
    JobRequest,
    JobState,
    JobStatus,
    Resources,
    still_queued,
)
from ..errors import SchedulerError
from ..worker import Worker

FAKE_HOST = "fake-node"
"""The host name fake workers write into their claims."""


class FakeClock:
    """Seconds that pass only when the test says so."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass(frozen=True)
class FakeFaults:
    """Faults as data; jobs are named by their submission index (0, 1, ...)."""

    error_state_jobs: frozenset[int] = frozenset()
    """Jobs that go into an error state instead of starting."""
    crash_holding_jobs: frozenset[int] = frozenset()
    """Jobs that claim a chunk and die at once, holding it."""
    outage: Optional[tuple[float, float]] = None
    """Status queries fail between these two clock readings."""
    unshared_jobs: frozenset[int] = frozenset()
    """Jobs that start on a node that does not see the work_dir: they end at once
    (``FAILED``), leaving nothing in it, as a job whose log files cannot be opened."""
    linger_s: float = 0.0
    """A job whose worker died (:class:`FakeDeath`) is still listed as running this long
    (as a real scheduler takes a moment, its epilog, to end it)."""


class FakeDeath(BaseException):
    """Raised by a task to end its fake job there, as the scheduler or a crash would: the
    tasks before it keep their records. ``ending``: what the fake scheduler then says
    (None: nothing); ``exit``: what the worker's watcher writes (``"exit 3"``,
    ``"signal 11"``; ``""``: nothing, as when the whole job was killed)."""

    def __init__(self, ending: Optional[Ending] = None, exit: str = "") -> None:
        super().__init__(ending, exit)
        self.ending = ending
        self.exit = exit


class _Phase(enum.Enum):
    PENDING = "pending"
    RUNNING = "running"
    ERROR = "error"
    ENDED = "ended"


@dataclass(eq=False)
class FakeJob:
    index: int
    job: Job
    pool_dir: Path
    submitted_at: float
    phase: _Phase = _Phase.PENDING
    worker: Optional[Worker] = None
    last_work: float = 0.0
    deleted: bool = False
    ending: Optional[Ending] = None
    tier: int = 0
    died_at: Optional[float] = None


@dataclass
class FakeCounts:
    """What the dispatcher asked of the fake scheduler."""

    submits: int = 0
    jobs: int = 0
    status_queries: int = 0
    failed_status_queries: int = 0
    deletes: list[str] = field(default_factory=list)
    max_running: int = 0


class FakeBackend(Backend):
    """A scheduler in memory (module docstring).

    Parameters
    ----------
    clock
        The fake clock the dispatcher uses too.
    slots
        Jobs that may run at once (None: any number).
    start_delay_s
        How long a job waits in the queue before it starts, if a slot is free.
    faults
        :class:`FakeFaults`.
    max_jobs_per_submit
        As a backend with job arrays of this size.
    resources
        The pool's own resources (:meth:`base_resources`).
    nodes
        How many nodes it says the pool can use (:meth:`num_nodes`; None: it cannot
        exclude nodes).
    """

    name = "fake"

    def __init__(
        self,
        clock: FakeClock,
        slots: Optional[int] = None,
        start_delay_s: float = 1.0,
        faults: FakeFaults = FakeFaults(),
        max_jobs_per_submit: int = 100,
        resources: Optional[Resources] = None,
        nodes: Optional[int] = None,
    ) -> None:
        self.clock = clock
        self.slots = slots
        self.start_delay_s = start_delay_s
        self.faults = faults
        self._max_jobs_per_submit = max_jobs_per_submit
        self.resources = resources or Resources()
        self.nodes = nodes
        self.requests: list[JobRequest] = []
        self.jobs: list[FakeJob] = []
        self.counts = FakeCounts()

    # -- the Backend protocol --

    def max_jobs_per_submit(self) -> int:
        return self._max_jobs_per_submit

    def submit(self, request: JobRequest, cancel: Optional[threading.Event] = None) -> list[Job]:
        self.counts.submits += 1
        self.requests.append(request)
        jobs = []
        for _ in range(request.count):
            index = len(self.jobs)
            job = Job(
                str(index),
                request.job_name,
                *map(Path, request.logs.pair(str(index))),
            )
            fake = FakeJob(index, job, request.pool_dir, self.clock(), tier=request.tier)
            self.jobs.append(fake)
            jobs.append(job)
        self.counts.jobs += len(jobs)
        return jobs

    def status(
        self, jobs: Sequence[Job], cancel: Optional[threading.Event] = None
    ) -> dict[str, JobStatus]:
        self.counts.status_queries += 1
        outage = self.faults.outage
        if outage is not None and outage[0] <= self.clock() < outage[1]:
            self.counts.failed_status_queries += 1
            raise SchedulerError("the fake scheduler is down", command=["fake-status"])
        wanted = {job.job_id for job in jobs}
        states = {
            _Phase.PENDING: JobState.PENDING,
            _Phase.RUNNING: JobState.RUNNING,
            _Phase.ERROR: JobState.FAILED,
        }
        statuses = {
            fake.job.job_id: JobStatus(states[fake.phase], fake.phase.value)
            for fake in self.jobs
            if fake.job.job_id in wanted and fake.phase in states
        }
        for fake in self.jobs:
            if fake.job.job_id not in wanted:
                continue
            if fake.died_at is not None and self.clock() - fake.died_at < self.faults.linger_s:
                statuses[fake.job.job_id] = JobStatus(JobState.RUNNING, "lingering")
            elif fake.ending is not None:  # ended jobs stay visible with it, as in Slurm
                statuses[fake.job.job_id] = JobStatus(
                    JobState.ENDED, fake.ending.name, fake.ending, FAKE_HOST
                )
        return statuses

    def jobs_named(
        self, name: str, cancel: Optional[threading.Event] = None
    ) -> dict[str, JobStatus]:
        named = [fake.job for fake in self.jobs if fake.job.name == name]
        return still_queued(self.status(named, cancel))

    def delete(self, jobs: Sequence[Job], cancel: Optional[threading.Event] = None) -> None:
        ids = {job.job_id for job in jobs}
        for fake in self.jobs:
            if fake.job.job_id in ids:
                fake.phase = _Phase.ENDED
                fake.deleted = True
        self.counts.deletes.extend(sorted(ids))

    def base_resources(self) -> Resources:
        return self.resources

    def num_nodes(self, cancel: Cancel = None) -> Optional[int]:
        return self.nodes

    # -- the jobs' side --

    def running(self) -> list[FakeJob]:
        return [fake for fake in self.jobs if fake.phase is _Phase.RUNNING]

    def tick(self) -> None:
        """Start the jobs whose time came; let every running job take one ticket."""
        now = self.clock()
        for fake in self.jobs:
            if fake.phase is _Phase.PENDING and now - fake.submitted_at >= self.start_delay_s:
                self._start(fake, now)
        for fake in self.running():
            self._work(fake, now)
        self.counts.max_running = max(self.counts.max_running, len(self.running()))

    def _start(self, fake: FakeJob, now: float) -> None:
        if fake.index in self.faults.error_state_jobs:
            fake.phase = _Phase.ERROR
            return
        if fake.index in self.faults.unshared_jobs:
            fake.phase, fake.ending, fake.died_at = _Phase.ENDED, Ending.FAILED, now
            return
        if self.slots is not None and len(self.running()) >= self.slots:
            return
        fake.phase = _Phase.RUNNING
        fake.last_work = now
        fake.worker = Worker(
            str(fake.pool_dir), fake.job.job_id, FAKE_HOST, fake.index + 1, fake.tier
        )
        _layout.append_record(fake.worker.mailbox, _layout.READY, 0, fake.worker.claim)

    def _work(self, fake: FakeJob, now: float) -> None:
        worker = fake.worker
        assert worker is not None
        worker.read_log()
        if worker.stopped:
            fake.phase = _Phase.ENDED
            return
        if fake.index in self.faults.crash_holding_jobs:
            if _claim_only(worker):
                fake.phase = _Phase.ENDED
            return
        try:
            took = worker.take_one()
        except FakeDeath as death:
            fake.phase = _Phase.ENDED
            fake.ending = death.ending
            fake.died_at = now
            if death.exit:
                _layout.append_record(worker.mailbox, _layout.ENDED, 0, death.exit.encode())
            return
        if took:
            fake.last_work = now
            if worker.retired():
                fake.phase = _Phase.ENDED
        elif now - fake.last_work >= worker.idle_s:
            fake.phase = _Phase.ENDED


def _claim_only(worker: Worker) -> bool:
    """Claim the next ticket without running it (a job that dies holding it)."""
    worker.read_log()
    while worker.pending:
        ticket = worker.pending.pop(next(iter(worker.pending)))
        fd = worker.claim_ticket(ticket)
        if fd is not None:
            os.close(fd)
            return True
    return False


def run_until(
    step: Callable[[], None],
    backend: FakeBackend,
    clock: FakeClock,
    done: Callable[[], bool],
    dt_s: float = 0.1,
    max_steps: int = 100_000,
) -> float:
    """Step the dispatcher, tick the jobs and advance the clock by ``dt_s`` until ``done``;
    the fake seconds it took. Raises AssertionError after ``max_steps``."""
    start = clock()
    for _ in range(max_steps):
        step()
        if done():
            return clock() - start
        backend.tick()
        clock.advance(dt_s)
    raise AssertionError(f"not done after {max_steps} steps ({clock() - start:.1f} fake s)")
