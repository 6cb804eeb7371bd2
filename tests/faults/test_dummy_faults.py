"""The dummy schedulers' faults (declared as data, see :class:`batchpool.testing.Fault`),
driven through their programs and through batchpool's backends: jobs hit by their
submission index, commands that fail or hang."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from batchpool.backend import Ending, JobRequest, JobState
from batchpool.pbs import parse_qstat_f
from batchpool.testing import Fault, FaultKind
from helpers.dummy_programs import (
    DEADLINE_S,
    pbs_backend,
    pbs_qsub,
    qsub,
    run,
    run_pbs,
    sbatch,
    sge_states,
    slurm_states,
    wait_sge_gone,
    wait_slurm_ended,
    wait_until,
)


def _alive(pid):
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


# slurm -------------------------------------------------------------------------------------


def test_fault_error_state_hits_jobs_by_submission_index(dummy_cluster, work):
    fault = Fault(FaultKind.ERROR_STATE, job=1, times=2, state="NODE_FAIL")
    dummy_cluster.add_fault(fault)
    script = "#!/bin/sh\ntouch ran-$SLURM_JOB_ID\n"
    ids = [sbatch(dummy_cluster, cwd=work, input=script) for _ in range(4)]
    assert [wait_slurm_ended(dummy_cluster, i) for i in ids] == [
        "COMPLETED",
        "NODE_FAIL",
        "NODE_FAIL",
        "COMPLETED",
    ]
    assert sorted(p.name for p in work.glob("ran-*")) == sorted(f"ran-{i}" for i in ids[::3])
    assert [j.submission for j in dummy_cluster.jobs()] == [0, 1, 2, 3]
    assert dummy_cluster.times_fired(fault) == 2
    assert run(dummy_cluster, "squeue", "-h").stdout == ""


def test_fault_held_pending_with_reason(dummy_cluster, work):
    reason = "launch failed requeued held"
    dummy_cluster.add_fault({"kind": "error_state", "job": 0, "state": "PENDING", "reason": reason})
    job_id = sbatch(dummy_cluster, "--wrap", "touch ran", cwd=work)
    for _ in range(3):
        listing = run(dummy_cluster, "squeue", "-h", "-o", "%i|%T|%r").stdout
        assert listing == f"{job_id}|PENDING|{reason}\n"
    run(dummy_cluster, "scancel", job_id)
    assert slurm_states(dummy_cluster)[job_id] == "CANCELLED"
    assert not (work / "ran").exists()


def test_fault_vanish_and_crash_in_array(dummy_cluster, work):
    dummy_cluster.add_fault(Fault(FaultKind.VANISH, job=2))
    dummy_cluster.add_fault(Fault(FaultKind.CRASH, job=3))
    single = sbatch(dummy_cluster, "--wrap", "true", cwd=work)
    base = sbatch(dummy_cluster, "-a", "0-3", "--wrap", "touch ran-$SLURM_ARRAY_TASK_ID", cwd=work)
    assert wait_slurm_ended(dummy_cluster, single) == "COMPLETED"
    for task in (0, 3):
        assert wait_slurm_ended(dummy_cluster, f"{base}_{task}") == "COMPLETED"
    assert wait_slurm_ended(dummy_cluster, f"{base}_2") == "FAILED"
    assert f"{base}_1" not in slurm_states(dummy_cluster)
    assert [j.submission for j in dummy_cluster.jobs()] == [0, 1, 3, 4]
    assert sorted(p.name for p in work.glob("ran-*")) == ["ran-0", "ran-3"]


def test_fault_crash_after_a_delay_kills_the_process_group(dummy_cluster, work):
    dummy_cluster.add_fault(Fault(FaultKind.CRASH, job=1, seconds=0.5))
    script = "sleep 30 & echo $! > child; echo started > started; sleep 5; touch finished"
    spared = sbatch(dummy_cluster, "--wrap", "true", cwd=work)
    job_id = sbatch(dummy_cluster, "--wrap", script, cwd=work)
    assert (
        slurm_states(dummy_cluster)[job_id] == "RUNNING"
    )  # started by this call, not killed at once
    assert wait_slurm_ended(dummy_cluster, job_id) == "FAILED"
    assert wait_slurm_ended(dummy_cluster, spared) == "COMPLETED"
    assert (work / "started").exists() and not (work / "finished").exists()
    child = int((work / "child").read_text())
    deadline = time.monotonic() + DEADLINE_S
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child)
    reason = run(dummy_cluster, "squeue", "-h", "-t", "all", "-j", job_id, "-o", "%T|%r").stdout
    assert reason == "FAILED|NonZeroExitCode\n"
    (killed,) = [j for j in dummy_cluster.jobs() if str(j.job_id) == job_id]
    assert killed.exit_code == 137  # SIGKILL


def test_fault_crash_after_a_delay_spares_a_job_that_ended(dummy_cluster, work):
    dummy_cluster.add_fault(Fault(FaultKind.CRASH, job=0, seconds=20))
    job_id = sbatch(dummy_cluster, "--wrap", "touch done", cwd=work)
    assert wait_slurm_ended(dummy_cluster, job_id) == "COMPLETED"
    assert (work / "done").exists()
    group = dummy_cluster.jobs()[0].pid  # the job's process group: its watchdog is gone too
    deadline = time.monotonic() + DEADLINE_S
    while _group_members(group) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _group_members(group) == []


def _group_members(pgid):
    """The live processes of process group ``pgid``."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(stat.parent.name))
    return members


def test_fault_command_fails_then_recovers(dummy_cluster, work):
    stderr = "sbatch: error: Batch job submission failed: Socket timed out on send/recv operation"
    dummy_cluster.add_fault(
        Fault(FaultKind.COMMAND_FAILS, program="sbatch", times=2, stderr=stderr)
    )
    for _ in range(2):
        result = run(dummy_cluster, "sbatch", "--wrap", "true", cwd=work)
        assert (result.returncode, result.stdout, result.stderr) == (1, "", stderr + "\n")
    assert dummy_cluster.jobs() == []
    assert sbatch(dummy_cluster, "--wrap", "true", cwd=work) == "1"
    assert [c["argv"][0] for c in dummy_cluster.calls("sbatch")] == [
        "--wrap",
        "--wrap",
        "--parsable",
    ]


def test_fault_command_hangs(dummy_cluster):
    fault = Fault(FaultKind.COMMAND_HANGS, program="squeue")  # for 30 s
    dummy_cluster.add_fault(fault)
    argv = [dummy_cluster.squeue_path]
    with pytest.raises(subprocess.TimeoutExpired):
        subprocess.run(argv, env=dummy_cluster.environment(), capture_output=True, timeout=0.5)
    assert run(dummy_cluster, "squeue").returncode == 0  # once only
    assert dummy_cluster.times_fired(fault) == 1
    assert len(dummy_cluster.calls("squeue")) == 2


# sge ---------------------------------------------------------------------------------------


def test_fault_error_state_shows_eqw_until_qdel(dummy_cluster, work):
    dummy_cluster.add_fault(Fault(FaultKind.ERROR_STATE, job=0, times=1))
    script = "touch ran-$JOB_ID\n"
    first = qsub(dummy_cluster, "-cwd", cwd=work, input=script)
    second = qsub(dummy_cluster, "-cwd", cwd=work, input=script)
    for _ in range(3):
        assert sge_states(dummy_cluster).get(first) == "Eqw"
    wait_sge_gone(dummy_cluster, second)
    assert run(dummy_cluster, "qdel", first).stdout.endswith(f"has deleted job {first}\n")
    assert sge_states(dummy_cluster) == {}
    assert sorted(p.name for p in work.glob("ran-*")) == [f"ran-{second}"]


def test_fault_vanish_and_crash(dummy_cluster, work):
    dummy_cluster.add_fault(Fault(FaultKind.VANISH, job=0))
    dummy_cluster.add_fault(Fault(FaultKind.CRASH, job=1))
    vanished = qsub(dummy_cluster, "-cwd", cwd=work, input="touch v\n")
    crashed = qsub(dummy_cluster, "-cwd", cwd=work, input="sleep 1; touch c\n")
    normal = qsub(dummy_cluster, "-cwd", cwd=work, input="touch n\n")
    wait_sge_gone(dummy_cluster, normal)
    assert vanished not in sge_states(dummy_cluster) and crashed not in sge_states(dummy_cluster)
    time.sleep(1.2)
    assert (work / "n").exists() and not (work / "v").exists() and not (work / "c").exists()
    assert [j.job_id for j in dummy_cluster.jobs()] == [int(crashed), int(normal)]


def test_job_faults_count_submissions_across_slurm_and_sge(dummy_cluster, work):
    crash = Fault(FaultKind.CRASH, job=1, times=3, seconds=0.5)
    dummy_cluster.add_fault(crash)
    sbatch = run(dummy_cluster, "sbatch", "--parsable", "--wrap", "touch ran-s0", cwd=work)
    assert sbatch.returncode == 0, sbatch.stderr
    array = qsub(
        dummy_cluster, "-t", "1-2", "-cwd", cwd=work, input="sleep 3; touch ran-t$SGE_TASK_ID\n"
    )
    last = qsub(dummy_cluster, "-cwd", cwd=work, input="sleep 3; touch ran-q3\n")
    spared = qsub(dummy_cluster, "-cwd", cwd=work, input="touch ran-q4\n")
    assert [j.submission for j in dummy_cluster.jobs()] == [0, 1, 2, 3, 4]
    for job_id in (array.split(".")[0], last, spared):
        wait_sge_gone(dummy_cluster, job_id)
    assert sorted(p.name for p in work.glob("ran-*")) == ["ran-q4", "ran-s0"]
    assert dummy_cluster.times_fired(crash) == 3


def test_command_faults(dummy_cluster, work):
    dummy_cluster.set_config(
        faults=[
            Fault(FaultKind.COMMAND_FAILS, program="qsub", stderr="error: commlib error"),
            {"kind": "command_hangs", "program": "qstat"},
        ]
    )
    failed = run(dummy_cluster, "qsub", "-b", "y", "true", cwd=work)
    assert (failed.returncode, failed.stderr) == (1, "error: commlib error\n")
    assert qsub(dummy_cluster, "-b", "y", "true", cwd=work) == "1"
    with pytest.raises(subprocess.TimeoutExpired):  # the hang lasts 30 s
        subprocess.run([dummy_cluster.qstat_path], env=dummy_cluster.environment(), timeout=0.5)
    assert len(dummy_cluster.calls("qsub")) == 2 and len(dummy_cluster.calls()) == 3


# pbs ---------------------------------------------------------------------------------------


def test_a_system_hold_fault_is_an_error_state_for_the_backend(dummy_cluster, tmp_path):
    dummy_cluster.add_fault(Fault(FaultKind.ERROR_STATE, job=0, state="PENDING", reason="mom down"))
    backend = pbs_backend(dummy_cluster)
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
    dummy_cluster, tmp_path, dialect, fault_state, code, ending
):
    dummy_cluster.set_pbs_dialect(dialect)
    dummy_cluster.add_fault(Fault(FaultKind.ERROR_STATE, job=0, state=fault_state))
    backend = pbs_backend(dummy_cluster)
    (tmp_path / "logs").mkdir()
    [job] = backend.submit(JobRequest(tmp_path, "limited", 1, "/bin/true", tmp_path / "logs"))
    status = wait_until(lambda: backend.status([job]).get(job.job_id))
    assert (status.state, status.ending, status.reason.endswith(f"exit_status {code}")) == (
        JobState.ENDED,
        ending,
        True,
    )


def test_a_crash_fault_ends_the_job_killed(dummy_cluster, tmp_path):
    dummy_cluster.add_fault(Fault(FaultKind.CRASH, job=0))
    pbs_qsub(dummy_cluster, "-N", "crashy")
    [job] = wait_until(
        lambda: [
            j for j in parse_qstat_f(run_pbs(dummy_cluster, "qstat", "-f").stdout) if j.state == "C"
        ]
    )
    assert job.exit_status == 265
    # without -o and -e: NAME.oID and NAME.eID where the job was submitted
    assert (dummy_cluster.directory / "crashy.o1").exists() and (
        dummy_cluster.directory / "crashy.e1"
    ).exists()


def test_a_failing_qstat_fault(dummy_cluster):
    dummy_cluster.add_fault(Fault(FaultKind.COMMAND_FAILS, program="pbs-qstat", stderr="no server"))
    failed = run_pbs(dummy_cluster, "qstat", "-f")
    assert failed.returncode == 1 and "no server" in failed.stderr
    assert run_pbs(dummy_cluster, "qstat", "-f").returncode == 0


def test_the_pbs_pool_deletes_a_job_in_a_system_hold(dummy_cluster, dummy_pbs_pool, capfd):
    """The held job is an error state: deleted at the next status query (not left to wait
    in the queue for ``worker_idle_s`` as a plain queued job is); the map runs on."""
    dummy_cluster.add_fault(Fault(FaultKind.ERROR_STATE, job=0, state="PENDING", reason="x"))
    pool = dummy_pbs_pool(processes=2, worker_idle_s=60.0, verbose=True)
    assert pool.map(abs, [-1, -2, -3]) == [1, 2, 3]
    assert (
        dummy_cluster.times_fired(Fault(FaultKind.ERROR_STATE, job=0, state="PENDING", reason="x"))
        == 1
    )
    wait_until(lambda: dummy_cluster.calls("pbs-qdel"))
    assert "deleting jobs=1 why=error state" in capfd.readouterr().err
