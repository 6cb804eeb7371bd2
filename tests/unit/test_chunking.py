import pytest

from batchpool.chunking import DEFAULT_MAX_NUM_CHUNKS, chunk_bounds, default_chunksize


def test_small_maps_get_one_task_per_job():
    assert default_chunksize(1) == 1
    assert default_chunksize(DEFAULT_MAX_NUM_CHUNKS) == 1


def test_large_maps_stay_within_the_bound():
    for num_tasks in (1001, 10_000, 100_000, 123_457):
        chunksize = default_chunksize(num_tasks)
        assert len(chunk_bounds(num_tasks, chunksize)) <= DEFAULT_MAX_NUM_CHUNKS
    assert default_chunksize(100_000) == 100


def test_bounds_cover_every_task_once_in_order():
    bounds = chunk_bounds(10, 3)
    assert [list(b) for b in bounds] == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]
    assert chunk_bounds(0, 5) == []


@pytest.mark.parametrize("chunksize", [0, -1])
def test_chunksize_below_one_is_rejected(chunksize):
    with pytest.raises(ValueError, match="chunksize"):
        chunk_bounds(10, chunksize)


def test_max_num_chunks_below_one_is_rejected():
    with pytest.raises(ValueError):
        default_chunksize(10, 0)
