"""Jobs that fail, vanish or crash, and scheduler commands that fail or hang, on the
dummy schedulers: each scenario survived, or ended with a clear, bounded error."""

from __future__ import annotations

import errno

import pytest
import tasks

import batchpool
from batchpool.commands import CommandPolicy
from batchpool.testing import Fault, FaultKind, install_dummies
from conftest import FAST_COMMANDS, cluster_pool, dummy_paths

BACKENDS = ["slurm", "slurm.array", "sge"]


@pytest.fixture
def cluster(tmp_path):
    cluster = install_dummies(tmp_path / "dummy")
    yield cluster
    cluster.kill_all()


def dummy_pool(cluster, backend, tmp_path, **options):
    options = {
        "work_dir": tmp_path / "work",
        "polling_interval": 0.2,
        "lost_job_grace_period_s": 0.5,
        **dummy_paths(cluster, backend),
        **options,
    }
    return cluster_pool(backend, **options)


def submissions(cluster, backend):
    return len(cluster.calls("qsub" if backend == "sge" else "sbatch"))


@pytest.mark.parametrize("backend", BACKENDS)
def test_error_state_below_the_limit_is_survived(cluster, backend, tmp_path):
    cluster.add_fault(Fault(FaultKind.ERROR_STATE, chunk=2, times=2, state="NODE_FAIL"))
    with dummy_pool(cluster, backend, tmp_path, max_num_resubmissions=2) as pool:
        assert pool.map(tasks.square, range(4), chunksize=1) == [0, 1, 4, 9]
    first = 1 if backend == "slurm.array" else 4
    assert submissions(cluster, backend) == first + 2


@pytest.mark.parametrize("backend", BACKENDS)
def test_error_state_above_the_limit_is_jobs_lost_error(cluster, backend, tmp_path):
    cluster.add_fault(Fault(FaultKind.ERROR_STATE, chunk=1, times=5, state="NODE_FAIL"))
    with dummy_pool(cluster, backend, tmp_path, max_num_resubmissions=2) as pool:
        with pytest.raises(batchpool.JobsLostError) as info:
            pool.map(tasks.square, range(3), chunksize=1)
    error = info.value
    assert error.chunks == (1,)
    assert error.session_dir is not None and error.session_dir.is_dir()
    text = str(error)
    assert "chunk 1" in text and str(error.session_dir) in text
    assert ("NODE_FAIL" if backend != "sge" else "E") in text


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", [FaultKind.VANISH, FaultKind.CRASH])
def test_vanished_and_crashed_jobs_are_resubmitted(cluster, backend, kind, tmp_path):
    cluster.add_fault(Fault(kind, chunk=0, times=1))
    with dummy_pool(cluster, backend, tmp_path) as pool:
        assert pool.map(tasks.square, range(3), chunksize=1) == [0, 1, 4]


def test_a_crash_reports_the_tail_of_stderr(cluster, tmp_path):
    with dummy_pool(cluster, "slurm", tmp_path, max_num_resubmissions=0) as pool:
        with pytest.raises(batchpool.JobsLostError, match="stderr:") as info:
            pool.map(tasks.noisy_then_exit, [1])
    assert "last words of task 1" in str(info.value)


@pytest.mark.parametrize("backend", BACKENDS)
def test_submission_failing_transiently_is_retried(cluster, backend, tmp_path):
    program = "qsub" if backend == "sge" else "sbatch"
    message = f"{program}: error: Socket timed out on send/recv operation"
    cluster.add_fault(Fault(FaultKind.COMMAND_FAILS, program=program, times=2, stderr=message))
    with dummy_pool(cluster, backend, tmp_path) as pool:
        assert pool.map(tasks.square, range(2), chunksize=1) == [0, 1]


@pytest.mark.parametrize("backend", BACKENDS)
def test_status_command_that_keeps_failing_is_scheduler_error(cluster, backend, tmp_path):
    program = "qstat" if backend == "sge" else "squeue"
    cluster.add_fault(
        Fault(FaultKind.COMMAND_FAILS, program=program, times=100, stderr="connection refused")
    )
    policy = CommandPolicy(timeout_s=5, num_retries=2, backoff_s=0.01)
    with dummy_pool(cluster, backend, tmp_path, command_policy=policy) as pool:
        with pytest.raises(batchpool.SchedulerError) as info:
            pool.map(tasks.sleep_then_return, [2, 2], chunksize=1)
    error = info.value
    assert error.command[0].endswith(program)
    assert "connection refused" in error.stderr and error.returncode == 1
    assert error.session_dir is not None and str(error.session_dir) in str(error)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_hanging_command_times_out_and_is_retried(cluster, backend, tmp_path):
    program = "qstat" if backend == "sge" else "squeue"
    cluster.add_fault(Fault(FaultKind.COMMAND_HANGS, program=program, times=1, seconds=30))
    policy = CommandPolicy(timeout_s=1.0, num_retries=2, backoff_s=0.01)
    with dummy_pool(cluster, backend, tmp_path, command_policy=policy) as pool:
        assert pool.map(tasks.sleep_then_return, [1, 1], chunksize=1) == [1, 1]


def test_a_full_work_dir_is_reported_before_submitting(cluster, tmp_path, monkeypatch):
    def full(path, payload):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(batchpool.session, "write_file", full)
    with dummy_pool(cluster, "slurm", tmp_path) as pool:
        with pytest.raises(batchpool.PoolError, match="No space left.*Nothing was submitted"):
            pool.map(tasks.square, [1, 2])
    assert cluster.calls("sbatch") == []


def test_fast_commands_policy_is_bounded():
    worst_case_s = sum(FAST_COMMANDS.backoff_s * 2**i for i in range(FAST_COMMANDS.num_retries))
    assert worst_case_s + (1 + FAST_COMMANDS.num_retries) * FAST_COMMANDS.timeout_s < 200


def test_slurmstepd_noise_is_left_out_of_the_reported_stderr(cluster, tmp_path):
    with dummy_pool(cluster, "slurm", tmp_path, max_num_resubmissions=0) as pool:
        with pytest.raises(batchpool.JobsLostError) as info:
            pool.map(tasks.stepd_noise_then_exit, [1])
    text = str(info.value)
    assert "real trouble in task 1" in text
    assert "Unable to create TMPDIR" not in text
