"""The CI cluster's limits and accounting, as a real cluster's (issue 25; ci/README.md).

Slurm keeps accounts (slurmdbd) and its ``--mem`` is enforced by the kernel
(``task/cgroup``, ``ConstrainRAMSpace=yes``): a task above it ends ``OUT_OF_MEMORY`` in
``sacct``, which the pool reads; SGE kills a job whose processes together pass its
``h_vmem``. Slurm's ``sim`` partition has three nodes (``ci/cluster-sim``): a node's
failure is survived on another, which the retry asks for (``--exclude``). An SGE error
state met by every job stops the map after two of them. Short limits throughout.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import real_tasks
from test_loss_causes import lost_events, new_pool
from test_many_hosts import marks, node_states, sim_pool, starts
from test_standing_workers import read_runs, starts_per_task, wait_for

from batchpool import BrokenEnvironmentError, RetryPolicy
from helpers import cluster_sim

REPO = Path(__file__).resolve().parents[2]


def sacct(job_ids: list[str], fields: str, steps: bool = False) -> list[list[str]]:
    argv = ["sacct", "-n", "-P", *([] if steps else ["-X"]), "-j", ",".join(job_ids)]
    out = subprocess.run([*argv, "-o", fields], capture_output=True, text=True, check=True)
    return [line.split("|") for line in out.stdout.splitlines() if line]


@pytest.mark.slurm
def test_slurm_oom_is_read_from_sacct_and_retried_with_twice_the_memory(tmp_path):
    log = tmp_path / "runs"
    tasks = [(str(log), i, 300 if i == 1 else 0, 1) for i in range(3)]
    policy = RetryPolicy(max_mem="1G")
    with new_pool("slurm.array", tmp_path, processes=1, mem="200M", retry_policy=policy) as pool:
        assert [v for v, _ in pool.map(real_tasks.hog, tasks, chunksize=3)] == [0, 1, 4]
    (lost,) = lost_events(tmp_path / "work")
    assert lost["cause"] == "memory limit", lost
    # Slurm's own word (squeue shows the ended job for MinJobAge; sacct after that), not
    # a guess from slurmstepd's line in the job's stderr
    assert "state OUT_OF_MEMORY" in lost["detail"], lost
    runs = read_runs(log)
    assert starts_per_task(runs) == {0: 1, 1: 2, 2: 1}
    (killed, rerun) = [r.job for r in runs if r.index == 1]
    states = {job: state for job, state in sacct([killed, rerun], "JobID,State")}
    assert states == {killed: "OUT_OF_MEMORY", rerun: "COMPLETED"}
    (mem,) = {m for job, m in sacct([rerun], "JobID,ReqMem") if job == rerun}
    assert mem == "400M", mem  # twice the pool's 200M


@pytest.mark.sge
def test_sge_h_vmem_kill_is_a_memory_loss_retried_with_more(tmp_path):
    log = tmp_path / "runs"
    # Two processes of 150 MB each: together past h_vmem=300M (a single process past it
    # would only see its allocation fail: SGE's h_vmem is also each process's rlimit).
    tasks = [(str(log), i, 150 if i == 1 else 0, 2) for i in range(3)]
    policy = RetryPolicy(max_mem="600M")
    with new_pool(
        "sge", tmp_path, processes=1, resources=["h_vmem=300M"], retry_policy=policy
    ) as pool:
        assert [v for v, _ in pool.map(real_tasks.hog, tasks, chunksize=3)] == [0, 1, 4]
    (lost,) = lost_events(tmp_path / "work")
    assert lost["cause"] == "memory limit", lost
    assert "h_vmem=300M" in lost["detail"], lost
    assert starts_per_task(read_runs(log)) == {0: 1, 1: 2, 2: 1}


@pytest.mark.sge
def test_sge_error_state_of_every_job_is_a_broken_environment_after_two(tmp_path):
    started = time.monotonic()
    with new_pool("sge", tmp_path, processes=2, qsub_args=["-e", "/nonexistent/dir/x.err"]) as pool:
        with pytest.raises(BrokenEnvironmentError) as info:
            pool.map(abs, range(4))
        submitted = pool.statistics().num_jobs_submitted
    elapsed = time.monotonic() - started
    assert 'can\'t open output file "/nonexistent/dir/x.err"' in str(info.value)
    assert submitted <= 2, submitted
    assert elapsed < 30, elapsed


@pytest.mark.slurm
@pytest.mark.timeout(300)
def test_a_dead_nodes_chunk_reruns_on_another_node_which_excludes_it():
    """slurmd of the sim node running task 1 is SIGKILLed: once Slurm says the node
    failed (SlurmdTimeout=15 s: DOWN after ~30 s), the chunk's rest runs again in a new
    job that excludes that node, on another of the three, at once (not in the requeued
    job, which waits for its BeginTime, ~2 minutes). ``processes=2``: the requeued job
    still counts against the pool's cap. Restarting the slurmd (``ci/cluster-sim/start.sh``)
    kills the old job's processes, which ran on without it."""
    record = cluster_sim.work_dir("coherent", prefix="marks-")
    tasks = [(str(record), i, 60.0 if i == 1 else 0.0, "once") for i in range(4)]
    grace_s, poll_s = 2.0, 1.0
    pool = sim_pool(
        "slurm.array",
        "coherent",
        processes=2,
        polling_interval=poll_s,
        lost_job_grace_period_s=grace_s,
        worker_idle_s=2.0,
    )
    work = Path(pool.work_dir)
    with pool:
        result = pool.map_async(real_tasks.mark, tasks, chunksize=4)
        (_, first_job, node), *_ = wait_for(
            lambda: [m for m in marks(record) if m[0] == 1], 120, "task 1's start"
        )
        os.kill(cluster_sim.slurmd_pid(node), signal.SIGKILL)
        try:
            wait_for(lambda: node_states().get(node, "").startswith("down"), 90, f"{node} down")
            down_at = time.monotonic()
            (lost,) = wait_for(lambda: lost_events(work), 60, "the pool's seeing the loss")
            seen_s = time.monotonic() - down_at
        finally:
            restart = subprocess.run(
                ["bash", "ci/cluster-sim/start.sh"], cwd=REPO, capture_output=True, text=True
            )
            assert restart.returncode == 0, restart.stdout + restart.stderr
        assert [v for v, _, _ in result.get(120)] == [0, 1, 4, 9]
        done_s = time.monotonic() - down_at
    print(f"killed slurmd of {node}: loss seen {seen_s:.1f} s, map done {done_s:.1f} s after")
    print(f"DOWN; {lost}")
    assert lost["cause"] == "node failure", lost
    assert seen_s <= grace_s + poll_s + 1.0, seen_s  # + 1 s: sinfo's and our own polling
    assert starts(record) == {0: 1, 1: 2, 2: 1, 3: 1}
    ((_, rerun_job, rerun_node),) = [m for m in marks(record) if m[0] == 1 and m[1] != first_job]
    assert rerun_node != node
    argv = ["squeue", "-h", "-t", "all", "-j", rerun_job, "-o", "%x"]  # sacct does not keep it
    excluded = subprocess.run(argv, capture_output=True, text=True, check=True).stdout.strip()
    assert node in excluded.split(","), excluded


@pytest.mark.slurm
def test_status_shows_slurms_accounting_beside_the_workers_figures(tmp_path):
    log = tmp_path / "runs"
    with new_pool("slurm.array", tmp_path, processes=1, mem="1G") as pool:
        assert [v for v, _ in pool.map(real_tasks.hog, [(str(log), 0, 200, 1)])] == [0]
    (session,) = [p for p in (tmp_path / "work").iterdir() if not p.name.startswith("pool_")]
    (job,) = {r.job for r in read_runs(log)}
    # A step's MaxRSS is recorded when it ends: once the pool deleted its idle worker.
    wait_for(lambda: [f for f in sacct([job], "JobID,MaxRSS", steps=True) if f[1]], 30, "MaxRSS")
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    argv = [sys.executable, "-m", "batchpool", "status", str(session)]
    shown = subprocess.run(argv, capture_output=True, text=True, env=env, check=True).stdout
    print(shown)
    line = re.search(
        r"job (\S+): sacct elapsed (\d+) s, MaxRSS (\d+) MiB; worker: tasks ([\d.]+) s, "
        r"peak RSS (\d+) MiB",
        shown,
    )
    assert line, shown
    elapsed_s, sacct_mb, task_s, worker_mb = (float(line.group(i)) for i in range(2, 6))
    assert worker_mb >= 200 and abs(sacct_mb - worker_mb) <= 0.1 * worker_mb, line.group(0)
    assert task_s >= 4 and elapsed_s + 1 >= task_s, line.group(0)  # sacct: whole seconds
