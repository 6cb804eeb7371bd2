"""Detach on the real Slurm: the submitting process exits, its jobs run on by
themselves, and a new process collects every result exactly once."""

from __future__ import annotations

import collections
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import batchpool
from batchpool import results

try:
    from helpers.pools import require_real
except ImportError:  # run with --noconftest
    import shutil

    def require_real(backend: str) -> None:
        if shutil.which("sbatch") is None:
            pytest.skip("sbatch is not installed: no real Slurm here")

TESTS_REAL = str(Path(__file__).parent)
NUM_TASKS = 12


def runs(log: Path) -> list[tuple[int, str, float]]:
    lines = log.read_text().splitlines() if log.exists() else []
    return [(int(x), job, float(t)) for x, job, t in (line.split() for line in lines)]


@pytest.mark.slurm
def test_the_submitter_exits_and_a_new_process_collects_every_result_once(tmp_path):
    require_real("slurm.array")
    log, work = tmp_path / "runs.log", tmp_path / "work"
    script = textwrap.dedent(
        f"""\
        import os, sys
        sys.path.insert(0, {TESTS_REAL!r})
        import batchpool, executor_tasks
        tasks = [({str(log)!r}, i) for i in range({NUM_TASKS})]
        session = batchpool.submit(
            executor_tasks.record_square, tasks, chunksize=2, backend="slurm.array",
            work_dir={str(work)!r}, processes=3, worker_idle_s=20.0,
        )
        print(session, os.getpid())
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    exited_at = time.time()
    assert done.returncode == 0, done.stderr
    session_text, submitter_pid = done.stdout.split()
    session = Path(session_text)
    deadline = time.monotonic() + 120
    while len(runs(log)) < NUM_TASKS and time.monotonic() < deadline:
        time.sleep(0.2)  # nobody drives the map meanwhile: Slurm runs the workers alone
    ran = runs(log)
    assert len(ran) == NUM_TASKS, f"the detached workers ran {len(ran)} tasks"
    assert max(t for _, _, t in ran) > exited_at, "no task ran after the submitter exited"
    assert results.live_driver(results.open_session(session)[0]) is None

    attached = batchpool.attach(session, keep_work_dir=True)
    assert attached.get(timeout=120) == [i * i for i in range(NUM_TASKS)]
    assert collections.Counter(x for x, _, _ in runs(log)) == {i: 1 for i in range(NUM_TASKS)}
    outcomes = batchpool.load(session)
    assert [o.value for o in outcomes] == [i * i for i in range(NUM_TASKS)]
    assert {o.job_id for o in outcomes} == {job for _, job, _ in ran}
    assert int(submitter_pid) > 0
