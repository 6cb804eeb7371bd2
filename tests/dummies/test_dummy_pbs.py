"""The dummy PBS (Torque 6 and PBS Pro), driven through its installed programs like a real
one, through batchpool.pbs, and the ``dummy_pbs_pool`` fixture (its faults are in
``tests/faults/test_dummy_faults.py``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from batchpool.backend import Job, JobRequest, JobState
from batchpool.pbs import parse_qstat_f, parse_qstat_json, parse_qstat_xml
from helpers.dummy_programs import pbs_backend, wait_until
from helpers.dummy_programs import pbs_qsub as qsub
from helpers.dummy_programs import pbs_states as states
from helpers.dummy_programs import run_pbs as run


def test_version_names_the_dialect(dummy_cluster):
    assert run(dummy_cluster, "qstat", "--version").stdout.startswith("Version: 6.1.3")
    dummy_cluster.set_pbs_dialect("pbspro")
    assert run(dummy_cluster, "qstat", "--version").stdout == "pbs_version = 22.05.11\n"


def test_torque_job_environment_and_output(dummy_cluster, tmp_path):
    out = tmp_path / "job.out"
    script = "#!/bin/sh\necho $PBS_JOBID $PBS_JOBNAME $PBS_O_WORKDIR $PBS_ENVIRONMENT\n"
    job_id = qsub(dummy_cluster, "-N", "envjob", "-o", str(out), "-j", "oe", script=script)
    assert job_id.startswith("1.")
    text = wait_until(lambda: out.exists() and out.read_text())
    assert text.split() == [job_id, "envjob", str(dummy_cluster.directory), "PBS_BATCH"]


def test_torque_array_shows_a_summary_and_elements_with_t(dummy_cluster, tmp_path):
    script = "#!/bin/sh\necho $PBS_ARRAYID > " + str(tmp_path) + "/$PBS_ARRAYID\nsleep 30\n"
    assert qsub(dummy_cluster, "-N", "arr", "-t", "0-2", script=script).startswith("1[].")
    assert list(states(dummy_cluster)) == ["1[]"]
    assert list(states(dummy_cluster, "-t")) == ["1[0]", "1[1]", "1[2]"]
    wait_until(lambda: all((tmp_path / str(i)).exists() for i in range(3)))
    xml = run(dummy_cluster, "qstat", "-x", "-t").stdout
    names = {job.key: job.name for job in parse_qstat_xml(xml)}
    assert names == {"1[0]": "arr-0", "1[1]": "arr-1", "1[2]": "arr-2"}


def test_pbspro_array_hides_finished_jobs_without_x(dummy_cluster):
    dummy_cluster.set_pbs_dialect("pbspro")
    assert qsub(dummy_cluster, "-N", "pa", "-J", "0-1", script="#!/bin/sh\nexit 3\n").startswith(
        "1[]."
    )
    wait_until(lambda: "1[0]" not in states(dummy_cluster, "-t"))
    data = run(dummy_cluster, "qstat", "-f", "-F", "json", "-t", "-x").stdout
    jobs = {job.key: job for job in parse_qstat_json(data)}
    assert {k: j.state for k, j in jobs.items()} == {"1[0]": "X", "1[1]": "X", "1[]": "F"}
    assert jobs["1[0]"].exit_status == 3
    assert "Exit_status" in json.loads(data)["Jobs"]["1[1]." + jobs["1[1]"].job_id.split(".", 1)[1]]


@pytest.mark.parametrize(
    "args, message, returncode",
    [
        (("-N", "1bad"), "illegal -N value", 2),
        (("-l", "walltime=soon"), "illegal -l value", 2),
        (("-q", "nosuchq"), "Unknown queue", 168),
        (("-J", "0-3"), "invalid option -- 'J'", 2),  # Torque takes -t
    ],
)
def test_qsub_refuses_as_the_real_one(dummy_cluster, args, message, returncode):
    result = run(dummy_cluster, "qsub", *args, input="#!/bin/sh\ntrue\n")
    assert result.returncode == returncode and message in result.stderr


def test_pbspro_refuses_an_array_of_one(dummy_cluster):
    dummy_cluster.set_pbs_dialect("pbspro")
    result = run(dummy_cluster, "qsub", "-J", "0", input="#!/bin/sh\ntrue\n")
    assert result.returncode == 2 and "illegal -J value" in result.stderr


def test_qdel_running_job_shows_e_then_ends_killed_by_sigterm(dummy_cluster):
    job_id = qsub(dummy_cluster, "-N", "victim")
    wait_until(lambda: states(dummy_cluster).get("1") == "R")
    assert run(dummy_cluster, "qdel", job_id).returncode == 0
    assert states(dummy_cluster)["1"] == "E"
    [job] = parse_qstat_f(run(dummy_cluster, "qstat", "-f").stdout)
    assert (job.state, job.exit_status) == ("C", 271)
    finished = run(dummy_cluster, "qdel", job_id)
    assert finished.returncode == 170 and "invalid state for job - COMPLETE" in finished.stderr
    unknown = run(dummy_cluster, "qdel", "99.nowhere")
    assert unknown.returncode == 153 and "Unknown Job Id 99.nowhere" in unknown.stderr


def test_qstat_of_an_unknown_id(dummy_cluster):
    result = run(dummy_cluster, "qstat", "-f", "42.x")
    assert result.returncode == 153 and "Unknown Job Id 42.x" in result.stderr


def test_the_pbs_pool_on_pbspro_uses_an_array(dummy_cluster, dummy_pbs_pool):
    dummy_cluster.set_pbs_dialect("pbspro")
    pool = dummy_pbs_pool(processes=3)
    assert pool.map(abs, [-1, -2, -3, -4, -5, -6], chunksize=1) == [1, 2, 3, 4, 5, 6]
    qsubs = [c["argv"] for c in dummy_cluster.calls("pbs-qsub")]
    assert any("-J" in argv for argv in qsubs)


def test_job_ids_of_the_dummy_match_the_workers_own(dummy_cluster, dummy_pbs_pool, monkeypatch):
    # the driver's own PBS_* variables (a driver inside a job) stay out of the jobs:
    # the worker keeps the job's PBS_JOBID (batchpool.worker.JOB_VARIABLE_PREFIXES)
    monkeypatch.setenv("PBS_JOBID", "999.driver")
    pool = dummy_pbs_pool(processes=2)
    ids = pool.map(_pbs_jobid, range(4), chunksize=1)
    assert "999.driver" not in ids
    submitted = [j for j in dummy_cluster.jobs() if j.scheduler.value == "pbs"]
    assert {i.split(".")[0] for i in ids} <= {
        f"{j.job_id}[{j.array_task_id}]" if j.is_array else str(j.job_id) for j in submitted
    }


def _pbs_jobid(_: int) -> str:
    import os

    return os.environ["PBS_JOBID"]


def test_deleting_with_the_backend_accepts_ended_jobs(dummy_cluster, tmp_path):
    backend = pbs_backend(dummy_cluster)
    (tmp_path / "logs").mkdir()
    [job] = backend.submit(JobRequest(tmp_path, "quick", 1, "/bin/true", tmp_path / "logs"))
    wait_until(lambda: backend.status([job])[job.job_id].state is JobState.ENDED)
    backend.delete([job, Job("999.gone", "quick", Path(), Path())])
