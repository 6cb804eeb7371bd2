"""Jobs that fail, vanish or are killed, and scheduler commands that fail or hang, on the
dummy schedulers: each scenario survived, or ended with a clear, bounded error.

Job faults hit jobs by submission index (the cluster's first job is 0). The pools here
have ``processes=1`` where the number of submissions is asserted: one worker at a time,
so job ``N`` is the pool's ``N``-th worker. The pools come from the plugin's factory
fixtures (``dummy_slurm_pool``, ...), with a short ``polling_interval`` and grace
period: a lost job is only noticed by a status query, and these tests lose many.
"""

from __future__ import annotations

import collections
import errno

import pytest
import tasks

import batchpool
from batchpool.commands import CommandPolicy
from batchpool.testing import Fault, FaultKind, Phase, plugin

BACKENDS = ["slurm", "slurm.array", "sge"]
KILL_AFTER_S = 1.0
"""A killed worker dies this long after its job started: well inside its first task..."""
TASK_S = 2.5
"""...which takes this long (a worker starts in a few tens of milliseconds)."""


FAULT_OPTIONS = {"polling_interval": 0.2, "lost_job_grace_period_s": 0.5, "worker_idle_s": 2.0}
"""Notice lost jobs soon, and let idle workers go soon."""


@pytest.fixture
def dummy_pool(request):
    """Call as ``dummy_pool(backend, **options)``: the plugin's pool of ``backend``."""

    def make_pool(backend, **options):
        factory = request.getfixturevalue(plugin.pool_fixture_name(backend))
        return factory(**{**FAULT_OPTIONS, **options})

    return make_pool


def submissions(dummy_cluster, backend):
    return len(dummy_cluster.calls("qsub" if backend == "sge" else "sbatch"))


def left_in_queue(dummy_cluster):
    """Jobs the pool left behind: pending, in an error state, or running."""
    return [j for j in dummy_cluster.jobs() if j.phase is not Phase.ENDED]


def executions(log_path):
    """``(starts, ends)``: how often each task of :func:`tasks.logged_square` began and ended."""
    lines = log_path.read_text().split()
    pairs = list(zip(lines[::2], map(int, lines[1::2])))
    starts = collections.Counter(x for what, x in pairs if what == "start")
    ends = collections.Counter(x for what, x in pairs if what == "end")
    return starts, ends


@pytest.mark.parametrize("backend", BACKENDS)
def test_error_state_below_the_limit_is_survived(dummy_cluster, dummy_pool, backend):
    # SGE tells why a job is in Eqw; the same reason twice stops the map (next test).
    times = 1 if backend == "sge" else 2
    fault = Fault(FaultKind.ERROR_STATE, job=0, times=times, state="NODE_FAIL")
    dummy_cluster.add_fault(fault)
    with dummy_pool(backend, processes=1, max_num_resubmissions=2) as pool:
        assert pool.map(tasks.square, range(4), chunksize=1) == [0, 1, 4, 9]
    assert dummy_cluster.times_fired(fault) == times
    assert submissions(dummy_cluster, backend) == times + 1
    assert left_in_queue(dummy_cluster) == []


@pytest.mark.parametrize("backend", BACKENDS)
def test_error_state_above_the_limit_is_jobs_lost_error(dummy_cluster, dummy_pool, backend):
    fault = Fault(FaultKind.ERROR_STATE, job=0, times=10, state="NODE_FAIL")
    dummy_cluster.add_fault(fault)
    # SGE says why (qstat -j): the same reason twice is a broken environment, at once.
    expected = batchpool.BrokenEnvironmentError if backend == "sge" else batchpool.JobsLostError
    num_jobs = 2 if backend == "sge" else 3
    with dummy_pool(backend, processes=1, max_num_resubmissions=2) as pool:
        with pytest.raises(expected) as info:
            pool.map(tasks.square, range(3), chunksize=1)
    error = info.value
    assert error.session_dir is not None and error.session_dir.is_dir()
    text = str(error)
    if backend == "sge":
        assert "Jobs 1 and 2 ended before their worker took any task" in text
    else:
        assert "3 jobs in a row ended before their worker took any work" in text
    assert str(error.session_dir) in text
    assert ("NODE_FAIL" if backend != "sge" else "Eqw") in text
    assert dummy_cluster.times_fired(fault) == num_jobs  # bounded: no job after the last
    assert submissions(dummy_cluster, backend) == num_jobs
    assert left_in_queue(dummy_cluster) == []


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", [FaultKind.VANISH, FaultKind.CRASH])
def test_vanished_and_crashed_jobs_are_replaced(dummy_cluster, dummy_pool, backend, kind):
    fault = Fault(kind, job=0)  # a crash without seconds: killed as it starts
    dummy_cluster.add_fault(fault)
    with dummy_pool(backend, processes=1) as pool:
        assert pool.map(tasks.square, range(3), chunksize=1) == [0, 1, 4]
    assert dummy_cluster.times_fired(fault) == 1
    assert submissions(dummy_cluster, backend) == 2


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_worker_killed_while_it_holds_a_chunk_loses_nothing(
    dummy_cluster, dummy_pool, backend, tmp_path
):
    fault = Fault(FaultKind.CRASH, job=0, seconds=KILL_AFTER_S)
    dummy_cluster.add_fault(fault)
    log = tmp_path / "executions.log"
    arguments = [(str(log), x, TASK_S) for x in range(4)]
    with dummy_pool(backend) as pool:
        results = list(pool.imap_unordered(tasks.logged_square, arguments, chunksize=1))
    assert sorted(results) == [0, 1, 4, 9]  # each result exactly once
    starts, ends = executions(log)
    assert ends == {x: 1 for x in range(4)}
    killed = [x for x in range(4) if starts[x] == 2]
    assert len(killed) == 1, starts  # the killed worker was running a task: it ran again
    assert sum(starts.values()) == 5
    assert dummy_cluster.times_fired(fault) == 1
    killed_job = next(j for j in dummy_cluster.jobs() if j.submission == 0)
    assert (killed_job.end_state, killed_job.exit_code) == ("FAILED", 137)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_chunk_whose_workers_keep_being_killed_is_lost(
    dummy_cluster, dummy_pool, backend, tmp_path
):
    """Killed in its task each time, with the process that watches it: nothing says why
    (vanished), so the chunk is lost once the resubmissions are spent."""
    fault = Fault(FaultKind.CRASH, job=0, times=10, seconds=KILL_AFTER_S)
    dummy_cluster.add_fault(fault)
    log = tmp_path / "executions.log"
    options = {"processes": 1, "max_num_resubmissions": 1}
    with dummy_pool(backend, **options) as pool:
        with pytest.raises(batchpool.JobsLostError) as info:
            pool.map(tasks.logged_square, [(str(log), 7, TASK_S)])
    error = info.value
    text = str(error)
    assert text.count("job ") >= 2 and "in task 0" in text
    assert error.session_dir is not None and str(error.session_dir) in text
    starts, ends = executions(log)
    assert (starts, ends) == ({7: 2}, {})
    assert dummy_cluster.times_fired(fault) == 2
    assert submissions(dummy_cluster, backend) == 2
    assert left_in_queue(dummy_cluster) == []


def test_a_crash_reports_the_tail_of_stderr(dummy_cluster, dummy_pool):
    with dummy_pool("slurm", max_num_resubmissions=0) as pool:
        with pytest.raises(batchpool.WorkerCrashedError) as info:
            pool.map(tasks.noisy_then_exit, [1])
    assert "last words of task 1" in str(info.value)
    assert "last words of task 1" in info.value.__cause__.tb  # the stderr, as a traceback
    assert info.value.index == 0 and "exit code" in str(info.value)


def test_a_worker_that_claims_and_dies_during_a_status_query_is_reported(dummy_cluster, dummy_pool):
    """The pool's first ``squeue`` hangs; meanwhile the job starts, claims the chunk and
    dies (the dummy queue moves on by itself). The hanging ``squeue`` then reports the
    job FAILED: the chunk is lost *from that job*."""
    hang = Fault(FaultKind.COMMAND_HANGS, program="squeue", seconds=1.5)
    dummy_cluster.add_fault(hang)
    policy = CommandPolicy(timeout_s=10.0, num_retries=0, backoff_s=0.01)
    options = {"max_num_resubmissions": 0, "command_policy": policy}
    with dummy_pool("slurm", **options) as pool:
        result = pool.map_async(tasks.noisy_then_exit, [1])
        with pytest.raises(batchpool.WorkerCrashedError) as info:
            result.get(timeout=30)
    text = str(info.value)
    assert "job 1, worker crashed in a task, in task 0" in text and "FAILED" in text
    assert "last words of task 1" in text
    assert submissions(dummy_cluster, "slurm") == 1
    assert dummy_cluster.times_fired(hang) == 1


@pytest.mark.parametrize("backend", BACKENDS)
def test_submission_failing_transiently_is_retried(dummy_cluster, dummy_pool, backend):
    program = "qsub" if backend == "sge" else "sbatch"
    message = f"{program}: error: Socket timed out on send/recv operation"
    fault = Fault(FaultKind.COMMAND_FAILS, program=program, times=2, stderr=message)
    dummy_cluster.add_fault(fault)
    with dummy_pool(backend, processes=1) as pool:
        assert pool.map(tasks.square, range(2), chunksize=1) == [0, 1]
    assert dummy_cluster.times_fired(fault) == 2
    assert submissions(dummy_cluster, backend) == 3  # two failed tries, then the worker


@pytest.mark.parametrize("backend", BACKENDS)
def test_status_command_that_keeps_failing_is_scheduler_error(dummy_cluster, dummy_pool, backend):
    program = "qstat" if backend == "sge" else "squeue"
    dummy_cluster.add_fault(
        Fault(FaultKind.COMMAND_FAILS, program=program, times=1000, stderr="connection refused")
    )
    policy = CommandPolicy(timeout_s=5, num_retries=2, backoff_s=0.01)
    options = {"command_policy": policy, "scheduler_outage_s": 1.0}
    with dummy_pool(backend, **options) as pool:
        with pytest.raises(batchpool.SchedulerError) as info:
            pool.map(tasks.sleep_then_return, [6, 6], chunksize=1)
    error = info.value
    assert error.command[0].endswith(program)
    assert "connection refused" in error.stderr and error.returncode == 1
    assert "scheduler_outage_s=1.0" in str(error)
    assert error.session_dir is not None and str(error.session_dir) in str(error)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_hanging_command_times_out_and_is_retried(dummy_cluster, dummy_pool, backend):
    program = "qstat" if backend == "sge" else "squeue"
    fault = Fault(FaultKind.COMMAND_HANGS, program=program, times=1, seconds=30)
    dummy_cluster.add_fault(fault)
    policy = CommandPolicy(timeout_s=1.0, num_retries=2, backoff_s=0.01)
    with dummy_pool(backend, command_policy=policy) as pool:
        assert pool.map(tasks.sleep_then_return, [1, 1], chunksize=1) == [1, 1]
    assert dummy_cluster.times_fired(fault) == 1


def test_a_full_work_dir_is_reported_before_submitting(dummy_cluster, dummy_pool, monkeypatch):
    def full(path, payload):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(batchpool.session, "write_file", full)
    with dummy_pool("slurm") as pool:
        with pytest.raises(batchpool.PoolError, match="No space left.*Nothing was submitted"):
            pool.map(tasks.square, [1, 2])
    assert dummy_cluster.calls("sbatch") == []


def test_the_plugins_command_policy_is_bounded():
    policy = plugin.DUMMY_OPTIONS["command_policy"]
    worst_case_s = sum(policy.backoff_s * 2**i for i in range(policy.num_retries))
    assert worst_case_s + (1 + policy.num_retries) * policy.timeout_s < 200


def test_slurmstepd_noise_is_left_out_of_the_reported_stderr(dummy_cluster, dummy_pool):
    with dummy_pool("slurm", max_num_resubmissions=0) as pool:
        with pytest.raises(batchpool.WorkerCrashedError) as info:
            pool.map(tasks.stepd_noise_then_exit, [1])
    text = str(info.value) + info.value.__cause__.tb
    assert "real trouble in task 1" in text
    assert "Unable to create TMPDIR" not in text
