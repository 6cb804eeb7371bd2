"""batchpool.pbs.PbsBackend against fake ``qsub``/``qstat``/``qdel`` programs in tmp_path,
which log their argv and environment and print a given answer, one dialect at a time."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

import batchpool
from batchpool._layout import job_id_from_environment
from batchpool.backend import Ending, Job, JobRequest, JobState, Resources
from batchpool.commands import CommandPolicy
from batchpool.errors import SchedulerError
from batchpool.pbs import Dialect, PbsBackend
from helpers.fake_programs import FakeProgram

FAST = CommandPolicy(timeout_s=20.0, num_retries=0, backoff_s=0.0)
TORQUE_VERSION = ("Version: 6.1.3\nCommit: 0\n", "", 0)
PBSPRO_VERSION = ("pbs_version = 22.05.11\n", "", 0)
SLURM_VERSION = ("", "Unknown option: version\nUsage:\n    qstat [-f] [-a|-i|-r]\n", 2)


NO_CHANGES = Resources()


def request(tmp_path: Path, count: int = 1, resources: Resources = NO_CHANGES) -> JobRequest:
    (tmp_path / "logs").mkdir(exist_ok=True)
    return JobRequest(
        pool_dir=tmp_path / "pool",
        job_name="bp_20261121T213753_955_cc654d",
        count=count,
        python_path="/venv/bin/python",
        log_dir=tmp_path / "logs",
        resources=resources,
    )


def backend(tmp_path: Path, qsub=("1.srv\n", "", 0), qstat=("", "", 0), qdel=("", "", 0), **opts):
    programs = {
        "qsub": FakeProgram(tmp_path, "qsub", qsub),
        "qstat": FakeProgram(tmp_path, "qstat", *(qstat if isinstance(qstat, list) else [qstat])),
        "qdel": FakeProgram(tmp_path, "qdel", qdel),
    }
    made = PbsBackend(
        qsub_path=str(programs["qsub"].path),
        qstat_path=str(programs["qstat"].path),
        qdel_path=str(programs["qdel"].path),
        command_policy=FAST,
        **opts,
    )
    return made, programs


def test_the_dialect_is_asked_once(tmp_path):
    made, programs = backend(tmp_path, qstat=[TORQUE_VERSION, ("", "", 0)])
    jobs = [Job("1.srv", "x", Path("o"), Path("e"))]
    made.status(jobs)
    made.status(jobs)
    argvs = [call["argv"] for call in programs["qstat"].calls]
    assert argvs == [["--version"], ["-x", "-t"], ["-x", "-t"]]


def test_a_qstat_of_no_pbs_is_a_scheduler_error_with_its_words(tmp_path):
    sge = ("", 'error: ERROR! invalid option argument "--version"\nSGE 8.1.9\n', 1)
    made, _ = backend(tmp_path, qstat=sge)
    with pytest.raises(SchedulerError, match="dialect option") as error:
        made.dialect()
    assert "SGE 8.1.9" in str(error.value) and "--version" in str(error.value)


def test_torque_single_job_submission(tmp_path):
    made, programs = backend(
        tmp_path,
        qsub=("123.srv.example.org\n", "", 0),
        dialect="torque",
        queue="batch",
        walltime="01:30:00",
        mem="2gb",
        ncpus=2,
        account="proj7",
        qsub_args=["-m", "n"],
    )
    [job] = made.submit(request(tmp_path))
    assert job.job_id == "123.srv.example.org"
    argv = programs["qsub"].calls[0]["argv"]
    script = Path(argv[-1])
    assert argv[:-1] == [
        "-N",
        "bp_20261121T213753_955_cc654d",
        "-o",
        str(job.stdout_path),
        "-e",
        str(job.stderr_path),
        "-q",
        "batch",
        "-A",
        "proj7",
        "-l",
        "walltime=01:30:00,mem=2048mb,nodes=1:ppn=2",
        "-m",
        "n",
    ]
    text = script.read_text()
    assert text.startswith("#!/bin/sh\n")
    assert f"cd {tmp_path / 'pool'} || exit 1" in text
    assert "exec /venv/bin/python -m batchpool.worker" in text and "'{PBS_JOBID}'" in text
    for path in (script, job.stdout_path, job.stderr_path):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_torque_array_submission_names_each_element(tmp_path):
    made, programs = backend(tmp_path, qsub=("7[].srv\n", "", 0), dialect="torque")
    jobs = made.submit(request(tmp_path, count=3))
    assert [j.job_id for j in jobs] == ["7[0].srv", "7[1].srv", "7[2].srv"]
    argv = programs["qsub"].calls[0]["argv"]
    assert argv[2:8] == ["-t", "0-2", "-o", "/dev/null", "-e", "/dev/null"]
    script = Path(argv[-1]).read_text()
    assert '."$PBS_ARRAYID".out' in script and '."$PBS_ARRAYID".err' in script
    assert jobs[1].stdout_path.name.endswith(".1.out")
    # the worker's id, from PBS_JOBID as the element's job sets it, is the Job's id
    template = made.job_id_template(Dialect.TORQUE)
    assert job_id_from_environment(template, {"PBS_JOBID": "7[1].srv"}) == jobs[1].job_id


def test_pbspro_array_and_select_chunk(tmp_path):
    made, programs = backend(
        tmp_path, qsub=("8[].pbs\n", "", 0), qstat=PBSPRO_VERSION, mem=1000, ncpus=4
    )
    jobs = made.submit(request(tmp_path, count=2))
    assert [j.job_id for j in jobs] == ["8[0].pbs", "8[1].pbs"]
    argv = programs["qsub"].calls[0]["argv"]
    assert argv[2:4] == ["-J", "0-1"]
    assert argv[argv.index("-l") + 1] == "select=1:ncpus=4:mem=1000mb"
    assert "$PBS_ARRAY_INDEX" in Path(argv[-1]).read_text()


def test_pbspro_single_job_is_no_array(tmp_path):
    made, programs = backend(tmp_path, qsub=("9.pbs\n", "", 0), dialect="pbspro")
    made.submit(request(tmp_path))
    assert "-J" not in programs["qsub"].calls[0]["argv"]


def test_a_retry_replaces_memory_and_walltime(tmp_path):
    made, programs = backend(tmp_path, dialect="torque", mem="1gb", walltime=10)  # minutes
    assert made.base_resources() == Resources(mem_mb=1024, time_s=600)
    made.submit(request(tmp_path, resources=Resources(mem_mb=4096, time_s=1200)))
    argv = programs["qsub"].calls[0]["argv"]
    assert argv[argv.index("-l") + 1] == "walltime=00:20:00,mem=4096mb"


def test_slurm_wrappers_take_one_job_per_submission(tmp_path):
    made, programs = backend(tmp_path, qsub=("9795\n", "", 0), qstat=SLURM_VERSION)
    assert made.max_jobs_per_submit() == 1
    [job] = made.submit(request(tmp_path))
    assert job.job_id == "9795"
    assert "'{SLURM_JOB_ID}'" in Path(programs["qsub"].calls[0]["argv"][-1]).read_text()
    with pytest.raises(ValueError, match="takes 1 to 1"):
        made.submit(request(tmp_path, count=2))


def test_slurm_wrappers_with_no_job_at_all(tmp_path):
    made, programs = backend(tmp_path, qstat=[SLURM_VERSION, ("", "", 153)])
    assert made.status([Job("1", "x", Path(), Path())]) == {}
    assert programs["qstat"].calls[1]["argv"] == ["-f"]


def test_status_answers_only_our_jobs(tmp_path):
    text = (
        "Job Id: 5[0].srv\n    Job_Name = ours-0\n    job_state = C\n    exit_status = -11\n\n"
        "Job Id: 5[1].srv\n    Job_Name = ours-1\n    job_state = R\n    exec_host = n3/0\n\n"
        "Job Id: 6.srv\n    Job_Name = theirs\n    job_state = R\n"
    )
    made, programs = backend(tmp_path, qstat=(text, "", 0), dialect="torque", status_format="text")
    jobs = [Job(f"5[{i}].srv", "ours", Path(), Path()) for i in range(3)]
    statuses = made.status(jobs)
    assert programs["qstat"].calls[0]["argv"] == ["-f", "-t"]
    assert sorted(statuses) == ["5[0].srv", "5[1].srv"]
    assert statuses["5[0].srv"].ending is Ending.TIME_LIMIT
    assert (statuses["5[1].srv"].state, statuses["5[1].srv"].node) == (JobState.RUNNING, "n3")
    assert made.explain(jobs) == {"5[0].srv": statuses["5[0].srv"]}


def test_unparseable_qstat_output_is_a_scheduler_error_naming_it(tmp_path):
    made, _ = backend(tmp_path, qstat=("<Data><Job>", "", 0), dialect="torque")
    with pytest.raises(SchedulerError) as error:
        made.status([Job("1.srv", "x", Path(), Path())])
    assert "<Data><Job>" in str(error.value) and "qstat" in str(error.value)


def test_unparseable_qsub_output_is_a_scheduler_error(tmp_path):
    made, _ = backend(tmp_path, qsub=("qsub: queue is disabled\n", "", 0), dialect="torque")
    with pytest.raises(SchedulerError, match="no job id"):
        made.submit(request(tmp_path))


def test_qdel_of_jobs_already_gone_is_no_error(tmp_path):
    gone = ("", "qdel: Unknown Job Id 1.srv\nqdel: Job has finished 2.srv\n", 153)
    made, programs = backend(tmp_path, qdel=gone, dialect="pbspro")
    made.delete([Job("1.srv", "x", Path(), Path()), Job("2.srv", "x", Path(), Path())])
    assert programs["qdel"].calls[0]["argv"] == ["1.srv", "2.srv"]


def test_qdel_that_fails_otherwise_is_an_error(tmp_path):
    made, _ = backend(
        tmp_path, qdel=("", "qdel: Unauthorized Request 1.srv\n", 159), dialect="torque"
    )
    with pytest.raises(SchedulerError, match="Unauthorized"):
        made.delete([Job("1.srv", "x", Path(), Path())])


def test_the_drivers_own_job_variables_stay_out_of_the_commands(tmp_path, monkeypatch):
    monkeypatch.setenv("PBS_JOBID", "77.outer")
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    monkeypatch.setenv("PBS_DEFAULT", "pbs-server")
    made, programs = backend(tmp_path, dialect="torque")
    made.submit(request(tmp_path))
    env = programs["qsub"].calls[0]["env"]
    assert "PBS_JOBID" not in env and "SLURM_JOB_ID" not in env
    assert env["PBS_DEFAULT"] == "pbs-server"


@pytest.mark.parametrize(
    "option, value", [("status_format", "yaml"), ("ncpus", 0), ("dialect", "lsf"), ("mem", "lots")]
)
def test_bad_options_are_refused(option, value):
    with pytest.raises(ValueError):
        PbsBackend(**{option: value})


@pytest.fixture
def path_with(tmp_path, monkeypatch):
    """PATH with only a ``qsub`` and a ``qstat`` that answers ``--version`` with ``text``."""

    def make(version_text: str, returncode: int = 0):
        (tmp_path / "qsub").write_text("#!/bin/sh\n")
        (tmp_path / "qstat").write_text(
            f"#!/bin/sh\nprintf '%s\\n' '{version_text}' >&2\nexit {returncode}\n"
        )
        for name in ("qsub", "qstat"):
            (tmp_path / name).chmod(0o755)
        monkeypatch.setenv("PATH", str(tmp_path))
        monkeypatch.delenv("BATCHPOOL_BACKEND", raising=False)

    return make


def test_a_torque_qsub_on_path_picks_pbs(path_with):
    path_with("Version: 6.1.3")
    assert batchpool.pick_backend() == "pbs"


def test_sges_qsub_on_path_picks_sge(path_with):
    path_with("SGE 8.1.9", 1)
    assert batchpool.pick_backend() == "sge"


def test_batchpool_backend_pbs_forces_the_pbs_pool(path_with, monkeypatch):
    path_with("SGE 8.1.9", 1)
    monkeypatch.setenv("BATCHPOOL_BACKEND", "pbs")
    pool = batchpool.Pool(1, dialect="torque", walltime="00:10:00")
    assert isinstance(pool, batchpool.pbs.Pool) and pool.backend.walltime_s == 600
    pool.terminate()


def test_jobs_named_finds_our_live_jobs_but_no_array_summary(tmp_path):
    text = (
        "Job Id: 5[].srv\n    Job_Name = ours\n    job_state = R\n\n"
        "Job Id: 5[0].srv\n    Job_Name = ours-0\n    job_state = R\n\n"
        "Job Id: 5[1].srv\n    Job_Name = ours-1\n    job_state = Q\n\n"
        "Job Id: 5[2].srv\n    Job_Name = ours-2\n    job_state = C\n    exit_status = 0\n\n"
        "Job Id: 6.srv\n    Job_Name = theirs\n    job_state = Q\n"
    )
    made, _ = backend(tmp_path, qstat=(text, "", 0), dialect="torque", status_format="text")
    found = made.jobs_named("ours")
    assert {k: s.state for k, s in found.items()} == {
        "5[0].srv": JobState.RUNNING,
        "5[1].srv": JobState.PENDING,
    }
