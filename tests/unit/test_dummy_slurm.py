"""The dummy Slurm, driven through its installed programs like a real one."""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

from batchpool.slurm.squeue import parse_squeue, squeue_argv
from batchpool.testing import Fault, FaultKind

DATA = Path(__file__).resolve().parent.parent / "data" / "slurm"
DEADLINE_S = 8.0
ENDED = {"COMPLETED", "FAILED", "CANCELLED", "NODE_FAIL", "TIMEOUT", "OUT_OF_MEMORY"}


def run(cluster, program, *args, cwd=None, input=None, env=None):
    return subprocess.run(
        [str(cluster.bin_dir / program), *args],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=cwd,
        input=input,
        env=env if env is not None else cluster.environment(),
    )


def sbatch(cluster, *args, cwd=None, input=None):
    result = run(cluster, "sbatch", "--parsable", *args, cwd=cwd, input=input)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def states(cluster, *extra):
    """``{%i: %T}`` of every job, ended ones included."""
    result = run(cluster, "squeue", "-h", "-r", "-t", "all", "-o", "%i|%T", *extra)
    assert result.returncode == 0, result.stderr
    return dict(line.split("|") for line in result.stdout.splitlines())


def wait_ended(cluster, label):
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        state = states(cluster).get(label)
        if state in ENDED:
            return state
        time.sleep(0.05)
    raise AssertionError(f"job {label} did not end: {states(cluster)}")


def test_job_runs_script_and_completes(cluster, work):
    script = work / "job.sh"
    script.write_text(
        "#!/bin/sh\n#SBATCH --job-name=fromdirective\n"
        'echo "$SLURM_JOB_ID $SLURM_JOB_NAME $SLURM_CLUSTER_NAME $FOO" > result.txt\n'
    )
    env = {**cluster.environment(), "FOO": "exported"}
    result = run(cluster, "sbatch", str(script), cwd=work, env=env)
    assert result.returncode == 0, result.stderr
    job_id = re.fullmatch(r"Submitted batch job (\d+)\n", result.stdout).group(1)
    assert wait_ended(cluster, job_id) == "COMPLETED"
    assert (work / "result.txt").read_text() == f"{job_id} fromdirective dummy exported\n"
    assert (work / f"slurm-{job_id}.out").exists()
    assert run(cluster, "squeue", "-h").stdout == ""


def test_job_ids_increase_and_failed_job_shows_failed(cluster, work):
    first = sbatch(cluster, "--wrap", "exit 3", cwd=work)
    second = sbatch(cluster, "--wrap", "true", cwd=work)
    assert int(second) == int(first) + 1
    assert wait_ended(cluster, first) == "FAILED"
    assert wait_ended(cluster, second) == "COMPLETED"


def test_output_patterns_chdir_and_stdin_script(cluster, work, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    job_id = sbatch(
        cluster,
        "-J",
        "pat",
        "-o",
        "%x_%j_%%.out",
        "--error=err_%j",
        "--chdir",
        str(other),
        input="#!/bin/sh\necho out; echo err >&2; pwd\n",
        cwd=work,
    )
    assert wait_ended(cluster, job_id) == "COMPLETED"
    assert (other / f"pat_{job_id}_%.out").read_text() == f"out\n{other}\n"
    assert (other / f"err_{job_id}").read_text() == "err\n"


def test_wrappers_need_no_environment(cluster, work):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(work)}
    result = run(cluster, "sbatch", "--wrap", 'echo "${PYTHONPATH-unset}" > pp', cwd=work, env=env)
    assert result.returncode == 0, result.stderr
    job_id = result.stdout.split()[-1]
    assert wait_ended(cluster, job_id) == "COMPLETED"
    assert (work / "pp").read_text() == "unset\n"  # the wrapper's own PYTHONPATH is not passed


def recorded_squeue_all(name):
    header, *lines = (DATA / name).read_text().splitlines()
    return header, [dict(zip(header.split("|"), line.split("|"))) for line in lines]


# Columns whose values depend on the job, the time or the machine.
VARYING = {
    "JOBID",
    "NAME",
    "PRIORITY",
    "SUBMIT_TIME",
    "START_TIME",
    "WORK_DIR",
    "ARRAY_JOB_ID",
    "ARRAY_TASK_ID",
    "REASON",
    "NODELIST(REASON)",
    "COMMAND",
    "GROUP",
    "USER",
    "UID",
    "EXEC_HOST",
    "NODELIST",
    "TIME",
}


def test_squeue_all_format_matches_recorded(cluster, work):
    cluster.set_config(slots=2)
    sbatch(cluster, "-J", "run", "-a", "20-21", "--wrap", "sleep 5", cwd=work)
    sbatch(cluster, "-J", "fmt", "-a", "0-5%2", "--wrap", "true", cwd=work)
    header, rows = recorded_squeue_all("squeue_all.txt")
    result = run(cluster, "squeue", "-t", "all", "-o", "%all")
    assert result.returncode == 0, result.stderr
    our_header, *lines = result.stdout.splitlines()
    assert our_header == header
    ours = [dict(zip(header.split("|"), line.split("|"))) for line in lines]
    assert [len(line.split("|")) for line in lines] == [len(header.split("|"))] * len(lines)
    pending = next(r for r in ours if r["ST"] == "PD")
    running = next(r for r in ours if r["ST"] == "R")
    for recorded, mine in ((rows[1], pending), (rows[2], running)):
        differing = {k for k in recorded if recorded[k] != mine[k]} - VARYING
        assert differing == set(), (recorded, mine)
    first_jobid = header.split("|").index("JOBID")  # %i; the second JOBID is %A
    labels = {line.split("|")[first_jobid] for line in lines}
    assert any(re.fullmatch(r"\d+_\[0-5%2\]", label) for label in labels), labels
    assert any(re.fullmatch(r"\d+_2[01]", label) for label in labels), labels
    assert pending["ARRAY_TASK_ID"] == "0-5%2"
    assert pending["NODELIST(REASON)"] == f"({pending['REASON']})"


def test_explicit_formats_as_recorded(cluster, work):
    cluster.set_config(slots=0)
    base = sbatch(cluster, "-J", "rec", "-a", "0-3%2", "--wrap", "sleep 5", cwd=work)
    single = sbatch(cluster, "-J", "rec2", "--wrap", "sleep 5", cwd=work)
    held = sbatch(cluster, "--hold", "-J", "rec3", "--wrap", "true", cwd=work)
    out = run(cluster, "squeue", "-h", "-o", "%i|%A|%K|%j|%T|%r|%P").stdout.splitlines()
    assert out[0] == f"{base}_[0-3%2]|{base}|0-3%2|rec|PENDING|Resources|local"
    assert out[1] == f"{single}|{single}|N/A|rec2|PENDING|Priority|local"
    assert out[2] == f"{held}|{held}|N/A|rec3|PENDING|JobHeldUser|local"
    per_element = run(cluster, "squeue", "-h", "-r", "-o", "%i|%A|%K|%j|%T").stdout.splitlines()
    assert per_element[:4] == [f"{base}_{i}|{base}|{i}|rec|PENDING" for i in range(4)]
    long_format = "JobID:|,ArrayJobID:|,ArrayTaskID:|,Name:|,State:|,Reason:|"
    by_name = run(cluster, "squeue", "-h", "--name", "rec", "-r", "-O", long_format).stdout
    assert by_name.splitlines()[1] == f"{base}|{base}|1|rec|PENDING|Resources|"
    header = run(cluster, "squeue", "--name", "nosuch").stdout
    assert header == (
        "             JOBID PARTITION     NAME     USER ST       TIME  NODES NODELIST(REASON)\n"
    )
    assert run(cluster, "squeue", "-h", "--name", "nosuch").stdout == ""


def test_the_status_query_of_the_slurm_backend(cluster, work):
    """``squeue -h -r -t all --name A,B -o FORMAT``, as batchpool runs it: every job and
    element of the named jobs, ended ones too, and no other job."""
    done = sbatch(cluster, "-J", "a", "--wrap", "true", cwd=work)
    assert wait_ended(cluster, done) == "COMPLETED"
    cluster.set_config(slots=1)
    running = sbatch(cluster, "-J", "b", "--wrap", "sleep 30", cwd=work)
    array = sbatch(cluster, "-J", "a", "-a", "0-1", "--wrap", "true", cwd=work)
    sbatch(cluster, "-J", "other", "--wrap", "true", cwd=work)
    result = subprocess.run(
        squeue_argv(cluster.squeue_path, ["a", "b"]),
        capture_output=True,
        text=True,
        env=cluster.environment(),
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    lines = {line.job_id: line for line in parse_squeue(result.stdout)}
    assert set(lines) == {done, running, f"{array}_0", f"{array}_1"}
    assert (lines[done].state, lines[running].state) == ("COMPLETED", "RUNNING")
    assert lines[f"{array}_1"].array_task_id == 1
    assert lines[f"{array}_1"].state == "PENDING"
    assert {line.name for line in lines.values()} == {"a", "b"}


def test_unknown_job_id_as_recorded(cluster, work):
    result = run(cluster, "squeue", "--jobs", "999999")
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == "slurm_load_jobs error: Invalid job id specified\n"
    assert run(cluster, "scancel", "999999").returncode == 0


def test_max_array_size_and_scontrol_config(cluster, work):
    cluster.set_config(max_array_size=11)
    message = "sbatch: error: Batch job submission failed: Invalid job array specification\n"
    for spec in ("0-11", "5-2", "x"):
        result = run(cluster, "sbatch", "--array", spec, "--wrap", "true", cwd=work)
        assert (result.returncode, result.stderr) == (1, message), spec
    assert run(cluster, "sbatch", "--array", "0-10", "--wrap", "true", cwd=work).returncode == 0
    config = run(cluster, "scontrol", "show", "config").stdout.splitlines()
    recorded = (DATA / "commands_and_outputs.txt").read_text().splitlines()
    keys = r"(MaxArraySize|MaxJobCount|MinJobAge|SLURM_VERSION) "
    for line in (x for x in recorded if re.match(keys, x)):
        key = line.split()[0]
        ours = next(x for x in config if x.split()[0] == key)
        assert ours.index("= ") == line.index("= "), (ours, line)
    assert "MaxArraySize            = 11" in config
    assert "MinJobAge               = 300 sec" in config
    assert "SLURM_VERSION           = 22.05.8" in config


def test_bad_partition_and_unknown_option(cluster, work):
    result = run(cluster, "sbatch", "--partition", "nosuch", "--wrap", "true", cwd=work)
    assert result.returncode == 1
    assert result.stderr == (
        "sbatch: error: invalid partition specified: nosuch\n"
        "sbatch: error: Batch job submission failed: Invalid partition name specified\n"
    )
    result = run(cluster, "sbatch", "--foo", "--wrap", "true", cwd=work)
    assert result.returncode == 1
    assert result.stderr.splitlines()[0] == "sbatch: unrecognized option '--foo'"
    assert cluster.jobs() == []


def test_array_throttle_and_element_job_ids(cluster, work):
    base = sbatch(
        cluster,
        "-a",
        "0-5%2",
        "-o",
        "o_%A_%a",
        "--wrap",
        'echo "$SLURM_ARRAY_JOB_ID $SLURM_ARRAY_TASK_ID"; sleep 0.3',
        cwd=work,
    )
    most_running = 0
    job_ids = {}
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        out = run(cluster, "squeue", "-h", "-r", "-t", "all", "-o", "%K|%A|%F|%T").stdout
        rows = [line.split("|") for line in out.splitlines()]
        most_running = max(most_running, sum(1 for r in rows if r[3] == "RUNNING"))
        job_ids.update({r[0]: r[1] for r in rows if r[3] != "PENDING"})
        assert all(r[2] == base for r in rows)
        if len(rows) == 6 and all(r[3] == "COMPLETED" for r in rows):
            break
        time.sleep(0.05)
    else:
        raise AssertionError(f"array did not finish: {out}")
    assert most_running == 2
    assert len(set(job_ids.values())) == 6 and base in job_ids.values()
    for task in range(6):
        assert (work / f"o_{base}_{task}").read_text() == f"{base} {task}\n"


def test_scancel_ids_names_and_running_jobs(cluster, work):
    cluster.set_config(slots=1)
    running = sbatch(cluster, "--wrap", "echo $$ > pid; exec sleep 30", cwd=work)
    array = sbatch(cluster, "-J", "arr", "-a", "0-2", "--wrap", "true", cwd=work)
    held = sbatch(cluster, "-J", "h", "--hold", "--wrap", "true", cwd=work)
    deadline = time.monotonic() + DEADLINE_S
    while not (work / "pid").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    pid = int((work / "pid").read_text())
    assert run(cluster, "scancel", f"{array}_1").returncode == 0
    assert run(cluster, "scancel", "--name", "h").returncode == 0
    assert states(cluster)[f"{array}_1"] == "CANCELLED"
    assert states(cluster)[held] == "CANCELLED"
    assert states(cluster)[f"{array}_0"] == "PENDING"
    assert run(cluster, "scancel", running, array).returncode == 0
    assert {states(cluster)[k] for k in (running, f"{array}_0", f"{array}_2")} == {"CANCELLED"}
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.05)
    assert not _alive(pid)
    assert run(cluster, "squeue", "-h").stdout == ""


def _alive(pid):
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


def test_fault_error_state_hits_jobs_by_submission_index(cluster, work):
    fault = Fault(FaultKind.ERROR_STATE, job=1, times=2, state="NODE_FAIL")
    cluster.add_fault(fault)
    script = "#!/bin/sh\ntouch ran-$SLURM_JOB_ID\n"
    ids = [sbatch(cluster, cwd=work, input=script) for _ in range(4)]
    assert [wait_ended(cluster, i) for i in ids] == [
        "COMPLETED",
        "NODE_FAIL",
        "NODE_FAIL",
        "COMPLETED",
    ]
    assert sorted(p.name for p in work.glob("ran-*")) == sorted(f"ran-{i}" for i in ids[::3])
    assert [j.submission for j in cluster.jobs()] == [0, 1, 2, 3]
    assert cluster.times_fired(fault) == 2
    assert run(cluster, "squeue", "-h").stdout == ""


def test_fault_held_pending_with_reason(cluster, work):
    reason = "launch failed requeued held"
    cluster.add_fault({"kind": "error_state", "job": 0, "state": "PENDING", "reason": reason})
    job_id = sbatch(cluster, "--wrap", "touch ran", cwd=work)
    for _ in range(3):
        listing = run(cluster, "squeue", "-h", "-o", "%i|%T|%r").stdout
        assert listing == f"{job_id}|PENDING|{reason}\n"
    run(cluster, "scancel", job_id)
    assert states(cluster)[job_id] == "CANCELLED"
    assert not (work / "ran").exists()


def test_fault_vanish_and_crash_in_array(cluster, work):
    cluster.add_fault(Fault(FaultKind.VANISH, job=2))
    cluster.add_fault(Fault(FaultKind.CRASH, job=3))
    single = sbatch(cluster, "--wrap", "true", cwd=work)
    base = sbatch(cluster, "-a", "0-3", "--wrap", "touch ran-$SLURM_ARRAY_TASK_ID", cwd=work)
    assert wait_ended(cluster, single) == "COMPLETED"
    for task in (0, 3):
        assert wait_ended(cluster, f"{base}_{task}") == "COMPLETED"
    assert wait_ended(cluster, f"{base}_2") == "FAILED"
    assert f"{base}_1" not in states(cluster)
    assert [j.submission for j in cluster.jobs()] == [0, 1, 3, 4]
    assert sorted(p.name for p in work.glob("ran-*")) == ["ran-0", "ran-3"]


def test_fault_crash_after_a_delay_kills_the_process_group(cluster, work):
    cluster.add_fault(Fault(FaultKind.CRASH, job=1, seconds=0.5))
    script = "sleep 30 & echo $! > child; echo started > started; sleep 5; touch finished"
    spared = sbatch(cluster, "--wrap", "true", cwd=work)
    job_id = sbatch(cluster, "--wrap", script, cwd=work)
    started = time.monotonic()
    assert states(cluster)[job_id] == "RUNNING"  # started by this call, not killed at once
    assert wait_ended(cluster, job_id) == "FAILED"
    assert time.monotonic() - started < 4.0
    assert wait_ended(cluster, spared) == "COMPLETED"
    assert (work / "started").exists() and not (work / "finished").exists()
    child = int((work / "child").read_text())
    deadline = time.monotonic() + DEADLINE_S
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child)
    exit_code = run(cluster, "scontrol", "show", "job", job_id).stdout
    assert "JobState=FAILED Reason=NonZeroExitCode ExitCode=137:0" in exit_code


def test_fault_crash_after_a_delay_spares_a_job_that_ended(cluster, work):
    cluster.add_fault(Fault(FaultKind.CRASH, job=0, seconds=20))
    job_id = sbatch(cluster, "--wrap", "touch done", cwd=work)
    assert wait_ended(cluster, job_id) == "COMPLETED"
    assert (work / "done").exists()
    group = cluster.jobs()[0].pid  # the job's process group: its watchdog is gone too
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


def test_fault_command_fails_then_recovers(cluster, work):
    stderr = "sbatch: error: Batch job submission failed: Socket timed out on send/recv operation"
    cluster.add_fault(Fault(FaultKind.COMMAND_FAILS, program="sbatch", times=2, stderr=stderr))
    for _ in range(2):
        result = run(cluster, "sbatch", "--wrap", "true", cwd=work)
        assert (result.returncode, result.stdout, result.stderr) == (1, "", stderr + "\n")
    assert cluster.jobs() == []
    assert sbatch(cluster, "--wrap", "true", cwd=work) == "1"
    assert [c["argv"][0] for c in cluster.calls("sbatch")] == ["--wrap", "--wrap", "--parsable"]


def test_fault_command_hangs(cluster):
    cluster.add_fault(Fault(FaultKind.COMMAND_HANGS, program="squeue", seconds=1.0))
    start = time.monotonic()
    assert run(cluster, "squeue").returncode == 0
    assert time.monotonic() - start >= 1.0
    start = time.monotonic()
    run(cluster, "squeue")
    assert time.monotonic() - start < 1.0
    assert len(cluster.calls("squeue")) == 2


def test_pending_s_and_min_job_age(cluster, work):
    cluster.set_config(pending_s=0.6, min_job_age_s=0.5)
    job_id = sbatch(cluster, "--wrap", "true", cwd=work)
    assert states(cluster)[job_id] == "PENDING"
    assert wait_ended(cluster, job_id) == "COMPLETED"
    time.sleep(0.6)
    assert job_id not in states(cluster)
    assert os.path.exists(work / f"slurm-{job_id}.out")
