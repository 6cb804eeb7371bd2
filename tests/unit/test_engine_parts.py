"""The engine's parts one at a time, on a real pool directory and session with a fake
clock: the :class:`~batchpool.tickets.ChunkTable`, the :class:`~batchpool.fleet.Fleet`
and :class:`~batchpool.losses.Losses`. No job runs: a worker is the in-process
:class:`batchpool.worker.Worker`, and the scheduler is the fake backend."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from batchpool import _layout
from batchpool.backend import Ending, JobState, JobStatus, Resources
from batchpool.calls import Call, CallKind, open_session
from batchpool.errors import BrokenEnvironmentError, SchedulerError
from batchpool.fleet import Fleet, JobNews
from batchpool.losses import Losses
from batchpool.options import PoolSettings
from batchpool.policy import Cause, Loss
from batchpool.proto_pool import MapResult
from batchpool.session import PoolDirectory
from batchpool.testing.fake_backend import FakeBackend, FakeClock, FakeFaults
from batchpool.tickets import ChunkTable
from batchpool.worker import Worker, record_path
from helpers.engine import settings as dispatcher_settings


def square(x):
    return x * x


def settings(work_dir: Path, **changes) -> PoolSettings:
    changes = {"lost_job_grace_period_s": 10.0, "scheduler_outage_s": 60.0, **changes}
    return dispatcher_settings(work_dir, **changes)


@pytest.fixture
def pool_dir(tmp_path):
    pool = PoolDirectory.create(tmp_path)
    pool.write_setup(b"", 5.0, None)
    return pool


def open_map(pool_dir: PoolDirectory, tasks, chunksize=None) -> tuple[Call, MapResult]:
    result = MapResult(len(tasks), None, None)
    call = Call(CallKind.MAP, square, list(tasks), result, chunksize)
    call.backend_name = "fake"
    assert open_session(call, pool_dir, pool_dir.dir.parent, True, False) is None
    return call, result


def worker(pool_dir: PoolDirectory, job_id: str) -> Worker:
    pool_dir.open_mailboxes([job_id])
    return Worker(str(pool_dir.dir), job_id, "fake-node", 4242, 0)


def first_ticket(pool_dir: PoolDirectory, tasks: range, chunksize: int, job_id: str):
    """A map's tickets posted, and the first one as a worker of job ``job_id`` read it."""
    clock = FakeClock()
    table = ChunkTable(clock)
    call, _ = open_map(pool_dir, tasks, chunksize)
    table.fill([call], pool_dir, num_workers=1)
    job = worker(pool_dir, job_id)
    job.read_log()
    return clock, table, call, job, job.pending.pop(min(job.pending))


# -- the chunk table ----------------------------------------------------------------------


def test_the_table_posts_a_few_tickets_per_worker_and_journals_each(pool_dir):
    clock = FakeClock()
    table = ChunkTable(clock)
    call, _ = open_map(pool_dir, range(100), chunksize=1)
    table.fill([call], pool_dir, num_workers=2)
    assert 2 <= len(table.posted) <= 2 * 32  # tickets_ahead per worker
    posted = [e for e in call.session.chunk_events() if e.event == "posted"]
    assert [e.ticket for e in posted] == sorted(table.posted)
    seen = worker(pool_dir, "1")
    seen.read_log()
    assert sorted(seen.pending) == sorted(table.posted)


def test_a_claim_is_heard_from_the_mailbox_and_its_result_taken_once(pool_dir):
    clock = FakeClock()
    table = ChunkTable(clock)
    call, result = open_map(pool_dir, range(4), chunksize=4)
    table.fill([call], pool_dir, num_workers=1)
    assert [c.tasks for c in table.posted.values()] == [range(4)]
    job = worker(pool_dir, "7")
    assert table.new_claims(pool_dir, 5.0) == []
    assert job.take_one()
    pool_dir.read_mailboxes(["7"])
    ((chunk, claim),) = table.new_claims(pool_dir, 5.0)
    assert claim.job_id == "7" and not table.posted
    table.claim(chunk, claim)
    assert table.holders() == {"7"}
    ((done, chunk_result),) = table.finished(pool_dir)
    assert done is chunk and [v for _, v in chunk_result.envelopes()] == [0, 1, 4, 9]
    assert table.finished(pool_dir) == [] and table.claimed == []


def test_a_claim_nobody_told_of_is_found_by_a_listing_once_per_interval(pool_dir):
    clock, table, _, job, ticket = first_ticket(pool_dir, range(2), 2, "9")
    begin = _layout.encode_record(_layout.BEGIN, ticket.start, 0.0, job.claim)
    assert _layout.create_exclusively(record_path(ticket), begin)  # then killed, untold
    pool_dir.read_mailboxes(["9"])
    assert table.new_claims(pool_dir, 5.0) == []  # not old enough to be listed
    clock.advance(5.0)
    ((chunk, claim),) = table.new_claims(pool_dir, 5.0)
    assert chunk.tasks == range(2) and claim.job_id == "9" and claim.pid == 4242


def test_a_requeued_chunk_keeps_its_number_whole_and_takes_a_new_one_in_part(pool_dir):
    table = ChunkTable(FakeClock())
    call, _ = open_map(pool_dir, range(6), chunksize=6)
    chunk = table.next_chunk([call], 1)
    assert chunk is not None and chunk.tasks == range(6)
    table.requeue(chunk, chunk.tasks, (), spent=1)
    more = Resources(mem_mb=2048)
    table.requeue(chunk, range(3, 4), (), spent=2, resources=more)
    whole, part = table.queued
    assert (whole.number, whole.tries, whole.spent, whole.tier) == (chunk.number, 1, 1, 0)
    assert part.number != chunk.number and part.tries == 0 and part.tier == 1
    assert table.tiers == {Resources(): 0, more: 1}


def test_a_running_chunk_bounds_its_task_time_from_below(pool_dir):
    clock, table, call, job, ticket = first_ticket(pool_dir, range(10), 5, "3")
    os.close(job.claim_ticket(ticket))
    clock.advance(5.0)
    for chunk, claim in table.new_claims(pool_dir, 5.0):
        table.claim(chunk, claim)
    assert table.task_time(call) is None
    clock.advance(20.0)
    assert table.task_time(call) == pytest.approx(4.0)  # 20 s for 5 tasks, at least


def test_withdrawing_a_call_takes_back_its_unclaimed_tickets(pool_dir):
    table = ChunkTable(FakeClock())
    call, _ = open_map(pool_dir, range(8), chunksize=1)
    table.fill([call], pool_dir, num_workers=1)
    assert table.posted
    table.withdraw(call, pool_dir)
    assert not table.posted
    job = worker(pool_dir, "5")
    job.read_log()
    assert not job.pending  # cancelled: a worker skips the session


# -- the fleet ----------------------------------------------------------------------------


def make_fleet(tmp_path, pool_dir, faults=None, **changes):
    clock = FakeClock()
    backend = FakeBackend(clock, faults=faults or FakeFaults(), start_delay_s=1.0)
    said: list[str] = []
    fleet = Fleet(
        backend,
        settings(tmp_path, **changes),
        clock,
        lambda message, **_: said.append(message),
        threading.Event(),
        threaded=False,
    )
    fleet.pool_dir = pool_dir
    return fleet, backend, clock, said


def test_the_fleet_asks_once_per_interval_and_reports_a_job_gone_after_the_grace(
    tmp_path, pool_dir
):
    fleet, backend, clock, said = make_fleet(tmp_path, pool_dir)
    assert fleet.request(2) is None and len(fleet.jobs) == 2 and said == ["submitted"]
    assert fleet.query_status(set()) and fleet.take_status(set()) == []
    assert not fleet.query_status(set())  # within the polling interval: no query
    job_id = next(iter(fleet.jobs))
    backend.jobs[0].phase = backend.jobs[0].phase.ENDED
    clock.advance(5.0)
    assert fleet.query_status({job_id}) and fleet.take_status({job_id}) == []  # grace
    clock.advance(10.0)
    assert fleet.query_status({job_id})
    (news,) = fleet.take_status({job_id})
    assert news.worker.job_id == job_id and not news.requeued and news.never_started
    assert job_id not in fleet.jobs and backend.counts.status_queries == 3


def test_a_worker_its_watcher_saw_die_is_lost_without_the_grace(tmp_path, pool_dir):
    """Its watcher wrote how it ended, and the scheduler how the job ended: what it
    recorded is all there, nothing shows late (the grace is for results that might)."""
    fleet, backend, clock, _ = make_fleet(tmp_path, pool_dir, polling_interval=5.0)
    assert fleet.request(1) is None and fleet.query_status(set()) and not fleet.take_status(set())
    (job_id,) = fleet.jobs
    fleet.jobs[job_id].started = True
    _layout.append_record(pool_dir.paths.mailbox(job_id), _layout.ENDED, 0, b"exit 9")
    pool_dir.read_mailboxes([job_id])
    backend.jobs[0].phase, backend.jobs[0].ending = backend.jobs[0].phase.ENDED, Ending.FAILED
    clock.advance(1.0)  # not a polling interval yet: the watcher's word makes the fleet ask
    assert fleet.notice_exits({job_id}, {}) == [] and fleet.query_status({job_id})
    (news,) = fleet.take_status({job_id})
    assert news.worker.job_id == job_id and news.status.ending is Ending.FAILED


def test_the_fleet_waits_out_an_outage_and_says_when_its_budget_is_spent(tmp_path, pool_dir):
    faults = FakeFaults(outage=(1000.0, 2000.0))
    fleet, backend, clock, said = make_fleet(tmp_path, pool_dir, faults=faults)
    fleet.request(1)
    for _ in range(14):  # a minute of failed queries, and then some
        if fleet.query_status(set()):
            assert fleet.take_status(set()) == []
        clock.advance(5.0)
    assert "scheduler unreachable" in said and fleet.counts().unreachable
    assert isinstance(fleet.outage_error, SchedulerError)
    assert "scheduler_outage_s=60.0" in fleet.outage_error.message
    assert not backend.counts.deletes  # the jobs are left in place for a resume


def test_the_fleet_deletes_jobs_that_wait_with_no_work_after_worker_idle_s(tmp_path, pool_dir):
    fleet, backend, clock, _ = make_fleet(tmp_path, pool_dir, worker_idle_s=30.0)
    backend.start_delay_s = 1e9  # they never start
    fleet.request(3)
    fleet.delete_idle_pending(0)
    clock.advance(29.0)
    fleet.delete_idle_pending(0)
    assert len(fleet.jobs) == 3
    clock.advance(1.0)
    fleet.delete_idle_pending(0)
    assert not fleet.jobs and backend.counts.deletes and len(fleet.deleted_idle) == 3


def test_the_fleet_keeps_to_the_cap(tmp_path, pool_dir):
    fleet, _, _, _ = make_fleet(tmp_path, pool_dir, max_jobs=3)
    fleet.request(fleet.within_cap(5))
    assert len(fleet.jobs) == 3 and fleet.within_cap(5) == 0


# -- losses -------------------------------------------------------------------------------


class Recorder:
    """What Losses asks the dispatcher to do."""

    def __init__(self) -> None:
        self.failed: list[BaseException] = []

    def fail(self, call, error):
        self.failed.append(error)

    def fail_all(self, error):
        self.failed.append(error)


def make_losses(tmp_path, pool_dir, **changes):
    fleet, backend, clock, _ = make_fleet(tmp_path, pool_dir, **changes)
    table = ChunkTable(clock)
    recorder = Recorder()
    losses = Losses(
        fleet.settings,
        table,
        fleet,
        recorder.fail,
        recorder.fail_all,
        lambda *a, **k: None,
        lambda *a, **k: None,
        lambda: None,
    )
    return losses, table, fleet, recorder


def test_two_jobs_that_fail_alike_before_their_first_task_are_a_broken_environment(
    tmp_path, pool_dir
):
    losses, _, fleet, recorder = make_losses(tmp_path, pool_dir)
    fleet.request(2)
    for worker_job in list(fleet.jobs.values()):
        worker_job.job.stderr_path.parent.mkdir(parents=True, exist_ok=True)
        worker_job.job.stderr_path.write_text("ModuleNotFoundError: No module named 'numpy'\n")
        status = JobStatus(JobState.ENDED, "FAILED", Ending.FAILED, exit_code=1)
        worker_job.status = status
        losses.news([JobNews(worker_job, status, never_started=True)])
    (error,) = recorder.failed
    assert isinstance(error, BrokenEnvironmentError)
    assert "No module named 'numpy'" in str(error) and "both with" in str(error)


def test_a_lost_chunk_keeps_its_finished_tasks_and_requeues_the_rest(tmp_path, pool_dir):
    losses, table, fleet, recorder = make_losses(tmp_path, pool_dir)
    call, result = open_map(pool_dir, range(4), chunksize=4)
    table.fill([call], pool_dir, num_workers=1)
    fleet.request(1)
    (job_id,) = fleet.jobs
    (chunk,) = table.posted.values()
    del table.posted[chunk.ticket]
    claim = _layout.Claim(job_id, "fake-node", 1)
    table.claim(chunk, claim)
    fleet.claimed(job_id, "fake-node", 1, "", pool_dir.job_name)
    status = JobStatus(JobState.ENDED, "NODE_FAIL", Ending.NODE_FAILURE, node="n1")
    losses.news([JobNews(fleet.jobs.pop(job_id), status)])
    (requeued,) = table.queued
    assert requeued.tasks == range(4) and requeued.spent == 1
    assert requeued.history[0].cause is Cause.NODE_FAILURE and not recorder.failed
    lost = [e for e in call.session.chunk_events() if e.event == "lost"]
    assert lost[0].cause == Cause.NODE_FAILURE.value


def test_a_damaged_result_is_a_loss_of_what_failed_its_checks(tmp_path, pool_dir):
    losses, table, _, recorder = make_losses(tmp_path, pool_dir)
    call, _ = open_map(pool_dir, range(3), chunksize=3)
    chunk = table.next_chunk([call], 1)
    assert chunk is not None
    loss = Loss(Cause.RESULT_DAMAGED, "1", detail="results/0.0.rec failed its checks")
    losses.act(chunk, chunk.tasks, loss)
    assert table.queued[0].tasks == range(3) and not recorder.failed
