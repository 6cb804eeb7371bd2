"""The rules of batchpool.chunking, as its module docstring states them."""

import math

import pytest

from batchpool import chunking
from batchpool.chunking import (
    INITIAL_WORKERS,
    MIN_CHUNK_S,
    MIN_TASK_S,
    TARGET_CHUNK_S,
    WORKER_HORIZON_S,
    chunk_size,
    workers_wanted,
)

# -- chunk_size ------------------------------------------------------------------------------


def test_a_given_chunksize_is_used_as_in_multiprocessing():
    assert chunk_size(100, None, 4, chunksize=7) == 7
    assert chunk_size(100, 0.001, 4, chunksize=7) == 7  # measured times do not matter
    assert chunk_size(5, None, 4, chunksize=7) == 5  # the last chunk has what is left


@pytest.mark.parametrize("chunksize", [0, -1])
def test_chunksize_below_one_is_rejected(chunksize):
    with pytest.raises(ValueError, match="chunksize"):
        chunk_size(10, None, 1, chunksize=chunksize)


@pytest.mark.parametrize("remaining", [0, -3])
def test_no_chunk_is_cut_from_no_tasks(remaining):
    with pytest.raises(ValueError):
        chunk_size(remaining, None, 1)


@pytest.mark.parametrize("remaining", [1, 2, 1000, 10**6])
def test_first_chunks_have_one_task_until_tasks_were_timed(remaining):
    assert chunk_size(remaining, None, 1) == 1
    assert chunk_size(remaining, None, 100) == 1


def test_a_timed_chunk_takes_about_the_target_time():
    # Many tasks, one worker: neither the balance cap nor the remaining tasks bind.
    assert chunk_size(10**6, 0.01, 1) == int(TARGET_CHUNK_S / 0.01) == 200
    assert chunk_size(10**6, 0.5, 1) == 4


def test_a_task_longer_than_the_target_is_a_chunk_of_its_own():
    assert chunk_size(10**6, 10 * TARGET_CHUNK_S, 1) == 1


def test_the_last_chunks_of_a_map_are_cut_for_balance():
    # 1000 tasks of 10 ms on 10 workers: 200 by time, but at most 1000 / (2 * 10).
    assert chunk_size(1000, 0.01, 10) == 50
    # rounded up, never 0
    assert chunk_size(101, 0.01, 10) == math.ceil(101 / 20) == 6
    assert chunk_size(3, 0.5, 10) == 1


def test_no_chunk_is_shorter_than_the_minimum_chunk_time():
    # 1 ms tasks, 100 tasks on 50 workers: balance asks for 1, the minimum for 50 ms.
    assert chunk_size(100, 0.001, 50) == math.ceil(MIN_CHUNK_S / 0.001) == 50


def test_the_minimum_chunk_time_is_bounded_by_what_remains():
    assert chunk_size(10, 1e-4, 1) == 10
    assert chunk_size(10, 1e-4, 100) == 10


@pytest.mark.parametrize("task_s", [0.0, 1e-12])
def test_a_task_measured_as_free_counts_as_the_minimum_task_time(task_s):
    expected = chunk_size(10**9, MIN_TASK_S, 1)
    assert chunk_size(10**9, task_s, 1) == expected == int(TARGET_CHUNK_S / MIN_TASK_S)


def test_no_live_workers_counts_as_one():
    assert chunk_size(1000, 0.01, 0) == chunk_size(1000, 0.01, 1) == 200


@pytest.mark.parametrize("remaining", [1, 2, 3, 7, 50, 999, 10**5])
@pytest.mark.parametrize("task_s", [None, 0.0, 1e-6, 1e-3, 0.05, 1.0, 100.0])
@pytest.mark.parametrize("workers", [0, 1, 3, 64])
def test_a_chunk_has_at_least_one_and_at_most_the_remaining_tasks(remaining, task_s, workers):
    assert 1 <= chunk_size(remaining, task_s, workers) <= remaining


def test_a_map_cut_chunk_by_chunk_covers_every_task_with_shrinking_chunks():
    remaining, cuts = 1000, []
    while remaining:
        cuts.append((remaining, chunk_size(remaining, 0.01, 4)))
        remaining -= cuts[-1][1]
    sizes = [size for _, size in cuts]
    assert sum(sizes) == 1000
    assert sizes == sorted(sizes, reverse=True)
    assert sizes[0] == 125  # 1000 / (2 * 4): the balance cap binds before the target
    at_least = math.ceil(MIN_CHUNK_S / 0.01)
    assert all(size >= min(left, at_least) for left, size in cuts)


# -- workers_wanted ------------------------------------------------------------------------


def test_before_any_timing_the_initial_number_of_workers_is_asked_for():
    assert workers_wanted(0, 1000, None, None) == INITIAL_WORKERS
    # The first wave is counted with the workers already busy: it is not asked for again
    # as each of them claims its first one-task chunk.
    assert workers_wanted(3, 997, None, None) == INITIAL_WORKERS
    assert workers_wanted(12, 900, None, None) == 12


def test_no_more_workers_than_chunks_to_claim():
    assert workers_wanted(0, 1000, None, None, unclaimed_chunks=1) == 1
    assert workers_wanted(2, 1000, 10.0, None, unclaimed_chunks=3) == 5


def test_fewer_initial_workers_for_fewer_tasks():
    assert workers_wanted(0, 3, None, None) == 3
    assert workers_wanted(2, 1, None, None) == 3


def test_with_nothing_unclaimed_the_busy_chunks_are_what_is_wanted():
    assert workers_wanted(0, 0, None, None) == 0
    assert workers_wanted(5, 0, 0.1, None) == 5
    assert workers_wanted(5, -1, None, None) == 5


def test_after_timing_one_worker_per_horizon_of_unclaimed_work():
    # 100 tasks of 1 s: 100 s of work, one worker per 5 s.
    assert workers_wanted(0, 100, 1.0, None) == math.ceil(100 / WORKER_HORIZON_S) == 20
    assert workers_wanted(2, 100, 1.0, None) == 22
    assert workers_wanted(0, 101, 1.0, None) == 21  # rounded up


def test_a_little_unclaimed_work_still_gets_one_worker():
    assert workers_wanted(0, 10, 0.001, None) == 1
    assert workers_wanted(4, 10, 0.0, None) == 5


def test_never_more_workers_for_unclaimed_tasks_than_there_are_tasks():
    assert workers_wanted(0, 3, 100.0, None) == 3
    assert workers_wanted(1, 3, 100.0, None) == 4


@pytest.mark.parametrize(
    ("busy", "unclaimed", "task_s"),
    [(0, 1000, None), (0, 100, 1.0), (10, 0, None), (10, 5, 2.0), (2, 1, None)],
)
def test_never_more_than_the_cap(busy, unclaimed, task_s):
    uncapped = workers_wanted(busy, unclaimed, task_s, None)
    for cap in (1, 2, 4, 1000):
        assert workers_wanted(busy, unclaimed, task_s, cap) == min(uncapped, cap)


def test_quick_chunks_get_more_tickets_ahead_up_to_a_bound():
    assert chunking.tickets_ahead(None) == 1  # not measured yet
    assert chunking.tickets_ahead(1.0) == 1  # a chunk is long against a look
    assert chunking.tickets_ahead(chunking.AHEAD_S / 4) == 4
    assert chunking.tickets_ahead(0.0) == chunking.MAX_AHEAD
