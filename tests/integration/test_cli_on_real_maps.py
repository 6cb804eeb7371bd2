"""The batchpool command on sessions of real maps (``batchpool.local.Pool``; a driver
process killed in the middle of a map for what it leaves behind): status, clean,
report, ``python -m batchpool`` and the demo. Its tests on scripted sessions are
``tests/unit/test_cli.py``.
"""

import io
import os
import shutil
import subprocess
import sys
import time

import pytest

import batchpool
import batchpool.local
from batchpool import report, results
from batchpool.session import SUMMARIES_KEPT, PoolDirectory, Session, process_alive
from helpers.command import run, without_efficiency

# -- clean ------------------------------------------------------------------------------


# A driver that runs a map to its end (kept), then one whose driver is killed -9 while
# its last two tasks run: their results are written after it died, never collected.
ABANDONING_DRIVER = """
import os, sys, time
import batchpool.local

GATE = sys.argv[2]

def square(x):
    return x * x

def wait_for_gate(x):
    while x >= 2 and not os.path.exists(GATE):
        time.sleep(0.005)
    return -x

with batchpool.local.Pool(2, work_dir=sys.argv[1], keep_work_dir=True) as pool:
    assert pool.map(square, range(3)) == [0, 1, 4]
with batchpool.local.Pool(2, work_dir=sys.argv[1]) as pool:
    pool.map(wait_for_gate, range(4), chunksize=1)
"""


def num_claims(work):
    """The number of chunks claimed in the session of the second map."""
    for path in work.glob("*/chunks.jsonl"):
        session = Session(path.parent)
        if session.manifest().function.endswith("wait_for_gate"):
            return sum(event.event == "claimed" for event in session.chunk_events())
    return 0


def wait_for(condition, what, timeout_s=30.0):
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


@pytest.fixture(scope="module")
def abandoned(tmp_path_factory):
    """A work_dir left by a driver killed in its second map: ``(work_dir, finished
    session, unfinished session)``; both pools' driver is gone."""
    work = tmp_path_factory.mktemp("abandoned") / "work"
    gate = work.parent / "gate"
    driver = subprocess.Popen([sys.executable, "-c", ABANDONING_DRIVER, str(work), str(gate)])

    def claimed():
        return driver.poll() is not None or num_claims(work) == 4

    try:
        wait_for(claimed, "the second map's four chunks to be claimed")
        assert driver.poll() is None, "the driver ended by itself"
    finally:
        driver.kill()
        driver.wait()
    gate.write_text("")
    finished, unfinished = sorted(
        results.find_sessions(work), key=lambda d: results.is_finished(Session(d)), reverse=True
    )
    written = lambda: {2, 3} <= {r.chunk for r in Session(unfinished).all_results()}  # noqa: E731
    wait_for(written, "the last two results")
    pool = PoolDirectory(work / results.pools_of_session(unfinished)[0])
    jobs = os.listdir(pool.dir / "workers")
    pool.read_mailboxes(jobs)
    pids = [pool.worker_claim(job).pid for job in jobs]
    assert pids
    wait_for(lambda: not any(process_alive(pid) for pid in pids), "the workers to exit")
    return work, finished, unfinished


@pytest.fixture
def abandoned_copy(abandoned, tmp_path):
    work, finished, unfinished = abandoned
    copy = tmp_path / "work"
    shutil.copytree(work, copy)
    return copy, copy / finished.name, copy / unfinished.name


def test_status_of_an_abandoned_session(abandoned, capsys):
    _, _, unfinished = abandoned
    code, out, _ = run(capsys, "status", unfinished)
    assert code == 0
    header, *rows, summary, logs = without_efficiency(out.splitlines())
    assert [row.split()[:4] for row in rows] == [
        ["0", "0", "done", "1"],
        ["1", "1", "done", "1"],
        ["2", "2", "done", "1"],
        ["3", "3", "done", "1"],
    ]
    assert "4 chunks: 4 done" in summary and "4/4 tasks done" in summary
    assert summary.endswith("; not finished")  # its driver is dead: nobody drives it
    assert logs.startswith("logs of its jobs: ") and logs.endswith("/logs")
    assert [o.value for o in batchpool.load(unfinished)] == [0, -1, -2, -3]
    code, out, _ = run(capsys, "status", unfinished.parent)
    states = sorted(" ".join(row.split()[6:]) for row in out.splitlines()[1:])
    assert states == ["finished", "not finished"]


def test_clean_removes_pools_whose_driver_is_gone(abandoned_copy, capsys):
    work, finished, unfinished = abandoned_copy
    (used_pool,) = results.pools_of_session(unfinished)
    code, out, err = run(capsys, "clean", work, "--yes")
    assert code == 0
    assert "removed 1 session(s) and 1 pool directory" in out
    assert sorted(p.name for p in work.iterdir()) == sorted([unfinished.name, used_pool])
    assert f"keeping {used_pool}: the unfinished session {unfinished.name} used it" in err
    code, out, err = run(capsys, "clean", work, "--yes", "--all")
    assert (code, err) == (0, "")
    assert "removed 1 session(s) and 1 pool directory" in out
    assert list(work.iterdir()) == []


def test_clean_lists_what_it_would_remove(abandoned_copy, capsys, monkeypatch):
    work, finished, unfinished = abandoned_copy
    monkeypatch.setattr(sys, "stdin", io.StringIO("n\n"))
    code, out, _ = run(capsys, "clean", work, "--all")
    assert code == 1
    lines = out.splitlines()
    assert f"  {finished.name}  finished" in lines
    assert f"  {unfinished.name}  NOT finished" in lines
    assert sum(line.endswith("pool directory, its driver is gone") for line in lines) == 2
    assert "Remove these 2 session(s) and 2 pool directories? [y/N] nothing removed" in out
    assert len(list(work.iterdir())) == 4


# -- report -----------------------------------------------------------------------------


def square(x):
    return x * x


@pytest.fixture(scope="module")
def real_session(tmp_path_factory):
    work = tmp_path_factory.mktemp("real")
    with batchpool.local.Pool(2, work_dir=work, keep_work_dir=True) as pool:
        assert pool.map(square, range(5), chunksize=2) == [0, 1, 4, 9, 16]
    (session_dir,) = results.find_sessions(work)
    return session_dir


def test_html_report_of_a_real_map(real_session, tmp_path, capsys):
    output = tmp_path / "report.html"
    code, out, _ = run(capsys, "report", real_session, "--output", output)
    assert (code, out.strip()) == (0, f"wrote {output}")
    page = output.read_text()
    assert page.startswith("<!DOCTYPE html>") and "<script" not in page
    assert "<h1>test_cli_on_real_maps.square</h1>" in page  # the function, not the session
    assert page.count("<svg") == 3  # the jobs, the tasks done, the histogram of task times
    assert 'class="running"' in page and 'class="done"' in page
    chunks = results.summarize_chunks(real_session)
    assert len(chunks) == 3
    for chunk, tasks in zip(chunks, ["0-1", "2-3", "4"]):
        (job_id,) = chunk.job_ids
        row = f"<tr><td>{chunk.chunk}</td><td>{tasks}</td><td>done</td><td>1</td><td>{job_id}</td>"
        assert row in page
    jobs = report.job_rows(real_session)
    assert len(jobs) == report.timeline(real_session).points[-1].submitted == 2
    for job in jobs:  # every job counted is listed, with its row in the picture
        assert f"<tr><td>{job.job_id}</td>" in page and f">{job.job_id}</text>" in page
    assert "2 jobs (0 lost)" in page and "the map succeeded after" in page
    assert "No task raised." in page and "Ask for <code>time=0:01:00 mem=" in page


def test_png_report(real_session, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    output = tmp_path / "report.png"
    assert run(capsys, "report", real_session, "-o", output)[0] == 0
    assert output.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_png_report_without_matplotlib(real_session, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    code, _, err = run(capsys, "report", real_session, "-o", tmp_path / "report.png")
    assert code == 1
    assert "batchpool[report]" in err


def test_report_and_status_of_a_successful_map_without_keep_work_dir(tmp_path, capsys):
    with batchpool.local.Pool(2, work_dir=tmp_path) as pool:
        assert pool.map(square, range(6), chunksize=2) == [x * x for x in range(6)]
    (session_dir,) = results.find_sessions(tmp_path)  # its summary, no results
    kept = sorted(p.name for p in session_dir.iterdir() if not p.name.startswith("."))
    assert kept == ["chunks.jsonl", "done", "log.jsonl", "session.json"]
    output = tmp_path / "report.html"
    assert run(capsys, "report", session_dir, "-o", output)[0] == 0
    page = output.read_text()
    assert "<h1>test_cli_on_real_maps.square</h1>" in page and 'class="running"' in page
    assert "Ask for <code>time=0:01:00 mem=" in page and "the map succeeded" in page
    code, out, _ = run(capsys, "status", session_dir)
    assert code == 0 and "suggested for the next run: time=0:01:00 mem=" in out
    assert "3 chunks: 3 done, 0 failed" in out and "6/6 tasks done" in out and "finished" in out
    with pytest.raises(batchpool.ResultsError, match="were not kept"):
        results.load(session_dir)
    with pytest.raises(batchpool.ResultsError, match="were not kept"):
        results.load_inputs(session_dir)
    code, out, _ = run(capsys, "clean", tmp_path, "--yes")
    assert code == 0 and not session_dir.exists()


def test_a_work_dir_keeps_the_summaries_of_the_last_maps_only(tmp_path):
    with batchpool.local.Pool(2, work_dir=tmp_path, progress=False) as pool:
        for step in range(SUMMARIES_KEPT + 5):  # as an MCMC: many small maps
            assert pool.map(square, [step, step]) == [step * step] * 2
    kept = results.find_sessions(tmp_path)
    assert len(kept) == SUMMARIES_KEPT and all(Session(d).is_summary() for d in kept)


def crash_or_raise(x):
    if x == 3:
        raise ValueError(f"bad input {x}")
    flag = os.environ["CRASH_FLAG"]
    if x == 4 and not os.path.exists(flag):
        open(flag, "w").close()
        os._exit(3)
    return x


def test_report_of_a_map_with_a_lost_job_and_a_task_error(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CRASH_FLAG", str(tmp_path / "crashed"))
    with batchpool.local.Pool(2, work_dir=tmp_path / "work") as pool:
        with pytest.raises(ValueError, match="bad input 3"):
            pool.map(crash_or_raise, range(6), chunksize=2)
    (session_dir,) = results.find_sessions(tmp_path / "work")
    output = tmp_path / "report.html"
    assert run(capsys, "report", session_dir, "-o", output)[0] == 0
    page = output.read_text()
    lost = [job for job in report.job_rows(session_dir) if job.end.startswith("lost")]
    assert [job.end for job in lost] == ["lost: worker crashed in a task"]
    assert 'class="lost"' in page and "\u2716 lost: worker crashed in a task" in page
    assert "<tr><td>3</td><td>3</td><td>ValueError: bad input 3</td>" in page
    assert ", in crash_or_raise</td>" in page  # where it raised


# -- the rest ---------------------------------------------------------------------------


def test_python_dash_m(real_session):
    done = subprocess.run(
        [sys.executable, "-m", "batchpool", "status", str(real_session)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "3 chunks: 3 done" in done.stdout


def test_demo_still_runs(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("BATCHPOOL_BACKEND", "local")
    code, out, _ = run(capsys, "demo", "--tasks", "3", "--backend", "local", "--work-dir", tmp_path)
    assert code == 0
    assert "a map of 3 tasks on the 'local' backend" in out
    assert "3 results in" in out
    (session,) = results.find_sessions(tmp_path)  # the map's summary, and how to read it
    assert f"batchpool status {session}\n" in out
    assert f"batchpool report {session} -o report.html\n" in out
    assert run(capsys, "report", session, "-o", tmp_path / "report.html")[0] == 0
