"""batchpool.load and the summaries of a kept session, on sessions written here."""

import datetime
import importlib
import json
import pickle
import sys

import pytest

import batchpool
from batchpool import results, worker
from batchpool.results import ChunkState, TaskStatus
from batchpool.session import Manifest, Session


def make_session(tmp_path, num_tasks, chunksize):
    session = Session.create(tmp_path / "work", "0123456789abcdef")
    num_chunks = -(-num_tasks // chunksize)
    manifest = Manifest(num_tasks, chunksize, num_chunks, "local", "m.f", "2026-01-01T00:00:00")
    session.write_manifest(manifest)
    session.release()  # as a driver that ended leaves it
    return session


def write_result(session, chunk, envelopes, collect=True):
    session.result_path(chunk).write_bytes(pickle.dumps(envelopes))
    if collect:
        session.collect_result(chunk)


def failure(exc):
    try:
        raise exc
    except Exception as raised:
        return worker._failure(raised)


class Unrebuildable(Exception):
    def __init__(self, a, b):
        super().__init__(f"{a}/{b}")


def test_outcomes_in_input_order_from_archive_and_uncollected_files(tmp_path):
    session = make_session(tmp_path, num_tasks=7, chunksize=2)
    write_result(session, 2, [(True, "four"), failure(KeyError("k"))])  # archived
    write_result(session, 0, [(True, 0), (True, [1])], collect=False)  # still in results/
    outcomes = batchpool.load(session.dir)
    assert [o.index for o in outcomes] == list(range(7))
    assert [o.status for o in outcomes] == [
        TaskStatus.DONE,
        TaskStatus.DONE,
        TaskStatus.MISSING,
        TaskStatus.MISSING,
        TaskStatus.DONE,
        TaskStatus.FAILED,
        TaskStatus.MISSING,
    ]
    assert [outcomes[i].value for i in (0, 1, 4)] == [0, [1], "four"]
    assert outcomes[2] == results.TaskOutcome(2, TaskStatus.MISSING)


def test_a_failed_task_comes_back_with_its_type_and_traceback(tmp_path):
    session = make_session(tmp_path, num_tasks=1, chunksize=1)
    write_result(session, 0, [failure(ValueError("bad value"))])
    (outcome,) = batchpool.load(str(session.dir))
    assert outcome.status is TaskStatus.FAILED
    assert type(outcome.exception) is ValueError
    assert outcome.exception.args == ("bad value",)
    assert "ValueError: bad value" in outcome.traceback
    assert "bad value" in str(outcome.exception.__cause__)
    assert outcome.value is None
    assert outcome.failure_line() == "ValueError: bad value"
    assert results.TaskOutcome(0, TaskStatus.FAILED, exception=KeyError()).failure_line() == (
        "KeyError"
    )


def test_an_exception_that_cannot_be_rebuilt_is_a_remote_error(tmp_path):
    session = make_session(tmp_path, num_tasks=1, chunksize=1)
    envelope = failure(Unrebuildable(1, 2))
    assert envelope[1][0] is None  # the worker found it cannot be rebuilt
    write_result(session, 0, [envelope])
    (outcome,) = batchpool.load(session.dir)
    assert isinstance(outcome.exception, batchpool.RemoteError)
    assert outcome.failure_line() == "Unrebuildable: 1/2"


def test_load_is_exported_lazily():
    assert "load" in batchpool.__all__
    assert batchpool.load is results.load


@pytest.mark.parametrize("kind", ["missing", "file", "empty_dir", "bad_manifest"])
def test_a_path_that_is_not_a_session_is_a_clear_error(tmp_path, kind):
    path = tmp_path / "thing"
    if kind == "file":
        path.write_text("hello")
    elif kind == "empty_dir":
        path.mkdir()
    elif kind == "bad_manifest":
        path.mkdir()
        (path / "session.json").write_text("{not json")
    with pytest.raises(results.NotASessionError) as info:
        results.load(path)
    assert isinstance(info.value, batchpool.PoolError)
    assert isinstance(info.value, ValueError)
    assert str(path) in str(info.value)
    assert not results.is_session(path)


def vanishing_instance(tmp_path, monkeypatch):
    """A pickle of an object whose module is gone afterwards."""
    (tmp_path / "bp_vanishing_mod.py").write_text(
        "class Point:\n    def __init__(self, x):\n        self.x = x\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("bp_vanishing_mod")
    payload = [(True, module.Point(3))]
    pickled = pickle.dumps(payload)
    del sys.modules["bp_vanishing_mod"]
    (tmp_path / "bp_vanishing_mod.py").unlink()
    importlib.invalidate_caches()
    return pickled


def test_results_whose_class_is_gone(tmp_path, monkeypatch):
    session = make_session(tmp_path, num_tasks=1, chunksize=1)
    session.result_path(0).write_bytes(vanishing_instance(tmp_path, monkeypatch))
    with pytest.raises(results.ResultsError, match="chunk 0"):
        results.load(session.dir)
    (outcome,) = results.load(session.dir, strict=False)
    assert isinstance(outcome.value, results.Unresolved)
    assert outcome.value.name == "bp_vanishing_mod.Point"
    assert outcome.value.state == {"x": 3}
    assert repr(outcome.value) == "<unresolved bp_vanishing_mod.Point>"


def test_chunk_summaries(tmp_path):
    session = make_session(tmp_path, num_tasks=5, chunksize=2)
    write_result(session, 0, [(True, 1), (True, 2)])
    write_result(session, 1, [(True, 3), failure(OSError("disk full\nsecond line"))])
    journal = [(0, "10"), (1, "11"), (2, "12"), (2, "13"), (2, "14")]
    session.record_jobs([worker_job(session, chunk, job_id) for chunk, job_id in journal])
    chunks = results.summarize_chunks(session.dir)
    assert [c.state for c in chunks] == [ChunkState.DONE, ChunkState.FAILED, ChunkState.NO_RESULT]
    assert [c.tasks for c in chunks] == [range(0, 2), range(2, 4), range(4, 5)]
    assert [c.job_ids for c in chunks] == [("10",), ("11",), ("12", "13", "14")]
    assert [c.num_resubmissions for c in chunks] == [0, 0, 2]
    assert [c.first_failure for c in chunks] == ["", "OSError: disk full", ""]
    assert [c.num_done_tasks for c in chunks] == [2, 1, 0]


def worker_job(session, chunk, job_id):
    from batchpool.backend import Job

    return Job(chunk, job_id, session.log_dir / f"{job_id}.out", session.log_dir / f"{job_id}.err")


def test_session_summary_and_finding_sessions(tmp_path):
    first = make_session(tmp_path, num_tasks=2, chunksize=1)
    second = make_session(tmp_path, num_tasks=2, chunksize=1)
    (tmp_path / "work" / "not_a_session").mkdir()
    write_result(second, 1, [(True, "x")])
    second.mark_done()
    assert results.find_sessions(tmp_path / "work") == sorted([first.dir, second.dir])
    summary = results.summarize_session(second.dir)
    assert (summary.num_done_tasks, summary.finished) == (1, True)
    assert results.summarize_session(first.dir).finished is False


def write_log(session, lines):
    start = datetime.datetime(2026, 1, 1, 12, 0, 0)
    with open(session.dir / "log.jsonl", "w") as f:
        for seconds, message in lines:
            stamp = (start + datetime.timedelta(seconds=seconds)).isoformat(timespec="milliseconds")
            f.write(json.dumps({"t": stamp, "l": "INFO", "m": message, "c": "x"}) + "\n")
        f.write('{"t": "torn')


def test_timeline_from_the_log(tmp_path):
    session = make_session(tmp_path, num_tasks=3, chunksize=1)
    write_log(
        session,
        [
            (0, 'session {"tasks": 3, "chunks": 3, "backend": "slurm"}'),
            (1, 'submitted {"chunks": 3, "first_job": "7"}'),
            (4, 'resubmitting {"chunk": 1, "job": "8", "reason": "NODE_FAIL"}'),
            (5, 'submitted {"chunks": 1, "first_job": "10"}'),
            (6, 'collected {"chunks": 2}'),
            (9, "done"),
        ],
    )
    events = results.log_events(session.dir)
    assert [e.message for e in events] == [
        "session",
        "submitted",
        "resubmitting",
        "submitted",
        "collected",
        "done",
    ]
    assert events[1].fields == {"chunks": 3, "first_job": "7"}
    timeline = results.timeline(session.dir)
    assert [(p.time_s, p.submitted, p.ended) for p in timeline.points] == [
        (0.0, 0, 0),
        (1.0, 3, 0),
        (4.0, 3, 1),
        (5.0, 4, 1),
        (6.0, 4, 3),
        (9.0, 4, 4),
    ]
    assert (timeline.num_resubmissions, timeline.end) == (1, "done")


def square_or_fail(x):
    if x == 3:
        raise ZeroDivisionError("three")
    return x * x


def test_load_after_a_real_failed_map(tmp_path):
    pool = batchpool.local.Pool(2, work_dir=tmp_path)
    with pool, pytest.raises(ZeroDivisionError) as info:
        pool.map(square_or_fail, range(6), chunksize=1)
    assert type(info.value) is ZeroDivisionError
    (session_dir,) = results.find_sessions(tmp_path)
    outcomes = batchpool.load(session_dir)
    assert len(outcomes) == 6
    assert outcomes[3].status is TaskStatus.FAILED
    assert type(outcomes[3].exception) is ZeroDivisionError
    done = [o for o in outcomes if o.status is TaskStatus.DONE]
    assert all(o.value == o.index**2 for o in done)
