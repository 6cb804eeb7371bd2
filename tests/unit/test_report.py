"""``batchpool report`` and the summary a successful map keeps, on scripted sessions
(no job runs): the jobs' rows, the failed tasks, and what ``load`` says of a summary.
The report of real maps: ``tests/integration/test_cli_on_real_maps.py``."""

import pytest

import batchpool
from batchpool import report, results
from batchpool.session import ChunkEvent, Session, Summaries
from helpers.scripted_driver import ScriptedDriver


def square_or_fail(x):
    if x == 5:
        raise KeyError(f"no {x}")
    return x * x


def scripted(tmp_path, done):
    """Chunks 0 and 1 run by job 1, chunk 2 lost with job 2 then run by job 3; job 1
    exits idle. A failed task (5) unless ``done``."""
    tasks = [0, 1, 2, 3, 4, 6] if done else list(range(6))
    driver = ScriptedDriver(tmp_path, square_or_fail, tasks)
    session = driver.session
    session.log("session", tasks=len(tasks), function="test_report.square_or_fail")
    session.log("submitted", jobs=3, first_job="1", job_ids=["1", "2", "3"])
    for chunk, tasks_of in enumerate((range(0, 2), range(2, 4))):
        driver.post(chunk, tasks_of)
        driver.run("1")
        session.log("collected", chunk=chunk, tasks=2)
    driver.post(2, range(4, 6))
    driver.lose("2")
    session.record_chunks([ChunkEvent("lost", 2, 4, 6, job_id="2", cause="node failed")])
    session.log("lost", chunk=2, loss="job 2, node failed", then="post again")
    session.log("exited", job="1")
    driver.post(2, range(4, 6), attempt=1)
    driver.run("3")
    session.log("collected", chunk=2, tasks=2)
    session.log("done" if done else "stopped")
    return driver.end(done=done)


def test_the_jobs_rows_of_a_map(tmp_path):
    session = scripted(tmp_path, done=False)
    rows = {row.job_id: row for row in report.job_rows(session.dir)}
    assert list(rows) == ["1", "2", "3"]  # as many as were submitted, in their order
    assert [run.chunk for run in rows["1"].runs] == [0, 1] and rows["1"].end == "exited"
    assert rows["2"].end == "lost: node failed" and [r.lost for r in rows["2"].runs] == [True]
    assert rows["3"].end == "at the end of the map" and rows["3"].peak_mb is not None
    assert all(r.submitted_s is not None and r.end_s >= r.submitted_s for r in rows.values())
    fraction = report.busy_fraction(list(rows.values()))
    assert fraction is not None and 0 < fraction <= 1
    assert [n for _, n in report.tasks_done(session.dir)] == [0, 2, 4, 6]


def test_the_html_report_names_the_function_and_shows_the_failures(tmp_path):
    session = scripted(tmp_path, done=False)
    output = tmp_path / "report.html"
    report.write(session.dir, output)
    page = output.read_text()
    assert "<h1>test_report.square_or_fail</h1>" in page and "<script" not in page
    assert "3 jobs (1 lost)" in page and "1 chunk(s) posted again" in page
    assert "\u2716 lost: node failed" in page and page.count('class="lost"') == 1
    assert "<tr><td>5</td><td>5</td><td>KeyError: &#x27;no 5&#x27;</td>" in page
    assert ", in square_or_fail</td>" in page
    for job in ("1", "2", "3"):  # counted and listed alike
        assert f"<tr><td>{job}</td>" in page and f">{job}</text>" in page


def test_a_successful_map_keeps_a_summary_that_report_and_status_read(tmp_path):
    session = scripted(tmp_path, done=True)
    usage = results.task_usage(session.dir)
    before = results.summarize_session(session.dir)
    session.keep_summary()
    assert sorted(p.name for p in session.dir.iterdir()) == [
        "chunks.jsonl", "done", "log.jsonl", "session.json",
    ]
    assert session.is_summary()
    kept = results.task_usage(session.dir)  # to four digits, the memory to 0.1 MiB
    assert [(u.index, u.chunk, u.job_id) for u in kept] == [
        (u.index, u.chunk, u.job_id) for u in usage
    ]
    assert [u.wall_s for u in kept] == pytest.approx([u.wall_s for u in usage], rel=1e-3)
    assert [u.max_rss_mb for u in kept] == pytest.approx([u.max_rss_mb for u in usage], abs=0.06)
    after = results.summarize_session(session.dir)
    assert (after.num_done_tasks, after.state, after.finished) == (6, before.state, True)
    assert [c.state for c in after.chunks] == [c.state for c in before.chunks]
    assert results.efficiency(session.dir) is not None
    for read in (batchpool.load, results.load_inputs):
        with pytest.raises(batchpool.ResultsError, match="were not kept: the map succeeded"):
            read(session.dir)
    output = tmp_path / "report.html"
    report.write(session.dir, output)
    page = output.read_text()
    assert "No task raised: the map succeeded" in page and "Ask for <code>time=" in page
    assert [row.end for row in report.job_rows(session.dir)] == [
        "exited", "lost: node failed", "at the end of the map",
    ]


def test_a_work_dir_keeps_the_newest_summaries_only(tmp_path):
    def succeeded(name):
        session = Session(tmp_path / name)
        (tmp_path / name / "results").mkdir(parents=True)
        for path in (session.paths.function, session.paths.log):
            open(path, "w").close()
        session.mark_done()
        return session

    older = succeeded("20261206T000000_aaaa")
    older.keep_summary()
    unfinished = tmp_path / "20261206T000001_bbbb"
    unfinished.mkdir()  # neither done nor a summary: never removed
    summaries = Summaries(tmp_path, limit=2)
    summaries.keep(succeeded("20261206T000002_cccc"))
    assert older.dir.exists()  # found in the work_dir, within the limit
    summaries.keep(succeeded("20261206T000003_dddd"))
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "20261206T000001_bbbb", "20261206T000002_cccc", "20261206T000003_dddd",
    ]
    assert all(Session(tmp_path / n).is_summary() for n in ("20261206T000002_cccc",))
