"""The defaults every backend inherits from :class:`batchpool.backend.Backend`, the one
reader of a job's stderr, and the ordinary waits of the local and fake backends."""

from __future__ import annotations

from pathlib import Path

from batchpool._layout import JobLogs
from batchpool.backend import (
    Backend,
    Job,
    JobRequest,
    JobState,
    JobStatus,
    Resources,
    id_batches,
    read_job_stderr,
    still_queued,
)
from batchpool.local import LocalBackend
from batchpool.pbs import PbsBackend
from batchpool.sge import SgeBackend
from batchpool.slurm import SlurmBackend
from batchpool.slurm.array import SlurmArrayBackend
from batchpool.testing.fake_backend import FakeBackend, FakeClock

NOISE = "slurmstepd-vm: error: Unable to create TMPDIR [/scratch/7476]: No such file\n"
TIME_LIMIT = (
    "slurmstepd-vm: error: *** JOB 7476 ON vm CANCELLED AT 2026-11-21T18:25:25 DUE TO TIME "
    "LIMIT ***\n"
)
TIME_LIMIT_STDERR = NOISE + "Traceback (most recent call last):\n" + TIME_LIMIT


def job_with_stderr(tmp_path: Path, text: str) -> Job:
    (tmp_path / "1.err").write_text(text)
    return Job("1", "bp_x", tmp_path / "1.out", tmp_path / "1.err")


def test_every_backend_is_a_backend_and_inherits_what_it_does_not_spell():
    backends = [
        LocalBackend(),
        SlurmBackend(),
        SlurmArrayBackend(),
        SgeBackend(),
        PbsBackend(dialect="torque"),
        FakeBackend(FakeClock()),
    ]
    for backend in backends:
        assert isinstance(backend, Backend), backend.name
    local = LocalBackend()
    assert local.explain([Job("1", "x", Path(), Path())]) == {}
    assert local.base_resources() == Resources()
    assert local.filter_stderr("a\nb\n") == "a\nb\n"
    assert SgeBackend().max_jobs_per_submit() == SlurmBackend().max_jobs_per_submit() == 1


def test_job_stderr_is_read_once_and_filtered_by_the_backend(tmp_path):
    job = job_with_stderr(tmp_path, TIME_LIMIT_STDERR)
    assert read_job_stderr(job) == TIME_LIMIT_STDERR  # the scheduler's lines too
    assert read_job_stderr(job, size=len(TIME_LIMIT)) == TIME_LIMIT
    assert SgeBackend().job_stderr(job) == TIME_LIMIT_STDERR
    assert SlurmBackend().job_stderr(job) == "Traceback (most recent call last):\n" + TIME_LIMIT
    missing = Job("2", "bp_x", tmp_path / "2.out", tmp_path / "2.err")
    assert read_job_stderr(missing) == "" and SlurmBackend().job_stderr(missing) == ""


def test_slurm_explain_reads_the_scheduler_lines_of_the_stderr(tmp_path):
    backend = SlurmBackend(sacct_path=str(tmp_path / "no-sacct"))
    (told,) = backend.explain([job_with_stderr(tmp_path, TIME_LIMIT_STDERR)]).values()
    assert told.ending is not None and told.ending.name == "TIME_LIMIT"


def test_id_batches_and_still_queued():
    jobs = [Job(str(i), "x", Path(), Path()) for i in range(5)]
    assert list(id_batches(jobs, 2)) == [["0", "1"], ["2", "3"], ["4"]]
    statuses = {
        "p": JobStatus(JobState.PENDING),
        "r": JobStatus(JobState.RUNNING),
        "e": JobStatus(JobState.ENDED),
        "f": JobStatus(JobState.FAILED),
    }
    assert sorted(still_queued(statuses)) == ["p", "r"]


def test_a_fake_job_waiting_for_its_turn_has_no_unusual_wait(tmp_path):
    backend = FakeBackend(FakeClock(), start_delay_s=60.0)
    request = JobRequest(tmp_path, "bp_x", 2, "python", tmp_path)
    jobs = backend.submit(request)
    statuses = backend.status(jobs)
    assert {s.state for s in statuses.values()} == {JobState.PENDING}
    assert {s.unusual_wait for s in statuses.values()} == {""}


def test_job_logs_name_the_job_script_beside_the_logs(tmp_path):
    logs = JobLogs(tmp_path)
    name = logs.unique_name("pbs")
    assert logs.script(name) == str(tmp_path / f"{name}.sh")
    out, err = logs.created_pair(name)
    assert (out, err) == logs.pair(name)
    assert Path(out).read_bytes() == b"" and Path(err).stat().st_mode & 0o777 == 0o600
