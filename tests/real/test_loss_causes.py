"""Lost jobs handled by their cause, on the local pool and the real Slurm and SGE.

Every task leaves ``start``/``end`` lines in a file (:func:`real_tasks.fail_in`), so
that each scenario counts executions from the jobs themselves: every result arrives
exactly once, and a task that had finished before its job died never runs again.
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import time
from pathlib import Path

import pytest
import real_tasks
from test_standing_workers import read_runs, starts_per_task, wait_for

import batchpool
from batchpool import (
    BrokenEnvironmentError,
    RetryPolicy,
    TaskMemoryError,
    TaskTimeoutError,
    WorkerCrashedError,
)
from batchpool.slurm.squeue import node_failed
from helpers.pools import cluster_pool, require_real

ALL = [
    pytest.param("local"),
    pytest.param("slurm.array", marks=pytest.mark.slurm),
    pytest.param("sge", marks=pytest.mark.sge),
]
FAST = dict(
    polling_interval=1.0, lost_job_grace_period_s=2.0, worker_idle_s=2.0, keep_work_dir=True
)


def new_pool(backend: str, tmp_path: Path, **options):
    if backend != "local":
        require_real(backend)
    return cluster_pool(backend, work_dir=tmp_path / "work", **{**FAST, **options})


def lost_events(work_dir: Path) -> list[dict]:
    events = []
    for path in sorted(work_dir.glob("*/chunks.jsonl")):
        rows = [json.loads(line) for line in path.read_text().splitlines()]
        events.extend(row for row in rows if row["event"] == "lost")
    return events


@pytest.mark.parametrize("how", ["exit", "segfault"])
@pytest.mark.parametrize("backend", ALL)
def test_a_task_that_crashes_its_worker_raises_for_that_task_alone(backend, how, tmp_path):
    log = tmp_path / "runs"
    tasks = [(str(log), i, 0.0, how if i == 3 else "") for i in range(8)]
    results, errors = [], []
    with new_pool(backend, tmp_path, processes=2) as pool:
        iterator = pool.imap_unordered(real_tasks.fail_in, tasks, chunksize=4)
        for _ in range(len(tasks) + 1):
            try:
                results.append(next(iterator)[0])
            except StopIteration:
                break
            except WorkerCrashedError as error:
                errors.append(error)
    assert sorted(results) == [i * i for i in range(8) if i != 3]
    assert [e.index for e in errors] == [3]
    text = str(errors[0])
    assert ("exit code 3" if how == "exit" else "SIGSEGV") in text and "2 times" in text
    if how == "segfault":  # Python's own report of the crash, with the task's frame
        assert "fail_in" in errors[0].__cause__.tb
    runs = read_runs(log)
    assert starts_per_task(runs) == {i: 2 if i == 3 else 1 for i in range(8)}
    assert sorted(r.index for r in runs if r.end is not None) == [i for i in range(8) if i != 3]


@pytest.mark.timeout(150)
@pytest.mark.parametrize("backend", ALL[1:])
def test_a_crashed_worker_is_a_loss_without_waiting_for_late_results(backend, tmp_path):
    """The worker's watcher said how it died and the scheduler how the job ended: its
    chunk runs again at once, not after ``lost_job_grace_period_s`` (here longer than
    the test's timeout), which waits for results a shared filesystem shows late."""
    log = tmp_path / "runs"
    tasks = [(str(log), i, 0.0, "exit" if i == 1 else "") for i in range(3)]
    with new_pool(backend, tmp_path, processes=1, lost_job_grace_period_s=600.0) as pool:
        with pytest.raises(WorkerCrashedError) as info:
            pool.map(real_tasks.fail_in, tasks, chunksize=3)
    assert info.value.index == 1 and "2 times" in str(info.value)
    assert starts_per_task(read_runs(log)) == {0: 1, 1: 2, 2: 1}


@pytest.mark.parametrize("backend", ALL)
def test_a_worker_that_cannot_start_stops_the_map_with_its_stderr(backend, tmp_path):
    wrapper = tmp_path / "python-without-batchpool"
    wrapper.write_text(
        "#!/bin/sh\n"
        'echo "Traceback (most recent call last):" >&2\n'
        "echo \"ModuleNotFoundError: No module named 'batchpool'\" >&2\n"
        "exit 1\n"
    )
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    started = time.monotonic()
    with new_pool(backend, tmp_path, processes=4, python_path=str(wrapper)) as pool:
        with pytest.raises(BrokenEnvironmentError) as info:
            pool.map(abs, range(10))
    elapsed = time.monotonic() - started
    assert "ModuleNotFoundError: No module named 'batchpool'" in str(info.value)
    assert "python_path" in str(info.value)
    # One job lifetime (a few seconds in the queue) plus one polling interval, not a
    # resubmission cycle per job.
    assert elapsed < 45, elapsed


@pytest.mark.slurm
def test_slurm_time_limit_keeps_the_quick_tasks_and_the_long_one_raises(tmp_path):
    log = tmp_path / "runs"
    tasks = [(str(log), i, 90.0 if i == 2 else 0.0, "") for i in range(5)]
    with new_pool("slurm.array", tmp_path, processes=1, time="00:01:00") as pool:
        with pytest.raises(TaskTimeoutError) as info:
            pool.map(real_tasks.fail_in, tasks, chunksize=5)
    assert info.value.index == 2 and len(info.value.attempts) == 2
    assert "time=60s" in str(info.value)
    runs = read_runs(log)
    assert starts_per_task(runs) == {0: 1, 1: 1, 2: 2, 3: 1, 4: 1}
    lost = lost_events(tmp_path / "work")
    assert [e["cause"] for e in lost] == ["time limit", "time limit"]
    spans = [(e["start"], e["stop"]) for e in lost]
    assert spans == [(2, 5), (2, 3)]  # 0 and 1 kept; never the same chunk twice


@pytest.mark.slurm
@pytest.mark.parametrize("how", ["requeue", "requeuehold"])
def test_slurm_requeue_of_a_running_job_costs_no_resubmission(how, tmp_path):
    """``scontrol requeue`` (what preemption with ``PreemptMode=REQUEUE`` does), and
    ``requeuehold``: the job goes back to the queue held, and the pool waits for the
    hold to be released instead of going around it with a new job."""
    log = tmp_path / "runs"
    tasks = [(str(log), i, 8.0 if i == 0 else 0.0, "") for i in range(3)]
    work_dir = tmp_path / "work"
    with new_pool("slurm.array", tmp_path, processes=1, max_num_resubmissions=0) as pool:
        result = pool.map_async(real_tasks.fail_in, tasks, chunksize=3)
        first = wait_for_start(log, 0, 60)
        subprocess.run(["scontrol", how, first], check=True, capture_output=True)
        if how == "requeuehold":
            time.sleep(10)  # held: nothing runs, nothing is submitted around the hold
            assert not result.ready() and pool.statistics().num_submissions == 1
            subprocess.run(["scontrol", "release", first], check=True, capture_output=True)
        assert [v for v, _ in result.get(300)] == [0, 1, 4]
    assert [e["cause"] for e in lost_events(work_dir)] == ["preempted or requeued"]
    assert starts_per_task(read_runs(log)) == {0: 2, 1: 1, 2: 1}
    assert {r.job for r in read_runs(log)} == {first}  # the same job ran again


def test_the_history_of_a_lost_chunk_is_in_status_and_load(tmp_path):
    log = tmp_path / "runs"
    tasks = [(str(log), i, 0.0, "exit" if i == 1 else "") for i in range(3)]
    with new_pool("local", tmp_path, processes=1) as pool:
        with pytest.raises(WorkerCrashedError):
            pool.map(real_tasks.fail_in, tasks, chunksize=3)
    (session,) = [p for p in (tmp_path / "work").iterdir() if not p.name.startswith("pool_")]
    outcomes = batchpool.load(session)
    assert [o.status.value for o in outcomes] == ["done", "failed", "done"]
    assert isinstance(outcomes[1].exception, WorkerCrashedError)
    assert [len(o.losses) for o in outcomes] == [0, 2, 1]  # task 2 waited in the first chunk
    assert "worker crashed in a task, in task 1" in outcomes[1].losses[0]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(Path.cwd() / "src")]))}
    status = subprocess.run(
        [os.sys.executable, "-m", "batchpool", "status", str(session)],
        capture_output=True,
        text=True,
        env=env,
    )
    assert "worker crashed in a task" in status.stdout, status.stdout + status.stderr


def wait_for_start(log: Path, index: int, deadline_s: float = 120.0) -> str:
    """The job that started task ``index`` (its first run), once it did."""
    runs = wait_for(
        lambda: [r for r in read_runs(log) if r.index == index], deadline_s, f"task {index}'s start"
    )
    return runs[0].job


@pytest.mark.parametrize(
    "backend",
    [
        pytest.param("slurm.array", marks=pytest.mark.slurm),
        pytest.param("sge", marks=pytest.mark.sge),
    ],
)
def test_a_job_deleted_from_outside_in_a_task_keeps_what_it_finished(backend, tmp_path):
    log = tmp_path / "runs"
    tasks = [(str(log), i, 15.0 if i == 1 else 0.0, "") for i in range(3)]
    with new_pool(backend, tmp_path, processes=1) as pool:
        result = pool.map_async(real_tasks.fail_in, tasks, chunksize=3)
        job = wait_for_start(log, 1)
        program = ["qdel", job] if backend == "sge" else ["scancel", job]
        subprocess.run(program, check=True, capture_output=True)
        assert [v for v, _ in result.get(300)] == [0, 1, 4]
    assert [e["cause"] for e in lost_events(tmp_path / "work")] == ["cancelled from outside"]
    assert starts_per_task(read_runs(log)) == {0: 1, 1: 2, 2: 1}


@pytest.mark.sge
def test_sge_h_rt_exceeded_raises_task_timeout_error_for_that_task(tmp_path):
    log = tmp_path / "runs"
    tasks = [(str(log), i, 40.0 if i == 1 else 0.0, "") for i in range(3)]
    with new_pool("sge", tmp_path, processes=1, resources=["h_rt=8"]) as pool:
        with pytest.raises(TaskTimeoutError) as info:
            pool.map(real_tasks.fail_in, tasks, chunksize=3)
    assert info.value.index == 1 and "time=8s" in str(info.value)
    assert [e["cause"] for e in lost_events(tmp_path / "work")] == ["time limit"] * 2
    assert starts_per_task(read_runs(log)) == {0: 1, 1: 2, 2: 1}


@pytest.mark.slurm
def test_slurm_memory_limit_is_retried_with_more_memory(tmp_path):
    log = tmp_path / "runs"
    tasks = [(str(log), i, 400 if i == 1 else 0, "memory" if i == 1 else "") for i in range(3)]
    policy = RetryPolicy(max_mem="1G")
    with new_pool("slurm.array", tmp_path, processes=1, mem="300M", retry_policy=policy) as pool:
        assert [v for v, _ in pool.map(real_tasks.fail_in, tasks, chunksize=3)] == [0, 1, 4]
    assert [e["cause"] for e in lost_events(tmp_path / "work")] == ["memory limit"]
    assert starts_per_task(read_runs(log)) == {0: 1, 1: 2, 2: 1}


@pytest.mark.slurm
def test_slurm_memory_limit_beyond_max_mem_raises_for_that_task(tmp_path):
    log = tmp_path / "runs"
    tasks = [(str(log), i, 400 if i == 1 else 0, "memory" if i == 1 else "") for i in range(3)]
    policy = RetryPolicy(max_mem="300M")
    with new_pool("slurm.array", tmp_path, processes=1, mem="300M", retry_policy=policy) as pool:
        with pytest.raises(TaskMemoryError) as info:
            pool.map(real_tasks.fail_in, tasks, chunksize=3)
    assert info.value.index == 1 and "mem=300M" in str(info.value)
    assert starts_per_task(read_runs(log)) == {0: 1, 1: 2, 2: 1}


SLURMD_PID_FILE = Path("/var/spool/slurm-local/run/slurmd.pid")
"""Where ci/slurm/start.sh keeps slurmd's pid."""


def node_state() -> str:
    """The state of this host's node (the cluster simulator's nodes are others)."""
    argv = ["sinfo", "-h", "-N", "-n", os.uname().nodename.split(".")[0], "-o", "%T"]
    return subprocess.run(argv, capture_output=True, text=True).stdout.strip()


@pytest.mark.slurm
@pytest.mark.timeout(600)
def test_a_killed_slurmd_is_a_node_failure_and_every_result_arrives_once(tmp_path):
    """slurmd killed while a task runs: Slurm marks the node down after SlurmdTimeout
    (15 s in CI) and requeues the job; the pool records a node failure, and once slurmd
    is back (it kills the old job's processes) the rest of the chunk runs again."""
    require_real("slurm.array")
    if not SLURMD_PID_FILE.exists():
        pytest.skip("slurmd was not started by ci/slurm/start.sh")
    log = tmp_path / "runs"
    tasks = [(str(log), i, 45.0 if i == 1 else 0.0, "") for i in range(4)]
    work_dir = tmp_path / "work"
    with new_pool("slurm.array", tmp_path, processes=1) as pool:
        result = pool.map_async(real_tasks.fail_in, tasks, chunksize=4)
        wait_for_start(log, 1)
        os.kill(int(SLURMD_PID_FILE.read_text().split()[0]), 9)
        try:
            wait_for(lambda: lost_events(work_dir), 90, "the pool's seeing the loss")
        finally:
            subprocess.run(["slurmd", "-N", os.uname().nodename.split(".")[0]], check=True)
            wait_for(lambda: node_state() in ("idle", "mixed", "allocated"), 90, "node up")
        assert [v for v, _ in result.get(480)] == [0, 1, 4, 9]
    (lost,) = lost_events(work_dir)
    # The accounting's NODE_FAIL, or, where there is none, the node's state as sinfo gave
    # it: down, or not responding yet (mixed*, idle*).
    said = re.search(r"said: (?:sacct: (NODE_FAIL)|node \S+ (\S+))", lost["detail"])
    assert lost["cause"] == "node failure" and said, lost
    assert said.group(1) or node_failed(said.group(2)), lost
    assert starts_per_task(read_runs(log)) == {0: 1, 1: 2, 2: 1, 3: 1}
