"""batchpool.load and the summaries of a kept session, on sessions written by the engine.

Most sessions here are laid out by :class:`ScriptedDriver`, which does what the
dispatcher does through the engine's own API (``Session``, ``PoolDirectory``,
``Ticket``, ``ChunkEvent``) and runs each chunk with ``batchpool.worker.Worker`` in
this process, so that a test decides exactly which chunks ran, were collected, or
were lost. Those of real maps of ``batchpool.local.Pool`` are
``tests/integration/test_results_of_real_maps.py``.
"""

import datetime
import importlib
import json
import os
import pickle
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import batchpool
from batchpool import _layout, cli, report, results
from batchpool.results import ChunkState, TaskStatus
from batchpool.session import STALE_LOCK_S, ChunkEvent, PoolDirectory, Session
from helpers.scripted_driver import ScriptedDriver


def square(x):
    return x * x


def square_or_fail(x):
    if x == 3:
        raise ZeroDivisionError("three")
    if x == 5:
        raise KeyError("k")
    return x * x


def raise_it(x):
    if isinstance(x, BaseException):
        raise x
    return x


class Unrebuildable(Exception):
    def __init__(self, a, b):
        super().__init__(f"{a}/{b}")


def raise_unrebuildable(x):
    raise Unrebuildable(x, 2)


def test_outcomes_in_input_order_from_archive_and_uncollected_files(tmp_path):
    driver = ScriptedDriver(tmp_path, square_or_fail, list(range(7)))
    driver.post(0, range(0, 2))
    driver.run("1", collect=False)  # still in results/ (the driver died before collecting)
    driver.post(1, range(2, 4))  # never claimed
    driver.post(2, range(4, 6))
    driver.run("2")  # collected into results.archive
    session = driver.end()
    assert (session.dir / "results" / "0.0.rec").exists()
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
    assert [outcomes[i].value for i in (0, 1, 4)] == [0, 1, 16]
    assert type(outcomes[5].exception) is KeyError
    assert outcomes[2] == results.TaskOutcome(2, TaskStatus.MISSING)


def test_a_failed_task_comes_back_with_its_type_and_traceback(tmp_path):
    driver = ScriptedDriver(tmp_path, raise_it, [ValueError("bad value")])
    driver.post(0, range(1))
    driver.run("1")
    (outcome,) = batchpool.load(str(driver.end().dir))
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
    driver = ScriptedDriver(tmp_path, raise_unrebuildable, [1])
    driver.post(0, range(1))
    driver.run("1")
    (outcome,) = batchpool.load(driver.end().dir)
    assert isinstance(outcome.exception, batchpool.RemoteError)
    assert outcome.failure_line() == "Unrebuildable: 1/2"
    assert "Unrebuildable: 1/2" in outcome.traceback


def test_load_is_exported_lazily():
    assert "load" in batchpool.__all__
    assert batchpool.load is results.load


@pytest.mark.parametrize("kind", ["missing", "file", "empty_dir", "bad_manifest", "pool"])
def test_a_path_that_is_not_a_session_is_a_clear_error(tmp_path, kind):
    path = tmp_path / "thing"
    if kind == "file":
        path.write_text("hello")
    elif kind == "empty_dir":
        path.mkdir()
    elif kind == "bad_manifest":
        path.mkdir()
        (path / "session.json").write_text("{not json")
    elif kind == "pool":
        path = PoolDirectory.create(tmp_path).dir
    with pytest.raises(results.NotASessionError) as info:
        results.load(path)
    assert isinstance(info.value, batchpool.PoolError)
    assert isinstance(info.value, ValueError)
    assert str(path) in str(info.value)
    assert ("pool directory" in str(info.value)) is (kind == "pool")
    assert not results.is_session(path)


OLD_SESSION = Path(__file__).parents[1] / "data" / "sessions" / "batchpool-0.1"


def test_a_session_of_batchpool_0_1_is_named_so_not_misread(tmp_path, capsys):
    work_dir = tmp_path / "work"
    old = shutil.copytree(OLD_SESSION, work_dir / "20261122T011319_71d306e3300c53ba")
    with pytest.raises(results.NotASessionError, match="written by batchpool 0.1") as info:
        results.load(old)
    assert str(old) in str(info.value)
    assert "read it with the batchpool that wrote it" in str(info.value)
    assert cli.main(["status", str(work_dir)]) == 0
    assert f"cannot read: {old} was written by batchpool 0.1" in capsys.readouterr().out


@pytest.fixture
def vanishing_module(tmp_path, monkeypatch):
    """A module that the test removes once the worker used it."""
    (tmp_path / "bp_vanishing_mod.py").write_text(
        "class Point:\n    def __init__(self, x):\n        self.x = x\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("bp_vanishing_mod")

    def remove():
        del sys.modules["bp_vanishing_mod"]
        (tmp_path / "bp_vanishing_mod.py").unlink()
        importlib.invalidate_caches()

    yield module, remove
    sys.modules.pop("bp_vanishing_mod", None)


def test_results_whose_class_is_gone(tmp_path, vanishing_module):
    module, remove = vanishing_module
    driver = ScriptedDriver(tmp_path / "work", module.Point, [3])
    driver.post(0, range(1))
    driver.run("1", collect=False)
    session = driver.end()
    remove()
    with pytest.raises(results.ResultsError, match="chunk 0"):
        results.load(session.dir)
    (outcome,) = results.load(session.dir, strict=False)
    assert isinstance(outcome.value, results.Unresolved)
    assert outcome.value.name == "bp_vanishing_mod.Point"
    assert outcome.value.state == {"x": 3}
    assert repr(outcome.value) == "<unresolved bp_vanishing_mod.Point>"
    (chunk,) = results.summarize_chunks(session.dir)  # the summaries never need the class
    assert chunk.state is ChunkState.DONE


def test_an_imap_whose_input_was_still_being_read(tmp_path):
    driver = ScriptedDriver(tmp_path, square, [0, 1, 2], imap=True)
    driver.post(0, range(0, 2))
    driver.run("1")
    assert driver.session.manifest().num_tasks is None
    statuses = [o.status for o in batchpool.load(driver.session.dir)]
    assert statuses == [TaskStatus.DONE, TaskStatus.DONE, TaskStatus.MISSING]
    driver.session.append_tasks([pickle.dumps(3), pickle.dumps(4)])  # the input goes on
    summary = results.summarize_session(driver.session.dir)
    assert (summary.num_tasks, summary.num_done_tasks) == (5, 2)
    assert len(batchpool.load(driver.session.dir)) == 5


def fail_on_three(x):
    if x == 3:
        raise OSError("disk full\nsecond line")
    return x


def test_chunk_summaries(tmp_path):
    driver = ScriptedDriver(tmp_path, fail_on_three, list(range(5)))
    driver.post(0, range(0, 2))
    driver.run("10")
    driver.post(1, range(2, 4))
    driver.run("11")
    driver.post(2, range(4, 5))
    driver.lose("12")  # the job vanished holding it: posted again, as attempt 1
    driver.post(2, range(4, 5), attempt=1)
    driver.lose("13")
    driver.post(2, range(4, 5), attempt=2)  # waiting
    chunks = results.summarize_chunks(driver.end().dir)
    assert [c.chunk for c in chunks] == [0, 1, 2]
    assert [c.state for c in chunks] == [ChunkState.DONE, ChunkState.FAILED, ChunkState.NO_RESULT]
    assert [c.tasks for c in chunks] == [range(0, 2), range(2, 4), range(4, 5)]
    assert [c.job_ids for c in chunks] == [("10",), ("11",), ("12", "13")]
    assert [c.num_attempts for c in chunks] == [1, 1, 3]
    assert [c.num_resubmissions for c in chunks] == [0, 0, 2]
    assert [c.first_failure for c in chunks] == ["", "OSError: disk full", ""]
    assert [c.num_done_tasks for c in chunks] == [2, 1, 0]


def test_a_resumed_map_cuts_the_unclaimed_chunks_again(tmp_path):
    driver = ScriptedDriver(tmp_path, square, list(range(4)))
    first_pool = driver.pool
    driver.post(0, range(0, 4))  # the driver dies; nobody claimed the ticket
    # A new driver resumes: withdraws the ticket, cuts the tasks again, adopts its claims.
    assert driver.session.withdraw(0, 0)
    driver.session.record_chunks([ChunkEvent("claimed", 0, job_id="")])  # ignored: no job
    driver.new_pool(tmp_path)
    driver.post(1, range(0, 3))
    driver.run("20")
    driver.post(2, range(3, 4))
    driver.run("21")
    driver.session.record_chunks([ChunkEvent("claimed", 2, job_id="21")])  # adopted again
    session = driver.end(done=True)
    chunks = results.summarize_chunks(session.dir)
    assert [(c.chunk, c.tasks, c.state) for c in chunks] == [
        (0, range(0, 4), ChunkState.REPLACED),
        (1, range(0, 3), ChunkState.DONE),
        (2, range(3, 4), ChunkState.DONE),
    ]
    assert [c.job_ids for c in chunks] == [(), ("20",), ("21",)]
    assert [o.value for o in batchpool.load(session.dir)] == [0, 1, 4, 9]
    assert results.pools_of_session(session.dir) == [first_pool.name, driver.pool.name]


def test_a_chunk_run_again_keeps_its_latest_result(tmp_path):
    """The result of a lost chunk may arrive late, after it was posted again."""
    driver = ScriptedDriver(tmp_path, square, [2, 3])
    driver.post(0, range(0, 2))
    driver.post(0, range(0, 2), attempt=1)
    driver.run("31", ticket=1)
    driver.run("30", ticket=0)  # the first attempt's result, late: archived twice
    summary = results.summarize_session(driver.end(done=True).dir)
    (chunk,) = summary.chunks
    assert (chunk.state, chunk.job_ids, chunk.num_attempts) == (ChunkState.DONE, ("31", "30"), 2)
    assert (summary.num_done_tasks, summary.num_tasks, summary.finished) == (2, 2, True)


def test_session_summary_and_finding_sessions(tmp_path):
    first = ScriptedDriver(tmp_path, square, [1, 2], key="aaaaaaaaaaaaaaaa")
    first.end()
    second = ScriptedDriver(tmp_path, fail_on_three, [1, 3], key="bbbbbbbbbbbbbbbb")
    second.post(0, range(0, 2))
    second.run("1")
    second.end(done=True)
    (tmp_path / "not_a_session").mkdir()
    (tmp_path / "pool_but_not_a_pool").mkdir()
    assert results.find_sessions(tmp_path) == sorted([first.session.dir, second.session.dir])
    assert results.find_pool_dirs(tmp_path) == sorted([first.pool.dir, second.pool.dir])
    summary = results.summarize_session(second.session.dir)
    assert (summary.num_done_tasks, summary.num_failed_tasks, summary.finished) == (1, 1, True)
    assert summary.manifest.function == "test_results.fail_on_three"
    assert [c.state for c in summary.chunks] == [ChunkState.FAILED]
    assert results.summarize_session(first.session.dir).finished is False


def dead_pid():
    process = subprocess.Popen([sys.executable, "-c", ""])
    process.wait()
    return process.pid


def test_whether_the_driver_of_a_pool_is_alive(tmp_path):
    pool = PoolDirectory.create(tmp_path)
    assert results.pool_driver(pool.dir).alive  # no heartbeat yet: a driver starting
    old = time.time() - STALE_LOCK_S - 1
    os.utime(pool.dir, (old, old))
    assert not results.pool_driver(pool.dir).alive
    pool.heartbeat(1)
    assert results.pool_driver(pool.dir) == results.PoolDriver(
        socket.gethostname(), os.getpid(), True
    )
    driver_file = pool.dir / _layout.DRIVER_FILE
    pid = dead_pid()
    here = _layout.process_space()
    driver_file.write_bytes(_layout.DriverBeat(socket.gethostname(), here, pid, 7).encode())
    assert not results.pool_driver(pool.dir).alive
    # another host: its heartbeat's age tells
    driver_file.write_bytes(_layout.DriverBeat("node17.cluster", "b/p", 4242, 7).encode())
    assert results.pool_driver(pool.dir).alive
    old = time.time() - STALE_LOCK_S - 1
    os.utime(driver_file, (old, old))
    assert results.pool_driver(pool.dir) == results.PoolDriver("node17.cluster", 4242, False)


def write_log(session, lines):
    start = datetime.datetime(2026, 1, 1, 12, 0, 0)
    with open(session.dir / "log.jsonl", "w") as f:
        for seconds, message in lines:
            stamp = (start + datetime.timedelta(seconds=seconds)).isoformat(timespec="milliseconds")
            f.write(json.dumps({"t": stamp, "l": "INFO", "m": message, "c": "x"}) + "\n")
        f.write('{"t": "torn')


def test_timeline_from_the_log(tmp_path):
    session = ScriptedDriver(tmp_path, square, [1, 2, 3]).end()
    write_log(
        session,
        [
            (0, 'session {"tasks": 3, "function": "m.square"}'),
            (1, 'submitted {"jobs": 3, "first_job": "7"}'),
            (2, 'scheduler unreachable {"error": "sbatch: timeout"}'),
            (4, 'resubmitting {"chunk": 1, "job": "8", "reason": "NODE_FAIL"}'),
            (4, 'resubmitting {"chunk": 2, "job": "8", "reason": "NODE_FAIL"}'),
            (5, 'submitted {"jobs": 2, "first_job": "10"}'),
            (6, 'deleting {"jobs": 1, "why": "no work left for them"}'),
            (6, 'deleting {"jobs": 1, "why": "error state Eqw"}'),
            (7, 'stopped {"error": "KeyboardInterrupt()"}'),
            (8, 'resumed {"results": 2, "adopted_chunks": 0}'),
            (9, "done"),
        ],
    )
    events = report.log_events(session.dir)
    assert [e.message for e in events][:4] == [
        "session",
        "submitted",
        "scheduler unreachable",
        "resubmitting",
    ]
    assert events[1].fields == {"jobs": 3, "first_job": "7"}
    assert events[2].fields == {"error": "sbatch: timeout"}
    assert (events[-1].message, events[-1].fields) == ("done", {})
    timeline = report.timeline(session.dir)
    assert [(p.time_s, p.submitted, p.ended) for p in timeline.points] == [
        (0.0, 0, 0),
        (1.0, 3, 0),
        (4.0, 3, 1),  # job 8 held two chunks: one job ended, two resubmissions
        (4.0, 3, 1),
        (5.0, 5, 1),
        (6.0, 5, 2),
        (7.0, 5, 5),
        (9.0, 5, 5),
    ]
    assert (timeline.num_resubmissions, timeline.num_resumes, timeline.end) == (2, 1, "done")


def test_log_lines_carry_their_fields_as_json_fields_and_are_read_back(tmp_path):
    session = ScriptedDriver(tmp_path, square, [1, 2, 3]).end()
    session_obj = Session(session.dir)
    session_obj.log("collected", chunk=3, tasks=2, job="7_1")
    session_obj.close_log()
    last = json.loads((session.dir / "log.jsonl").read_text().splitlines()[-1])
    assert {k: last[k] for k in ("l", "m", "chunk", "tasks", "job")} == {
        "l": "INFO",
        "m": "collected",
        "chunk": 3,
        "tasks": 2,
        "job": "7_1",
    }
    event = report.log_events(session.dir)[-1]
    assert (event.message, event.fields) == ("collected", {"chunk": 3, "tasks": 2, "job": "7_1"})
    with pytest.raises(ValueError, match="may not be called"):
        session_obj.log("bad", m="shadows the message")
