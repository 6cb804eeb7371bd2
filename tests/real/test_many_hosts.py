"""batchpool's real-tier scenarios with its jobs on *simulated compute nodes*.

The cluster simulator (``ci/cluster-sim/``, helper :mod:`helpers.cluster_sim`; ci/README.md,
"Cluster simulator") makes each job a host of its own: its own hostname, pid namespace
and mount namespace, in which the work_dir is a view with its *own* NFS-like cache of
the directory the driver sees through another view. Slurm jobs go to the partition
``sim`` (nodes ``sim1..3``); SGE and local jobs run through ``cluster_sim.python_path``,
a wrapper that makes each job a fresh node (``node-*``). Real schedulers, real faults.

Which scenario runs on which profile, and why:

===========================================  =========================================
scenario                                     profile (backend)
===========================================  =========================================
standing workers serve consecutive maps      ``nfs`` (Slurm sim, SGE), ``nfs-slow``
                                             (Slurm sim), ``nfs`` with the worker's clock
                                             +60 s and -60 s (local)
resume after ``kill -9`` of the driver       ``nfs`` (Slurm sim, SGE)
loss causes: ``scancel``/``qdel``, a          ``nfs`` (Slurm sim, SGE; a killed slurmd:
crashing task, a killed slurmd               Slurm sim only)
a driver SIGKILLed while submitting          ``nfs`` (Slurm sim, SGE)
a work_dir the jobs cannot see               ``notshared`` (Slurm sim, SGE, local)
===========================================  =========================================

``nfs`` (30 s lookup, negative-lookup and attribute caches) is the harsh everyday case,
so every scenario runs on it. ``nfs-slow`` (60 s) and the skewed clocks are about caches
and clocks, which only standing workers live long enough to meet (a worker serving
several maps reads the driver's log and heartbeat for as long as the pool lives), so
only that scenario runs with them. ``coherent`` (no caching, Lustre/GPFS-like) is what
the rest of the real tier already covers with a local work_dir.

Executions are counted from the jobs themselves: each task creates one file per start
and one per end (:func:`real_tasks.mark`) in a ``coherent`` directory (no cache, so the
driver's listing is exact), named with the host, job, pid and a nonce. Jobs submitted
are read from the pools' ``jobs.jsonl`` journals. Skipped where the simulator or the
scheduler is not running (``bash ci/cluster-sim/start.sh``).
"""

from __future__ import annotations

import collections
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import real_tasks
from test_loss_causes import lost_events
from test_standing_workers import final_states, live, wait_for
from test_submission_faults import our_jobs_after, write_wrapper

from batchpool import BrokenEnvironmentError, WorkerCrashedError
from batchpool.session import PoolDirectory
from helpers import cluster_sim
from helpers.pools import cluster_pool, require_real

TESTS_REAL = str(Path(__file__).parent)
REPO = Path(__file__).resolve().parents[2]
SIM = cluster_sim.SLURM_PARTITION


# -- setting up ------------------------------------------------------------------------


def require(backend: str) -> None:
    """Skip unless ``backend`` (``local`` needs only the wrappers) and the simulator run."""
    if backend != "local":
        require_real(backend)
    if backend.startswith("slurm"):
        cluster_sim.require_slurm()
    else:
        cluster_sim.require()


def sim_pool(backend: str, profile: str, skew_s: int = 0, **options):
    """A pool whose jobs are simulated hosts that see ``profile``'s work_dir: Slurm's
    ``sim`` partition, or (SGE, local) the ``python_path`` wrapper of ``profile``."""
    require(backend)
    options.setdefault("work_dir", cluster_sim.work_dir(profile))
    options.setdefault("keep_work_dir", True)
    if backend.startswith("slurm"):
        assert not skew_s, "a Slurm node's clock cannot be skewed here (see ci/README.md)"
        options.setdefault("partition", SIM)
    else:
        options.setdefault("python_path", cluster_sim.python_path(profile, skew_s))
    return cluster_pool(backend, **options)


def host_kind_ok(backend: str, host: str) -> bool:
    """Whether ``host`` is a simulated node of ``backend``'s kind, never this machine."""
    if host == socket.gethostname():
        return False
    if backend.startswith("slurm"):
        return host in cluster_sim.slurm_nodes()
    return host.startswith("node-")


# -- what the jobs left behind -----------------------------------------------------------


def marks(directory: Path, kind: str = "start") -> list[tuple[int, str, str]]:
    """``(index, job, host)`` of every ``kind`` (start, end) file of :func:`real_tasks.mark`."""
    found = []
    for name in os.listdir(directory):
        if name.endswith("." + kind):
            index, job, host, _, _ = name[: -len(kind) - 1].split("~")
            found.append((int(index), job, host))
    return found


def starts(directory: Path) -> dict[int, int]:
    return dict(collections.Counter(index for index, _, _ in marks(directory)))


def journal(work_dir: Path) -> list[dict]:
    """Every row of the ``jobs.jsonl`` of every pool in ``work_dir``."""
    rows = []
    for path in sorted(work_dir.glob("pool_*/jobs.jsonl")):
        rows.extend(json.loads(line) for line in path.read_text().splitlines() if line)
    return rows


def submitted_jobs(work_dir: Path) -> list[str]:
    return [job for row in journal(work_dir) if row["event"] == "submitted" for job in row["jobs"]]


def submissions(work_dir: Path) -> int:
    return sum(row["event"] == "submitting" for row in journal(work_dir))


def session_logs(work_dir: Path) -> str:
    return "".join(p.read_text() for p in sorted(work_dir.glob("*/log.jsonl")))


def worker_stderr(work_dir: Path) -> str:
    return "".join(p.read_text(errors="replace") for p in sorted(work_dir.glob("pool_*/logs/*")))


# -- 1, 2. standing workers serve consecutive maps -------------------------------------

STANDING = [
    pytest.param("slurm.array", "nfs", 0, marks=pytest.mark.slurm, id="slurm-nfs"),
    pytest.param("slurm.array", "nfs-slow", 0, marks=pytest.mark.slurm, id="slurm-nfs-slow"),
    pytest.param("sge", "nfs", 0, marks=pytest.mark.sge, id="sge-nfs"),
    pytest.param("local", "nfs", 60, id="local-nfs-skew+60"),
    pytest.param("local", "nfs", -60, id="local-nfs-skew-60"),
]


@pytest.mark.timeout(240)
@pytest.mark.parametrize("backend, profile, skew_s", STANDING)
def test_standing_workers_serve_consecutive_maps(backend, profile, skew_s):
    """Several small maps a second apart on one pool: every result right, every task run
    once, on simulated hosts, by workers that stand (the maps after the first submit
    little or nothing), and no chunk lost: no false "driver gone" from a cache or a
    skewed clock, no stale lock."""
    num_maps, processes = 6, 3
    pool = sim_pool(
        backend,
        profile,
        skew_s,
        processes=processes,
        polling_interval=0.5,
        lost_job_grace_period_s=5.0,
        worker_idle_s=15.0,
    )
    work = Path(pool.work_dir)
    record = cluster_sim.work_dir("coherent", prefix="marks-")
    hosts: set[str] = set()
    with pool:
        for m in range(num_maps):
            tasks = [(str(record), 100 * m + i, 0.2, "") for i in range(6)]
            results = pool.map(real_tasks.mark, tasks, chunksize=1)
            assert [r for r, _, _ in results] == [x * x for _, x, _, _ in tasks]
            hosts |= {host for _, host, _ in results}
            if m == 0:
                first_map_jobs = len(submitted_jobs(work))
            time.sleep(1.0)  # the script's own work between two maps (< worker_idle_s)
    jobs = submitted_jobs(work)
    expected = [100 * m + i for m in range(num_maps) for i in range(6)]
    print(f"{backend}/{profile}/{skew_s:+d}: hosts {sorted(hosts)}; jobs {jobs}")
    assert starts(record) == {x: 1 for x in expected}
    assert sorted(index for index, _, _ in marks(record, "end")) == expected
    assert hosts and all(host_kind_ok(backend, host) for host in hosts), hosts
    assert {host for _, _, host in marks(record)} == hosts
    assert 1 <= first_map_jobs <= processes
    assert len(jobs) == len(set(jobs)) <= 2 * first_map_jobs, jobs
    assert len(jobs) < num_maps, "workers that ended with their map need a job per map"
    assert lost_events(work) == []
    logs = session_logs(work)
    assert '"lost"' not in logs and "stale" not in logs, logs
    stderr = worker_stderr(work)
    assert "Traceback" not in stderr and "stale" not in stderr, stderr


# -- 3. resume after kill -9 of the driver -----------------------------------------------

RESUMED_DRIVER = """
import sys
sys.path.insert(0, {tests_real!r})
import real_tasks
import batchpool.sge, batchpool.slurm.array

if __name__ == "__main__":
    tasks = [(sys.argv[2], i, 2.0, "") for i in range(9)]
    with batchpool.{pool}(
        processes=3, work_dir=sys.argv[1], polling_interval=0.5,
        lost_job_grace_period_s=5.0, worker_idle_s=5.0, verbose=True, **{options!r}
    ) as pool:
        results = pool.map(real_tasks.mark, tasks, chunksize=1)
    print([r for r, _, _ in results])
"""

SIM_BACKENDS = [
    pytest.param("slurm", marks=pytest.mark.slurm),
    pytest.param("sge", marks=pytest.mark.sge),
]


def sim_options(backend: str, profile: str) -> dict:
    """What puts a pool's jobs on simulated nodes: Slurm's partition, else the wrapper."""
    if backend.startswith("slurm"):
        return {"partition": SIM}
    return {"python_path": cluster_sim.python_path(profile)}


@pytest.mark.timeout(300)
@pytest.mark.parametrize("backend", SIM_BACKENDS)
def test_a_driver_killed_mid_map_on_nfs_resumes_and_every_task_runs_once(backend, tmp_path):
    require(backend)
    work = cluster_sim.work_dir("nfs")
    record = cluster_sim.work_dir("coherent", prefix="marks-")
    script = tmp_path / "driver.py"
    pool = "slurm.array.Pool" if backend == "slurm" else "sge.Pool"
    options = sim_options(backend, "nfs")
    script.write_text(RESUMED_DRIVER.format(tests_real=TESTS_REAL, pool=pool, options=options))
    argv = [sys.executable, str(script), str(work), str(record)]
    first = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: len(marks(record)) >= 4, 120, "a worker's second task")
        first.send_signal(signal.SIGKILL)
    finally:
        first.kill()
        first.communicate()
    started_before = len(marks(record))
    (old_pool,) = list(work.glob(f"pool_*_{first.pid}_*"))
    again = subprocess.run(argv, capture_output=True, text=True, timeout=240)
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == str([i * i for i in range(9)])
    counts = starts(record)
    print(f"{started_before} tasks started before kill -9; starts {counts}")
    assert started_before < 9
    assert counts == {i: 1 for i in range(9)}
    assert all(host_kind_ok(backend, host) for _, _, host in marks(record))
    resumed = [line for line in again.stderr.splitlines() if " resumed " in line]
    assert resumed, again.stderr
    # The dead driver's workers finished what they held and left the queue by
    # themselves (or were deleted by the rerun); the rerun's went as it ended.
    if backend == "slurm":
        old_states = final_states(PoolDirectory(old_pool).job_name, 60)
        assert not live("slurm", old_states), old_states
    assert our_jobs_after(backend, work, deadline_s=60) == []


# -- 4. loss causes ----------------------------------------------------------------------


@pytest.mark.timeout(240)
@pytest.mark.parametrize("backend", SIM_BACKENDS)
def test_scancel_of_a_job_and_a_crashing_task_on_nfs(backend, tmp_path):
    """One map on the ``nfs`` sim nodes: the job running task 1 is deleted with
    ``scancel`` or ``qdel`` (its chunk runs again elsewhere: task 1 twice, task 0 and 2
    kept), and task 4 ends its worker with ``os._exit`` (it raises, after its retry; 3
    and 5 fine)."""
    record = cluster_sim.work_dir("coherent", prefix="marks-")
    tasks = [(str(record), i, 8.0 if i == 1 else 0.0, "exit" if i == 4 else "") for i in range(6)]
    pool = sim_pool(
        "slurm.array" if backend == "slurm" else "sge",
        "nfs",
        processes=2,
        polling_interval=1.0,
        lost_job_grace_period_s=5.0,
        worker_idle_s=3.0,
    )
    work = Path(pool.work_dir)
    results, errors, victim = [], [], None
    with pool:
        iterator = pool.imap_unordered(real_tasks.mark, tasks, chunksize=3)
        victim = wait_for(lambda: [j for i, j, _ in marks(record) if i == 1], 120, "task 1")[0]
        delete = "scancel" if backend == "slurm" else "qdel"
        subprocess.run([delete, victim], check=True, capture_output=True)
        for _ in range(len(tasks) + 1):
            try:
                results.append(next(iterator))
            except StopIteration:
                break
            except WorkerCrashedError as error:
                errors.append(error)
    causes = sorted(e["cause"] for e in lost_events(work))
    print(f"scancel {victim}; causes {causes}; starts {starts(record)}")
    assert sorted(r for r, _, _ in results) == [i * i for i in range(6) if i != 4]
    assert [e.index for e in errors] == [4]
    assert "exit code 3" in str(errors[0]) and "2 times" in str(errors[0])
    assert starts(record) == {0: 1, 1: 2, 2: 1, 3: 1, 4: 2, 5: 1}
    assert "cancelled from outside" in causes
    assert all(host_kind_ok(backend, host) for _, _, host in marks(record))
    rerun = [job for i, job, _ in marks(record) if i == 1 and job != victim]
    assert len(rerun) == 1


def node_states() -> dict[str, str]:
    out = subprocess.run(
        ["sinfo", "-h", "-N", "-p", SIM, "-o", "%N %T"], capture_output=True, text=True
    ).stdout
    return dict(line.split() for line in out.splitlines())


@pytest.mark.slurm
@pytest.mark.timeout(420)
def test_a_killed_sim_slurmd_is_a_node_failure_and_every_result_arrives_once():
    """The slurmd of the sim node whose job runs task 1 is SIGKILLed (its job runs on
    in the node, as on a real node): Slurm marks the node down after SlurmdTimeout and
    requeues the job; the pool records a node failure; the chunk's rest runs again, in
    the requeued job once Slurm lets it begin (a requeued job waits for its BeginTime,
    about two minutes: this test takes ~3 minutes, most of the file's budget).
    ``ci/cluster-sim/start.sh`` restarts the slurmd, so the later tests have 3 nodes."""
    record = cluster_sim.work_dir("coherent", prefix="marks-")
    # Task 1 outlives the node's being declared down (SlurmdTimeout=15 s); it sleeps
    # only in its first run, so its rerun is quick.
    tasks = [(str(record), i, 45.0 if i == 1 else 0.0, "once") for i in range(4)]
    pool = sim_pool(
        "slurm.array",
        "nfs",
        processes=1,
        polling_interval=1.0,
        lost_job_grace_period_s=2.0,
        worker_idle_s=2.0,
    )
    work = Path(pool.work_dir)
    with pool:
        result = pool.map_async(real_tasks.mark, tasks, chunksize=4)
        (_, _, node), *_ = wait_for(
            lambda: [m for m in marks(record) if m[0] == 1], 120, "task 1's start"
        )
        os.kill(cluster_sim.slurmd_pid(node), signal.SIGKILL)
        try:
            wait_for(lambda: lost_events(work), 120, "the pool's seeing the loss")
        finally:
            restart = subprocess.run(
                ["bash", "ci/cluster-sim/start.sh"], cwd=REPO, capture_output=True, text=True
            )
            assert restart.returncode == 0, restart.stdout + restart.stderr
            wait_for(
                lambda: node_states().get(node) in ("idle", "mixed", "allocated"),
                120,
                f"{node} up",
            )
        assert [v for v, _, _ in result.get(300)] == [0, 1, 4, 9]
    (lost,) = lost_events(work)
    print(f"killed slurmd of {node}: {lost}")
    assert lost["cause"] == "node failure", lost
    assert starts(record) == {0: 1, 1: 2, 2: 1, 3: 1}


# -- 5. a driver SIGKILLed while submitting --------------------------------------------

SUBMITTING_DRIVER = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {tests_real!r})
    import real_tasks
    import batchpool.sge, batchpool.slurm

    if __name__ == "__main__":
        work, record, program = sys.argv[1:4]
        options = {{{program_option!r}: program}} if program != "-" else {{}}
        pool = batchpool.{pool}(
            processes=4, work_dir=work, polling_interval=0.5,
            lost_job_grace_period_s=5.0, worker_idle_s=2, **options, **{options!r}
        )
        with pool:
            tasks = [(record, x, 1.0, "") for x in range(8)]
            results = pool.map(real_tasks.mark, tasks, chunksize=1)
        print([r for r, _, _ in results])
    """
)


@pytest.mark.timeout(240)
@pytest.mark.parametrize("backend", SIM_BACKENDS)
def test_a_driver_killed_while_submitting_on_nfs_leaves_no_job(backend, tmp_path):
    """``sbatch``/``qsub`` (held) went through once, then the driver was SIGKILLed before
    it heard of the job: the rerun runs every task once and no job of either driver stays."""
    require(backend)
    work = cluster_sim.work_dir("nfs")
    record = cluster_sim.work_dir("coherent", prefix="marks-")
    script = tmp_path / "driver.py"
    program = "sbatch" if backend == "slurm" else "qsub"
    script.write_text(
        SUBMITTING_DRIVER.format(
            tests_real=TESTS_REAL,
            pool="slurm.Pool" if backend == "slurm" else "sge.Pool",
            program_option=f"{program}_path",
            options=sim_options(backend, "nfs"),
        )
    )
    wrapper = write_wrapper(tmp_path, program, 1, "KILL")
    argv = [sys.executable, str(script), str(work), str(record)]
    killed = subprocess.run([*argv, str(wrapper)], capture_output=True, text=True, timeout=120)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert int((tmp_path / f"{program}-calls").read_text()) == 1
    again = subprocess.run([*argv, "-"], capture_output=True, text=True, timeout=180)
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == str([x * x for x in range(8)])
    assert starts(record) == {x: 1 for x in range(8)}
    assert all(host_kind_ok(backend, host) for _, _, host in marks(record))
    assert our_jobs_after(backend, work, deadline_s=30) == []


# -- 6. a work_dir the jobs cannot see --------------------------------------------------

NOT_SHARED = [
    pytest.param("slurm.array", marks=pytest.mark.slurm),
    pytest.param("sge", marks=pytest.mark.sge),
    pytest.param("local"),
]


@pytest.mark.timeout(150)
@pytest.mark.parametrize("backend", NOT_SHARED)
def test_a_work_dir_the_jobs_cannot_see_raises_within_one_job_lifetime(backend):
    pool = sim_pool(
        backend, "notshared", processes=3, polling_interval=1.0, lost_job_grace_period_s=2.0
    )
    work = Path(pool.work_dir)
    with pool:
        with pytest.raises(BrokenEnvironmentError) as info:
            pool.map(abs, range(6))
    text = str(info.value)
    jobs = submitted_jobs(work)
    print(f"{backend}: {submissions(work)} submissions, jobs {jobs}:\n{text}")
    assert str(work) in text
    assert "must be on a filesystem that the compute nodes share" in text
    # One job lifetime: the first jobs (at most ``processes``), none resubmitted.
    assert 1 <= len(jobs) <= 3, journal(work)
    if backend != "local":
        left = our_jobs_after(backend.split(".")[0], work, deadline_s=30)
        assert left == [], left
