"""SgeBackend on a real Grid Engine: a retry's resources reach ``qsub`` in a form it takes,
and ``status``/``explain`` tell the endings they cause (error state, time limit, memory
limit). The jobs run a stand-in for python (a ``/bin/sh`` script); ci/sge/start.sh's
configuration writes accounting records at once."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from batchpool.backend import Ending, Job, JobRequest, JobState, JobStatus, Resources
from batchpool.commands import CommandPolicy
from batchpool.sge import SgeBackend
from helpers.pools import require_real

pytestmark = pytest.mark.sge

POLICY = CommandPolicy(timeout_s=30.0, num_retries=2, backoff_s=0.5)
DEADLINE_S = 60.0
OWN = Resources()
HOG = (
    "/usr/bin/python3 -c 'import time; x = bytearray(150 * 1024 * 1024); "
    'x[::4096] = b"y" * len(x[::4096]); time.sleep(30)\' &\n'
)


@pytest.fixture
def submitted():
    """The jobs a test submits, deleted at its end."""
    jobs: list[tuple[SgeBackend, Job]] = []
    yield jobs
    for backend, job in jobs:
        backend.delete([job])


def stand_in(tmp_path: Path, body: str) -> str:
    """An executable that ignores the worker's arguments and runs ``body`` instead."""
    path = tmp_path / "python"
    path.write_text(f"#!/bin/sh\n{body}")
    path.chmod(0o755)
    return str(path)


def submit(submitted, backend, tmp_path, body, resources=OWN, pool_dir=None) -> Job:
    require_real("sge")
    (tmp_path / "logs").mkdir(exist_ok=True)
    request = JobRequest(
        pool_dir=pool_dir or tmp_path,
        job_name="bp_real_endings",
        count=1,
        python_path=stand_in(tmp_path, body),
        log_dir=tmp_path / "logs",
        resources=resources,
    )
    (job,) = backend.submit(request)
    submitted.append((backend, job))
    return job


def ending_of(backend: SgeBackend, job: Job) -> JobStatus:
    """What ``explain`` tells once the job has left the queue."""
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        if job.job_id not in backend.status([job]):
            told = backend.explain([job])
            if job.job_id in told:
                return told[job.job_id]
        time.sleep(0.5)
    raise AssertionError(f"job {job.job_id} has no ending after {DEADLINE_S} s")


def test_excluded_hosts_are_taken_by_qsub(submitted, tmp_path):
    backend = SgeBackend(resources=["h_rt=60"], command_policy=POLICY)
    elsewhere = Resources(exclude_nodes=("no-such-node1", "no-such-node2.example.org"))
    ran = submit(submitted, backend, tmp_path, "exit 0\n", elsewhere)
    done = ending_of(backend, ran)
    assert (done.ending, done.exit_code) == (Ending.COMPLETED, 0)
    assert done.node
    kept_off = submit(
        submitted, backend, tmp_path, "exit 0\n", Resources(exclude_nodes=(done.node,))
    )
    for _ in range(6):
        time.sleep(0.5)
        assert backend.status([kept_off])[kept_off.job_id].state is JobState.PENDING


def test_a_retrys_time_limit_ends_the_job(submitted, tmp_path):
    backend = SgeBackend(resources=["h_rt=600"], command_policy=POLICY)
    job = submit(submitted, backend, tmp_path, "sleep 60\n", Resources(time_s=2))
    ended = ending_of(backend, job)
    assert (ended.ending, ended.signal) == (Ending.TIME_LIMIT, 9)
    assert "category -l h_rt=2" in ended.detail


def test_a_retrys_memory_limit_ends_the_job(submitted, tmp_path):
    backend = SgeBackend(resources=["h_vmem=4G"], command_policy=POLICY)
    job = submit(submitted, backend, tmp_path, HOG * 3 + "wait\n", Resources(mem_mb=300))
    ended = ending_of(backend, job)
    assert (ended.ending, ended.signal) == (Ending.MEMORY_LIMIT, 9)
    assert "h_vmem=300M" in ended.detail


def test_an_error_state_and_its_reason(submitted, tmp_path):
    backend = SgeBackend(command_policy=POLICY)
    job = submit(submitted, backend, tmp_path, "exit 0\n", pool_dir=tmp_path / "missing")
    deadline = time.monotonic() + DEADLINE_S
    while backend.status([job]).get(job.job_id, JobStatus(JobState.PENDING)).ending is None:
        assert time.monotonic() < deadline, "the job did not go into an error state"
        time.sleep(0.3)
    assert backend.status([job])[job.job_id].ending is Ending.ERROR_STATE
    told = backend.explain([job])[job.job_id]
    assert (told.state, told.ending) == (JobState.FAILED, Ending.ERROR_STATE)
    assert f"can't chdir to {tmp_path / 'missing'}" in told.detail
    backend.delete([job])
    deleted = ending_of(backend, job)
    assert deleted.ending is Ending.FAILED
    assert deleted.detail.startswith("failed 28  : changing into working directory")
