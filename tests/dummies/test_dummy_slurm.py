"""The dummy Slurm, driven through its installed programs like a real one."""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

from batchpool.slurm.squeue import (
    SACCT_FIELDS,
    JobUsage,
    is_sacct_unavailable,
    parse_sacct,
    parse_squeue,
    parse_usage,
    sacct_argv,
    sacct_statuses,
    squeue_argv,
    usage_argv,
)
from batchpool.testing import Fault, FaultKind, Phase
from helpers.dummy_programs import DEADLINE_S, run, sbatch
from helpers.dummy_programs import slurm_states as states
from helpers.dummy_programs import wait_slurm_ended as wait_ended

DATA = Path(__file__).resolve().parent.parent / "data" / "slurm"


def test_job_runs_script_and_completes(dummy_cluster, work):
    script = work / "job.sh"
    script.write_text(
        "#!/bin/sh\n#SBATCH --job-name=fromdirective\n"
        'echo "$SLURM_JOB_ID $SLURM_JOB_NAME $SLURM_CLUSTER_NAME $FOO" > result.txt\n'
    )
    env = {**dummy_cluster.environment(), "FOO": "exported"}
    result = run(dummy_cluster, "sbatch", str(script), cwd=work, env=env)
    assert result.returncode == 0, result.stderr
    job_id = re.fullmatch(r"Submitted batch job (\d+)\n", result.stdout).group(1)
    assert wait_ended(dummy_cluster, job_id) == "COMPLETED"
    assert (work / "result.txt").read_text() == f"{job_id} fromdirective dummy exported\n"
    assert (work / f"slurm-{job_id}.out").exists()
    assert run(dummy_cluster, "squeue", "-h").stdout == ""


def wait_for_file(path, deadline_s=DEADLINE_S):
    """Wait for ``path`` to appear, looking only at the filesystem (no dummy program runs)."""
    deadline = time.monotonic() + deadline_s
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return path.exists()


def test_the_queue_moves_on_without_anybody_calling_squeue(dummy_cluster, work):
    """One slot: the second job waits for the first, then starts by itself, as on a real
    cluster; a crash fault scheduled for it happens by itself too."""
    dummy_cluster.set_config(slots=1)
    dummy_cluster.add_fault(Fault(FaultKind.CRASH, job=1, seconds=0.5))
    sbatch(dummy_cluster, "--wrap", "sleep 0.5; touch first", cwd=work)
    second = sbatch(dummy_cluster, "--wrap", "touch second; sleep 30", cwd=work)
    assert [j.phase for j in dummy_cluster.jobs()] == [Phase.RUNNING, Phase.PENDING]
    assert wait_for_file(work / "second")
    assert (work / "first").exists()
    deadline = time.monotonic() + DEADLINE_S
    while dummy_cluster.jobs()[1].phase is not Phase.ENDED and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [c["program"] for c in dummy_cluster.calls()] == ["sbatch", "sbatch"]
    assert states(dummy_cluster)[second] == "FAILED"


def test_job_ids_increase_and_failed_job_shows_failed(dummy_cluster, work):
    first = sbatch(dummy_cluster, "--wrap", "exit 3", cwd=work)
    second = sbatch(dummy_cluster, "--wrap", "true", cwd=work)
    assert int(second) == int(first) + 1
    assert wait_ended(dummy_cluster, first) == "FAILED"
    assert wait_ended(dummy_cluster, second) == "COMPLETED"


def test_output_patterns_chdir_and_stdin_script(dummy_cluster, work, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    job_id = sbatch(
        dummy_cluster,
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
    assert wait_ended(dummy_cluster, job_id) == "COMPLETED"
    assert (other / f"pat_{job_id}_%.out").read_text() == f"out\n{other}\n"
    assert (other / f"err_{job_id}").read_text() == "err\n"


def test_wrappers_need_no_environment(dummy_cluster, work):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(work)}
    result = run(
        dummy_cluster, "sbatch", "--wrap", 'echo "${PYTHONPATH-unset}" > pp', cwd=work, env=env
    )
    assert result.returncode == 0, result.stderr
    job_id = result.stdout.split()[-1]
    assert wait_ended(dummy_cluster, job_id) == "COMPLETED"
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


def test_squeue_all_format_matches_recorded(dummy_cluster, work):
    dummy_cluster.set_config(slots=2)
    sbatch(dummy_cluster, "-J", "run", "-a", "20-21", "--wrap", "sleep 5", cwd=work)
    sbatch(dummy_cluster, "-J", "fmt", "-a", "0-5%2", "--wrap", "true", cwd=work)
    header, rows = recorded_squeue_all("squeue_all.txt")
    result = run(dummy_cluster, "squeue", "-t", "all", "-o", "%all")
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


def test_explicit_formats_as_recorded(dummy_cluster, work):
    dummy_cluster.set_config(slots=0)
    base = sbatch(dummy_cluster, "-J", "rec", "-a", "0-3%2", "--wrap", "sleep 5", cwd=work)
    single = sbatch(dummy_cluster, "-J", "rec2", "--wrap", "sleep 5", cwd=work)
    held = sbatch(dummy_cluster, "--hold", "-J", "rec3", "--wrap", "true", cwd=work)
    out = run(dummy_cluster, "squeue", "-h", "-o", "%i|%A|%K|%j|%T|%r|%P").stdout.splitlines()
    assert out[0] == f"{base}_[0-3%2]|{base}|0-3%2|rec|PENDING|Resources|local"
    assert out[1] == f"{single}|{single}|N/A|rec2|PENDING|Priority|local"
    assert out[2] == f"{held}|{held}|N/A|rec3|PENDING|JobHeldUser|local"
    per_element = run(
        dummy_cluster, "squeue", "-h", "-r", "-o", "%i|%A|%K|%j|%T"
    ).stdout.splitlines()
    assert per_element[:4] == [f"{base}_{i}|{base}|{i}|rec|PENDING" for i in range(4)]
    by_name = run(dummy_cluster, "squeue", "-h", "--name", "rec", "-r", "-o", "%i|%T|%r").stdout
    assert by_name.splitlines()[1] == f"{base}_1|PENDING|Resources"
    header = run(dummy_cluster, "squeue", "--name", "nosuch").stdout
    assert header == (
        "             JOBID PARTITION     NAME     USER ST       TIME  NODES NODELIST(REASON)\n"
    )
    assert run(dummy_cluster, "squeue", "-h", "--name", "nosuch").stdout == ""


def test_the_status_query_of_the_slurm_backend(dummy_cluster, work):
    """``squeue -h -r -t all --name A,B -o FORMAT``, as batchpool runs it: every job and
    element of the named jobs, ended ones too, and no other job."""
    done = sbatch(dummy_cluster, "-J", "a", "--wrap", "true", cwd=work)
    assert wait_ended(dummy_cluster, done) == "COMPLETED"
    dummy_cluster.set_config(slots=1)
    running = sbatch(dummy_cluster, "-J", "b", "--wrap", "sleep 30", cwd=work)
    array = sbatch(dummy_cluster, "-J", "a", "-a", "0-1", "--wrap", "true", cwd=work)
    sbatch(dummy_cluster, "-J", "other", "--wrap", "true", cwd=work)
    result = subprocess.run(
        squeue_argv(dummy_cluster.squeue_path, ["a", "b"]),
        capture_output=True,
        text=True,
        env=dummy_cluster.environment(),
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    lines = {line.job_id: line for line in parse_squeue(result.stdout)}
    assert set(lines) == {done, running, f"{array}_0", f"{array}_1"}
    assert (lines[done].state, lines[running].state) == ("COMPLETED", "RUNNING")
    assert lines[f"{array}_1"].array_task_id == 1
    assert lines[f"{array}_1"].state == "PENDING"
    assert {line.name for line in lines.values()} == {"a", "b"}


def test_unknown_job_id_as_recorded(dummy_cluster, work):
    result = run(dummy_cluster, "squeue", "--jobs", "999999")
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == "slurm_load_jobs error: Invalid job id specified\n"
    assert run(dummy_cluster, "scancel", "999999").returncode == 0


def test_max_array_size_and_scontrol_config(dummy_cluster, work):
    dummy_cluster.set_config(max_array_size=11)
    message = "sbatch: error: Batch job submission failed: Invalid job array specification\n"
    for spec in ("0-11", "5-2", "x"):
        result = run(dummy_cluster, "sbatch", "--array", spec, "--wrap", "true", cwd=work)
        assert (result.returncode, result.stderr) == (1, message), spec
    assert (
        run(dummy_cluster, "sbatch", "--array", "0-10", "--wrap", "true", cwd=work).returncode == 0
    )
    config = run(dummy_cluster, "scontrol", "show", "config").stdout.splitlines()
    recorded = (DATA / "commands_and_outputs.txt").read_text().splitlines()
    keys = r"(MaxArraySize|MaxJobCount|MinJobAge|SLURM_VERSION) "
    for line in (x for x in recorded if re.match(keys, x)):
        key = line.split()[0]
        ours = next(x for x in config if x.split()[0] == key)
        assert ours.index("= ") == line.index("= "), (ours, line)
    assert "MaxArraySize            = 11" in config
    assert "MinJobAge               = 300 sec" in config
    assert "SLURM_VERSION           = 22.05.8" in config


def test_bad_partition_and_unknown_option(dummy_cluster, work):
    result = run(dummy_cluster, "sbatch", "--partition", "nosuch", "--wrap", "true", cwd=work)
    assert result.returncode == 1
    assert result.stderr == (
        "sbatch: error: invalid partition specified: nosuch\n"
        "sbatch: error: Batch job submission failed: Invalid partition name specified\n"
    )
    result = run(dummy_cluster, "sbatch", "--foo", "--wrap", "true", cwd=work)
    assert result.returncode == 1
    assert result.stderr.splitlines()[0] == "sbatch: unrecognized option '--foo'"
    assert dummy_cluster.jobs() == []


def test_array_throttle_and_element_job_ids(dummy_cluster, work):
    base = sbatch(
        dummy_cluster,
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
        out = run(dummy_cluster, "squeue", "-h", "-r", "-t", "all", "-o", "%K|%A|%F|%T").stdout
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


def test_scancel_ids_names_and_running_jobs(dummy_cluster, work):
    dummy_cluster.set_config(slots=1)
    running = sbatch(dummy_cluster, "--wrap", "echo $$ > pid; exec sleep 30", cwd=work)
    array = sbatch(dummy_cluster, "-J", "arr", "-a", "0-2", "--wrap", "true", cwd=work)
    held = sbatch(dummy_cluster, "-J", "h", "--hold", "--wrap", "true", cwd=work)
    deadline = time.monotonic() + DEADLINE_S
    while not (work / "pid").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    pid = int((work / "pid").read_text())
    assert run(dummy_cluster, "scancel", f"{array}_1").returncode == 0
    assert run(dummy_cluster, "scancel", "--name", "h").returncode == 0
    assert states(dummy_cluster)[f"{array}_1"] == "CANCELLED"
    assert states(dummy_cluster)[held] == "CANCELLED"
    assert states(dummy_cluster)[f"{array}_0"] == "PENDING"
    assert run(dummy_cluster, "scancel", running, array).returncode == 0
    assert {states(dummy_cluster)[k] for k in (running, f"{array}_0", f"{array}_2")} == {
        "CANCELLED"
    }
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.05)
    assert not _alive(pid)
    assert run(dummy_cluster, "squeue", "-h").stdout == ""


def _alive(pid):
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


def test_pending_s_and_min_job_age(dummy_cluster, work):
    dummy_cluster.set_config(pending_s=0.6, min_job_age_s=0.5)
    job_id = sbatch(dummy_cluster, "--wrap", "true", cwd=work)
    assert states(dummy_cluster)[job_id] == "PENDING"
    assert wait_ended(dummy_cluster, job_id) == "COMPLETED"
    time.sleep(0.6)
    assert job_id not in states(dummy_cluster)
    assert os.path.exists(work / f"slurm-{job_id}.out")


def recorded_sacct(command: str) -> list[str]:
    """The lines the real Slurm printed for the command of ``sacct_accounting_real.txt``
    that starts with ``command``."""
    lines = (DATA / "sacct_accounting_real.txt").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("$ " + command))
    end = next(i for i in range(start, len(lines)) if lines[i].startswith("rc="))
    return lines[start + 1 : end]


def test_sacct_with_accounting_prints_as_the_real_one(dummy_cluster, work):
    """The dummy's ``sacct`` (accounting on, as the CI Slurm) against the real one's
    recorded answer for jobs that ended alike, field by field (the node's name aside,
    and the reason only of jobs that ran: the dummy forgets why a job waited)."""
    dummy_cluster.set_config(slots=2, accounting=True)
    done = sbatch(dummy_cluster, "--wrap", "exit 0", cwd=work)
    failed = sbatch(dummy_cluster, "--wrap", "exit 3", cwd=work)
    running = sbatch(dummy_cluster, "--wrap", "sleep 30", cwd=work)
    held = sbatch(dummy_cluster, "--hold", "--wrap", "true", cwd=work)
    for job in (done, failed):
        wait_ended(dummy_cluster, job)
    run(dummy_cluster, "scancel", running, held)
    ours = {done: "3829", failed: "3830", running: "3833", held: "3834"}
    argv = sacct_argv("sacct", list(ours))
    answer = run(dummy_cluster, *argv)
    assert answer.returncode == 0, answer.stderr
    real = {line.split("|")[0]: line.split("|") for line in recorded_sacct("sacct -n -P -X")}
    dummy = [line.split("|") for line in answer.stdout.splitlines()]
    assert sorted(fields[0] for fields in dummy) == sorted(ours)
    for fields in dummy:
        expected = real[ours[fields[0]]]
        assert len(fields) == len(expected) == len(SACCT_FIELDS.split(","))
        assert fields[1:3] == expected[1:3], (fields, expected)
        assert (fields[3] == "None assigned") == (expected[3] == "None assigned")
        if expected[3] != "None assigned":
            assert fields[4] == expected[4]
    statuses = sacct_statuses(parse_sacct(answer.stdout), list(ours))
    endings = {ours[job]: (s.ending, s.exit_code, s.signal) for job, s in statuses.items()}
    real_statuses = sacct_statuses(
        parse_sacct("\n".join("|".join(f) for f in real.values())), list(ours.values())
    )
    assert endings == {job: (s.ending, s.exit_code, s.signal) for job, s in real_statuses.items()}


def test_sacct_usage_lines_parse_as_the_real_ones(dummy_cluster, work):
    dummy_cluster.set_config(accounting=True)
    job = sbatch(dummy_cluster, "--wrap", "sleep 1", cwd=work)
    wait_ended(dummy_cluster, job)
    answer = run(dummy_cluster, *usage_argv("sacct", [job]))
    assert answer.returncode == 0, answer.stderr
    assert [line.split("|")[0] for line in answer.stdout.splitlines()] == [job, f"{job}.batch"]
    assert parse_usage(answer.stdout)[job].elapsed_s >= 1
    real = parse_usage("\n".join(recorded_sacct("sacct -n -P -j")))
    assert real["3836"] == JobUsage(elapsed_s=6, max_rss_kb=219968)  # 200 MB touched
    assert real["3832"] == JobUsage(elapsed_s=2, max_rss_kb=144880)  # killed at --mem=200M


def test_sacct_without_accounting_as_recorded(dummy_cluster, work):
    job = sbatch(dummy_cluster, "--wrap", "true", cwd=work)
    answer = run(dummy_cluster, *sacct_argv("sacct", [job]))
    assert (answer.returncode, answer.stdout) == (1, "")
    assert is_sacct_unavailable(answer.stderr)
