"""batchpool.submit / batchpool.attach / ``batchpool wait`` on the dummy Slurm: the
submitting process exits with its jobs running, another one collects every result."""

from __future__ import annotations

import collections
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

import batchpool
from batchpool import _layout, cli, results
from batchpool.session import Session
from batchpool.testing import install_dummies
from batchpool.testing.plugin import program_paths

TESTS_DIR = str(Path(__file__).parent)


@pytest.fixture
def cluster(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cluster = install_dummies(tmp_path / "dummy")
    yield cluster
    cluster.kill_all()


def submit_in_a_process(
    tmp_path: Path, cluster, num_tasks: int, chunksize: int = 2, **extra
) -> tuple:
    """Run a script that submits a detached map and exits; its session, the time it
    exited, and the file the tasks record themselves in."""
    log = tmp_path / "runs.log"
    options = {
        "backend": "slurm.array",
        "work_dir": str(tmp_path / "work"),
        "polling_interval": 0.3,
        "lost_job_grace_period_s": 1.0,
        **(program_paths(cluster, "slurm.array") if cluster else {}),
        **extra,
    }
    script = textwrap.dedent(
        f"""\
        import sys
        sys.path.insert(0, {TESTS_DIR!r})
        import batchpool, detach_tasks
        tasks = [({str(log)!r}, i) for i in range({num_tasks})]
        options = {options!r}
        print(batchpool.submit(detach_tasks.record_square, tasks, {chunksize}, **options))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return Path(done.stdout.strip()), time.time(), log


def run_the_queue_until(cluster, done, deadline_s: float = 60.0) -> None:
    """Ask the dummy's ``squeue`` (which starts and ends its jobs) until ``done()``."""
    deadline = time.monotonic() + deadline_s
    while not done() and time.monotonic() < deadline:
        subprocess.run(
            [str(cluster.squeue_path)], capture_output=True, env=cluster.environment(), timeout=30
        )
        time.sleep(0.1)
    assert done(), "the detached jobs did not get there"


def runs(log: Path) -> list[tuple[int, float]]:
    lines = log.read_text().splitlines() if log.exists() else []
    return [(int(x), float(t)) for x, _, t in (line.split() for line in lines)]


def test_a_detached_map_runs_on_and_attach_collects_each_result_once(tmp_path, cluster):
    session, exited_at, log = submit_in_a_process(tmp_path, cluster, 10)
    assert results.is_session(session)
    (pool_dir,) = [session.parent / name for name in results.pools_of_session(session)]
    marker = json.loads((pool_dir / _layout.DETACHED_FILE).read_bytes())
    assert marker["backend"] == "slurm.array"
    assert marker["options"]["sbatch_path"] == str(cluster.sbatch_path)
    run_the_queue_until(cluster, lambda: len(runs(log)) == 10)  # no driver anywhere
    assert min(t for _, t in runs(log)) > exited_at  # (the dummy starts jobs when asked)
    attached = batchpool.attach(session)  # the backend and its options from the marker
    assert attached.get(timeout=120) == [i * i for i in range(10)]
    assert collections.Counter(x for x, _ in runs(log)) == {i: 1 for i in range(10)}
    assert Session(session).is_summary()  # collected: only its summary is kept, as after any map


def test_wait_collects_and_keeps_the_session_for_load(tmp_path, cluster, capsys):
    session, _, log = submit_in_a_process(tmp_path, cluster, 6)
    assert cli.main(["wait", str(session), "--timeout", "120"]) == 0
    out = capsys.readouterr().out
    assert f"6 results in {session}" in out
    assert [o.value for o in batchpool.load(session)] == [i * i for i in range(6)]
    assert collections.Counter(x for x, _ in runs(log)) == {i: 1 for i in range(6)}


def test_a_job_lost_while_detached_is_resubmitted_by_attach(tmp_path, cluster):
    """Every worker of the detached pool is cancelled: attach runs what they left."""
    session, _, log = submit_in_a_process(tmp_path, cluster, 8, processes=1)
    run_the_queue_until(cluster, lambda: bool(runs(log)))
    scancel = subprocess.run(
        [str(cluster.scancel_path), "--name", _pool_job_name(session)],
        capture_output=True,
        text=True,
        timeout=30,
        env=cluster.environment(),
    )
    assert scancel.returncode == 0, scancel.stderr
    assert batchpool.attach(session).get(timeout=120) == [i * i for i in range(8)]
    assert set(x for x, _ in runs(log)) == set(range(8))


def test_submit_refuses_what_map_refuses(tmp_path, cluster):
    with pytest.raises(ValueError, match="empty"):
        batchpool.submit(abs, [], backend="slurm.array", **program_paths(cluster, "slurm.array"))
    with pytest.raises(TypeError):
        batchpool.submit(
            lambda x: x,
            [1, threading.Lock()],
            backend="slurm.array",
            work_dir=tmp_path / "work",
            **program_paths(cluster, "slurm.array"),
        )
    assert not list((tmp_path / "work").glob("pool_*/detached"))


def test_attach_to_something_that_is_no_session(tmp_path):
    with pytest.raises(results.NotASessionError):
        batchpool.attach(tmp_path)


def _pool_job_name(session: Path) -> str:
    (name,) = results.pools_of_session(session)
    return "bp_" + name[len("pool_") :]


def test_the_workers_of_a_detached_pool_outlive_their_driver(tmp_path):
    from batchpool.session import PoolDirectory
    from batchpool.worker import Worker

    pool = PoolDirectory.create(tmp_path / "work")
    pool.write_setup(b"", 5.0, None)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # a pid that is no process any more
    beat = _layout.DriverBeat(os.uname().nodename, _layout.process_space(), gone.pid, 1)
    (pool.dir / _layout.DRIVER_FILE).write_bytes(beat.encode())
    worker = Worker(str(pool.dir), "job-1")
    assert worker._driver_gone()
    (pool.dir / _layout.DETACHED_FILE).write_bytes(b"{}")
    assert not worker._driver_gone()
    pool.stop_workers()
    worker.read_log()
    assert worker.stopped  # the log's "stop" still stops them


def test_a_local_detached_map_attached_while_workers_hold_chunks_runs_each_task_once(
    tmp_path, monkeypatch
):
    """The chunks that the detached local workers hold when ``attach`` comes are
    adopted (their processes watched by pid), not run a second time."""
    monkeypatch.chdir(tmp_path)
    session, _, log = submit_in_a_process(
        tmp_path, None, 12, chunksize=6, backend="local", processes=2, worker_idle_s=30.0
    )
    deadline = time.monotonic() + 60
    while not runs(log) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert runs(log), "the detached workers did not start"
    attached = batchpool.attach(session, lost_job_grace_period_s=0.5, keep_work_dir=True)
    assert attached.get(timeout=120) == [i * i for i in range(12)]
    assert collections.Counter(x for x, _ in runs(log)) == {i: 1 for i in range(12)}
    lines = [json.loads(line) for line in (session / "log.jsonl").read_text().splitlines()]
    (resumed,) = [line for line in lines if line["m"] == "resumed"]
    assert resumed["adopted_chunks"] >= 1, resumed
