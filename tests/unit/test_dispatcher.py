"""The dispatcher's policy on the in-memory fake backend with a fake clock: submission,
the pool-wide cap, claims, resubmission, outages and resume, in milliseconds."""

from __future__ import annotations

import collections
import pickle
import shutil

import pytest

from batchpool import BrokenEnvironmentError, JobsLostError, SchedulerError
from batchpool.calls import Call, CallKind, pickle_for_jobs
from batchpool.proto_pool import ApplyResult, MapResult, _apply
from batchpool.testing.fake_backend import FakeClock, FakeFaults, run_until
from helpers.engine import make

EXECUTIONS: collections.Counter = collections.Counter()


def record(x):
    """A task that counts how often it ran (the fake workers run in this process)."""
    EXECUTIONS[x] += 1
    return x * 10


@pytest.fixture(autouse=True)
def fresh_counts():
    EXECUTIONS.clear()


def submit_map(dispatcher, tasks, chunksize=None):
    result = MapResult(len(tasks), None, None)
    dispatcher.submit(Call(CallKind.MAP, record, list(tasks), result, chunksize))
    return result


def test_fifty_maps_in_flight_share_one_status_query_per_interval_and_the_cap(tmp_path):
    dispatcher, backend, clock = make(tmp_path, max_jobs=3)
    results = [submit_map(dispatcher, range(i, i + 4)) for i in range(0, 200, 4)]
    elapsed = run_until(dispatcher.step, backend, clock, lambda: all(r.ready() for r in results))
    expected = [[10 * x for x in range(i, i + 4)] for i in range(0, 200, 4)]
    assert [r.get(0) for r in results] == expected
    assert set(EXECUTIONS.values()) == {1} and len(EXECUTIONS) == 200
    assert backend.counts.status_queries <= elapsed / 5.0 + 1
    assert backend.counts.jobs <= 3 and backend.counts.max_running <= 3


def pause(dispatcher, backend, clock, seconds):
    """Let ``seconds`` of fake time pass, the pool stepping and the jobs ticking."""
    end = clock() + seconds
    run_until(dispatcher.step, backend, clock, lambda: clock() >= end)


def test_a_queued_job_keeps_its_place_between_maps_for_worker_idle_s(tmp_path):
    """On a full cluster (one slot) the second job waits in the queue. The maps of a loop
    a second apart keep it there, in its place, instead of deleting it when one map ends
    and asking for a new one, at the back of the queue, at the next; once no work came
    for ``worker_idle_s`` it is deleted, as a running worker exits after as long."""
    dispatcher, backend, clock = make(tmp_path, slots=1, max_jobs=2, worker_idle_s=5.0)
    for m in range(4):
        result = submit_map(dispatcher, range(10 * m, 10 * m + 4), chunksize=1)
        run_until(dispatcher.step, backend, clock, result.ready)
        assert result.get(0) == [10 * x for x in range(10 * m, 10 * m + 4)]
        pause(dispatcher, backend, clock, 1.0)  # the script's own work between two maps
    assert backend.counts.jobs == 2 and backend.counts.deletes == []
    waited = run_until(dispatcher.step, backend, clock, lambda: bool(backend.counts.deletes))
    assert backend.counts.deletes == ["1"] and 3.0 <= waited <= 5.0 + 0.5


def test_a_chunk_whose_worker_dies_holding_it_runs_again_and_once(tmp_path):
    dispatcher, backend, clock = make(tmp_path, FakeFaults(crash_holding_jobs=frozenset({0})))
    result = submit_map(dispatcher, range(6), chunksize=2)
    run_until(dispatcher.step, backend, clock, result.ready)
    assert result.get(0) == [0, 10, 20, 30, 40, 50]
    assert dict(EXECUTIONS) == {x: 1 for x in range(6)}
    assert backend.counts.jobs > 1


def test_a_chunk_lost_more_often_than_allowed_is_jobs_lost_error(tmp_path):
    everyone = frozenset(range(100))
    dispatcher, backend, clock = make(
        tmp_path, FakeFaults(crash_holding_jobs=everyone), max_num_resubmissions=2
    )
    result = submit_map(dispatcher, [7], chunksize=1)
    run_until(dispatcher.step, backend, clock, result.ready)
    with pytest.raises(JobsLostError) as info:
        result.get(0)
    assert info.value.chunks == (0,) and "max_num_resubmissions=2" in str(info.value)
    assert info.value.session_dir is not None and info.value.session_dir.is_dir()
    assert EXECUTIONS == {}


def test_jobs_that_never_start_end_in_jobs_lost_error_not_a_loop(tmp_path):
    everyone = frozenset(range(100))
    dispatcher, backend, clock = make(
        tmp_path, FakeFaults(error_state_jobs=everyone), max_num_resubmissions=2
    )
    result = submit_map(dispatcher, range(3))
    run_until(dispatcher.step, backend, clock, result.ready)
    with pytest.raises(JobsLostError, match="before their worker took any work"):
        result.get(0)
    assert backend.counts.jobs <= 3 + 8  # bounded: one wave past the limit at most
    assert backend.counts.deletes  # error states are deleted


def test_jobs_that_do_not_see_the_work_dir_are_a_broken_environment_at_once(tmp_path):
    everyone = frozenset(range(100))
    dispatcher, backend, clock = make(tmp_path, FakeFaults(unshared_jobs=everyone))
    result = submit_map(dispatcher, range(3))
    took_s = run_until(dispatcher.step, backend, clock, result.ready)
    with pytest.raises(BrokenEnvironmentError) as info:
        result.get(0)
    message = str(info.value)
    assert f"do not see the work_dir {tmp_path / 'work'}" in message
    assert "must be on a filesystem that the compute nodes share" in message
    assert "not in" in message and ".err" in message  # the evidence: no log files
    assert took_s <= 5.0 + 1.0  # within one job's life and one status query
    assert backend.counts.submits == 1  # no resubmission loop


def test_a_job_that_ended_before_its_worker_but_left_its_logs_saw_the_work_dir(tmp_path):
    everyone = frozenset(range(100))
    dispatcher, backend, clock = make(tmp_path, FakeFaults(unshared_jobs=everyone))
    original_submit = backend.submit

    def submit_and_log(request, cancel=None):
        jobs = original_submit(request, cancel)
        for job in jobs:  # what a python that cannot start prints, in a shared log
            job.stderr_path.write_text("python: No module named batchpool\n")
        return jobs

    backend.submit = submit_and_log  # type: ignore[method-assign]
    result = submit_map(dispatcher, range(3))
    run_until(dispatcher.step, backend, clock, result.ready)
    with pytest.raises(BrokenEnvironmentError) as info:
        result.get(0)
    assert "both with: python: No module named batchpool" in str(info.value)
    assert "do not see the work_dir" not in str(info.value)


def test_an_outage_is_waited_out_without_deleting_a_job(tmp_path):
    clock_start = FakeClock().now
    outage = (clock_start + 0.5, clock_start + 120.5)
    dispatcher, backend, clock = make(tmp_path, FakeFaults(outage=outage))
    backend.start_delay_s = 30.0  # the jobs start while the scheduler cannot be asked
    result = submit_map(dispatcher, range(20))
    elapsed = run_until(dispatcher.step, backend, clock, result.ready)
    assert result.get(0) == [10 * x for x in range(20)]
    assert backend.counts.failed_status_queries >= 5
    assert backend.counts.deletes == []
    assert elapsed < 120  # results on disk were collected during the outage


def test_an_outage_longer_than_the_budget_is_scheduler_error_and_leaves_the_jobs(tmp_path):
    outage = (0.0, float("inf"))
    dispatcher, backend, clock = make(
        tmp_path, FakeFaults(outage=outage), slots=0, scheduler_outage_s=60.0
    )
    result = submit_map(dispatcher, range(4))
    elapsed = run_until(dispatcher.step, backend, clock, result.ready)
    with pytest.raises(SchedulerError, match="run the same script again to resume"):
        result.get(0)
    assert 60 <= elapsed < 80
    assert backend.counts.deletes == []


def test_apply_calls_that_arrive_together_share_a_session_and_a_submission(tmp_path):
    dispatcher, backend, clock = make(tmp_path, keep_work_dir=True)
    results = []
    for x in range(100):
        result = ApplyResult(None, None)  # as Pool.apply_async does: a wrapper per call
        dispatcher.submit(Call(CallKind.APPLY, _apply(record), [((x,), {})], result))
        results.append(result)
    run_until(dispatcher.step, backend, clock, lambda: all(r.ready() for r in results))
    assert [r.get(0) for r in results] == [10 * x for x in range(100)]
    assert backend.counts.submits == 1
    assert sum(1 for p in (tmp_path / "work").iterdir() if not p.name.startswith("pool_")) == 1


@pytest.mark.parametrize("queue_removed", [False, True])
def test_resume_keeps_results_and_withdraws_the_dead_drivers_tickets(tmp_path, queue_removed):
    first, backend, clock = make(tmp_path, slots=1, max_jobs=1)
    result = submit_map(first, range(6), chunksize=1)
    run_until(first.step, backend, clock, lambda: sum(EXECUTIONS.values()) >= 2)
    first.step()  # collect what is there
    for call in first.calls:  # the driver dies: its lock goes with its process
        call.session.release()
    assert not result.ready()
    backend.slots = 0  # the dead driver's worker does nothing more
    if queue_removed:  # e.g. by `batchpool clean`: its tickets are dead
        shutil.rmtree(first.pool_dir.dir)

    second, backend2, clock2 = make(tmp_path, max_jobs=2)
    again = submit_map(second, range(6), chunksize=1)
    run_until(second.step, backend2, clock2, again.ready)
    assert again.get(0) == [10 * x for x in range(6)]
    assert dict(EXECUTIONS) == {x: 1 for x in range(6)}


def test_workers_are_asked_for_in_submissions_the_backend_can_take(tmp_path):
    dispatcher, backend, clock = make(tmp_path, slots=0)
    backend._max_jobs_per_submit = 3
    submit_map(dispatcher, range(50))
    for _ in range(3):
        dispatcher.step()
    assert backend.counts.jobs == 8  # the first wave, before any task was timed
    assert backend.counts.submits == 3  # 3 + 3 + 2


def test_pending_jobs_are_deleted_once_no_work_is_left(tmp_path):
    dispatcher, backend, clock = make(tmp_path, slots=1)
    result = submit_map(dispatcher, range(4), chunksize=1)
    run_until(dispatcher.step, backend, clock, result.ready)
    for _ in range(3):
        dispatcher.step()
        clock.advance(5.0)
    assert backend.counts.jobs == 4
    assert len(backend.counts.deletes) == 3  # they never started, and never will be needed


def test_a_result_written_just_before_its_job_ended_is_delivered(tmp_path):
    dispatcher, backend, clock = make(tmp_path, max_jobs=1)
    result = submit_map(dispatcher, [1, 2], chunksize=2)
    for _ in range(20):  # until the worker claimed the chunk and wrote its result
        dispatcher.step()
        backend.tick()
        clock.advance(0.1)
        if EXECUTIONS:
            break
    for fake in backend.jobs:  # the job ends before the driver looked for the result
        fake.phase = fake.phase.ENDED
    dispatcher._look_for_claims()
    dispatcher.fleet.last_status = -float("inf")
    dispatcher._query_status()  # the job is gone: its chunk would be lost...
    assert result.ready() or dispatcher.table.claimed == []
    run_until(dispatcher.step, backend, clock, result.ready)
    assert result.get(0) == [10, 20]  # ...but its result was there, and is delivered
    assert dict(EXECUTIONS) == {1: 1, 2: 1}


class Importable:
    @classmethod
    def twice(cls, x):
        return 2 * x


def test_a_method_of_an_importable_class_travels_by_reference():
    # as pickle sends it: its object and its name, so the worker runs the module's own
    # code, and a traceback names the file and line (multiprocessing's test_traceback)
    data = pickle_for_jobs("the function", Importable.twice)
    assert pickle.loads(data)(3) == 6
    assert b"_make_function" not in data and b"Importable" in data
    closure = 5
    by_value = pickle_for_jobs("the function", lambda x: x + closure)
    assert b"_make_function" in by_value  # what cannot be imported still travels by value
