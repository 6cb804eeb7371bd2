"""After the run, on real local maps: a map that ended on a task error is "failed" in
``batchpool status``; ``attach`` and ``batchpool wait`` give its recorded errors back
without running anything, and run the failed tasks again only with ``retry_failed``;
``batchpool results`` writes its tasks as JSON lines. The same on scripted sessions is
``tests/unit/test_after_the_run.py``."""

from __future__ import annotations

import collections
import json
import os
from pathlib import Path

import pytest

import batchpool
import batchpool.local
from batchpool import results
from batchpool.session import Session, SessionState
from helpers.command import run


def fails_while_flag_exists(args: tuple) -> int:
    """``(flag, markers, x)``: mark the run in ``markers``; task 2 raises while ``flag``
    exists."""
    flag, markers, x = args
    Path(markers, f"{x}.{os.getpid()}").touch(exist_ok=False)
    if x == 2 and os.path.exists(flag):
        raise FileExistsError(flag)
    return x


def runs_per_task(markers: Path) -> collections.Counter[int]:
    """How often each task ran: its markers are named ``TASK.PID``."""
    return collections.Counter(int(marker.name.split(".")[0]) for marker in markers.iterdir())


@pytest.fixture
def failed_session(tmp_path):
    flag, markers = tmp_path / "broken", tmp_path / "markers"
    flag.write_text("")
    markers.mkdir()
    tasks = [(str(flag), str(markers), x) for x in range(4)]
    with batchpool.local.Pool(2, work_dir=tmp_path / "work") as pool:
        with pytest.raises(FileExistsError):
            pool.map(fails_while_flag_exists, tasks, chunksize=1)
    (session_dir,) = results.find_sessions(tmp_path / "work")
    return session_dir, flag, markers


def test_a_map_that_ended_on_a_task_error_is_failed(failed_session, capsys):
    session_dir, _, _ = failed_session
    assert Session(session_dir).state() is SessionState.FAILED
    code, out, _ = run(capsys, "status", session_dir.parent)
    assert code == 0
    assert out.splitlines()[1].split()[-3:] == ["3/4", "1", "failed"]
    code, out, _ = run(capsys, "status", session_dir)
    (summary,) = [line for line in out.splitlines() if line.startswith(session_dir.name)]
    assert summary.endswith("3/4 tasks done, 1 failed; 0 resubmissions; failed")


def test_attach_gives_the_recorded_error_back_without_running_anything(failed_session, capsys):
    session_dir, flag, markers = failed_session
    before = runs_per_task(markers)
    with pytest.raises(FileExistsError):
        batchpool.attach(session_dir).get(timeout=60)
    assert runs_per_task(markers) == before
    assert Session(session_dir).state() is SessionState.FAILED
    flag.unlink()  # the trouble is gone, but only a retry runs the task again
    code, _, err = run(capsys, "wait", session_dir, "--timeout", "60")
    assert code == 1 and "a task raised FileExistsError" in err
    assert runs_per_task(markers) == before


def test_wait_retry_failed_runs_the_failed_task_again(failed_session, capsys):
    session_dir, flag, markers = failed_session
    flag.unlink()
    code, out, err = run(capsys, "wait", session_dir, "--retry-failed", "--timeout", "120")
    assert code == 0, err
    assert f"4 results in {session_dir}" in out
    assert runs_per_task(markers) == {0: 1, 1: 1, 2: 2, 3: 1}
    assert Session(session_dir).state() is SessionState.FINISHED
    code, out, _ = run(capsys, "results", session_dir, "--inputs")
    rows = [json.loads(line) for line in out.splitlines()]
    assert [(r["status"], r["value"], r["input"][2]) for r in rows] == [
        ("done", x, x) for x in range(4)
    ]


def test_attach_retry_failed(failed_session):
    session_dir, flag, markers = failed_session
    flag.unlink()
    attached = batchpool.attach(session_dir, retry_failed=True)
    assert attached.get(timeout=120) == [0, 1, 2, 3]
    assert runs_per_task(markers)[2] == 2
    assert Session(session_dir).is_summary()  # done, only its summary kept: as after any map
