"""The batchpool command: status, results, clean, report, --version, and errors."""

import io
import json
import os
import pickle
import socket
import subprocess
import sys

import pytest

import batchpool
from batchpool import cli, results
from batchpool.backend import Job
from batchpool.session import Manifest, Session


def make_session(work_dir, num_tasks=4, chunksize=2, key="0123456789abcdef"):
    session = Session.create(work_dir, key)
    num_chunks = -(-num_tasks // chunksize)
    session.write_manifest(
        Manifest(num_tasks, chunksize, num_chunks, "sge", "mod.func", "2026-01-02T03:04:05")
    )
    session.release()  # as a driver that ended leaves it
    return session


def add_result(session, chunk, envelopes):
    session.result_path(chunk).write_bytes(pickle.dumps(envelopes))
    session.collect_result(chunk)


def failed(exc):
    return (False, (pickle.dumps(exc), type(exc).__qualname__, str(exc), "Traceback: ...\n"))


def add_jobs(session, *chunk_job_ids):
    logs = session.log_dir
    session.record_jobs([Job(c, j, logs / f"{j}.out", logs / f"{j}.err") for c, j in chunk_job_ids])


@pytest.fixture
def session(tmp_path):
    session = make_session(tmp_path / "work", num_tasks=5, chunksize=2)
    add_result(session, 0, [(True, 1), (True, {1, 2})])
    add_result(session, 1, [failed(KeyError("nope")), (True, 3 + 4j)])
    add_jobs(session, (0, "101"), (1, "102"), (2, "103"), (2, "104"))
    return session


def run(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_status_of_a_session(session, capsys):
    code, out, err = run(capsys, "status", session.dir)
    assert (code, err) == (0, "")
    header, *rows, summary = out.splitlines()
    assert header.split() == [
        "CHUNK",
        "TASKS",
        "STATE",
        "RESUBMITTED",
        "JOB",
        "IDS",
        "FIRST",
        "FAILURE",
    ]
    assert rows[0].split() == ["0", "0-1", "done", "0", "101"]
    assert rows[1].split() == ["1", "2-3", "failed", "0", "102", "KeyError:", "'nope'"]
    assert rows[2].split() == ["2", "4", "no", "result", "1", "103,104"]
    assert "1 done, 1 failed, 1 without result" in summary
    assert "3/5 tasks done" in summary
    assert "1 resubmissions" in summary
    assert summary.endswith("not finished")
    session.acquire()
    summary = run(capsys, "status", session.dir)[1].splitlines()[-1]
    driver = f"driven now by process {os.getpid()} on {socket.gethostname()}"
    assert summary.endswith(f"not finished; {driver}")


def test_status_of_a_work_dir(session, tmp_path, capsys):
    finished = make_session(tmp_path / "work", num_tasks=1, chunksize=1, key="fedcba9876543210")
    add_result(finished, 0, [(True, None)])
    finished.mark_done()
    (tmp_path / "work" / "other").mkdir()
    code, out, _ = run(capsys, "status", tmp_path / "work")
    assert code == 0
    header, *rows = out.splitlines()
    assert header.split() == ["SESSION", "CREATED", "BACKEND", "FUNCTION", "DONE", "FINISHED"]
    by_name = {row.split()[0]: row.split()[1:] for row in rows}
    assert by_name == {
        session.name: ["2026-01-02T03:04:05", "sge", "mod.func", "3/5", "no"],
        finished.name: ["2026-01-02T03:04:05", "sge", "mod.func", "1/1", "yes"],
    }


@pytest.mark.parametrize("command", ["status", "results", "report"])
def test_a_path_that_is_not_a_session_exits_2(tmp_path, capsys, command):
    (tmp_path / "plain.txt").write_text("x")
    extra = [] if command == "status" else ["--output", tmp_path / "out.json"]
    if command == "report":
        extra = ["--output", tmp_path / "out.html"]
    code, out, err = run(capsys, command, tmp_path / "plain.txt", *extra)
    assert code == 2
    assert out == ""
    assert "plain.txt" in err and "not a directory" in err


def test_results_as_json(session, tmp_path, capsys):
    output = tmp_path / "out.json"
    code, out, _ = run(capsys, "results", session.dir, "--output", output)
    assert code == 0
    assert "3 done, 1 failed, 1 missing" in out
    rows = json.loads(output.read_text())
    assert [r["status"] for r in rows] == ["done", "done", "failed", "done", "missing"]
    assert rows[0]["value"] == 1
    assert rows[1]["value"] == "{1, 2}"  # not JSON: its repr
    assert rows[3]["value"] == "(3+4j)"
    assert rows[2]["exception"] == "KeyError: 'nope'"
    assert rows[2]["traceback"] == "Traceback: ...\n"
    assert rows[4] == {
        "index": 4,
        "status": "missing",
        "value": None,
        "exception": None,
        "traceback": "",
    }


def test_results_as_pickle(session, tmp_path, capsys):
    output = tmp_path / "out.pkl"
    assert run(capsys, "results", session.dir, "-o", output)[0] == 0
    rows = pickle.loads(output.read_bytes())
    assert [r["index"] for r in rows] == [0, 1, 2, 3, 4]
    assert rows[1]["value"] == {1, 2}
    assert isinstance(rows[2]["exception"], KeyError)
    assert rows[4]["status"] == "missing"


# [(True, bp_missing_mod.Thing())], written by hand: that module exists nowhere.
MISSING_CLASS_RESULT = b"\x80\x02]\x88cbp_missing_mod\nThing\n)\x81\x86a."


def test_results_whose_class_is_missing_here(tmp_path, capsys):
    session = make_session(tmp_path / "work", num_tasks=1, chunksize=1)
    session.result_path(0).write_bytes(MISSING_CLASS_RESULT)
    code, _, err = run(capsys, "results", session.dir, "-o", tmp_path / "out.pkl")
    assert code == 1
    assert "chunk 0" in err and "bp_missing_mod" in err
    assert run(capsys, "results", session.dir, "-o", tmp_path / "out.json")[0] == 0
    (row,) = json.loads((tmp_path / "out.json").read_text())
    assert row["value"] == "<unresolved bp_missing_mod.Thing>"
    code, out, _ = run(capsys, "status", session.dir)
    assert (code, out.splitlines()[1].split()[:3]) == (0, ["0", "0", "done"])


def test_results_to_an_unknown_format_exits_2(session, tmp_path, capsys):
    code, _, err = run(capsys, "results", session.dir, "-o", tmp_path / "out.csv")
    assert code == 2
    assert ".pkl or .json" in err
    assert not (tmp_path / "out.csv").exists()


@pytest.fixture
def work_dir(tmp_path):
    work = tmp_path / "work"
    finished = make_session(work, key="aaaaaaaaaaaaaaaa")
    finished.mark_done()
    make_session(work, key="bbbbbbbbbbbbbbbb")
    (work / "mine").mkdir()
    (work / "mine" / "data.txt").write_text("keep me")
    (work / "notes.txt").write_text("keep me too")
    return work


def names(work_dir):
    return sorted(p.name.rsplit("_", 1)[-1] for p in work_dir.iterdir())


def test_clean_removes_finished_sessions_only(work_dir, capsys):
    code, out, _ = run(capsys, "clean", work_dir, "--yes")
    assert code == 0
    assert "removed 1 session(s)" in out
    assert names(work_dir) == ["bbbbbbbbbbbbbbbb", "mine", "notes.txt"]


def test_clean_all_removes_unfinished_sessions_too(work_dir, capsys):
    assert run(capsys, "clean", work_dir, "--yes", "--all")[0] == 0
    assert names(work_dir) == ["mine", "notes.txt"]
    assert (work_dir / "mine" / "data.txt").read_text() == "keep me"


def test_clean_keeps_a_session_that_a_live_driver_drives(work_dir, capsys):
    (driven,) = [p for p in work_dir.iterdir() if p.name.endswith("bbbbbbbbbbbbbbbb")]
    Session(driven).acquire()  # this process: alive
    code, _, err = run(capsys, "clean", work_dir, "--yes", "--all")
    assert code == 0
    assert f"keeping {driven.name}: driven by process {os.getpid()}" in err
    assert names(work_dir) == ["bbbbbbbbbbbbbbbb", "mine", "notes.txt"]


@pytest.mark.parametrize("answer, left", [("n\n", 4), ("", 4), ("y\n", 2)])
def test_clean_asks_first(work_dir, capsys, monkeypatch, answer, left):
    monkeypatch.setattr(sys, "stdin", io.StringIO(answer))
    code, out, _ = run(capsys, "clean", work_dir, "--all")
    assert "Remove these 2 session(s)? [y/N]" in out
    assert len(names(work_dir)) == left
    assert code == (0 if answer.startswith("y") else 1)


def test_clean_refuses_a_session_and_a_missing_directory(work_dir, tmp_path, capsys):
    (session_dir,) = [p for p in work_dir.iterdir() if p.name.endswith("bbbbbbbbbbbbbbbb")]
    code, _, err = run(capsys, "clean", session_dir, "--yes", "--all")
    assert code == 2 and "is a session" in err
    assert session_dir.exists()
    assert run(capsys, "clean", tmp_path / "nowhere", "--yes")[0] == 2


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
    assert page.count("<svg") == 1 and 'class="submitted"' in page and 'class="ended"' in page
    journal = Session(real_session).journal()
    assert len(journal) == 3
    for entry in journal:
        assert f"<tr><td>{entry.chunk}</td><td>{entry.job_id}</td>" in page
    assert "3 jobs submitted" in page and "succeeded" in page


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


def test_svg_steps():
    timeline = results.Timeline(
        None,
        (
            results.TimelinePoint(0.0, 0, 0),
            results.TimelinePoint(2.0, 4, 0),
            results.TimelinePoint(4.0, 4, 4),
        ),
        0,
        "done",
    )
    svg = cli.render_svg(timeline)
    left, right = cli.SVG_MARGIN, cli.SVG_WIDTH - cli.SVG_MARGIN
    bottom, top = cli.SVG_HEIGHT - cli.SVG_MARGIN, cli.SVG_MARGIN
    mid = (left + right) / 2
    assert (
        f'class="ended" fill="none" stroke="#2ca02c" stroke-width="2" points="{left:.1f},'
        f"{bottom:.1f} {mid:.1f},{bottom:.1f} {mid:.1f},{bottom:.1f} {right:.1f},{bottom:.1f} "
        f'{right:.1f},{top:.1f}"'
    ) in svg


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == batchpool.__version__


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
