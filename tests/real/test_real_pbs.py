"""batchpool.pbs on a real scheduler: Slurm's own Torque wrappers (Debian
``slurm-wlm-torque``, unpacked by ``ci/pbs/install.sh`` off PATH, where SGE's ``qsub``
is) in front of the real Slurm. The contract suite runs on them too (``real-pbs`` in
``helpers.pools.POOL_KINDS``); here: what only a real scheduler shows, through the wrappers'
own ``qsub``, ``qstat -f`` and ``qdel``."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import tasks
from test_real_schedulers import pool_job_name, wait_for

from batchpool.backend import JobRequest, JobState
from batchpool.pbs import Dialect, PbsBackend, parse_qstat_f, pbs_job_name
from helpers.pools import FAST_COMMANDS, cluster_pool, real_pbs_paths, require_real

pytestmark = pytest.mark.pbs

LIVE_STATES = ("Q", "R", "S", "E", "H", "U")


@pytest.fixture(autouse=True)
def wrappers():
    require_real("pbs")


def qstat_f() -> list:
    result = subprocess.run(
        [real_pbs_paths()["qstat_path"], "-f"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode in (0, 153), result.stderr
    return parse_qstat_f(result.stdout)


def live_jobs(job_name: str) -> list[str]:
    """The ids of this pool's jobs that ``qstat -f`` shows pending or running."""
    name = pbs_job_name(job_name)
    return [j.job_id for j in qstat_f() if j.name == name and j.state in LIVE_STATES]


def jobs_left(job_name: str, deadline_s: float = 30.0) -> list[str]:
    """This pool's live jobs once deleted ones had time to leave the queue."""
    with contextlib.suppress(AssertionError):  # still there: the caller's assertion says so
        wait_for(lambda: not live_jobs(job_name) or None, deadline_s)
    return live_jobs(job_name)


def test_the_wrappers_are_the_slurm_dialect_and_take_the_resource_options(tmp_path):
    backend = PbsBackend(
        **real_pbs_paths(), walltime="00:05:00", mem=200, ncpus=1, command_policy=FAST_COMMANDS
    )
    assert backend.dialect() is Dialect.SLURM
    (tmp_path / "logs").mkdir()
    request = JobRequest(tmp_path, "bp_pbs_resources", 1, "/bin/true", tmp_path / "logs")
    [job] = backend.submit(request)
    try:
        [entry] = [j for j in qstat_f() if j.job_id == job.job_id]
        assert entry.name == "bp_pbs_resources"
        status = wait_for(lambda: backend.status([job]).get(job.job_id))
        assert status.state in (JobState.PENDING, JobState.RUNNING, JobState.ENDED)
        detail = subprocess.run(
            [real_pbs_paths()["qstat_path"], "-f", job.job_id], capture_output=True, text=True
        ).stdout
        assert "Resource_List.walltime = 00:05:00" in detail  # one -l list: all taken
    finally:
        backend.delete([job])


def test_a_job_deleted_with_qdel_is_resubmitted(tmp_path):
    pool = cluster_pool(
        "pbs",
        **real_pbs_paths(),
        work_dir=tmp_path / "work",
        polling_interval=0.5,
        lost_job_grace_period_s=1.0,
    )
    with pool:
        result = pool.map_async(tasks.sleep_then_return, [4, 4, 4], chunksize=1)
        job_name = pool_job_name(tmp_path / "work")
        victim = wait_for(lambda: live_jobs(job_name)[:1])[0]
        qdel = subprocess.run([real_pbs_paths()["qdel_path"], victim], capture_output=True)
        assert qdel.returncode == 0, qdel
        assert result.get(timeout=180) == [4, 4, 4]


DRIVER = textwrap.dedent(
    """
    import sys
    import batchpool.pbs
    sys.path.insert(0, {tasks_dir!r})
    import tasks
    pool = batchpool.pbs.Pool(work_dir={work_dir!r}, polling_interval=0.5, verbose=True,
                              **{paths!r})
    pool.map(tasks.sleep_then_return, [300] * 3, chunksize=1)
    """
)


def test_ctrl_c_leaves_none_of_our_jobs(tmp_path):
    script, work_dir = tmp_path / "driver.py", tmp_path / "work"
    script.write_text(
        DRIVER.format(
            tasks_dir=str(Path(tasks.__file__).parent),
            work_dir=str(work_dir),
            paths=real_pbs_paths(),
        )
    )
    driver = subprocess.Popen([sys.executable, str(script)], stderr=subprocess.PIPE, text=True)
    try:
        job_name = pool_job_name(work_dir)
        wait_for(lambda: len(live_jobs(job_name)) >= 3)
        driver.send_signal(signal.SIGINT)
        _, stderr = driver.communicate(timeout=120)
    finally:
        driver.kill()
    assert "KeyboardInterrupt" in stderr
    assert jobs_left(job_name) == []


KILLED_DRIVER = textwrap.dedent(
    """
    import os, sys, time
    import batchpool.pbs

    def task(args):
        markers, x = args
        open(os.path.join(markers, f"{{x}}.{{os.getpid()}}"), "w").close()
        time.sleep(6)
        return x

    if __name__ == "__main__":
        pool = batchpool.pbs.Pool(work_dir=sys.argv[1], polling_interval=0.5, **{paths!r})
        print(pool.map(task, [(sys.argv[2], x) for x in range(4)], chunksize=1))
    """
)


def test_a_driver_killed_mid_map_resumes_and_runs_every_task_once(tmp_path):
    script, work, markers = tmp_path / "driver.py", tmp_path / "work", tmp_path / "markers"
    script.write_text(KILLED_DRIVER.format(paths=real_pbs_paths()))
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
    assert runs == ["0", "1", "2", "3"]  # exactly once
