"""Losses by their cause: the policy table alone, then the dispatcher acting on it with
the in-memory fake backend (tasks end their fake job with :class:`FakeDeath`)."""

from __future__ import annotations

import collections
import json

import pytest

from batchpool import (
    JobsLostError,
    RetryPolicy,
    TaskMemoryError,
    TaskTimeoutError,
    WorkerCrashedError,
)
from batchpool.backend import Ending, JobState, JobStatus, Resources
from batchpool.calls import Call, CallKind
from batchpool.dispatcher import Dispatcher
from batchpool.policy import Action, Cause, Decision, Loss, WorkerExit, classify
from batchpool.proto_pool import MapResult
from batchpool.testing.fake_backend import (
    FAKE_HOST,
    FakeBackend,
    FakeClock,
    FakeDeath,
    FakeFaults,
    _claim_only,
    _Phase,
    run_until,
)
from batchpool.worker import Worker
from helpers.engine import make, settings

RUNS: collections.Counter = collections.Counter()
DEATHS: dict = {}
"""task -> list of FakeDeath arguments, one taken per run of the task."""


def task(x):
    RUNS[x] += 1
    plan = DEATHS.get(x)
    if plan:
        ending, exit_text = plan.pop(0)
        raise FakeDeath(ending, exit_text)
    return x * 10


@pytest.fixture(autouse=True)
def fresh():
    RUNS.clear()
    DEATHS.clear()


def run_map(dispatcher, backend, clock, tasks, chunksize=None):
    result = MapResult(len(tasks), None, None)
    dispatcher.submit(Call(CallKind.MAP, task, list(tasks), result, chunksize))
    run_until(dispatcher.step, backend, clock, result.ready)
    return result


def with_resources(tmp_path, resources, policy=None, **changes):
    clock = FakeClock()
    backend = FakeBackend(clock, resources=resources)
    values = dict(retry_policy=policy or RetryPolicy(), **changes)
    dispatcher = Dispatcher(
        backend, settings(tmp_path / "work", **values), clock=clock, threaded=False
    )
    return dispatcher, backend, clock


# -- the table alone -------------------------------------------------------------------


def loss(cause, task=4):
    return Loss(cause, "7", task=task)


@pytest.mark.parametrize(
    "cause, earlier, expected",
    [
        (Cause.CRASHED, [], Action.ISOLATE),
        (Cause.CRASHED, [Cause.CRASHED], Action.RAISE),
        (Cause.TIME_LIMIT, [], Action.ISOLATE),
        (Cause.TIME_LIMIT, [Cause.TIME_LIMIT], Action.RAISE),
        (Cause.MEMORY_LIMIT, [], Action.ISOLATE),
        (Cause.MEMORY_LIMIT, [Cause.MEMORY_LIMIT], Action.RAISE),
        (Cause.PREEMPTED, [Cause.PREEMPTED] * 50, Action.RETRY_FREE),
        (Cause.NODE_FAILURE, [Cause.NODE_FAILURE], Action.RETRY),
        (Cause.CANCELLED, [], Action.RETRY),
        (Cause.CANCELLED, [Cause.CANCELLED], Action.FAIL),
        (Cause.ERROR_STATE, [Cause.ERROR_STATE], Action.FAIL),
        (Cause.VANISHED, [], Action.RETRY),
        (Cause.DELETED_BY_POOL, [Cause.DELETED_BY_POOL], Action.RETRY_FREE),
    ],
)
def test_the_policy_table(cause, earlier, expected):
    decision = RetryPolicy().decide(loss(cause), [loss(c) for c in earlier], 0, 10, Resources())
    assert decision.action is expected


def test_no_cause_is_retried_identically_more_than_once():
    policy = RetryPolicy()
    for cause in (Cause.CRASHED, Cause.TIME_LIMIT, Cause.MEMORY_LIMIT):
        first = policy.decide(loss(cause), [], 0, 10, Resources())
        second = policy.decide(loss(cause), [loss(cause)], 1, 10, Resources())
        assert first.action is Action.ISOLATE and second.action is not Action.ISOLATE


def test_more_memory_and_time_up_to_the_maximum():
    policy = RetryPolicy(max_mem="3G", max_time="1:30:00")
    base = Resources(mem_mb=1024, time_s=3600)
    memory = policy.decide(loss(Cause.MEMORY_LIMIT), [], 0, 10, base)
    assert memory.action is Action.ESCALATE and memory.resources.mem_mb == 2048
    at_most = policy.decide(loss(Cause.MEMORY_LIMIT), [], 0, 10, Resources(mem_mb=2048))
    assert at_most.resources.mem_mb == 3072
    time_limit = policy.decide(loss(Cause.TIME_LIMIT), [loss(Cause.TIME_LIMIT)], 1, 10, base)
    assert time_limit.action is Action.ESCALATE and time_limit.resources.time_s == 5400
    full = policy.decide(loss(Cause.MEMORY_LIMIT), [], 0, 10, Resources(mem_mb=3072))
    assert full.action is Action.ISOLATE  # no more to give: alone once, then it raises


def lost_on(node: str) -> Loss:
    return Loss(Cause.NODE_FAILURE, "7", node=node)


def test_a_node_failure_excludes_the_node_but_never_every_node():
    policy = RetryPolicy()
    base = Resources(mem_mb=512)
    first = policy.decide(lost_on("sim1"), [], 0, 10, base, num_nodes=3)
    assert first == Decision(Action.RETRY, Resources(mem_mb=512, exclude_nodes=("sim1",)))
    assert first.resources is not None
    second = policy.decide(lost_on("sim2"), [lost_on("sim1")], 1, 10, first.resources, 3)
    assert second.resources == Resources(mem_mb=512, exclude_nodes=("sim1", "sim2"))
    assert second.resources is not None
    # Excluding a third of three would leave none: the oldest exclusion goes.
    third = policy.decide(lost_on("sim3"), [], 2, 10, second.resources, 3)
    assert third.resources == Resources(mem_mb=512, exclude_nodes=("sim2", "sim3"))
    again = policy.decide(lost_on("sim2"), [], 2, 10, second.resources, 3)
    assert again.resources == Resources(mem_mb=512, exclude_nodes=("sim1", "sim2"))
    # One node, a node count not known, no node named, or the budget spent: no exclusion.
    assert policy.decide(lost_on("vm"), [], 0, 10, base, 1) == Decision(Action.RETRY)
    assert policy.decide(lost_on("vm"), [], 0, 10, base, None) == Decision(Action.RETRY)
    assert policy.decide(lost_on(""), [], 0, 10, base, 3) == Decision(Action.RETRY)
    assert policy.decide(lost_on("sim1"), [], 3, 3, base, 3) == Decision(Action.FAIL)
    # Other causes keep their own resources.
    vanished = Loss(Cause.VANISHED, "7", node="sim1")
    assert policy.decide(vanished, [], 0, 10, base, 3) == Decision(Action.RETRY)


def test_a_spent_budget_fails_and_preemptions_do_not_spend_it():
    policy = RetryPolicy()
    assert policy.decide(loss(Cause.VANISHED), [], 3, 3, Resources()).action is Action.FAIL
    assert policy.decide(loss(Cause.CRASHED), [], 3, 3, Resources()).action is Action.RAISE
    assert policy.decide(loss(Cause.PREEMPTED), [], 3, 3, Resources()).action is Action.RETRY_FREE


@pytest.mark.parametrize(
    "ending, exit_text, in_task, started, cause",
    [
        (Ending.TIME_LIMIT, "signal 9 after signal 15", 3, True, Cause.TIME_LIMIT),
        (Ending.MEMORY_LIMIT, "", 3, True, Cause.MEMORY_LIMIT),
        (Ending.PREEMPTED, "", 3, True, Cause.PREEMPTED),
        (None, "signal 9 after signal 15", 3, True, Cause.CANCELLED),
        (None, "exit 3", 3, True, Cause.CRASHED),
        (Ending.FAILED, "exit 1", 3, True, Cause.CRASHED),
        (Ending.FAILED, "", 3, True, Cause.VANISHED),
        (None, "", None, False, Cause.NOT_STARTED),
        (None, "", None, True, Cause.VANISHED),
        (Ending.ERROR_STATE, "", None, False, Cause.ERROR_STATE),
    ],
)
def test_classify(ending, exit_text, in_task, started, cause):
    status = JobStatus(JobState.ENDED, "", ending)
    worker_exit = WorkerExit.parse(exit_text) if exit_text else None
    assert classify(status, worker_exit, in_task, started) is cause


def test_a_job_killed_with_its_watcher_was_killed_from_outside():
    qdel = JobStatus(JobState.ENDED, "", Ending.FAILED, signal=9)  # SGE's qacct after qdel
    assert classify(qdel, None, 3, True) is Cause.CANCELLED


def test_worker_exit_and_sizes_parse():
    assert WorkerExit.parse("signal 11").describe() == "killed by signal 11 (SIGSEGV)"
    assert WorkerExit.parse("exit 3 after signal 15").signalled_first == 15
    assert WorkerExit.parse("garbage") is None
    mems = ("16G", "500M", "4096", "1.5G", 2048)
    assert [RetryPolicy(max_mem=m).max_mem_mb for m in mems] == [16384, 500, 4096, 1536, 2048]
    times = ("90", 90, "10:00", "1:30:00", "2-00:00:00", "1-12", "6h")
    assert [RetryPolicy(max_time=t).max_time_s for t in times] == [
        5400, 5400, 600, 5400, 172800, 129600, 21600
    ]
    with pytest.raises(ValueError, match="max_time='soon' is not a duration"):
        RetryPolicy(max_time="soon")
    with pytest.raises(ValueError, match="max_mem='lots' is not an amount of memory"):
        RetryPolicy(max_mem="lots")


# -- the dispatcher acting on it -------------------------------------------------------


def test_a_time_limit_keeps_the_finished_tasks_and_the_long_task_raises(tmp_path):
    DEATHS[3] = [(Ending.TIME_LIMIT, "signal 9 after signal 15")] * 2
    dispatcher, backend, clock = with_resources(tmp_path, Resources(time_s=60))
    result = run_map(dispatcher, backend, clock, range(6), chunksize=6)
    with pytest.raises(TaskTimeoutError) as info:
        result.get(0)
    assert info.value.index == 3 and len(info.value.attempts) == 2
    assert "time limit (time=60s)" in str(info.value) and "RetryPolicy(max_time" in str(info.value)
    assert RUNS == {0: 1, 1: 1, 2: 1, 3: 2, 4: 1, 5: 1}  # nothing finished ran again
    lost = [e for e in dispatcher_events(tmp_path) if e["event"] == "lost"]
    assert [e["cause"] for e in lost] == ["time limit", "time limit"]
    assert (lost[0]["start"], lost[0]["stop"]) == (3, 6)  # 0-2 were kept
    assert (lost[1]["start"], lost[1]["stop"]) == (3, 4)  # then alone: not identical


def test_a_time_limit_with_max_time_retries_once_with_more_time(tmp_path):
    DEATHS[3] = [(Ending.TIME_LIMIT, "")] * 2
    policy = RetryPolicy(max_time="0:02:00")
    dispatcher, backend, clock = with_resources(tmp_path, Resources(time_s=60), policy)
    result = run_map(dispatcher, backend, clock, range(6), chunksize=6)
    assert result.get(0) == [10 * x for x in range(6)]
    assert RUNS[3] == 3
    assert [r.resources.time_s for r in backend.requests if r.tier] == [120]


def test_a_memory_limit_retries_with_more_memory_up_to_max_mem(tmp_path):
    DEATHS[2] = [(Ending.MEMORY_LIMIT, "")]
    policy = RetryPolicy(max_mem="4G")
    dispatcher, backend, clock = with_resources(tmp_path, Resources(mem_mb=1024), policy)
    result = run_map(dispatcher, backend, clock, range(4), chunksize=4)
    assert result.get(0) == [0, 10, 20, 30]
    assert RUNS == {0: 1, 1: 1, 2: 2, 3: 1}
    assert [r.resources.mem_mb for r in backend.requests if r.tier] == [2048]


def test_a_memory_limit_without_max_mem_raises_for_the_task(tmp_path):
    DEATHS[2] = [(Ending.MEMORY_LIMIT, "")] * 2
    dispatcher, backend, clock = with_resources(tmp_path, Resources(mem_mb=1024))
    result = run_map(dispatcher, backend, clock, range(4), chunksize=4)
    with pytest.raises(TaskMemoryError) as info:
        result.get(0)
    assert info.value.index == 2 and "mem=1024M" in str(info.value)
    assert RUNS == {0: 1, 1: 1, 2: 2, 3: 1}


def test_a_task_that_crashes_its_worker_twice_raises_and_the_others_run_once(tmp_path):
    DEATHS[1] = [(None, "signal 11")] * 2
    dispatcher, backend, clock = make(tmp_path)
    result = run_map(dispatcher, backend, clock, range(5), chunksize=5)
    with pytest.raises(WorkerCrashedError) as info:
        result.get(0)
    error = info.value
    assert error.index == 1 and "SIGSEGV" in str(error) and "argument 1" in str(error)
    assert RUNS == {0: 1, 1: 2, 2: 1, 3: 1, 4: 1}


def test_a_crashed_chunk_runs_again_within_seconds_not_a_polling_interval(tmp_path):
    """The watcher's exit file is seen at once; the scheduler, still listing the job for
    a moment, is asked again a second later (then 2 s, 4 s...), not a minute later."""
    DEATHS[1] = [(None, "exit 3")]
    clock = FakeClock()
    backend = FakeBackend(clock, faults=FakeFaults(linger_s=2.5))
    dispatcher = Dispatcher(
        backend, settings(tmp_path / "work", polling_interval=60.0), clock=clock, threaded=False
    )
    started = clock()
    result = run_map(dispatcher, backend, clock, range(3), chunksize=3)
    assert result.get(0) == [0, 10, 20] and RUNS == {0: 1, 1: 2, 2: 1}
    assert clock() - started < 10.0
    assert backend.counts.status_queries <= 5  # at once, +1 s, +2 s (+4 s): then it is gone


def test_preemptions_do_not_spend_the_resubmissions(tmp_path):
    DEATHS[0] = [(Ending.PREEMPTED, "")] * 5
    dispatcher, backend, clock = make(tmp_path, max_num_resubmissions=1)
    result = run_map(dispatcher, backend, clock, range(2), chunksize=2)
    assert result.get(0) == [0, 10] and RUNS[0] == 6


class _StartsAsDeleted(FakeBackend):
    """A queued job the pool deletes starts all the same (Slurm had just launched it):
    its worker claims the next chunk posted, then the deletion kills it."""

    doomed: list = []

    def delete(self, jobs, cancel=None):
        self.counts.deletes.extend(sorted(job.job_id for job in jobs))
        self.doomed = [f for f in self.jobs if f.job in jobs and f.phase is _Phase.PENDING]
        for fake in self.doomed:
            fake.phase = _Phase.RUNNING
            fake.worker = Worker(str(fake.pool_dir), fake.job.job_id, FAKE_HOST, 99, 0)
            fake.deleted = True

    def tick(self):
        for fake in self.doomed:  # before the others can take the chunk
            if fake.phase is _Phase.RUNNING and _claim_only(fake.worker):
                fake.phase, fake.ending = _Phase.ENDED, Ending.CANCELLED
        super().tick()

    def _work(self, fake, now):
        if not fake.deleted:
            super()._work(fake, now)


def test_a_job_the_pool_deleted_as_it_took_a_chunk_costs_no_resubmission(tmp_path):
    """The pool deletes a job that waited in the queue with no work for ``worker_idle_s``;
    that job was starting, and its worker takes the first chunk of the next map as the
    deletion kills it. The chunk runs again; the map does not fail for a job "cancelled
    from outside" (with no resubmission left, it would)."""
    clock = FakeClock()
    backend = _StartsAsDeleted(clock, slots=1)
    dispatcher = Dispatcher(
        backend,
        settings(tmp_path / "work", max_num_resubmissions=0, keep_work_dir=True),
        clock=clock,
        threaded=False,
    )
    first = MapResult(2, None, None)
    dispatcher.submit(Call(CallKind.MAP, task, [0, 1], first, 1))
    run_until(dispatcher.step, backend, clock, lambda: bool(backend.counts.deletes))
    (deleted,) = backend.counts.deletes
    second = run_map(dispatcher, backend, clock, [2], chunksize=1)
    run_until(dispatcher.step, backend, clock, first.ready)
    assert first.get(0) == [0, 10] and second.get(0) == [20]
    sessions = [path.parent for path in (tmp_path / "work").glob("*/chunks.jsonl")]
    events = [event for session in sessions for event in chunk_events(session)]
    lost = [(e["job_id"], e["cause"]) for e in events if e["event"] == "lost"]
    assert lost == [(deleted, "deleted by the pool")]


def test_jobs_cancelled_twice_from_outside_stop_the_map_with_the_history(tmp_path):
    DEATHS[0] = [(Ending.CANCELLED, "")] * 2
    dispatcher, backend, clock = make(tmp_path, max_num_resubmissions=5)
    result = run_map(dispatcher, backend, clock, range(1), chunksize=1)
    with pytest.raises(JobsLostError) as info:
        result.get(0)
    text = str(info.value)
    assert "cancelled from outside" in text and text.count("job ") >= 2 and RUNS[0] == 2


def test_one_cancellation_with_no_resubmission_left_says_so(tmp_path):
    DEATHS[0] = [(Ending.CANCELLED, "")]
    dispatcher, backend, clock = make(tmp_path, max_num_resubmissions=0)
    result = run_map(dispatcher, backend, clock, range(1), chunksize=1)
    with pytest.raises(JobsLostError) as info:
        result.get(0)
    assert "were lost once (max_num_resubmissions=0); last cause: cancelled from" in str(
        info.value
    )


def chunk_events(session_dir):
    """The events of a session's ``chunks.jsonl``."""
    return [json.loads(line) for line in (session_dir / "chunks.jsonl").read_text().splitlines()]


def dispatcher_events(tmp_path):
    (session,) = [p for p in (tmp_path / "work").iterdir() if not p.name.startswith("pool_")]
    return chunk_events(session)


class _NodeDown(FakeBackend):
    """Every job waits in the queue for a node an administrator took down."""

    def status(self, jobs, cancel=None):
        waits = JobStatus(JobState.PENDING, "PENDING NodeDown", unusual_wait="NodeDown")
        return {job.job_id: waits for job in jobs}


def test_a_wait_for_the_cluster_is_shown_and_never_counted_or_bypassed(tmp_path):
    clock = FakeClock()
    backend = _NodeDown(clock, start_delay_s=1e9)
    dispatcher = Dispatcher(
        backend, settings(tmp_path / "work", max_jobs=2), clock=clock, threaded=False
    )
    result = MapResult(4, None, None)
    dispatcher.submit(Call(CallKind.MAP, task, list(range(4)), result, None))
    for _ in range(600):  # an hour of fake time
        dispatcher.step()
        clock.advance(6.0)
    assert not result.ready() and backend.counts.jobs == 2 and not backend.counts.deletes
    assert dispatcher.fleet.counts().waiting_for == "NodeDown (2 jobs)"
