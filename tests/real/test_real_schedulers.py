"""What only a real scheduler can show: jobs deleted behind the pool's back, Ctrl-C,
and maps larger than ``MaxArraySize``. The contract suite itself runs against the
real schedulers through ``helpers.pools.POOL_KINDS``."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
import tasks

import batchpool
from helpers.pools import cluster_pool, require_real

SLURM_KINDS = [
    pytest.param("slurm", marks=pytest.mark.slurm),
    pytest.param("slurm.array", marks=pytest.mark.slurm),
]
ALL_KINDS = [*SLURM_KINDS, pytest.param("sge", marks=pytest.mark.sge)]


def queued_job_ids(backend: str, job_name: str) -> list[str]:
    """This session's jobs that are pending or running, asked of the scheduler itself."""
    if backend == "sge":
        out = subprocess.run(["qstat", "-xml"], capture_output=True, text=True, check=True).stdout
        import qstat

        queue, pending = qstat._tools.xml2queue_and_job_info(out)
        return [j["JB_job_number"] for j in queue + pending if j["JB_name"] == job_name]
    out = subprocess.run(
        ["squeue", "-h", "-r", "--name", job_name, "-o", "%i"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return out.split()


def delete_behind_the_back(backend: str, job_id: str) -> None:
    program = ["qdel", job_id] if backend == "sge" else ["scancel", job_id]
    subprocess.run(program, capture_output=True, check=True)


def pool_job_name(work_dir: Path, deadline_s: float = 60.0) -> str:
    """The job name of the pool whose queue is in ``work_dir``."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        pools = list(work_dir.glob("pool_*")) if work_dir.exists() else []
        if pools:
            return batchpool.session.PoolDirectory(pools[0]).job_name
        time.sleep(0.1)
    raise AssertionError(f"no pool directory appeared in {work_dir}")


def wait_for_jobs(backend: str, job_name: str, count: int, deadline_s: float = 60.0) -> list:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        ids = queued_job_ids(backend, job_name)
        if len(ids) >= count:
            return ids
        time.sleep(0.2)
    raise AssertionError(f"fewer than {count} jobs of {job_name} appeared")


def jobs_left_after(backend: str, job_name: str, deadline_s: float = 30.0) -> list:
    """The session's jobs still queued once deleted ones had time to leave (``dr``,
    ``COMPLETING``)."""
    deadline = time.monotonic() + deadline_s
    ids = queued_job_ids(backend, job_name)
    while ids and time.monotonic() < deadline:
        time.sleep(0.5)
        ids = queued_job_ids(backend, job_name)
    return ids


@pytest.mark.parametrize("backend", ALL_KINDS)
def test_job_deleted_behind_the_pools_back_is_resubmitted(backend, tmp_path):
    require_real(backend)
    pool = cluster_pool(
        backend, work_dir=tmp_path / "work", polling_interval=0.5, lost_job_grace_period_s=1.0
    )
    with pool:
        result = pool.map_async(tasks.sleep_then_return, [4, 4, 4], chunksize=1)
        job_name = pool_job_name(tmp_path / "work")
        victim = wait_for_jobs(backend, job_name, 3)[0]
        delete_behind_the_back(backend, victim)
        assert result.get(timeout=300) == [4, 4, 4]


DRIVER = textwrap.dedent(
    """
    import sys, time
    import batchpool.{module}
    sys.path.insert(0, {tasks_dir!r})
    import tasks
    pool = batchpool.{module}.Pool(work_dir={work_dir!r}, polling_interval=0.5, verbose=True)
    pool.map(tasks.sleep_then_return, [300] * 4, chunksize=1)
    """
)


@pytest.mark.parametrize("backend", ALL_KINDS)
def test_ctrl_c_leaves_no_job_in_the_queue(backend, tmp_path):
    require_real(backend)
    script = tmp_path / "driver.py"
    work_dir = tmp_path / "work"
    script.write_text(
        DRIVER.format(
            module=batchpool.BACKENDS[backend].removeprefix("batchpool."),
            tasks_dir=str(Path(tasks.__file__).parent),
            work_dir=str(work_dir),
        )
    )
    driver = subprocess.Popen([sys.executable, str(script)], stderr=subprocess.PIPE, text=True)
    try:
        job_name = pool_job_name(work_dir)
        wait_for_jobs(backend, job_name, 4)
        driver.send_signal(signal.SIGINT)
        _, stderr = driver.communicate(timeout=120)
    finally:
        driver.kill()
    assert "KeyboardInterrupt" in stderr
    assert jobs_left_after(backend, job_name) == []


@pytest.mark.slurm
def test_array_map_larger_than_max_array_size_completes(tmp_path):
    require_real("slurm.array")
    pool = cluster_pool("slurm.array", work_dir=tmp_path / "work", polling_interval=1.0)
    max_array_size = pool.backend.max_jobs_per_submit()
    num_tasks = max_array_size + 20
    with pool:
        assert pool.map(tasks.square, range(num_tasks), chunksize=1) == [
            x * x for x in range(num_tasks)
        ]


@pytest.mark.parametrize("backend", ALL_KINDS)
def test_terminate_deletes_the_jobs(backend, tmp_path):
    require_real(backend)
    pool = cluster_pool(backend, work_dir=tmp_path / "work", polling_interval=0.5)
    result = pool.map_async(tasks.sleep_then_return, [300, 300], chunksize=1)
    job_name = pool_job_name(tmp_path / "work")
    wait_for_jobs(backend, job_name, 2)
    stopper = threading.Thread(target=pool.terminate)
    stopper.start()
    stopper.join(timeout=120)
    with pytest.raises(batchpool.PoolError, match="terminated"):
        result.get(timeout=60)
    assert jobs_left_after(backend, job_name) == []


@pytest.mark.parametrize("backend", ALL_KINDS)
def test_the_schedulers_output_files_are_private(backend, tmp_path):
    require_real(backend)
    pool = cluster_pool(backend, work_dir=tmp_path / "work", polling_interval=0.5)
    with pool:
        result = pool.map_async(tasks.sleep_then_return, [3, 3], chunksize=1)
        (pool_dir,) = wait_for(lambda: list((tmp_path / "work").glob("pool_*")))
        logs = wait_for(lambda: sorted((pool_dir / "logs").glob("*")))
        modes = {path.name: oct(path.stat().st_mode & 0o777) for path in logs}  # jobs run
        assert result.get(timeout=120) == [3, 3]
    assert modes and set(modes.values()) == {"0o600"}, modes


def wait_for(find, deadline_s: float = 60.0):
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        found = find()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError("nothing appeared")


KILLED_DRIVER = textwrap.dedent(
    """
    import os, sys, time
    import batchpool.slurm.array

    def task(args):
        markers, x = args
        open(os.path.join(markers, f"{x}.{os.getpid()}"), "w").close()
        time.sleep(6)
        return x

    if __name__ == "__main__":
        pool = batchpool.slurm.array.Pool(work_dir=sys.argv[1], polling_interval=0.5)
        print(pool.map(task, [(sys.argv[2], x) for x in range(4)], chunksize=1))
    """
)


@pytest.mark.slurm
def test_a_driver_killed_mid_map_resumes_and_running_tasks_run_once(tmp_path):
    require_real("slurm.array")
    script, work, markers = tmp_path / "driver.py", tmp_path / "work", tmp_path / "markers"
    script.write_text(KILLED_DRIVER)
    markers.mkdir()
    argv = [sys.executable, str(script), str(work), str(markers)]
    driver = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    started = wait_for(lambda: sorted(p.name.split(".")[0] for p in markers.iterdir()))
    driver.send_signal(signal.SIGKILL)
    driver.wait(timeout=30)
    again = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == "[0, 1, 2, 3]"
    runs = sorted(p.name.split(".")[0] for p in markers.iterdir())
    assert started  # the first driver died with tasks running
    # Exactly once: the chunks the dead driver's workers held were adopted (they finished
    # them), its unclaimed tickets withdrawn.
    assert runs == ["0", "1", "2", "3"]
