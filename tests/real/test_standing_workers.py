"""Claims of the standing-worker engine that only a real Slurm or SGE can show.

Jobs are standing workers that serve every map of their pool; a worker killed while
it holds a chunk loses nothing; a stopped ``slurmctld`` is waited out without deleting
a job; Ctrl-C during a status retry returns at once and leaves no job behind; a
driver killed with ``kill -9`` resumes and every task runs exactly once.

Every task leaves ``start``/``end`` lines in a file (:func:`real_tasks.record`), so
that what ran, where and when is read from the jobs themselves, and the queue is
asked with ``squeue``/``qstat`` directly.
"""

from __future__ import annotations

import collections
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import pytest
import real_tasks

from batchpool import _layout
from batchpool._layout import Ticket
from batchpool.commands import CommandPolicy
from batchpool.session import PoolDirectory, Session
from batchpool.sge import parse_qstat_xml

try:
    from helpers.pools import FAST_COMMANDS, cluster_pool, require_real
except ImportError:  # tests/conftest.py cannot be imported (run with --noconftest)
    import importlib

    import batchpool

    FAST_COMMANDS = CommandPolicy(timeout_s=30.0, num_retries=3, backoff_s=0.2)

    def cluster_pool(backend: str, **options):
        module = importlib.import_module(batchpool.BACKENDS[backend])
        if backend != "local":
            options.setdefault("command_policy", FAST_COMMANDS)
        return module.Pool(**options)

    def require_real(backend: str) -> None:
        program = "qsub" if backend == "sge" else "sbatch"
        if shutil.which(program) is None:
            pytest.skip(f"{program} is not installed: no real {backend} here")


STANDING_KINDS = [
    pytest.param("slurm.array", marks=pytest.mark.slurm),
    pytest.param("sge", marks=pytest.mark.sge),
]
TESTS_REAL = str(Path(__file__).parent)
SLURMCTLD_PID_FILE = Path("/var/spool/slurm-local/run/slurmctld.pid")
SLURM_LIVE_STATES = frozenset(("PENDING", "CONFIGURING", "RUNNING", "SUSPENDED", "STOPPED"))


# -- what the jobs left behind -------------------------------------------------------


@dataclass
class Run:
    """One execution of one task (a line pair of :func:`real_tasks.record`)."""

    index: int
    job: str
    pid: int
    start: float
    end: Optional[float] = None


def read_runs(path: Path) -> list[Run]:
    runs: dict[tuple[int, int], list[Run]] = collections.defaultdict(list)
    ordered: list[Run] = []
    if not path.exists():
        return ordered
    for line in path.read_text().splitlines():
        kind, index, job, pid, when = line.split()
        key = (int(index), int(pid))
        if kind == "start":
            run = Run(int(index), job, int(pid), float(when))
            runs[key].append(run)
            ordered.append(run)
        else:
            runs[key][-1].end = float(when)
    return ordered


def starts_per_task(runs: list[Run]) -> collections.Counter:
    return collections.Counter(run.index for run in runs)


def max_overlap(runs: list[Run]) -> int:
    """The most tasks that ran at one moment (a run that never ended counts until the end)."""
    events = []
    for run in runs:
        events.append((run.start, 1))
        events.append((run.end if run.end is not None else float("inf"), -1))
    most = current = 0
    for _, step in sorted(events):  # at equal times an end (-1) sorts before a start
        current += step
        most = max(most, current)
    return most


# -- the queue, asked directly ---------------------------------------------------------


def queue_states(backend: str, job_name: str, everything: bool = False) -> dict[str, str]:
    """Job id -> state of the jobs named ``job_name`` (Slurm: ``-t all`` with
    ``everything``; SGE shows live jobs only)."""
    if backend == "sge":
        out = _run(["qstat", "-xml"]).stdout
        return {j.job_id: j.state for j in parse_qstat_xml(out) if j.name == job_name}
    argv = ["squeue", "-h", "-r", "--name", job_name, "-o", "%i|%T"]
    out = _run([*argv, "-t", "all"] if everything else argv).stdout
    return dict(line.split("|", 1) for line in out.split())


def live(backend: str, states: dict[str, str]) -> list[str]:
    if backend == "sge":
        return [job for job, state in states.items() if "d" not in state]
    return [job for job, state in states.items() if state in SLURM_LIVE_STATES]


def _run(argv: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, check=True, timeout=60)


def final_states(job_name: str, deadline_s: float) -> dict[str, str]:
    """The Slurm states of the jobs named ``job_name`` once none is pending, running or
    completing (Slurm shows ended jobs for ``MinJobAge``)."""

    def settled() -> Optional[dict[str, str]]:
        states = queue_states("slurm", job_name, everything=True)
        busy = live("slurm", states) or "COMPLETING" in states.values()
        return states if states and not busy else None

    return wait_for(settled, deadline_s, f"the end of the jobs of {job_name}")


class QueueSampler:
    """Asks the queue every ``every_s`` for the pool's jobs: every id seen, and the most
    live (pending or running) at once."""

    def __init__(self, backend: str, work_dir: Path, every_s: float = 0.3) -> None:
        self.backend = backend
        self.work_dir = work_dir
        self.every_s = every_s
        self.seen: set[str] = set()
        self.most_live = 0
        self._stop = threading.Event()
        self._loop_thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> QueueSampler:
        self._loop_thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._loop_thread.join(timeout=30)

    def _loop(self) -> None:
        while not self._stop.wait(self.every_s):
            pools = sorted(self.work_dir.glob("pool_*")) if self.work_dir.exists() else []
            if not pools:
                continue
            try:
                states = queue_states(self.backend, PoolDirectory(pools[0]).job_name)
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
                continue  # asked again in a moment
            self.seen |= set(states)
            self.most_live = max(self.most_live, len(live(self.backend, states)))


def wait_for(find: Callable[[], object], deadline_s: float = 120.0, what: str = "it"):
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        found = find()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"{what} did not happen within {deadline_s} s")


def the_pool_dir(work_dir: Path) -> Path:
    """The pool's directory, once it is whole: the driver makes it, then its
    subdirectories, and a reader may look in between."""

    def whole() -> list[Path]:
        pools = sorted(work_dir.glob("pool_*")) if work_dir.exists() else []
        return [p for p in pools if (p / "workers").is_dir()]

    return wait_for(whole, what="a pool directory")[0]


def record_submissions(pool) -> list:
    """Every job the pool's backend submits from now on, in order."""
    jobs: list = []
    submit = pool.backend.submit

    def recording(request, cancel=None):
        new = submit(request, cancel)
        jobs.extend(new)
        return new

    pool.backend.submit = recording
    return jobs


def logging_wrapper(tmp_path: Path, program: str, fail_if: Optional[Path] = None) -> tuple:
    """A script that logs each call (time, arguments) and runs the real ``program``, or,
    once ``fail_if`` exists, fails as a scheduler command that cannot reach its daemon."""
    real = shutil.which(program)
    assert real is not None
    log = tmp_path / f"{program}.calls"
    script = tmp_path / f"{program}-wrapper"
    failing = ""
    if fail_if is not None:
        failing = textwrap.dedent(
            f"""\
            if [ -e '{fail_if}' ]; then
                echo "fail $(date +%s.%N)" >> '{log}'
                echo "{program}: error: Unable to contact slurm controller (connect failure)" >&2
                exit 1
            fi
            """
        )
    script.write_text(
        f"#!/bin/sh\necho \"call $(date +%s.%N) $*\" >> '{log}'\n{failing}exec '{real}' \"$@\"\n"
    )
    script.chmod(0o700)
    return script, log


def calls_of(log: Path, kind: str = "call") -> list[str]:
    if not log.exists():
        return []
    return [line for line in log.read_text().splitlines() if line.startswith(kind + " ")]


# -- 1. standing workers serve several maps -------------------------------------------


@pytest.mark.parametrize("backend", STANDING_KINDS)
def test_standing_workers_serve_consecutive_maps(backend, tmp_path):
    """Five maps in a row, one second apart, on a pool of at most 3 jobs: every map
    after the first runs on the jobs submitted for the first, and nothing is submitted
    after it. Jobs that ended with their map would need at least one job per map."""
    require_real(backend)
    num_maps, cap = 5, 3
    work = tmp_path / "work"
    pool = cluster_pool(
        backend, processes=cap, work_dir=work, polling_interval=0.5, lost_job_grace_period_s=2.0
    )
    submitted = record_submissions(pool)
    ran_on: list[set] = []
    with pool, QueueSampler(backend, work) as sampler:
        for m in range(num_maps):
            tasks = [(10 * m + i, 0.2) for i in range(8)]
            results = pool.map(real_tasks.square_in_job, tasks)
            assert [r for r, _ in results] == [x * x for x, _ in tasks]
            ran_on.append({job for _, job in results})
            if m == 0:
                first_jobs = {job.job_id for job in submitted}
                first_submissions = pool.statistics().num_submissions
            time.sleep(1.0)  # the script's own work between two maps (< worker_idle_s)
        submissions = pool.statistics().num_submissions
        everything = queue_states(backend, pool.statistics().job_name, everything=True)
    jobs = [job.job_id for job in submitted]
    print(f"{backend}: maps ran on {ran_on}; submitted {jobs}; queue saw {sorted(sampler.seen)}")
    assert submissions == first_submissions, "maps 2..5 asked the scheduler for new jobs"
    assert len(jobs) == len(set(jobs)) <= cap < num_maps
    for m in range(1, num_maps):
        assert ran_on[m] <= first_jobs, f"map {m} ran on jobs not submitted for map 0"
    assert set().union(*ran_on) <= set(jobs)
    assert max(sum(job in jobs_of_map for jobs_of_map in ran_on) for job in jobs) >= 2
    assert sampler.seen and sampler.seen <= set(jobs), "the queue shows jobs not submitted"
    if backend != "sge":  # Slurm keeps ended jobs for MinJobAge: every job the pool had
        assert set(everything) == set(jobs)


@pytest.mark.parametrize("backend", STANDING_KINDS)
def test_processes_caps_the_jobs_of_two_maps_in_flight(backend, tmp_path):
    """Two maps in flight on a ``processes=2`` pool: never more than 2 tasks at once
    (each worker runs its tasks in series), and never more than 2 jobs in the queue."""
    require_real(backend)
    record, work = tmp_path / "runs.log", tmp_path / "work"
    pool = cluster_pool(
        backend, processes=2, work_dir=work, polling_interval=0.5, lost_job_grace_period_s=2.0
    )
    first = [(str(record), i, 1.0) for i in range(6)]
    second = [(str(record), 100 + i, 1.0) for i in range(6)]
    with pool, QueueSampler(backend, work, every_s=0.2) as sampler:
        a = pool.map_async(real_tasks.record, first)
        b = pool.map_async(real_tasks.record, second)
        assert [r for r, _ in a.get(timeout=180)] == [i * i for _, i, _ in first]
        assert [r for r, _ in b.get(timeout=180)] == [i * i for _, i, _ in second]
    runs = read_runs(record)
    assert sorted(starts_per_task(runs).items()) == [(i, 1) for _, i, _ in first + second]
    assert all(run.end is not None for run in runs)
    print(f"{backend}: jobs {sorted({r.job for r in runs})}, most live {sampler.most_live}")
    assert max_overlap(runs) == 2  # the cap is reached and never passed
    assert 1 <= sampler.most_live <= 2


# -- 2. a worker killed while it holds a chunk ----------------------------------------


def held_chunk(pool_dir: Path, runs_path: Path) -> Optional[tuple[str, range]]:
    """A job that holds a chunk whose first task it started and has not finished: the
    pool's log says which tasks each ticket holds, the jobs' mailboxes who claimed it."""
    runs = read_runs(runs_path)
    log = _layout.RecordReader(str(pool_dir / _layout.TICKETS_FILE)).read()
    tickets = {n: Ticket.decode(n, data) for kind, n, _, data in log if kind == _layout.POSTED}
    pool = PoolDirectory(pool_dir)
    pool.read_mailboxes(os.listdir(pool_dir / _layout.WORKERS_DIR))
    for number, claim in sorted(pool.claims.items()):
        if number in pool.finished:
            continue
        tasks = range(tickets[number].start, tickets[number].stop)
        first = [r for r in runs if r.index == tasks.start and r.job == claim.job_id]
        if first and first[-1].end is None:
            return claim.job_id, tasks
    return None


@pytest.mark.parametrize("backend", STANDING_KINDS)
def test_a_worker_killed_while_holding_a_chunk_loses_nothing(backend, tmp_path):
    require_real(backend)
    record, work = tmp_path / "runs.log", tmp_path / "work"
    pool = cluster_pool(
        backend, processes=2, work_dir=work, polling_interval=0.5, lost_job_grace_period_s=1.0
    )
    tasks = [(str(record), i, 2.0) for i in range(8)]
    with pool:
        result = pool.map_async(real_tasks.record, tasks, chunksize=2)
        pool_dir = the_pool_dir(work)
        victim, killed_tasks = wait_for(
            lambda: held_chunk(pool_dir, record), what="a worker holding a chunk"
        )
        _run(["qdel", victim] if backend == "sge" else ["scancel", victim])
        results = result.get(timeout=240)
    assert [r for r, _ in results] == [i * i for _, i, _ in tasks]
    counts = starts_per_task(read_runs(record))
    print(f"{backend}: killed {victim} holding tasks {killed_tasks}; starts {dict(counts)}")
    # The task the victim was running ran again elsewhere; the tasks it had finished kept
    # its results and never ran again; every other task ran once.
    rerun = [i for i in killed_tasks if results[i][1] != victim]
    assert rerun and counts[rerun[0]] == 2
    assert sum(counts.values()) == len(tasks) + 1


# -- 3. slurmctld stopped in the middle of a map --------------------------------------

OUTAGE_S = 120.0
WATCHDOG = "import os, signal, time; time.sleep({}); os.kill({}, signal.SIGCONT)"


def archived(session: Path) -> int:
    """How many chunk results the driver has collected (``results.archive`` records)."""
    return len(Session(session).archived_results())


@pytest.mark.slurm
@pytest.mark.timeout(OUTAGE_S + 240)
def test_a_stopped_slurmctld_is_waited_out_without_deleting_jobs(tmp_path):
    require_real("slurm.array")
    controller = int(SLURMCTLD_PID_FILE.read_text().split()[0])
    record, work = tmp_path / "runs.log", tmp_path / "work"
    scancel, scancel_log = logging_wrapper(tmp_path, "scancel")
    pool = cluster_pool(
        "slurm.array",
        processes=2,
        work_dir=work,
        polling_interval=1.0,
        lost_job_grace_period_s=2.0,
        keep_work_dir=True,
        scancel_path=str(scancel),
        command_policy=CommandPolicy(timeout_s=5.0, num_retries=1, backoff_s=1.0),
    )
    tasks = [(str(record), i, 3.0) for i in range(10)]
    with pool:
        result = pool.map_async(real_tasks.record, tasks, chunksize=1)
        wait_for(lambda: len({r.job for r in read_runs(record)}) == 2, what="both workers busy")
        (session,) = [p for p in work.iterdir() if not p.name.startswith("pool_")]
        job_name = pool.statistics().job_name
        os.kill(controller, signal.SIGSTOP)
        stopped_at = time.time()
        running_at_stop = not result.ready()
        # Should this process die before the finally block, the controller still resumes.
        watchdog = subprocess.Popen(
            [sys.executable, "-c", WATCHDOG.format(OUTAGE_S + 90, controller)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            collected_at_stop = archived(session)
            time.sleep(OUTAGE_S)
            collected_before_cont = archived(session)
            outage_seen = pool.statistics().scheduler_unreachable
            done_in_outage = result.ready()
        finally:
            os.kill(controller, signal.SIGCONT)
            resumed_at = time.time()
            watchdog.kill()
            watchdog.wait()
        results = result.get(timeout=180)
        wait_for(lambda: not pool.statistics().scheduler_unreachable, 60, "the end of the outage")
        deletions = calls_of(scancel_log)
        # The pool works as before: a second map, on new jobs if the old ones idled out.
        second = pool.map(real_tasks.square_in_job, [(x, 0) for x in range(4)])
        assert [r for r, _ in second] == [0, 1, 4, 9]
        # A new job the second map no longer needs may be deleted (the pool's own tidying,
        # if a quick job took all four tasks while the other still waited in the queue).
        deleted_later = {job for line in calls_of(scancel_log) for job in line.split()[2:]}
        pool.close()
        pool.join()
    log = (session / "log.jsonl").read_text()
    print(
        f"stopped {stopped_at:.1f}..{resumed_at:.1f}: collected {collected_at_stop} -> "
        f"{collected_before_cont} chunks, map done in outage: {done_in_outage}, "
        f"{pool.statistics().num_submissions} submissions"
    )
    assert [r for r, _ in results] == [i * i for _, i, _ in tasks]
    runs = read_runs(record)
    assert sorted(starts_per_task(runs).items()) == [(i, 1) for i in range(len(tasks))]
    assert running_at_stop, "the map was over before the controller stopped"
    assert collected_before_cont > collected_at_stop, "no result was collected in the outage"
    # The workers kept taking work while the controller could not be asked: the whole
    # map (15 s of work on 2 workers) ended within the outage.
    assert done_in_outage, "the map waited for the scheduler"
    assert any(stopped_at < run.end < resumed_at for run in runs if run.end)
    assert outage_seen and "scheduler unreachable" in log
    assert deletions == [], f"jobs were deleted in the outage or as it ended: {deletions}"
    assert "deleting" not in log
    # The jobs that lived through the outage all completed: none was cancelled for it.
    states = final_states(job_name, 60)
    outage_jobs = {run.job for run in runs}
    assert {states[job] for job in outage_jobs} == {"COMPLETED"}, states
    assert not outage_jobs & deleted_later, f"{deleted_later} deleted after the outage"


# -- 4. Ctrl-C during a status retry ---------------------------------------------------

CTRL_C_DRIVER = """
import sys
sys.path.insert(0, {tests_real!r})
import real_tasks
import batchpool.slurm
from batchpool.commands import CommandPolicy

pool = batchpool.slurm.Pool(
    work_dir={work!r},
    polling_interval=0.5,
    squeue_path={squeue!r},
    command_policy=CommandPolicy(timeout_s=30.0, num_retries=4, backoff_s=30.0),
)
pool.map(real_tasks.record, [({record!r}, i, 300.0) for i in range(2)], chunksize=1)
"""


@pytest.mark.slurm
def test_ctrl_c_during_a_status_retry_returns_at_once_and_deletes_the_jobs(tmp_path):
    require_real("slurm")
    record, work, broken = tmp_path / "runs.log", tmp_path / "work", tmp_path / "broken"
    squeue, squeue_log = logging_wrapper(tmp_path, "squeue", fail_if=broken)
    script = tmp_path / "driver.py"
    script.write_text(
        CTRL_C_DRIVER.format(
            tests_real=TESTS_REAL, work=str(work), squeue=str(squeue), record=str(record)
        )
    )
    driver = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        wait_for(lambda: len(read_runs(record)) == 2, what="both tasks running")
        job_name = PoolDirectory(the_pool_dir(work)).job_name
        broken.touch()
        wait_for(lambda: calls_of(squeue_log, "fail"), 30, "a failing squeue")
        time.sleep(0.3)  # the dispatcher now waits 30 s before its next try
        driver.send_signal(signal.SIGINT)
        interrupted = time.monotonic()
        _, stderr = driver.communicate(timeout=60)
        took = time.monotonic() - interrupted
    finally:
        driver.kill()
        driver.wait()
    print(f"exited {took:.2f} s after SIGINT ({driver.returncode}), stderr: {stderr[-300:]!r}")
    assert "KeyboardInterrupt" in stderr
    assert took < 5.0, stderr
    assert len(calls_of(squeue_log, "fail")) == 1  # it was waiting to retry, not retrying
    left = live("slurm", queue_states("slurm", job_name))
    deadline = time.monotonic() + 15
    while left and time.monotonic() < deadline:
        time.sleep(0.5)
        left = live("slurm", queue_states("slurm", job_name))
    assert left == []
    states = queue_states("slurm", job_name, everything=True)
    assert len(states) == 2 and set(states.values()) <= {"CANCELLED", "COMPLETING"}, states


# -- 5. resume after kill -9 of the driver ---------------------------------------------

RESUMED_DRIVER = """
import sys
sys.path.insert(0, {tests_real!r})
import real_tasks
import batchpool.slurm.array

if __name__ == "__main__":
    tasks = [(sys.argv[2], i, 3.0) for i in range(12)]
    with batchpool.slurm.array.Pool(
        processes=3, work_dir=sys.argv[1], polling_interval=0.5, verbose=True
    ) as pool:
        results = pool.map(real_tasks.record, tasks, chunksize=1)
    print([r for r, _ in results])
"""


@pytest.mark.slurm
def test_a_driver_killed_mid_map_resumes_and_every_task_runs_once(tmp_path):
    require_real("slurm.array")
    record, work, script = tmp_path / "runs.log", tmp_path / "work", tmp_path / "driver.py"
    script.write_text(RESUMED_DRIVER.format(tests_real=TESTS_REAL))
    argv = [sys.executable, str(script), str(work), str(record)]
    first = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: len(read_runs(record)) >= 4, what="a worker's second task")
        first.send_signal(signal.SIGKILL)
    finally:
        first.kill()
        first.communicate()
    started_before = len(read_runs(record))
    (old_pool,) = [p for p in work.glob(f"pool_*_{first.pid}_*")]
    again = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == str([i * i for i in range(12)])
    counts = starts_per_task(read_runs(record))
    print(f"{started_before} tasks started before kill -9; starts {dict(counts)}")
    assert started_before < 12
    assert sorted(counts.items()) == [(i, 1) for i in range(12)]
    resumed = [line for line in again.stderr.splitlines() if " resumed " in line]
    assert resumed and "adopted_chunks=0" not in resumed[0], again.stderr
    # The dead driver's workers finished what they held and left the queue by themselves.
    old_name = PoolDirectory(old_pool).job_name
    states = final_states(old_name, 30)
    assert set(states.values()) == {"COMPLETED"}, states
