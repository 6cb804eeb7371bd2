"""batchpool.load and the summaries of a kept session, on sessions of real maps of
``batchpool.local.Pool``. Those of scripted sessions are ``tests/unit/test_results.py``.
"""

import pytest

import batchpool
import batchpool.local
from batchpool import report, results
from batchpool.results import ChunkState, TaskStatus


def square(x):
    return x * x


def square_or_fail(x):
    if x == 3:
        raise ZeroDivisionError("three")
    if x == 5:
        raise KeyError("k")
    return x * x


@pytest.fixture(scope="module")
def kept_map(tmp_path_factory):
    work = tmp_path_factory.mktemp("kept")
    with batchpool.local.Pool(2, work_dir=work, keep_work_dir=True) as pool:
        assert pool.map(square, range(5), chunksize=2) == [0, 1, 4, 9, 16]
    (session_dir,) = results.find_sessions(work)
    return session_dir


def test_a_real_map(kept_map):
    assert [o.value for o in batchpool.load(kept_map)] == [0, 1, 4, 9, 16]
    chunks = results.summarize_chunks(kept_map)
    assert [(c.tasks, c.state, c.num_attempts) for c in chunks] == [
        (range(0, 2), ChunkState.DONE, 1),
        (range(2, 4), ChunkState.DONE, 1),
        (range(4, 5), ChunkState.DONE, 1),
    ]
    assert all(len(c.job_ids) == 1 for c in chunks)
    (pool_name,) = results.pools_of_session(kept_map)
    assert (kept_map.parent / pool_name / "logs").is_dir()
    timeline = report.timeline(kept_map)
    assert timeline.end == "done"
    assert timeline.points[-1].submitted == timeline.points[-1].ended >= 1
    assert [e.message for e in report.log_events(kept_map)][0] == "session"


def test_load_after_a_real_failed_map(tmp_path):
    pool = batchpool.local.Pool(2, work_dir=tmp_path)
    with pool, pytest.raises(ZeroDivisionError) as info:
        pool.map(square_or_fail, range(6), chunksize=1)
    assert type(info.value) is ZeroDivisionError
    (session_dir,) = results.find_sessions(tmp_path)  # kept: a task raised
    outcomes = batchpool.load(session_dir)
    assert len(outcomes) == 6
    assert [o.status for o in outcomes].count(TaskStatus.FAILED) == 2
    assert type(outcomes[3].exception) is ZeroDivisionError
    assert type(outcomes[5].exception) is KeyError
    done = [o for o in outcomes if o.status is TaskStatus.DONE]
    assert [o.value for o in done] == [0, 1, 4, 16]
    summary = results.summarize_session(session_dir)
    assert (summary.finished, summary.num_done_tasks, summary.num_failed_tasks) == (False, 4, 2)
    assert report.timeline(session_dir).end == "stopped"
