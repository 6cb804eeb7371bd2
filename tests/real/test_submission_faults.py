"""A driver that dies or is interrupted while it submits, on the real Slurm and SGE.

``sbatch``/``qsub`` are reached through a wrapper (the pool's ``*_path`` option) that
counts the calls and kills the driver, its parent, after the N-th call went through:
the job exists, but the driver never heard of it. The wrapper submits the jobs held
(as a busy cluster would keep them waiting), so that they stay in the queue unless
someone deletes them. The rerun must run every task exactly once and leave no job of
either driver in the queue.
"""

from __future__ import annotations

import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from test_real_schedulers import queued_job_ids

from batchpool.session import PoolDirectory
from helpers.pools import require_real

WRAPPER = textwrap.dedent(
    """\
    #!/bin/sh
    # {program} that signals its caller ({signal}) after call {after} went through
    count_file={count_file}
    n=$(cat "$count_file" 2>/dev/null || echo 0)
    if [ "$n" -ge {after} ]; then kill -{signal} $PPID; sleep 5; exit 1; fi
    out=$({program} {hold} "$@"); rc=$?
    echo $((n + 1)) > "$count_file"
    if [ $((n + 1)) -ge {after} ]; then kill -{signal} $PPID; sleep {linger}; fi
    printf '%s\\n' "$out"
    exit $rc
    """
)
"""With ``linger`` > 0, the answer comes only after the signal: an interrupted driver
gives up the call (kills the wrapper) without learning the job id."""

DRIVER = textwrap.dedent(
    """
    import os, sys, time
    import batchpool.{module}

    def task(args):
        markers, x = args
        open(os.path.join(markers, f"{{x}}.{{os.getpid()}}"), "w").close()
        time.sleep(1)
        return x

    if __name__ == "__main__":
        work, markers, program = sys.argv[1:4]
        options = {{"{path_option}": program}} if program != "-" else {{}}
        pool = batchpool.{module}.Pool(
            processes=4, work_dir=work, polling_interval=0.5, worker_idle_s=2, **options
        )
        with pool:
            print(pool.map(task, [(markers, x) for x in range(8)], chunksize=1))
    """
)

BACKENDS = {
    "slurm": ("slurm", "sbatch", "sbatch_path"),
    "sge": ("sge", "qsub", "qsub_path"),
}
HOLD = {"sbatch": "--hold", "qsub": "-h"}
KINDS = [
    pytest.param("slurm", marks=pytest.mark.slurm),
    pytest.param("sge", marks=pytest.mark.sge),
]


def write_wrapper(tmp_path: Path, program: str, after: int, sig: str, linger: int = 0) -> Path:
    path = tmp_path / f"{program}-wrapper"
    real = subprocess.run(["which", program], capture_output=True, text=True, check=True)
    path.write_text(
        WRAPPER.format(
            program=real.stdout.strip(),
            hold=HOLD[program],
            signal=sig,
            after=after,
            count_file=tmp_path / f"{program}-calls",
            linger=linger,
        )
    )
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def driver_argv(tmp_path: Path, backend: str, program: str) -> list[str]:
    module, _, path_option = BACKENDS[backend]
    script = tmp_path / "driver.py"
    script.write_text(DRIVER.format(module=module, path_option=path_option))
    (tmp_path / "markers").mkdir(exist_ok=True)
    return [sys.executable, str(script), str(tmp_path / "work"), str(tmp_path / "markers"), program]


def runs_per_task(markers: Path) -> dict[int, int]:
    counts: dict[int, int] = {}
    for marker in markers.iterdir():
        task = int(marker.name.split(".")[0])
        counts[task] = counts.get(task, 0) + 1
    return counts


def our_jobs(backend: str, work: Path) -> list[str]:
    """Jobs of every pool that ever was in ``work`` still in the queue."""
    names = [PoolDirectory(p).job_name for p in work.glob("pool_*")]
    return [job for name in names for job in queued_job_ids(backend, name)]


def our_jobs_after(backend: str, work: Path, deadline_s: float) -> list[str]:
    """Our jobs in the queue once jobs that were deleted or idled out had time to go."""
    deadline = time.monotonic() + deadline_s
    jobs = our_jobs(backend, work)
    while jobs and time.monotonic() < deadline:
        time.sleep(0.5)
        jobs = our_jobs(backend, work)
    return jobs


@pytest.mark.parametrize("after", [0, 1, 2, 4], ids=lambda n: f"after{n}")
@pytest.mark.parametrize("backend", KINDS)
def test_a_driver_killed_while_submitting_leaves_no_job_and_the_rerun_runs_each_task_once(
    backend, after, tmp_path
):
    require_real(backend)
    _, program, _ = BACKENDS[backend]
    wrapper = write_wrapper(tmp_path, program, after, "KILL")
    killed = subprocess.run(
        driver_argv(tmp_path, backend, str(wrapper)), capture_output=True, text=True, timeout=120
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    calls = int((tmp_path / f"{program}-calls").read_text()) if after else 0
    assert calls == after  # the driver died right after the N-th submission went through

    again = subprocess.run(
        driver_argv(tmp_path, backend, "-"), capture_output=True, text=True, timeout=300
    )
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == str(list(range(8)))
    assert runs_per_task(tmp_path / "markers") == {x: 1 for x in range(8)}
    # The dead driver's jobs were deleted by the rerun, or started, saw their driver
    # gone and ended; the rerun's own went when it ended.
    assert our_jobs_after(backend, tmp_path / "work", deadline_s=30) == []


@pytest.mark.sge
def test_sigint_to_the_driver_alone_during_a_submission_leaves_none_of_its_jobs(tmp_path):
    require_real("sge")
    # The second qsub goes through, then the driver (only it, not its process group)
    # gets SIGINT while the answer is still on its way.
    wrapper = write_wrapper(tmp_path, "qsub", 2, "INT", linger=5)
    driver = subprocess.run(
        driver_argv(tmp_path, "sge", str(wrapper)), capture_output=True, text=True, timeout=120
    )
    assert "KeyboardInterrupt" in driver.stderr, driver.stderr
    assert int((tmp_path / "qsub-calls").read_text()) == 2
    time.sleep(10)
    assert our_jobs(backend="sge", work=tmp_path / "work") == []
