"""The drop-in contract: each test runs against every pool kind of helpers.pools.POOL_KINDS,
``multiprocessing.Pool`` itself included."""

from __future__ import annotations

import itertools
import multiprocessing
import os
import pickle
import sys
import threading
import time
import traceback

import pytest
import tasks

import batchpool
from batchpool.session import Session


def test_map_returns_results_in_input_order(pool):
    assert pool.map(tasks.square, range(20)) == [x * x for x in range(20)]


def test_map_accepts_a_generator(pool):
    assert pool.map(tasks.square, (x for x in range(7))) == [x * x for x in range(7)]


def test_map_of_empty_input_is_empty(pool):
    assert pool.map(tasks.square, []) == []


def test_starmap_unpacks_arguments(pool):
    assert pool.starmap(tasks.add, [(1, 2), (3, 4), (5, 6)]) == [3, 7, 11]


@pytest.mark.parametrize("chunksize", [1, 3, 50])
def test_chunksize_keeps_the_order(pool, chunksize):
    assert pool.map(tasks.identity, range(10), chunksize=chunksize) == list(range(10))


def test_imap_yields_in_order(pool):
    assert list(pool.imap(tasks.square, range(9), chunksize=2)) == [x * x for x in range(9)]


def test_imap_unordered_yields_every_result(pool):
    assert sorted(pool.imap_unordered(tasks.square, range(9))) == [x * x for x in range(9)]


def test_apply_passes_args_and_kwds(pool):
    assert pool.apply(tasks.keyword_call, (1,), {"b": 2, "c": 3}) == (1, 2, 3)


def test_apply_async_calls_back(pool):
    seen = []
    done = threading.Event()

    def callback(value):
        seen.append(value)
        done.set()

    result = pool.apply_async(tasks.add, (2, 3), callback=callback)
    assert result.get(timeout=120) == 5
    assert done.wait(10)
    assert result.ready() and result.successful()
    assert seen == [5]


def test_map_async_and_starmap_async(pool):
    mapped = pool.map_async(tasks.square, range(5))
    starred = pool.starmap_async(tasks.add, [(1, 1), (2, 2)])
    assert mapped.get(timeout=120) == [0, 1, 4, 9, 16]
    assert starred.get(timeout=120) == [2, 4]


def test_async_error_callback_gets_the_exception(pool):
    errors = []
    result = pool.map_async(tasks.fail_on_three, range(5), error_callback=errors.append)
    with pytest.raises(tasks.TaskFailed):
        result.get(timeout=120)
    assert not result.successful()
    assert len(errors) == 1 and isinstance(errors[0], tasks.TaskFailed)


def test_two_identical_async_maps_run_side_by_side(pool):
    first = pool.map_async(tasks.square, range(3))
    second = pool.map_async(tasks.square, range(3))
    assert first.get(timeout=120) == second.get(timeout=120) == [0, 1, 4]


def test_get_with_timeout_raises_timeout_error(pool):
    result = pool.apply_async(tasks.sleep_then_return, (3,))
    with pytest.raises(multiprocessing.TimeoutError):
        result.get(timeout=0.01)
    assert not result.ready()
    with pytest.raises(ValueError):
        result.successful()
    assert result.get(timeout=120) == 3


def test_task_exception_keeps_its_type_and_remote_traceback(pool):
    with pytest.raises(tasks.TaskFailed, match="task 3 failed on purpose") as info:
        pool.map(tasks.fail_on_three, range(6))
    cause = info.value.__cause__
    assert cause is not None
    assert "fail_on_three" in str(cause)
    assert "Traceback" in str(cause)


def test_task_exception_from_imap(pool):
    iterator = pool.imap(tasks.fail_on_three, range(6), chunksize=1)
    assert [next(iterator) for _ in range(3)] == [0, 1, 2]
    with pytest.raises(tasks.TaskFailed):
        next(iterator)


def test_initializer_runs_before_tasks(new_pool):
    pool = new_pool(initializer=tasks.remember, initargs=("ready",))
    assert pool.map(tasks.initialized, range(2), chunksize=1) == [["ready"], ["ready"]]


def test_large_results_come_back_whole(pool):
    results = pool.map(tasks.big_bytes, [20, 21])
    assert [len(r) for r in results] == [20 * 1024 * 1024, 21 * 1024 * 1024]
    assert results[1][:3] == bytes([21]) * 3


def test_stdout_and_stderr_noise_does_not_disturb_results(pool):
    assert pool.map(tasks.noisy, range(4)) == [0, 1, 2, 3]


def test_environment_round_trip(new_pool, monkeypatch):
    value = "quote \" ' newline \n tab \t unicode \u2713 \u00e9\u4e2d $HOME `echo hi` \\ end"
    monkeypatch.setenv("BATCHPOOL_TEST_VALUE", value)
    pool = new_pool()  # multiprocessing's workers take the environment when they start
    assert pool.map(tasks.getenv, ["BATCHPOOL_TEST_VALUE"] * 3) == [value] * 3


def test_workers_stand_between_maps_and_keep_their_state(pool):
    first = pool.map(tasks.count_calls_in_worker, range(4), chunksize=1)
    second = pool.map(tasks.count_calls_in_worker, range(4), chunksize=1)
    pids = {pid for pid, _ in first + second}
    assert os.getpid() not in pids
    assert len(pids) < 8  # some worker ran tasks of both maps
    assert max(count for _, count in second) > 1  # and kept its module state


def test_imap_reads_an_infinite_input_lazily(pool):
    results = pool.imap_unordered(tasks.square, itertools.count(), chunksize=2)
    seen = [next(results) for _ in range(10)]
    assert len(seen) == 10 and all(isinstance(x, int) for x in seen)


def test_imap_starts_before_its_results_are_asked_for(pool, tmp_path):
    marker = tmp_path / "ran"
    pool.imap(tasks.touch, [str(marker)])
    deadline = time.monotonic() + 120
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker.exists()


def test_unconsumed_imap_unordered_has_run_when_join_returns(pool, tmp_path):
    paths = [str(tmp_path / f"side_effect_{i}") for i in range(5)]
    pool.imap_unordered(tasks.touch, paths)
    pool.close()
    pool.join()
    assert all(os.path.exists(p) for p in paths)


def test_an_input_error_comes_from_next_after_the_results_before_it(pool):
    results = pool.imap(tasks.square, tasks.numbers_then_fail(10, error_at=3))
    assert [next(results) for _ in range(3)] == [0, 1, 4]
    with pytest.raises(KeyError, match="input 3 failed"):
        next(results)


def test_a_pool_cannot_be_pickled(pool):
    with pytest.raises(NotImplementedError, match="cannot be passed between processes"):
        pickle.dumps(pool)


def test_errors_name_the_public_class(pool):
    # Python names the method's class in such errors from 3.10 on, as multiprocessing's
    public_name = r"Pool\.map\(\)" if sys.version_info >= (3, 10) else r"^map\(\)"
    with pytest.raises(TypeError, match=public_name):
        pool.map(tasks.square)  # type: ignore[call-arg]


def test_use_after_close_is_an_error(pool):
    pool.close()
    with pytest.raises(ValueError):
        pool.map(tasks.square, [1])
    pool.join()


def test_join_while_running_is_an_error(pool):
    with pytest.raises(ValueError):
        pool.join()


def test_use_after_terminate_is_an_error(pool):
    pool.terminate()
    with pytest.raises(ValueError):
        pool.apply_async(tasks.square, (1,))


def test_close_then_join_waits_for_async_maps(pool):
    result = pool.map_async(tasks.sleep_then_return, [0.5, 0.5])
    pool.close()
    pool.join()
    assert result.ready() and result.get(timeout=0) == [0.5, 0.5]


def test_context_manager(new_pool):
    with new_pool() as pool:
        assert pool.map(tasks.square, [3]) == [9]
    with pytest.raises(ValueError):
        pool.map(tasks.square, [3])


def test_non_callable_func_is_a_type_error(pool):
    with pytest.raises(TypeError):
        pool.map(3, [1, 2])


def test_unpicklable_task_is_reported(pool):
    with pytest.raises((TypeError, pickle.PicklingError)):
        pool.map(tasks.identity, [1, threading.Lock()])


def test_unpicklable_result_is_reported_as_multiprocessing_does(pool):
    from multiprocessing.pool import MaybeEncodingError

    with pytest.raises(MaybeEncodingError):
        pool.map(tasks.return_a_lock, [1])


# -- what only batchpool promises ------------------------------------------------------


@pytest.fixture
def batchpool_only(is_batchpool):
    if not is_batchpool:
        pytest.skip("a batchpool promise that multiprocessing.Pool does not make")


def sessions(work_dir):
    """The maps' session directories in ``work_dir`` (not the pools' queues, nor the
    summaries that successful maps keep)."""
    if not work_dir.exists():
        return []
    return sorted(
        p
        for p in work_dir.iterdir()
        if not p.name.startswith("pool_") and not Session(p).is_summary()
    )


def test_empty_input_submits_nothing(batchpool_only, new_pool, tmp_path):
    pool = new_pool()
    assert pool.map(tasks.square, []) == []
    assert sessions(tmp_path / "work") == []


def test_session_is_removed_after_success(batchpool_only, pool, tmp_path):
    assert pool.map(tasks.square, range(3)) == [0, 1, 4]
    assert sessions(tmp_path / "work") == []


def test_session_is_kept_on_failure_and_named(batchpool_only, pool, tmp_path):
    with pytest.raises(tasks.TaskFailed) as info:
        pool.map(tasks.fail_on_three, range(5))
    (session,) = sessions(tmp_path / "work")
    assert str(session) in str(info.value.__cause__)
    notes = getattr(info.value, "__notes__", [str(session)])
    assert any(str(session) in note for note in notes)


def test_session_and_pool_directory_are_private(batchpool_only, new_pool, tmp_path):
    pool = new_pool(keep_work_dir=True)
    pool.map(tasks.square, range(3))
    pool.close()
    pool.join()
    directories = list((tmp_path / "work").iterdir())
    assert len(directories) == 2  # the map's session and the pool's queue
    for directory in directories:
        assert directory.stat().st_mode & 0o777 == 0o700
        for path in directory.rglob("*"):
            expected = 0o700 if path.is_dir() else 0o600
            assert path.stat().st_mode & 0o777 == expected, path


def test_chunksize_makes_chunks_of_that_size(batchpool_only, new_pool, tmp_path):
    pool = new_pool(keep_work_dir=True)
    pool.map(tasks.identity, range(10), chunksize=3)
    (session,) = sessions(tmp_path / "work")
    events = batchpool.session.Session(session).chunk_events()
    posted = [(e.start, e.stop) for e in events if e.event == "posted"]
    assert posted == [(0, 3), (3, 6), (6, 9), (9, 10)]


def test_chunksize_below_one_is_rejected(batchpool_only, pool):
    with pytest.raises(ValueError, match="chunksize"):
        pool.map(tasks.square, range(3), chunksize=0)


def test_unrebuildable_exception_is_a_remote_error(batchpool_only, pool):
    with pytest.raises(batchpool.RemoteError, match="NeedsTwoArguments") as info:
        pool.map(tasks.raise_unrebuildable, [1])
    assert "raise_unrebuildable" in info.value.traceback_text
    assert info.value.session_dir is not None


def test_job_variables_come_from_the_job_not_the_driver(batchpool_only, pool, monkeypatch):
    monkeypatch.setenv("SLURM_JOB_ID", "999999")
    monkeypatch.setenv("JOB_ID", "888888")
    values = pool.map(tasks.getenv, ["SLURM_JOB_ID", "JOB_ID"])
    assert "999999" not in values and "888888" not in values


@pytest.mark.parametrize("crash", [tasks.exit_hard, tasks.segfault])
def test_worker_crash_is_that_tasks_error_not_a_hang(batchpool_only, new_pool, crash):
    pool = new_pool(max_num_resubmissions=1)
    with pytest.raises(batchpool.WorkerCrashedError) as info:
        pool.map(crash, [1, 2])
    # as in multiprocessing, the first failure to arrive is raised
    index = info.value.index
    assert index in (0, 1) and f"argument {index + 1}" in str(info.value)
    assert info.value.session_dir is not None
    assert len(info.value.attempts) == 2  # once in its chunk, once alone


def test_remote_traceback_is_printed_with_the_error(batchpool_only, pool):
    try:
        pool.map(tasks.fail_on_three, [3])
    except tasks.TaskFailed as error:
        text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    assert "fail_on_three" in text and "The session directory is kept at" in text


def test_work_dir_that_cannot_be_written(batchpool_only, new_pool, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    pool = new_pool(work_dir=blocker / "work")
    with pytest.raises(batchpool.PoolError, match="Nothing was submitted"):
        pool.map(tasks.square, [1])


def test_python_path_that_does_not_exist(batchpool_only, new_pool):
    with pytest.raises(ValueError, match="python_path"):
        new_pool(python_path="/no/such/python")


def test_terminate_from_another_thread_stops_a_map(batchpool_only, pool):
    timer = threading.Timer(1.0, pool.terminate)
    timer.start()
    with pytest.raises(batchpool.PoolError, match="terminated"):
        pool.map(tasks.sleep_then_return, [60, 60])
    timer.join()


def test_size_is_the_number_of_tasks_run_at_once(batchpool_only, new_pool):
    assert new_pool(processes=3).size == 3
