"""The jobs of one pool: what the scheduler and the workers' mailboxes say of them.

The :class:`Fleet` submits workers, asks the scheduler for the state of all its jobs
in one query per ``polling_interval`` (in a thread of its own: a scheduler may take
minutes to answer), waits out an outage for ``scheduler_outage_s`` without deleting a
job, deletes jobs that wait in the queue with no work left, and stops them when the
pool ends (DESIGN, "The engine" and "Failures"). It reports facts — this job left
the queue, that one went back to it, the scheduler has been unreachable too long —
as :class:`JobNews` and :attr:`Fleet.outage_error`; what they cost the chunks and the
calls is the dispatcher's and the policy's to decide. It never fails a call itself.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from ._layout import process_alive, process_space
from .backend import Backend, Ending, Job, JobRequest, JobState, JobStatus, Resources
from .commands import Cancelled
from .errors import SchedulerError
from .options import PoolSettings
from .session import PoolDirectory

POLL_S_PER_JOB = 0.0005
"""One look at a worker's exit marker costs about this (see the dispatcher's poll)."""
DEATH_RECHECK_S = 1.0
"""After a worker was seen dead holding a chunk, the scheduler is asked at once, then
again after this while it still lists the job (a job takes a moment to end there),
doubling up to ``polling_interval``."""
EXIT_WAIT_S = 5.0
"""How long closing a pool waits for its workers on this host to exit before deleting them."""


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
    def job_id(self) -> str:
        return self.job.job_id

    @property
    def node(self) -> str:
        return (self.status.node if self.status is not None else "") or self.host

    @property
    def local_process(self) -> bool:
        """An adopted worker of this very host and pid namespace: asked by its pid."""
        return self.adopted and self.pid > 0 and self.space == process_space()


@dataclass(frozen=True)
class JobNews:
    """A job lost what it held: it left the queue (``requeued`` False; it is no longer
    in :attr:`Fleet.jobs`), or the scheduler put it back in the queue. ``status``: what
    to classify the loss by."""

    worker: WorkerJob
    status: Optional[JobStatus]
    requeued: bool = False
    never_started: bool = False
    """It left the queue before its worker got ready to take work."""


@dataclass(frozen=True)
class Counts:
    """The jobs as the progress line shows them."""

    pending: int
    running: int
    waiting_for: str
    """Unusual reasons jobs wait (a hold, a node down): ``"NodeDown (2 jobs)"``."""
    unreachable: bool
    """The last status query failed: an outage is being waited out."""


class Fleet:
    """Every job of one pool (module docstring)."""

    def __init__(
        self,
        backend: Backend,
        settings: PoolSettings,
        clock: Callable[[], float],
        say: Callable[..., None],
        wake: threading.Event,
        threaded: bool,
    ) -> None:
        self.backend = backend
        self.settings = settings
        self.work_dir = Path(settings.work_dir)
        self.clock = clock
        self.say = say
        self.wake = wake
        self.threaded = threaded
        self.cancel = threading.Event()
        """Set by terminate: running scheduler commands give up."""
        self.pool_dir: Optional[PoolDirectory] = None
        self.jobs: dict[str, WorkerJob] = {}
        self.last_status = -float("inf")
        self._query: Optional[_StatusQuery] = None
        self.last_exit_check = -float("inf")
        self.outage_since: Optional[float] = None
        self.outage_error: Optional[SchedulerError] = None
        """Set once the scheduler could not be asked for ``scheduler_outage_s``."""
        self.num_status_queries = 0
        self.num_submissions = 0
        self.num_jobs_submitted = 0
        self.unanswered_submission = False
        """A submission was cut off (terminated, or its command failed): jobs of it may exist."""
        self.died_seen: set[str] = set()
        """Jobs whose worker was seen dead holding a chunk (an early status query was made)."""
        self.no_work_since: dict[int, float] = {}
        """Tier -> when the work for its queued jobs ran out."""
        self.deleted_idle: set[str] = set()
        """Jobs the pool deleted as idle: a chunk one of them took as it died is no fault."""
        self._death_recheck_s = DEATH_RECHECK_S
        self._base_resources: Optional[Resources] = None
        self._waiting_for = ""

    # -- counting --------------------------------------------------------------------

    def live(self, tier: Optional[int] = None) -> list[WorkerJob]:
        """This pool's own jobs that have not left (of ``tier``; of every tier by default)."""
        return [
            w
            for w in self.jobs.values()
            if not w.adopted and w.gone_since is None and (tier is None or w.tier == tier)
        ]

    def within_cap(self, missing: int) -> int:
        """``missing`` workers, or fewer if the pool's cap on jobs would be exceeded."""
        cap = self.settings.max_jobs
        return missing if cap is None else min(missing, cap - len(self.live()))

    def counts(self) -> Counts:
        pending = [w for w in self.jobs.values() if w.state is JobState.PENDING]
        running = sum(1 for w in self.jobs.values() if w.state is JobState.RUNNING)
        reasons: dict[str, int] = {}
        for worker in pending:
            unusual = worker.status.unusual_wait if worker.status is not None else ""
            if unusual:
                reasons[unusual] = reasons.get(unusual, 0) + 1
        waiting_for = ", ".join(f"{r} ({n} jobs)" for r, n in sorted(reasons.items()))
        if waiting_for != self._waiting_for:
            self._waiting_for = waiting_for
            if waiting_for:
                self.say("jobs wait", waiting_for=waiting_for)
        return Counts(len(pending), running, waiting_for, self.outage_since is not None)

    def effective(self, own: Resources) -> Resources:
        """What jobs with the changes ``own`` have: the pool's own resources, changed."""
        if self._base_resources is None:
            self._base_resources = self.backend.base_resources()
        base = self._base_resources
        return Resources(
            own.mem_mb if own.mem_mb is not None else base.mem_mb,
            own.time_s if own.time_s is not None else base.time_s,
            own.exclude_nodes or base.exclude_nodes,
        )

    # -- asking for workers ----------------------------------------------------------

    def request(
        self, count: int, tier: int = 0, resources: Optional[Resources] = None
    ) -> Optional[SchedulerError]:
        """Submit ``count`` workers (of ``tier``, with ``resources``); the scheduler's
        refusal, if it refused."""
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
                return error if isinstance(error, SchedulerError) else None
            self.num_submissions += 1
            self.num_jobs_submitted += len(jobs)
            self.pool_dir.open_mailboxes(job.job_id for job in jobs)
            now = self.clock()
            for job in jobs:
                self.jobs[job.job_id] = WorkerJob(job, now, tier=tier, resources=resources)
            self.pool_dir.journal("submitted", jobs=[job.job_id for job in jobs])
            first = jobs[0].job_id if jobs else ""
            self.say(
                "submitted",
                jobs=len(jobs),
                first_job=first,
                resources=resources.describe(),
                job_ids=[job.job_id for job in jobs],
            )
            count -= size
        return None

    def claimed(self, claim_job: str, host: str, pid: int, space: str, job_name: str) -> None:
        """Job ``claim_job`` took a chunk: its worker started. A job this pool does not
        know (of a dead driver's pool) is adopted, its logs not ours to read."""
        worker = self.jobs.get(claim_job)
        if worker is None:
            unknown = self.work_dir / "?"
            job = Job(claim_job, job_name, unknown, unknown)
            worker = WorkerJob(job, self.clock(), JobState.RUNNING, adopted=True)
            worker.host, worker.pid, worker.space = host, pid, space
            self.jobs[claim_job] = worker
        worker.space = worker.space or space
        worker.started = True

    def delete_idle_pending(self, tier: int) -> None:
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
            for w in self.live(tier)
            if w.state is JobState.PENDING
            and not w.started
            and not self.pool_dir.worker_started(w.job_id)
        ]
        if idle:
            self.delete([w.job for w in idle], "no work left for them")
            for worker in idle:
                del self.jobs[worker.job_id]
                self.deleted_idle.add(worker.job_id)

    def delete(self, jobs: Sequence[Job], why: str) -> None:
        if not jobs:
            return
        self.say("deleting", jobs=len(jobs), why=why)
        try:
            self.backend.delete(jobs, None)
        except SchedulerError as error:
            sys.stderr.write(f"batchpool: could not delete {len(jobs)} job(s): {error}\n")

    # -- what the workers say --------------------------------------------------------

    def notice_exits(self, holders: set[str], claimed_pids: dict[str, set[int]]) -> list[JobNews]:
        """Workers that idled out, seen by their exit marker before the scheduler says so,
        so that new work does not wait a status query for a new worker; and workers that
        died holding a chunk (their watcher wrote how it ended): the scheduler is asked
        about them now, not a ``polling_interval`` later."""
        now = self.clock()
        started = [w for w in self.live() if w.state is JobState.RUNNING or w.started]
        if not started or now - self.last_exit_check < max(0.25, POLL_S_PER_JOB * len(started)):
            return []
        self.last_exit_check = now
        assert self.pool_dir is not None
        news = []
        for worker in started:
            job_id = worker.job_id
            if self.pool_dir.worker_exited(job_id):
                worker.gone_since = now
                if job_id not in holders:
                    self.say("exited", job=job_id)  # idle (or told to stop): for the report
                    news += self._gone(worker)
            elif self._restarted(worker, claimed_pids.get(job_id, set())):
                news.append(self._requeued(worker, worker.status or JobStatus(JobState.RUNNING)))
            elif self._died_holding_work(job_id, holders):
                self.died_seen.add(job_id)
                self.last_status = -float("inf")  # ask the scheduler at once
        return news

    def _died_holding_work(self, job_id: str, holders: set[str]) -> bool:
        """The worker's watcher wrote how it ended while it held a chunk (seen once)."""
        if job_id not in holders or job_id in self.died_seen:
            return False
        assert self.pool_dir is not None
        return self.pool_dir.worker_exit(job_id) is not None

    def _restarted(self, worker: WorkerJob, claimed_pids: set[int]) -> bool:
        """The job runs a new worker process, not the one that claimed its chunks (with
        ``claimed_pids``): the scheduler requeued it and started it again between two
        status queries, or before one saw it pending."""
        if not claimed_pids:
            return False
        assert self.pool_dir is not None
        claim = self.pool_dir.worker_claim(worker.job_id)
        return claim is not None and any(pid not in (0, claim.pid) for pid in claimed_pids)

    def _worker_started(self, worker: WorkerJob) -> bool:
        """A worker that ended without claiming anything may just have idled out."""
        return self.pool_dir is not None and self.pool_dir.worker_started(worker.job_id)

    # -- what the scheduler says -----------------------------------------------------

    def query_status(self, holders: set[str]) -> bool:
        """Once per ``polling_interval``, start a query of all the pool's jobs (in the
        background when threaded). True when an answer is ready for :meth:`take_status`."""
        if self._query is not None:
            return self._query.done.is_set()
        now = self.clock()
        if not self.jobs or now - self.last_status < self.settings.polling_interval:
            return False
        self.last_status = now
        workers = list(self.jobs.values())
        remote = [w.job for w in workers if not w.local_process]
        # Only jobs whose end would be a loss are worth the scheduler's accounting; for
        # a running one that holds work, where it ran tells if it goes back to the queue.
        worth = {w.job_id for w in workers if w.job_id in holders or not w.started}
        running = {
            w.job_id: w.node for w in workers if w.job_id in holders and w.state is JobState.RUNNING
        }
        self._query = _StatusQuery(
            workers, now, self.backend, self.cancel, self.wake, worth, running
        )
        if self.threaded and remote:
            self._query.start(remote)
            return False
        if remote:
            self._query.run(remote)
        self._query.done.set()  # nothing to ask: every job is a process of this host
        return True

    def take_status(self, holders: set[str]) -> list[JobNews]:
        """The answer of the query :meth:`query_status` made: what it means for each job."""
        query, self._query = self._query, None
        assert query is not None and query.done.is_set()
        now = self.clock()
        if isinstance(query.error, Cancelled):
            return []
        if isinstance(query.error, SchedulerError):
            self._unreachable(query.started, query.error)
            return []
        if query.error is not None:
            raise query.error
        if query.asked:
            self.num_status_queries += 1
        if self.outage_since is not None:
            self.say("scheduler reachable again", after_s=round(now - self.outage_since, 1))
            self.outage_since = None
        news = []
        for worker in query.workers:
            if self.jobs.get(worker.job_id) is not worker:
                continue  # gone meanwhile
            if worker.local_process:
                alive = process_alive(worker.pid)
                status = JobStatus(JobState.RUNNING if alive else JobState.ENDED, "")
            else:
                missing = JobStatus(JobState.ENDED, "not in queue")
                status = query.statuses.get(worker.job_id, missing)
            news += self._update(worker, status, now, holders)
        self._recheck_the_dead(now)
        return news

    def _update(
        self, worker: WorkerJob, status: JobStatus, now: float, holders: set[str]
    ) -> list[JobNews]:
        worker.reason = status.reason or worker.reason
        news = []
        if status.state is JobState.PENDING and worker.state is JobState.RUNNING:
            news.append(self._requeued(worker, status))
        # An ending seen once (TIMEOUT in squeue -t all) outlives the job's leaving the queue.
        keep = status.state is JobState.ENDED and status.ending is None
        if worker.status is None or worker.status.ending is None or not keep:
            worker.status = status
        if status.state in (JobState.PENDING, JobState.RUNNING):
            worker.state = status.state
            worker.gone_since = None
            return news
        if status.state is JobState.FAILED:
            self.delete([worker.job], f"error state {status.reason}")
            return news + self._gone(worker)
        if worker.gone_since is None:
            worker.gone_since = now
        grace_over = now - worker.gone_since >= self.settings.lost_job_grace_period_s
        if grace_over or worker.job_id not in holders or self._ended_for_sure(worker):
            news += self._gone(worker)
        return news

    def _ended_for_sure(self, worker: WorkerJob) -> bool:
        """The worker's watcher wrote how its process ended and the scheduler says how
        the job ended: what the worker recorded is all there to read (it closed its files
        before its watcher wrote), so its chunk need not wait for late results."""
        ending = worker.status.ending if worker.status is not None else None
        return worker.job_id in self.died_seen and ending is not None

    def _requeued(self, worker: WorkerJob, status: JobStatus) -> JobNews:
        """The scheduler put a running job back in the queue (a requeue, a preemption, a
        node failure with requeueing): its worker process is gone, the job will start
        another. What it held is lost, through no fault of the tasks."""
        ending = status.ending or Ending.PREEMPTED  # NODE_FAILURE where the node is down
        lost_with = dataclasses.replace(status, ending=ending, node=status.node or worker.node)
        worker.started = False
        worker.status = JobStatus(status.state, status.reason)  # its next run starts afresh
        return JobNews(worker, lost_with, requeued=True)

    def _gone(self, worker: WorkerJob) -> list[JobNews]:
        del self.jobs[worker.job_id]
        never = not (worker.started or worker.adopted or self._worker_started(worker))
        return [JobNews(worker, worker.status, never_started=never)]

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

    def _unreachable(self, now: float, error: SchedulerError) -> None:
        if self.outage_since is None:
            self.outage_since = now
            self.say("scheduler unreachable", error=error.message)
        if now - self.outage_since < self.settings.scheduler_outage_s:
            return
        error.message = (
            f"The scheduler could not be asked for {now - self.outage_since:.0f} s "
            f"(scheduler_outage_s={self.settings.scheduler_outage_s}). The jobs are left in "
            "place: run the same script again to resume the map once the scheduler "
            f"answers. Last try: {error.message}"
        )
        self.outage_error = error

    # -- the end ---------------------------------------------------------------------

    def sweep_dead_pools(self) -> None:
        """Delete the jobs that dead drivers left waiting in the queue (a driver killed
        while it submitted, or before it could delete them): they would start only to
        find their driver gone. Their running jobs are left alone: each exits by itself
        once it sees its driver gone, after the chunk it holds (which a resumed map
        adopts). Found by the pools' journals and job names (:meth:`Backend.jobs_named`)."""
        for pool in PoolDirectory.dead_ones_with_jobs(self.work_dir):
            waiting = self._jobs_named(
                pool, self.cancel, lambda job_id, status: status.state is JobState.PENDING
            )
            if waiting is None:
                continue
            self.delete(waiting, f"left waiting by the dead driver of {pool.name}")
            pool.journal("swept", deleted=[job.job_id for job in waiting], by=os.getpid())

    def stop(self, delete_all: bool) -> None:
        """Tell the workers to exit; delete the jobs that would never start (all of them
        when terminating). On closing, wait a little for the workers on this host to
        exit (``join`` then returns with them gone, as in ``multiprocessing``)."""
        assert self.pool_dir is not None
        try:
            self.pool_dir.stop_workers()
        except OSError as error:
            sys.stderr.write(f"batchpool: could not tell the workers to stop: {error}\n")
        workers = [w for w in self.jobs.values() if not w.adopted]
        if not delete_all:
            here = self._wait_for_workers_here(workers, EXIT_WAIT_S)
            workers = [w for w in workers if w.state is JobState.PENDING or w in here]
        self.delete([w.job for w in workers], "the pool ended")
        if self.unanswered_submission:
            self.delete(self._unknown_jobs(), "submitted, but the answer was cut off")

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
            claim = self.pool_dir.worker_claim(worker.job_id)
            if claim is not None and claim.here:
                alive.append((worker, claim.pid))
        deadline = time.monotonic() + timeout_s
        while alive and time.monotonic() < deadline:
            alive = [(w, pid) for w, pid in alive if process_alive(pid)]
            if alive:
                time.sleep(0.002)
        return [w for w, _ in alive]


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
