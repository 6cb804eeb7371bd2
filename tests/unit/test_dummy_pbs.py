"""The dummy PBS (Torque 6 and PBS Pro), driven through its installed programs like a real
one, and through batchpool.pbs, its faults, and the ``dummy_pbs_pool`` fixture."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from batchpool.backend import Ending, Job, JobRequest, JobState
from batchpool.commands import CommandPolicy
from batchpool.pbs import PbsBackend, parse_qstat_f, parse_qstat_json, parse_qstat_xml
from batchpool.testing import Fault, FaultKind

DEADLINE_S = 10.0
FAST = CommandPolicy(timeout_s=30.0, num_retries=0, backoff_s=0.0)


def run(cluster, program, *args, input=None):
    """Run a dummy PBS program in the cluster's directory: jobs without ``-o``/``-e``
    write ``NAME.oID`` and ``NAME.eID`` where they were submitted."""
    return subprocess.run(
        [str(cluster.pbs_bin_dir / program), *args],
        capture_output=True,
        text=True,
        timeout=30,
        input=input,
        env=cluster.environment(),
        cwd=cluster.directory,
    )


def qsub(cluster, *args, script="#!/bin/sh\nsleep 30\n"):
    result = run(cluster, "qsub", *args, input=script)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def wait_until(predicate, deadline_s: float = DEADLINE_S):
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def poke(cluster) -> bool:
    """Run a program: the dummy queue moves on only when one of its programs runs."""
    return run(cluster, "qstat").returncode == 0


def states(cluster, *args) -> dict[str, str]:
    result = run(cluster, "qstat", "-f", *args)
    assert result.returncode == 0, result.stderr
    return {job.key: job.state for job in parse_qstat_f(result.stdout)}


def test_version_names_the_dialect(cluster):
    assert run(cluster, "qstat", "--version").stdout.startswith("Version: 6.1.3")
    cluster.set_pbs_dialect("pbspro")
    assert run(cluster, "qstat", "--version").stdout == "pbs_version = 22.05.11\n"


def test_torque_job_environment_and_output(cluster, tmp_path):
    out = tmp_path / "job.out"
    script = "#!/bin/sh\necho $PBS_JOBID $PBS_JOBNAME $PBS_O_WORKDIR $PBS_ENVIRONMENT\n"
    job_id = qsub(cluster, "-N", "envjob", "-o", str(out), "-j", "oe", script=script)
    assert job_id.startswith("1.")
    text = wait_until(lambda: poke(cluster) and out.exists() and out.read_text())
    assert text.split() == [job_id, "envjob", str(cluster.directory), "PBS_BATCH"]


def test_torque_array_shows_a_summary_and_elements_with_t(cluster, tmp_path):
    script = "#!/bin/sh\necho $PBS_ARRAYID > " + str(tmp_path) + "/$PBS_ARRAYID\nsleep 30\n"
    assert qsub(cluster, "-N", "arr", "-t", "0-2", script=script).startswith("1[].")
    assert list(states(cluster)) == ["1[]"]
    assert list(states(cluster, "-t")) == ["1[0]", "1[1]", "1[2]"]
    wait_until(lambda: poke(cluster) and all((tmp_path / str(i)).exists() for i in range(3)))
    xml = run(cluster, "qstat", "-x", "-t").stdout
    names = {job.key: job.name for job in parse_qstat_xml(xml)}
    assert names == {"1[0]": "arr-0", "1[1]": "arr-1", "1[2]": "arr-2"}


def test_pbspro_array_hides_finished_jobs_without_x(cluster):
    cluster.set_pbs_dialect("pbspro")
    assert qsub(cluster, "-N", "pa", "-J", "0-1", script="#!/bin/sh\nexit 3\n").startswith("1[].")
    wait_until(lambda: "1[0]" not in states(cluster, "-t"))
    data = run(cluster, "qstat", "-f", "-F", "json", "-t", "-x").stdout
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
def test_qsub_refuses_as_the_real_one(cluster, args, message, returncode):
    result = run(cluster, "qsub", *args, input="#!/bin/sh\ntrue\n")
    assert result.returncode == returncode and message in result.stderr


def test_pbspro_refuses_an_array_of_one(cluster):
    cluster.set_pbs_dialect("pbspro")
    result = run(cluster, "qsub", "-J", "0", input="#!/bin/sh\ntrue\n")
    assert result.returncode == 2 and "illegal -J value" in result.stderr


def test_qdel_running_job_shows_e_then_ends_killed_by_sigterm(cluster):
    job_id = qsub(cluster, "-N", "victim")
    wait_until(lambda: states(cluster).get("1") == "R")
    assert run(cluster, "qdel", job_id).returncode == 0
    assert states(cluster)["1"] == "E"
    [job] = parse_qstat_f(run(cluster, "qstat", "-f").stdout)
    assert (job.state, job.exit_status) == ("C", 271)
    finished = run(cluster, "qdel", job_id)
    assert finished.returncode == 170 and "invalid state for job - COMPLETE" in finished.stderr
    unknown = run(cluster, "qdel", "99.nowhere")
    assert unknown.returncode == 153 and "Unknown Job Id 99.nowhere" in unknown.stderr


def test_qstat_of_an_unknown_id(cluster):
    result = run(cluster, "qstat", "-f", "42.x")
    assert result.returncode == 153 and "Unknown Job Id 42.x" in result.stderr


def test_a_system_hold_fault_is_an_error_state_for_the_backend(cluster, tmp_path):
    cluster.add_fault(Fault(FaultKind.ERROR_STATE, job=0, state="PENDING", reason="mom down"))
    backend = PbsBackend(
        qsub_path=cluster.pbs_qsub_path,
        qstat_path=cluster.pbs_qstat_path,
        qdel_path=cluster.pbs_qdel_path,
        command_policy=FAST,
    )
    (tmp_path / "logs").mkdir()
    request = JobRequest(tmp_path, "held_by_fault", 1, "/bin/true", tmp_path / "logs")
    [job] = backend.submit(request)
    status = wait_until(lambda: backend.status([job]).get(job.job_id))
    status = wait_until(lambda: (s := backend.status([job])[job.job_id]).ending and s)
    assert (status.state, status.ending, status.detail) == (
        JobState.FAILED,
        Ending.ERROR_STATE,
        "mom down",
    )
    backend.delete([job])


@pytest.mark.parametrize(
    "dialect, fault_state, code, ending",
    [
        ("torque", "TIMEOUT", -11, Ending.TIME_LIMIT),
        ("pbspro", "OUT_OF_MEMORY", -27, Ending.MEMORY_LIMIT),
    ],
)
def test_limit_faults_end_with_the_dialects_code(
    cluster, tmp_path, dialect, fault_state, code, ending
):
    cluster.set_pbs_dialect(dialect)
    cluster.add_fault(Fault(FaultKind.ERROR_STATE, job=0, state=fault_state))
    backend = PbsBackend(
        qsub_path=cluster.pbs_qsub_path,
        qstat_path=cluster.pbs_qstat_path,
        qdel_path=cluster.pbs_qdel_path,
        command_policy=FAST,
    )
    (tmp_path / "logs").mkdir()
    [job] = backend.submit(JobRequest(tmp_path, "limited", 1, "/bin/true", tmp_path / "logs"))
    status = wait_until(lambda: backend.status([job]).get(job.job_id))
    assert (status.state, status.ending, status.reason.endswith(f"exit_status {code}")) == (
        JobState.ENDED,
        ending,
        True,
    )


def test_a_crash_fault_ends_the_job_killed(cluster, tmp_path):
    cluster.add_fault(Fault(FaultKind.CRASH, job=0))
    qsub(cluster, "-N", "crashy")
    [job] = wait_until(
        lambda: [j for j in parse_qstat_f(run(cluster, "qstat", "-f").stdout) if j.state == "C"]
    )
    assert job.exit_status == 265
    # without -o and -e: NAME.oID and NAME.eID where the job was submitted
    assert (cluster.directory / "crashy.o1").exists() and (cluster.directory / "crashy.e1").exists()


def test_a_failing_qstat_fault(cluster):
    cluster.add_fault(Fault(FaultKind.COMMAND_FAILS, program="pbs-qstat", stderr="no server"))
    failed = run(cluster, "qstat", "-f")
    assert failed.returncode == 1 and "no server" in failed.stderr
    assert run(cluster, "qstat", "-f").returncode == 0


def test_the_pbs_pool_resubmits_a_job_in_a_system_hold(dummy_cluster, dummy_pbs_pool):
    dummy_cluster.add_fault(Fault(FaultKind.ERROR_STATE, job=0, state="PENDING", reason="x"))
    pool = dummy_pbs_pool(processes=2)
    assert pool.map(abs, [-1, -2, -3]) == [1, 2, 3]
    assert (
        dummy_cluster.times_fired(Fault(FaultKind.ERROR_STATE, job=0, state="PENDING", reason="x"))
        == 1
    )
    assert [c["program"] for c in dummy_cluster.calls("pbs-qdel")]


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


def test_deleting_with_the_backend_accepts_ended_jobs(cluster, tmp_path):
    backend = PbsBackend(
        qsub_path=cluster.pbs_qsub_path,
        qstat_path=cluster.pbs_qstat_path,
        qdel_path=cluster.pbs_qdel_path,
        command_policy=FAST,
    )
    (tmp_path / "logs").mkdir()
    [job] = backend.submit(JobRequest(tmp_path, "quick", 1, "/bin/true", tmp_path / "logs"))
    wait_until(lambda: backend.status([job])[job.job_id].state is JobState.ENDED)
    backend.delete([job, Job("999.gone", "quick", Path(), Path())])
