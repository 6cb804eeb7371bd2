"""The batchpool command: status, results, clean, report, --version, and errors.

Sessions come from :class:`ScriptedDriver`, which lays a map out as the dispatcher
does, through the engine's own API, and runs its chunks with ``batchpool.worker.Worker``
in this process. The command on sessions of real maps is
``tests/integration/test_cli_on_real_maps.py``.
"""

import importlib
import importlib.metadata
import io
import json
import os
import pickle
import socket
import sys

import pytest

import batchpool
from batchpool import cli, results
from batchpool.session import Session
from helpers.command import run, without_efficiency
from helpers.scripted_driver import ScriptedDriver


def raise_it(x):
    if isinstance(x, BaseException):
        raise x
    return x


def scripted_session(work_dir, key="0123456789abcdef"):
    driver = ScriptedDriver(work_dir, raise_it, [1, {1, 2}, KeyError("nope"), 3 + 4j, 5], key=key)
    driver.post(0, range(0, 2))
    driver.run("101")
    driver.post(1, range(2, 4))
    driver.run("102", collect=False)  # the driver stopped before it collected this one
    driver.post(2, range(4, 5))
    driver.lose("103")
    driver.post(2, range(4, 5), attempt=1)
    driver.lose("104")
    driver.post(2, range(4, 5), attempt=2)
    driver.end()
    return driver


@pytest.fixture
def session(tmp_path):
    return scripted_session(tmp_path / "work").session




def test_status_of_a_session(session, capsys):
    code, out, err = run(capsys, "status", session.dir)
    assert (code, err) == (0, "")
    header, *rows, summary, logs = without_efficiency(out.splitlines())
    assert header.split() == [
        "CHUNK",
        "TASKS",
        "STATE",
        "ATTEMPTS",
        "JOB",
        "IDS",
        "FIRST",
        "FAILURE",
    ]
    assert rows[0].split() == ["0", "0-1", "done", "1", "101"]
    assert rows[1].split() == ["1", "2-3", "failed", "1", "102", "KeyError:", "'nope'"]
    assert rows[2].split() == ["2", "4", "no", "result", "3", "103,104"]
    assert summary.startswith(f"{session.name}: 3 chunks: ")
    assert "1 done, 1 failed, 1 without result" in summary
    assert "3/5 tasks done, 1 failed" in summary
    assert "2 resubmissions" in summary
    assert summary.endswith("not finished")
    (pool_dir,) = results.find_pool_dirs(session.dir.parent)
    assert logs == f"logs of its jobs: {pool_dir / 'logs'}"
    session.acquire()
    summary = without_efficiency(run(capsys, "status", session.dir)[1].splitlines())[-2]
    driver = f"driven now by process {os.getpid()} on {socket.gethostname()}"
    assert summary.endswith(f"not finished; {driver}")


def test_status_of_a_work_dir(session, tmp_path, capsys):
    finished = ScriptedDriver(tmp_path / "work", raise_it, [None], key="fedcba9876543210")
    finished.post(0, range(1))
    finished.run("201")
    finished.end(done=True)
    imap = ScriptedDriver(tmp_path / "work", raise_it, [1, 2], imap=True, key="aaaaaaaaaaaaaaaa")
    (tmp_path / "work" / "other").mkdir()
    code, out, _ = run(capsys, "status", tmp_path / "work")
    assert code == 0
    header, *rows = out.splitlines()
    assert header.split() == [
        "SESSION",
        "CREATED",
        "BACKEND",
        "FUNCTION",
        "DONE",
        "FAILED",
        "STATE",
    ]
    by_name = {row.split()[0]: row.split()[1:] for row in rows}
    common = ["2026-01-02T03:04:05", "local", "test_cli.raise_it"]
    assert by_name == {  # no pool directories, nor "other"
        session.name: [*common, "3/5", "1", "not", "finished"],
        finished.session.name: [*common, "1/1", "0", "finished"],
        imap.session.name: [*common, "0/2+", "0", "running"],  # this process holds its lock
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


def test_status_of_a_pool_directory_exits_2(session, capsys):
    (pool_dir,) = results.find_pool_dirs(session.dir.parent)
    code, out, err = run(capsys, "status", pool_dir)
    assert (code, out) == (2, "")
    assert "is a pool directory" in err and f"{pool_dir}/logs" in err


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
    assert rows[2]["traceback"].startswith("Traceback")
    assert rows[2]["traceback"].endswith("KeyError: 'nope'\n")
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


def test_results_whose_class_is_missing_here(tmp_path, capsys, monkeypatch):
    (tmp_path / "bp_missing_mod.py").write_text("class Thing:\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("bp_missing_mod")
    driver = ScriptedDriver(tmp_path / "work", lambda _: module.Thing(), [0])
    driver.post(0, range(1))
    driver.run("1")
    session = driver.end(done=True)
    del sys.modules["bp_missing_mod"]
    (tmp_path / "bp_missing_mod.py").unlink()
    importlib.invalidate_caches()
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


# -- clean ------------------------------------------------------------------------------


@pytest.fixture
def work_dir(tmp_path):
    """A finished and an unfinished session; pools whose driver (this process) is alive."""
    work = tmp_path / "work"
    ScriptedDriver(work, raise_it, [1], key="aaaaaaaaaaaaaaaa").end(done=True)
    ScriptedDriver(work, raise_it, [1], key="bbbbbbbbbbbbbbbb").end()
    (work / "mine").mkdir()
    (work / "mine" / "data.txt").write_text("keep me")
    (work / "notes.txt").write_text("keep me too")
    return work


def names(work_dir):
    """What is in ``work_dir``: sessions by key, pool directories as "pool"."""
    return sorted(
        "pool" if p.name.startswith("pool_") else p.name.rsplit("_", 1)[-1]
        for p in work_dir.iterdir()
    )


def test_clean_removes_finished_sessions_only(work_dir, capsys):
    code, out, err = run(capsys, "clean", work_dir, "--yes")
    assert code == 0
    assert "removed 1 session(s)" in out
    assert names(work_dir) == ["bbbbbbbbbbbbbbbb", "mine", "notes.txt", "pool", "pool"]
    assert err.count(f": its driver is alive (process {os.getpid()} on") == 2


def test_clean_all_removes_unfinished_sessions_too(work_dir, capsys):
    assert run(capsys, "clean", work_dir, "--yes", "--all")[0] == 0
    assert names(work_dir) == ["mine", "notes.txt", "pool", "pool"]
    assert (work_dir / "mine" / "data.txt").read_text() == "keep me"


def test_clean_keeps_a_session_that_a_live_driver_drives(work_dir, capsys):
    (driven,) = [p for p in work_dir.iterdir() if p.name.endswith("bbbbbbbbbbbbbbbb")]
    Session(driven).acquire()  # this process: alive
    code, _, err = run(capsys, "clean", work_dir, "--yes", "--all")
    assert code == 0
    assert f"keeping {driven.name}: driven by process {os.getpid()}" in err
    assert names(work_dir) == ["bbbbbbbbbbbbbbbb", "mine", "notes.txt", "pool", "pool"]


@pytest.mark.parametrize("answer, left", [("n\n", 6), ("", 6), ("y\n", 4)])
def test_clean_asks_first(work_dir, capsys, monkeypatch, answer, left):
    monkeypatch.setattr(sys, "stdin", io.StringIO(answer))
    code, out, _ = run(capsys, "clean", work_dir, "--all")
    assert "Remove these 2 session(s)? [y/N]" in out
    assert len(names(work_dir)) == left
    assert code == (0 if answer.startswith("y") else 1)


def test_clean_refuses_a_session_a_pool_and_a_missing_directory(work_dir, tmp_path, capsys):
    (session_dir,) = [p for p in work_dir.iterdir() if p.name.endswith("bbbbbbbbbbbbbbbb")]
    code, _, err = run(capsys, "clean", session_dir, "--yes", "--all")
    assert code == 2 and "is a session" in err
    assert session_dir.exists()
    pool_dir = results.find_pool_dirs(work_dir)[0]
    code, _, err = run(capsys, "clean", pool_dir, "--yes", "--all")
    assert code == 2 and "is a pool directory" in err
    assert run(capsys, "clean", tmp_path / "nowhere", "--yes")[0] == 2


# -- the rest ---------------------------------------------------------------------------


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == batchpool.__version__


def test_the_installed_version_is_the_package_version():
    assert importlib.metadata.version("batchpool") == batchpool.__version__
