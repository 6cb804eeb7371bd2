"""What comes of a chunk whose worker ended: its result, or a loss, and what it costs.

A chunk ends in one of three ways (DESIGN, "Failures"): its worker says it finished
and its record file holds every result (delivered, :meth:`Losses.collected`); its
record file is damaged (the tasks that passed their checks are kept, the rest is a
loss); or its job is gone without it (:meth:`Losses.news`, from what the
:class:`~batchpool.fleet.Fleet` reports). A loss is classified by three witnesses —
the scheduler's word, the worker's exit marker, the chunk's records
(:func:`batchpool.policy.classify`) — and the policy table decides what it costs:
the tasks run again (perhaps alone, perhaps with more memory or time), the task gets
its error, or the call fails with a message from :mod:`batchpool.policy`. Jobs that end
before their first task are counted here too: two saying the same, or a job that
cannot see the work_dir, is a broken environment.
"""

from __future__ import annotations

import errno
import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from . import policy
from ._layout import NO_SPACE_EXIT, read_file
from .backend import Ending, Resources
from .calls import Call
from .errors import PoolError
from .files import no_room_left
from .fleet import Fleet, JobNews, WorkerJob
from .options import PoolSettings
from .policy import (
    Action,
    Cause,
    Loss,
    RetryPolicy,
    WorkerExit,
    classify,
    summary_line,
    unwritable_error,
)
from .session import ChunkEvent, ChunkResult
from .tickets import Chunk, ChunkTable
from .worker import NOT_SHARED_EXIT, NOT_SHARED_MARK

PEEK_S = 0.25
"""How often a running chunk's record file is read for its results so far."""


@dataclass
class Losses:
    """Delivers what chunks finished and acts on what their jobs lost (module docstring).
    ``fail`` ends one call with an error, ``fail_all`` every call of the pool; ``say`` and
    ``say_pool`` tell an event of a call or of the pool; ``session_dir_hint`` names a
    session for an error that is the pool's."""

    settings: PoolSettings
    table: ChunkTable
    fleet: Fleet
    fail: Callable[[Call, BaseException], None]
    fail_all: Callable[[BaseException], None]
    say: Callable[..., None]
    say_pool: Callable[..., None]
    session_dir_hint: Callable[[], Optional[Path]]
    start_failures: list[Loss] = field(default_factory=list)
    """Jobs in a row that ended before their worker took any work."""

    @property
    def policy(self) -> RetryPolicy:
        return self.settings.retry_policy

    def collected(self, chunk: Chunk, result: ChunkResult) -> None:
        """Deliver a chunk's result; a damaged one (kept aside by the session) gives
        what passed its checks, and the rest of the chunk runs again."""
        chunk.session.log_usage(chunk.job_id or result.job_id, result)
        if result.complete and _kept_tasks(chunk.tasks, result) == chunk.tasks:
            self.say(chunk.call, "collected", chunk=chunk.number, tasks=len(result.tasks))
            self.table.learn_task_time(chunk.call.function_key, result)
            self._deliver_kept(chunk, result)
            return
        rest = self._keep_finished(chunk, result)
        paths = chunk.session.paths
        record = paths.relative(paths.record(chunk.number, chunk.tries))
        where = f"{record} failed its checks; the tasks before are kept"
        self.act(chunk, rest, Loss(Cause.RESULT_DAMAGED, chunk.job_id, detail=where))

    def _keep_finished(self, chunk: Chunk, result: ChunkResult) -> range:
        """Deliver the tasks of ``chunk`` that ``result`` holds; the tasks left to run."""
        kept = self._deliver_kept(chunk, result)
        return range(max(kept.stop, chunk.tasks.start + chunk.delivered), chunk.tasks.stop)

    def _deliver_kept(self, chunk: Chunk, result: ChunkResult) -> range:
        """Deliver the tasks of ``chunk`` that ``result`` holds and that were not delivered
        yet (:meth:`deliver_early`); the tasks it holds."""
        kept = _kept_tasks(chunk.tasks, result)
        if len(kept) > chunk.delivered:
            pickled = result.pickled_envelopes[chunk.delivered : len(kept)]
            chunk.call.deliver(kept.start + chunk.delivered, [pickle.loads(e) for e in pickled])
            chunk.delivered = len(kept)
        return kept

    def deliver_early(self) -> bool:
        """For the calls that want each result as soon as it is there (the Executor's
        futures): what the running chunks recorded so far, read at most every
        :data:`PEEK_S` per chunk. True if something was delivered."""
        now = self.table.clock()
        delivered = False
        for chunk in self.table.claimed:
            if not chunk.call.per_task or chunk.call.ended or now - chunk.peeked_at < PEEK_S:
                continue
            chunk.peeked_at = now
            data = read_file(chunk.session.paths.record(chunk.number, chunk.tries))
            if data is not None:
                before = chunk.delivered
                self._deliver_kept(chunk, ChunkResult.parse(chunk.number, data))
                delivered |= chunk.delivered > before
        return delivered

    def news(self, news: list[JobNews]) -> None:
        """Jobs that left the queue or went back to it: a job that never started counts
        toward a broken environment; the chunks the others held are lost."""
        for item in news:
            if item.never_started and self._failed_start(item):
                return
            for chunk in self.table.held_by(item.worker.job_id):
                self._lose(chunk, item)

    def _failed_start(self, news: JobNews) -> bool:
        """A job ended before its worker took any work. One whose ``setup`` line failed,
        or two that said the same on stderr (or were put in the same error state), stop
        the map: retrying cannot help. True if every call failed for it."""
        loss = self.classify(news, None, False, news.worker.resources)
        key = summary_line(loss.detail)
        same = [f for f in self.start_failures if key and summary_line(f.detail) == key]
        self.start_failures.append(loss)
        self.say_pool("job failed before its first task", loss=loss.describe())
        settings, hint = self.settings, self.session_dir_hint()
        evidence = self._work_dir_unseen(news.worker, loss)
        setup_line = policy.failed_setup_line(loss.detail)
        error: Optional[PoolError] = None
        if evidence:
            error = policy.not_shared_error(loss, evidence, settings.work_dir, hint)
        elif setup_line is not None:
            error = policy.setup_failed_error(loss, setup_line, hint)
        elif same:
            error = policy.broken_environment_error(
                loss, same[0], settings.python_path, settings.work_dir, hint
            )
        elif len(self.start_failures) > settings.max_num_resubmissions:
            error = policy.failed_starts_error(self.start_failures, settings.python_path, hint)
        if error is not None:
            self.fail_all(error)
        return error is not None

    def _lose(self, chunk: Chunk, news: JobNews) -> None:
        """The job that held ``chunk`` is gone: keep the tasks it finished, and act on the
        rest by the cause of the loss (:mod:`batchpool.policy`)."""
        if chunk.call.ended or self.fleet.pool_dir is None:
            return
        result = self.table.take(chunk, self.fleet.pool_dir)
        if result is not None and result.complete:  # late on a shared filesystem
            self.collected(chunk, result)
            return
        rest = range(chunk.tasks.start + chunk.delivered, chunk.tasks.stop)
        if result is not None:
            rest = self._keep_finished(chunk, result)
        in_task = rest.start if result is not None and result.began and rest else None
        self.act(chunk, rest, self.classify(news, in_task, True, chunk.resources))

    def act(self, chunk: Chunk, rest: range, loss: Loss) -> None:
        """Record the loss of tasks ``rest`` of ``chunk``; run them again, or not, as the
        policy decides."""
        call = chunk.call
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
        chunk.session.record_chunks([event])
        if not rest:
            return
        limit = self.settings.max_num_resubmissions
        resources = self.fleet.effective(chunk.resources)
        nodes = self.fleet.backend.num_nodes() if loss.cause is Cause.NODE_FAILURE else None
        decision = self.policy.decide(loss, chunk.history, chunk.spent, limit, resources, nodes)
        history = (*chunk.history, loss)
        action = decision.action
        self.say(call, "lost", chunk=chunk.number, loss=loss.describe(), then=action.value)
        if call.progress is not None:
            call.progress.counts.resubmitted += 1
        requeue = self.table.requeue
        if action is Action.STOP:
            error = OSError(errno.ENOSPC, f"a worker could not write: {loss.describe()}")
            self.fail_all(unwritable_error(self.settings.work_dir, error, during_map=True))
        elif action is Action.FAIL:
            where = call.session.dir if call.session is not None else None
            self.fail(
                call, policy.lost_error(call.describe(), chunk.number, rest, history, limit, where)
            )
        elif action in (Action.RETRY, Action.RETRY_FREE):
            spent = chunk.spent + (action is Action.RETRY)
            requeue(chunk, rest, history, spent, decision.resources)  # None: its own
        else:  # the task that was running apart from the rest
            task, after = range(rest.start, rest.start + 1), range(rest.start + 1, rest.stop)
            if action is Action.RAISE:
                envelope = policy.killed_envelope(
                    call.describe(), chunk.session.dir, call.short_repr(task.start), loss, history
                )
                call.deliver(task.start, [envelope])
                chunk.session.archive_result(
                    call.new_chunk_number(), task.start, pickle.dumps(envelope)
                )
            else:  # ESCALATE with the policy's resources, ISOLATE with its own
                more = decision.resources if action is Action.ESCALATE else chunk.resources
                requeue(chunk, task, history, chunk.spent + 1, more)
            if after:
                requeue(chunk, after, history, chunk.spent)

    # -- why a job ended -------------------------------------------------------------

    def classify(
        self, news: JobNews, in_task: Optional[int], started: bool, resources: Resources
    ) -> Loss:
        """What ended the job of ``news``, as a :class:`~batchpool.policy.Loss`."""
        worker, status = news.worker, news.status
        exit_text = None
        if self.fleet.pool_dir is not None and not worker.adopted:
            exit_text = self.fleet.pool_dir.worker_exit(worker.job_id)
        worker_exit = WorkerExit.parse(exit_text) if exit_text else None
        # The worker could not write its records; or it could not even say so.
        no_space = (worker_exit is not None and worker_exit.exit_code == NO_SPACE_EXIT) or (
            worker_exit is None and no_room_left(self.settings.work_dir)
        )
        deleted = worker.job_id in self.fleet.deleted_idle
        cause = classify(status, worker_exit, in_task, started, no_space, deleted)
        detail = status.detail if status is not None else ""
        if cause in (Cause.CRASHED, Cause.NOT_STARTED, Cause.VANISHED):
            detail = self._stderr_tail(worker, 12) or detail  # what the job itself said
        return Loss(
            cause,
            worker.job_id,
            state=worker.reason,
            node=(status.node if status is not None else "") or worker.node,
            how=worker_exit.describe() if worker_exit is not None else "",
            task=in_task,
            resources=self.fleet.effective(resources).describe(),
            detail=detail,
        )

    def _stderr_tail(self, worker: WorkerJob, num_lines: int = 10) -> str:
        """The end of a job's stderr; from Python's own report of a fatal error (a
        segfault's stack, most recent call first) if there is one."""
        text = self.fleet.backend.job_stderr(worker.job)
        fatal = text.rfind("Fatal Python error")
        if fatal >= 0:
            return "\n".join(text[fatal:].rstrip("\n").splitlines()[:num_lines])
        return "\n".join(text.rstrip("\n").splitlines()[-num_lines:])

    def _work_dir_unseen(self, worker: WorkerJob, loss: Loss) -> str:
        """Why ``worker``'s job, which ended before its worker was ready, could not have
        seen the work_dir (the worker said so, or the job left no trace in it although the
        scheduler ran it); empty if nothing says so."""
        status = worker.status
        said_so = status is not None and status.exit_code == NOT_SHARED_EXIT
        if said_so or NOT_SHARED_MARK in loss.detail:
            return f"the worker of job {worker.job_id} did not find its pool directory"
        if status is None or status.ending not in (Ending.FAILED, Ending.COMPLETED):
            return ""  # it may never have run: cancelled, preempted, its node lost...
        if worker.adopted or self.fleet.pool_dir is None:
            return ""
        if self.fleet.pool_dir.worker_exit(worker.job_id) is not None:
            return ""  # its watcher wrote into the work_dir
        logs = (worker.job.stdout_path, worker.job.stderr_path)
        if any(os.path.exists(path) for path in logs):
            return ""
        return (
            f"job {worker.job_id} ran ({loss.state or status.reason}) but its log "
            f"files ({worker.job.stderr_path.name}...) are not in {worker.job.stderr_path.parent}"
        )


def _kept_tasks(tasks: range, result: ChunkResult) -> range:
    """The tasks of a chunk (``tasks``) that its record file holds: none unless the file
    began this very chunk."""
    if not result.began or result.tasks.start != tasks.start:
        return range(tasks.start, tasks.start)
    return range(tasks.start, min(result.tasks.stop, tasks.stop))
