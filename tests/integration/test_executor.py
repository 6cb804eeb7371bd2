"""batchpool.Executor: the concurrent.futures surface on the pool's engine."""

from __future__ import annotations

import concurrent.futures
import threading
import time

import pytest

import batchpool
from batchpool import executor as executor_module
from batchpool.errors import RemoteTraceback
from batchpool.testing import install_dummies
from batchpool.testing.plugin import program_paths


class TaskFailure(ValueError):
    pass


def square(x):
    return x * x


def add(x, y):
    return x + y


def fail_on_three(x):
    if x == 3:
        raise TaskFailure(f"three is bad: {x}")
    return x


def slow(seconds):
    time.sleep(seconds)
    return seconds


@pytest.fixture
def local_executor(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no batchpool.toml of the repository
    monkeypatch.setenv("HOME", str(tmp_path))
    executor = batchpool.Executor(max_workers=2, backend="local", work_dir=tmp_path / "work")
    yield executor
    executor.terminate()


def count_submissions(executor) -> list:
    """Every ``backend.submit`` of the executor's pool (one per ``sbatch``), from now on."""
    calls: list = []
    submit = executor.pool.backend.submit

    def recording(request, cancel=None):
        calls.append(request)
        return submit(request, cancel)

    executor.pool.backend.submit = recording
    return calls


def test_submit_and_as_completed_give_every_result(local_executor):
    futures = {local_executor.submit(square, i): i for i in range(20)}
    done = {futures[f]: f.result() for f in concurrent.futures.as_completed(futures, timeout=120)}
    assert done == {i: i * i for i in range(20)}


def test_keyword_arguments_reach_the_function(local_executor):
    assert local_executor.submit(add, 1, y=41).result(timeout=120) == 42


def test_a_failing_task_raises_its_own_type_with_the_remote_traceback(local_executor):
    futures = [local_executor.submit(fail_on_three, i) for i in range(5)]
    concurrent.futures.wait(futures, timeout=120)
    assert [f.result() for i, f in enumerate(futures) if i != 3] == [0, 1, 2, 4]
    with pytest.raises(TaskFailure, match="three is bad") as info:
        futures[3].result()
    assert isinstance(info.value.__cause__, RemoteTraceback)
    assert "fail_on_three" in str(info.value.__cause__)
    assert isinstance(futures[3].exception(), TaskFailure)


def test_map_yields_in_order_over_several_iterables(local_executor):
    assert list(local_executor.map(add, range(10), range(100, 110), timeout=120)) == [
        100 + 2 * i for i in range(10)
    ]
    assert list(local_executor.map(square, range(7), chunksize=3)) == [i * i for i in range(7)]
    assert list(local_executor.map(square, [])) == []


def test_map_raises_the_task_error_at_its_item(local_executor):
    results = local_executor.map(fail_on_three, range(5))
    assert [next(results) for _ in range(3)] == [0, 1, 2]
    with pytest.raises(TaskFailure):
        next(results)


def test_map_timeout_raises_timeout_error(local_executor):
    results = local_executor.map(slow, [30.0], timeout=0.5)
    with pytest.raises(concurrent.futures.TimeoutError):
        next(results)


def test_map_checks_chunksize(local_executor):
    with pytest.raises(ValueError, match="chunksize"):
        local_executor.map(square, [1], chunksize=0)


def test_an_unpicklable_argument_raises_at_submit(local_executor):
    with pytest.raises(TypeError, match="pickle"):
        local_executor.submit(square, threading.Lock())


def test_submit_after_shutdown_raises(local_executor):
    local_executor.shutdown(wait=True)
    with pytest.raises(RuntimeError, match="after shutdown"):
        local_executor.submit(square, 1)
    with pytest.raises(RuntimeError, match="after shutdown"):
        local_executor.map(square, [1])


def test_shutdown_waits_for_the_submitted_calls(local_executor):
    futures = [local_executor.submit(square, i) for i in range(5)]
    local_executor.shutdown(wait=True)
    assert all(f.done() for f in futures)
    assert [f.result() for f in futures] == [0, 1, 4, 9, 16]


def test_shutdown_with_cancel_futures_cancels_what_is_still_gathered(
    local_executor, monkeypatch
):
    monkeypatch.setattr(executor_module, "GATHER_S", 60.0)
    monkeypatch.setattr(executor_module, "MAX_GATHER_S", 60.0)
    futures = [local_executor.submit(square, i) for i in range(5)]
    local_executor.shutdown(wait=True, cancel_futures=True)
    assert all(f.cancelled() for f in futures)
    assert not list((local_executor.pool.work_dir).glob("*/session.json"))


def test_a_future_cancelled_while_gathered_is_not_run(local_executor, monkeypatch):
    monkeypatch.setattr(executor_module, "GATHER_S", 0.5)
    first = local_executor.submit(square, 2)
    second = local_executor.submit(square, 3)
    assert first.cancel()
    assert second.result(timeout=120) == 9
    assert first.cancelled()


def test_submits_of_one_loop_share_one_session(tmp_path, monkeypatch):
    """Gathered submits are one call of the dispatcher: one session in the work_dir."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(executor_module, "MAX_GATHER_S", 60.0)
    monkeypatch.setattr(executor_module, "GATHER_S", 5.0)
    work = tmp_path / "work"
    with batchpool.Executor(2, backend="local", work_dir=work, keep_work_dir=True) as executor:
        futures = [executor.submit(square, i) for i in range(30)]
        assert [f.result(timeout=120) for f in futures] == [i * i for i in range(30)]
    assert len(list(work.glob("*/session.json"))) == 1


def test_hundred_submits_on_the_dummy_slurm_array_take_few_sbatch(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cluster = install_dummies(tmp_path / "dummy")
    try:
        executor = batchpool.Executor(
            backend="slurm.array",
            work_dir=tmp_path / "work",
            polling_interval=0.3,
            lost_job_grace_period_s=1.0,
            **program_paths(cluster, "slurm.array"),
        )
        with executor:
            submissions = count_submissions(executor)
            futures = [executor.submit(fail_on_three, i) for i in range(100)]
            values = {}
            for future in concurrent.futures.as_completed(futures, timeout=240):
                if future.exception() is None:
                    values[future.result()] = True
            with pytest.raises(TaskFailure):
                futures[3].result()
        assert sorted(values) == [i for i in range(100) if i != 3]
        assert 1 <= len(submissions) <= 3
    finally:
        cluster.kill_all()


def test_an_explicit_backend_object_is_used(tmp_path, monkeypatch):
    from batchpool.local import LocalBackend

    monkeypatch.chdir(tmp_path)
    with batchpool.Executor(2, backend=LocalBackend(), work_dir=tmp_path / "work") as executor:
        assert executor.pool.backend.name == "local"
        assert executor.submit(square, 5).result(timeout=120) == 25


def test_an_unknown_backend_name_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="not one of"):
        batchpool.Executor(backend="condor")


def test_max_workers_must_be_positive():
    with pytest.raises(ValueError, match="max_workers"):
        batchpool.Executor(0, backend="local")



def nap(index):
    time.sleep(0.3)
    return index


def test_the_results_of_a_map_come_one_by_one_within_their_chunks(tmp_path):
    """10 tasks in 2 chunks of 5 (1.5 s each), on 2 workers: the first result is there
    as its task ends, not when its chunk does; so is each future of ``as_completed``."""
    with batchpool.Executor(max_workers=2, backend="local", work_dir=tmp_path / "w") as pool:
        results = pool.map(nap, range(10), chunksize=5)
        assert next(results) == 0
        first_at = time.monotonic()
        assert list(results) == list(range(1, 10))
        assert time.monotonic() - first_at > 0.8  # the rest of the chunks: about 1.2 s
        futures = {pool.submit(nap, i): i for i in range(4)}
        ended = [future.result() for future in concurrent.futures.as_completed(futures)]
        assert sorted(ended) == list(range(4))
