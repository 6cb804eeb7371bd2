"""After the run (issue 23): a map that ended on task errors is "failed"; a resume
delivers the recorded errors unless asked to run them again; ``batchpool results``
writes JSON lines to stdout, with the tasks' inputs if asked.

Sessions come from :class:`ScriptedDriver` (no job runs); the same on real maps is in
``tests/integration/test_after_real_maps.py``.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest

from batchpool import calls, cli
from batchpool.calls import Call, CallKind
from batchpool.proto_pool import MapResult
from batchpool.session import ChunkResult, Session, SessionState
from helpers.command import run, without_efficiency
from helpers.scripted_driver import ScriptedDriver

KEY = "0123456789abcdef"


def raise_it(x):
    if isinstance(x, BaseException):
        raise x
    return x


def failed_map(work_dir, key=KEY):
    """Tasks 0-3 in chunks of two, task 2 raised; the driver ended as on a task error."""
    driver = ScriptedDriver(work_dir, raise_it, [1, {1, 2}, KeyError("nope"), 3], key=key)
    for chunk, tasks in enumerate((range(0, 2), range(2, 4))):
        driver.post(chunk, tasks)
        driver.run(f"10{chunk}")
    driver.session.mark_failed(1)
    return driver.end()


# -- the session's state ----------------------------------------------------------------


def test_a_map_that_ended_on_task_errors_is_failed(tmp_path):
    session = failed_map(tmp_path / "work")
    assert session.state() is SessionState.FAILED
    assert json.loads(Path(session.paths.failed).read_text()) == {"failed_tasks": 1}
    session.acquire()  # a resume takes it over: how it ends is not known yet
    assert session.state() is SessionState.RUNNING
    session.release()
    assert session.state() is SessionState.NOT_FINISHED
    session.mark_failed(1)
    session.mark_done()  # a later resume succeeded
    assert session.state() is SessionState.FINISHED


def test_a_map_stopped_otherwise_is_not_finished(tmp_path):
    driver = ScriptedDriver(tmp_path / "work", raise_it, [1, 2])
    driver.post(0, range(2))
    driver.lose("101")
    assert driver.end().state() is SessionState.NOT_FINISHED


def test_status_says_failed(tmp_path, capsys):
    session = failed_map(tmp_path / "work")
    code, out, _ = run(capsys, "status", session.dir)
    assert code == 0
    summary = without_efficiency(out.splitlines())[-2]
    assert "3/4 tasks done, 1 failed" in summary
    assert summary.endswith("; failed")
    code, out, _ = run(capsys, "status", tmp_path / "work")
    (row,) = out.splitlines()[1:]
    assert row.split()[-3:] == ["3/4", "1", "failed"]


def test_clean_keeps_a_failed_session_unless_asked(tmp_path, capsys):
    session = failed_map(tmp_path / "work")
    code, out, _ = run(capsys, "clean", tmp_path / "work", "--yes")
    assert session.dir.exists()
    code, out, _ = run(capsys, "clean", tmp_path / "work", "--yes", "--all")
    assert code == 0
    assert f"  {session.name}  FAILED" in out
    assert not session.dir.exists()


# -- a resume: the recorded errors, or the failed chunks again ----------------------------


def resumed(work_dir, retry_failed):
    call = Call(CallKind.MAP, raise_it, None, MapResult(4, None, None))
    call.retry_failed = retry_failed
    adopted = calls.reattach(call, work_dir, KEY, 4, verbose=False)
    assert adopted == []
    return call


def test_a_resume_runs_the_failed_chunk_again_by_default(tmp_path):
    failed_map(tmp_path / "work")
    call = resumed(tmp_path / "work", retry_failed=True)
    assert (call.num_delivered, call.num_failed_tasks) == (2, 0)
    assert list(call.uncut) == [range(2, 4)]


def test_a_resume_without_retry_delivers_the_recorded_error(tmp_path):
    failed_map(tmp_path / "work")
    call = resumed(tmp_path / "work", retry_failed=False)
    assert (call.num_delivered, call.num_failed_tasks) == (4, 1)
    assert not call.uncut and call.all_delivered
    assert call.session is not None and call.session.state() is SessionState.RUNNING
    call.sink.finish()
    with pytest.raises(KeyError, match="nope"):
        call.sink.get(0)


def envelopes_of(chunk, tasks, outcomes):
    """A chunk's result: ``outcomes`` True (the task's index returned) or False (raised)."""
    envelopes = [(True, i) if ok else (False, "error") for i, ok in zip(tasks, outcomes)]
    return ChunkResult(chunk, tasks, 0.0, tuple(pickle.dumps(e) for e in envelopes))


def test_the_newest_chunk_of_a_task_is_delivered_once():
    """Chunk 1 (tasks 2-5) failed; a resume cut 2-3 into chunk 4 (ok) and 4-5 into
    chunk 5 (task 5 failed again)."""
    results = [
        envelopes_of(0, range(0, 2), [True, True]),
        envelopes_of(1, range(2, 6), [True, False, True, True]),
        envelopes_of(4, range(2, 4), [True, True]),
        envelopes_of(5, range(4, 6), [True, False]),
    ]
    found = calls._newest_envelopes(results, retry_failed=False)
    assert [(start, len(e)) for start, e in found] == [(0, 2), (2, 2), (4, 2)]
    assert found[2][1] == [(True, 4), (False, "error")]
    again = calls._newest_envelopes(results, retry_failed=True)
    assert [(start, len(e)) for start, e in again] == [(0, 2), (2, 2)]


def test_a_task_between_newer_chunks_keeps_the_older_result():
    results = [envelopes_of(0, range(0, 4), [False] * 4), envelopes_of(1, range(1, 2), [True])]
    found = calls._newest_envelopes(results, retry_failed=False)
    assert [(start, [ok for ok, _ in e]) for start, e in found] == [
        (0, [False]),
        (1, [True]),
        (2, [False, False]),
    ]


# -- batchpool results on stdout -----------------------------------------------------------


def scripted_session(work_dir):
    driver = ScriptedDriver(work_dir, raise_it, [1, {1, 2}, KeyError("nope"), 3 + 4j, 5])
    driver.post(0, range(0, 2))
    driver.run("101")
    driver.post(1, range(2, 4))
    driver.run("102")
    return driver.end()


@pytest.mark.parametrize("output", [[], ["-o", "-"], ["--output", "-"]])
def test_results_as_json_lines_on_stdout(tmp_path, capsys, output):
    session = scripted_session(tmp_path / "work")
    code, out, err = run(capsys, "results", session.dir, *output)
    assert (code, err) == (0, "")
    rows = [json.loads(line) for line in out.splitlines()]
    assert rows[0] == {
        "index": 0,
        "status": "done",
        "value": 1,
        "value_is_repr": False,
        "error": None,
        "traceback_last_line": None,
    }
    assert (rows[1]["value"], rows[1]["value_is_repr"]) == ("{1, 2}", True)
    assert rows[2]["status"] == "failed" and rows[2]["value"] is None
    assert rows[2]["error"] == "KeyError: 'nope'"
    assert rows[2]["traceback_last_line"] == "KeyError: 'nope'"
    assert (rows[3]["value"], rows[3]["value_is_repr"]) == ("(3+4j)", True)
    assert rows[4]["status"] == "missing"
    assert "input" not in rows[0]


def test_results_with_inputs(tmp_path, capsys):
    session = scripted_session(tmp_path / "work")
    code, out, _ = run(capsys, "results", session.dir, "--inputs")
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    inputs = [(r["input"], r["input_is_repr"]) for r in rows]
    assert inputs == [
        (1, False),
        ("{1, 2}", True),
        ("KeyError('nope')", True),
        ("(3+4j)", True),
        (5, False),
    ]
    assert run(capsys, "results", session.dir, "--inputs", "-o", tmp_path / "a.json")[0] == 0
    assert [r["input"] for r in json.loads((tmp_path / "a.json").read_text())][::4] == [1, 5]
    assert run(capsys, "results", session.dir, "--inputs", "-o", tmp_path / "a.pkl")[0] == 0
    assert pickle.loads((tmp_path / "a.pkl").read_bytes())[1]["input"] == {1, 2}


def test_results_to_a_jsonl_file_as_on_stdout(tmp_path, capsys):
    session = scripted_session(tmp_path / "work")
    stdout = run(capsys, "results", session.dir)[1]
    code, out, _ = run(capsys, "results", session.dir, "-o", tmp_path / "out.jsonl")
    assert code == 0 and "wrote 5 tasks to" in out
    assert (tmp_path / "out.jsonl").read_text() == stdout


def test_results_without_inputs_keep_their_formats(tmp_path, capsys):
    session = scripted_session(tmp_path / "work")
    assert run(capsys, "results", session.dir, "-o", tmp_path / "out.json")[0] == 0
    (row, *_) = json.loads((tmp_path / "out.json").read_text())
    assert sorted(row) == ["exception", "index", "status", "traceback", "value"]
    assert cli.OUTCOME_WRITERS.keys() >= {".json", ".pkl", ".jsonl"}


def test_a_failed_marker_that_cannot_be_written_is_said(tmp_path, capsys, monkeypatch):
    session = Session.create(tmp_path / "work", KEY)

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("batchpool.session.write_file", full)
    session.mark_failed(3)
    assert "cannot mark" in capsys.readouterr().err
    session.release()
    assert session.state() is SessionState.NOT_FINISHED
