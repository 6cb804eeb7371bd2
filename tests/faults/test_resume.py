"""Resume: the same map run again re-attaches to its unfinished session."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import batchpool
from batchpool.errors import SessionBusyError
from batchpool.session import DriverLock, Session

DRIVER = textwrap.dedent(
    """
    import os, sys, time
    import batchpool.local

    def task(args):
        markers, x = args
        marker = os.path.join(markers, f"{x}.{os.getpid()}")
        open(marker, "w").close()
        time.sleep(0.2 if x < 4 else 3)
        return x * 10

    if __name__ == "__main__":
        with batchpool.local.Pool(2, work_dir=sys.argv[1]) as pool:
            print(pool.map(task, [(sys.argv[2], x) for x in range(8)], chunksize=1))
    """
)


def sessions(work: Path) -> list[Path]:
    """The session directories in ``work`` (not the pools' queues, nor the summaries
    that successful maps keep)."""
    if not work.exists():
        return []
    return sorted(
        p for p in work.iterdir() if not p.name.startswith("pool_") and not Session(p).is_summary()
    )


def runs_per_task(markers: Path) -> dict[int, int]:
    counts: dict[int, int] = {}
    for marker in markers.iterdir():
        task = int(marker.name.split(".")[0])
        counts[task] = counts.get(task, 0) + 1
    return counts


@pytest.mark.parametrize("signal_number", [signal.SIGKILL, signal.SIGHUP])
def test_a_killed_driver_is_resumed_without_redoing_finished_tasks(tmp_path, signal_number):
    script, work, markers = tmp_path / "driver.py", tmp_path / "work", tmp_path / "markers"
    script.write_text(DRIVER)
    markers.mkdir()
    driver = subprocess.Popen([sys.executable, str(script), str(work), str(markers)])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # until the four quick tasks have results
        found = sessions(work)
        if found and len(Session(found[0]).archived_results()) >= 4:
            break
        time.sleep(0.05)
    else:
        pytest.fail("the first driver collected no results")
    driver.send_signal(signal_number)  # the ssh connection dropped, or the driver was killed
    driver.wait(timeout=30)
    (session,) = sessions(work)
    finished_before = {r.tasks.start for r in Session(session).archived_results()}
    assert len(finished_before) >= 4

    again = subprocess.run(
        [sys.executable, str(script), str(work), str(markers)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == str([x * 10 for x in range(8)])
    # Exactly once: finished tasks are kept, the chunks that the dead driver's workers
    # held are adopted (they finish them), its unclaimed tickets are withdrawn.
    assert runs_per_task(markers) == {x: 1 for x in range(8)}
    assert sessions(work) == []  # the resumed session succeeded and was removed


@pytest.mark.parametrize("keep_work_dir", [True, False])
def test_failed_tasks_run_again_on_resume_and_results_are_kept(tmp_path, keep_work_dir):
    flag = tmp_path / "broken"
    flag.write_text("")
    # Without keep_work_dir the first pool's queue is gone by the rerun: its tickets
    # are dead, not a reason to fail.
    options = dict(work_dir=tmp_path / "work", keep_work_dir=keep_work_dir)
    with batchpool.local.Pool(2, **options) as pool, pytest.raises(FileExistsError):
        pool.map(_fails_while_flag_exists, [(str(flag), x) for x in range(4)], chunksize=1)
    (session,) = sessions(tmp_path / "work")
    assert len(Session(session).archived_results()) == 4
    flag.unlink()
    with batchpool.local.Pool(2, **options) as pool:
        args = [(str(flag), x) for x in range(4)]
        assert pool.map(_fails_while_flag_exists, args, chunksize=1) == [0, 1, 2, 3]
    if keep_work_dir:
        events = Session(session).chunk_events()
        posted = [(e.start, e.stop) for e in events if e.event == "posted"]
        assert posted.count((2, 3)) == 2  # the failed task ran again
        assert all(posted.count((x, x + 1)) == 1 for x in (0, 1, 3))  # the others were kept
    else:
        assert sessions(tmp_path / "work") == []  # resumed, and done


def _fails_while_flag_exists(args):
    flag, x = args
    if x == 2 and os.path.exists(flag):
        raise FileExistsError(flag)
    return x


def test_resume_false_starts_a_new_session(tmp_path):
    options = dict(work_dir=tmp_path / "work", keep_work_dir=True, resume=False)
    for _ in range(2):
        with batchpool.local.Pool(1, **options) as pool, pytest.raises(ZeroDivisionError):
            pool.map(_reciprocal, [0])
    assert len(sessions(tmp_path / "work")) == 2


def _reciprocal(x):
    return 1 / x


def write_lock(session_dir: Path, pid: int) -> None:
    lock = dataclasses.replace(DriverLock.mine(), pid=pid)
    (session_dir / "driver.lock").write_text(json.dumps(dataclasses.asdict(lock)))


def test_a_live_driver_keeps_others_out_and_a_dead_ones_lock_is_taken_over(tmp_path):
    session = Session.create(tmp_path, "k")
    assert session.lock_holder().is_mine()  # a new session is its creator's from the start
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        write_lock(session.dir, other.pid)
        with pytest.raises(SessionBusyError, match=f"process {other.pid}"):
            Session(session.dir).acquire()
    finally:
        other.kill()
        other.wait()
    Session(session.dir).acquire()  # the holder is dead now
    assert session.lock_holder().pid == os.getpid()


def test_a_busy_session_is_a_pool_error_naming_it(tmp_path):
    options = dict(work_dir=tmp_path / "work", keep_work_dir=True)
    with batchpool.local.Pool(1, **options) as pool, pytest.raises(ZeroDivisionError):
        pool.map(_reciprocal, [0])
    (session,) = sessions(tmp_path / "work")
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        write_lock(session, sleeper.pid)
        busy = pytest.raises(batchpool.PoolError, match="driven by process")
        with batchpool.local.Pool(1, **options) as pool, busy as info:
            pool.map(_reciprocal, [0])
        assert info.value.session_dir == session
    finally:
        sleeper.kill()
        sleeper.wait()
