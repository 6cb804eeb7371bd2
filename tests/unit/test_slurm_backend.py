"""Unit tests of batchpool.slurm, batchpool.slurm.array and batchpool.slurm.squeue.

Parsers run on output recorded from a real Slurm 22.05 (tests/data/slurm/). Backends run
against fake ``sbatch``/``squeue``/``scancel``/``scontrol`` programs written into tmp_path,
which log their argv, stdin and environment and print a given answer.
"""

from __future__ import annotations

import shlex
import time
from pathlib import Path
from typing import Optional

import pytest

import batchpool.proto_pool
from batchpool._layout import job_id_from_environment
from batchpool.backend import Job, JobRequest, JobState, JobStatus
from batchpool.commands import CommandPolicy
from batchpool.errors import SchedulerError
from batchpool.slurm import (
    SlurmBackend,
    is_definitive_rejection,
    parse_sbatch_parsable,
    scheduler_environment,
)
from batchpool.slurm.array import SlurmArrayBackend, array_spec, parse_max_array_size
from batchpool.slurm.squeue import (
    SqueueLine,
    expand_array_indices,
    filter_stderr_noise,
    job_state,
    job_statuses,
    parse_squeue,
    squeue_argv,
)
from helpers.fake_programs import FakeProgram

DATA = Path(__file__).resolve().parent.parent / "data" / "slurm"
FAST = CommandPolicy(timeout_s=20.0, num_retries=0, backoff_s=0.0)


# -- helpers ------------------------------------------------------------------------------


def recorded_blocks(name: str) -> list[tuple[str, str, Optional[int]]]:
    """``(command, output, exit code)`` of each ``$ command`` in a recorded file.

    The exit code is None where none was recorded (a piped command). Lines
    ``... (lines ... cut here)`` mark output cut when it was recorded; they are dropped.
    """
    blocks, command, output = [], None, []
    for line in (DATA / name).read_text().splitlines() + ["$ "]:
        if line.startswith("$ ") or line.startswith("rc="):
            if command is not None:
                rc = int(line[3:]) if line.startswith("rc=") else None
                blocks.append((command, "".join(output), rc))
            command, output = (line[2:], []) if line.startswith("$ ") else (None, [])
        elif not line.startswith("... ("):
            output.append(line + "\n")
    return blocks


def recorded_output(name: str, command_start: str) -> tuple[str, Optional[int]]:
    matches = [(out, rc) for cmd, out, rc in recorded_blocks(name) if cmd.startswith(command_start)]
    assert len(matches) == 1, command_start
    return matches[0]


def with_empty_node(text: str) -> str:
    """Lines recorded in the older format ``%i|%A|%K|%j|%T|%r`` in SQUEUE_FORMAT
    (``%N`` after ``%K``), with the node not recorded: empty."""
    return "".join(
        "|".join([*line.split("|", 3)[:3], "", line.split("|", 3)[3]]) + "\n"
        for line in text.splitlines()
        if line.strip()
    )


SQUEUE_R = with_empty_node(
    recorded_output("commands_and_outputs.txt", 'squeue -h -r -o "%i|%A|%K|%j|%T|%r"')[0]
)


def wide_to_our_format(name: str) -> str:
    """``squeue --format %all`` lines rewritten into SQUEUE_FORMAT by the header's names.

    The wide format repeats JOBID: the first is ``%i``, the second the unique id (``%A``).
    """
    header, *rows = (DATA / name).read_text().splitlines()
    columns = header.split("|")
    first = {c: columns.index(c) for c in columns}
    unique_id = [i for i, c in enumerate(columns) if c == "JOBID"][1]
    out = []
    for row in rows:
        f = row.split("|")
        fields = (
            f[first["JOBID"]],
            f[unique_id],
            f[first["ARRAY_TASK_ID"]],
            f[first["NODELIST"]],
            f[first["NAME"]],
            f[first["STATE"]],
            f[first["REASON"]],
        )
        out.append("|".join(fields))
    return "\n".join(out) + "\n"


NAME = "bp_20261121T054154_77_a1b2c3"
LOG = Path("/work/pool_x/logs")


def request(count: int = 1) -> JobRequest:
    return JobRequest(
        pool_dir=Path("/work/pool_x"),
        job_name=NAME,
        count=count,
        python_path="/venv/bin/python",
        log_dir=LOG,
    )


def job(job_id: str, name: str = NAME) -> Job:
    return Job(job_id, name, Path("o"), Path("e"))


# -- squeue: command line and parser --------------------------------------------------------


def test_squeue_argv_has_an_explicit_format_all_states_and_one_line_per_element():
    assert squeue_argv("/opt/squeue", ["mymap"]) == [
        "/opt/squeue",
        "-h",
        "-r",
        "-t",
        "all",
        "--name",
        "mymap",
        "-o",
        "%i|%A|%K|%N|%j|%T|%r",
    ]


def test_squeue_argv_asks_for_several_names_in_one_call():
    argv = squeue_argv("squeue", ["bp_a", "bp_b", "bp_c"])
    assert argv[argv.index("--name") + 1] == "bp_a,bp_b,bp_c"
    assert argv.count("--name") == 1


def test_parse_recorded_squeue_with_one_line_per_element():
    lines = parse_squeue(SQUEUE_R)
    assert len(lines) == 21
    by_id = {line.job_id: line for line in lines}
    assert by_id["7055_2"] == SqueueLine("7055_2", "7055", 2, "rec", "PENDING", "Priority")
    assert by_id["7055_2"].array_job_id == "7055"
    assert by_id["7056"] == SqueueLine("7056", "7056", None, "rec2", "PENDING", "Priority")
    assert by_id["7056"].array_job_id is None
    assert by_id["7057"].reason == "JobHeldUser"
    running = by_id["6866_188"]
    assert (running.unique_job_id, running.array_task_id, running.state) == ("7058", 188, "RUNNING")
    assert running.name == "2026-11-21T06-05-37"


def test_statuses_from_recorded_squeue_answer_only_the_jobs_asked_for():
    statuses = job_statuses(parse_squeue(SQUEUE_R), ["7055_3", "7057", "6866_190", "6866_999"])
    assert statuses == {
        "7055_3": JobStatus(JobState.PENDING, "PENDING Priority"),
        "7057": JobStatus(JobState.PENDING, "PENDING JobHeldUser", unusual_wait="JobHeldUser"),
        "6866_190": JobStatus(JobState.RUNNING, "RUNNING None"),
    }


def test_parse_recorded_collapsed_pending_arrays_expands_them():
    # Recorded without -r and with a 7th field (%P, partition), which we drop here.
    output, rc = recorded_output("commands_and_outputs.txt", 'squeue -h -o "%i|%A|%K|%j|%T|%r|%P"')
    assert rc == 0
    text = with_empty_node("".join(line.rsplit("|", 1)[0] + "\n" for line in output.splitlines()))
    ids = [line.job_id for line in parse_squeue(text)]
    assert ids[:3] == ["6866_204", "6866_205", "6866_206"]
    assert ids.count("6866_999") == 1
    assert [i for i in ids if i.startswith("7055_")] == ["7055_0", "7055_1", "7055_2", "7055_3"]
    assert len(ids) == (999 - 204 + 1) + 4 + 2 + 3


@pytest.mark.parametrize(
    ("name", "num_lines", "first_id", "last_id"),
    [
        ("squeue_all.txt", 78 + 6 + 2, "2_22", "2_21"),
        ("squeue_all_array_name.txt", 6, "23_0", "23_5"),
        ("squeue_all_array_running.txt", 63, "2513_39", "2513_38"),
        ("squeue_all_during_pp.txt", 67, "2513_33", "2513_99"),
    ],
)
def test_parse_recorded_wide_format_rewritten_into_ours(name, num_lines, first_id, last_id):
    lines = parse_squeue(wide_to_our_format(name))
    assert len(lines) == num_lines
    assert (lines[0].job_id, lines[-1].job_id) == (first_id, last_id)
    assert {line.state for line in lines} <= {"PENDING", "RUNNING"}
    assert {line.node for line in lines if line.state == "RUNNING"} <= {"vm"}
    assert {line.node for line in lines if line.state == "PENDING"} == {""}


def test_parse_squeue_of_no_job_is_empty():
    output, rc = recorded_output("commands_and_outputs.txt", "squeue -h --name nosuchname")
    assert (output, rc) == ("", 0)
    assert parse_squeue(output) == []


def test_parse_squeue_keeps_a_separator_inside_the_name_and_cuts_cancelled_by():
    (line,) = parse_squeue("12|12|N/A|n1|a|b|CANCELLED by 0|None\n")
    assert (line.name, line.state, line.reason, line.node) == ("a|b", "CANCELLED", "None", "n1")


def test_parse_squeue_rejects_a_line_of_another_format():
    with pytest.raises(ValueError, match="7"):
        parse_squeue("7055|7055|0|rec|PENDING|None\n")


@pytest.mark.parametrize(
    ("spec", "indices"),
    [
        ("[0-3%2]", [0, 1, 2, 3]),
        ("[204-206]", [204, 205, 206]),
        ("[7]", [7]),
        ("1,3,5-9:2", [1, 3, 5, 7, 9]),
        ("[0-5%2,9]", [0, 1, 2, 3, 4, 5]),
    ],
)
def test_expand_array_indices(spec, indices):
    assert expand_array_indices(spec) == indices


# -- state map -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "reason", "expected"),
    [
        ("PENDING", "Priority", JobState.PENDING),
        ("PENDING", "Resources", JobState.PENDING),
        ("PENDING", "Dependency", JobState.PENDING),
        ("PENDING", "JobHeldUser", JobState.PENDING),
        ("PENDING", "QOSMaxJobsPerUserLimit", JobState.PENDING),
        ("PENDING", "AssocGrpCpuLimit", JobState.PENDING),
        ("PENDING", "JobArrayTaskLimit", JobState.PENDING),
        ("PENDING", "JobHeldAdmin", JobState.PENDING),
        ("PENDING", "job requeued in held state", JobState.PENDING),
        ("PENDING", "BeginTime", JobState.PENDING),
        ("PENDING", "PartitionDown", JobState.PENDING),
        ("PENDING", "(PartitionInactive)", JobState.PENDING),
        ("PENDING", "NodeDown", JobState.PENDING),
        ("PENDING", "ReqNodeNotAvail, Reserved for maintenance", JobState.PENDING),
        ("PENDING", "launch failed requeued held", JobState.FAILED),
        ("PENDING", "JobHoldMaxRequeue", JobState.FAILED),
        ("REQUEUE_HOLD", "JobHoldMaxRequeue", JobState.FAILED),
        ("PENDING", "JobLaunchFailure", JobState.FAILED),
        ("PENDING", "SystemFailure", JobState.FAILED),
        ("PENDING", "BadConstraints", JobState.FAILED),
        ("PENDING", "PartitionTimeLimit", JobState.FAILED),
        ("PENDING", "InvalidAccount", JobState.FAILED),
        ("PENDING", "InvalidQOS", JobState.FAILED),
        ("PENDING", "QOSMaxWallDurationPerJobLimit", JobState.FAILED),
        ("PENDING", "AssocMaxCpuPerNode", JobState.FAILED),
        ("REQUEUED", "None", JobState.PENDING),
        ("REQUEUE_HOLD", "None", JobState.PENDING),
        ("SUSPENDED", "None", JobState.PENDING),
        ("RESV_DEL_HOLD", "None", JobState.PENDING),
        ("RUNNING", "None", JobState.RUNNING),
        ("COMPLETING", "None", JobState.RUNNING),
        ("CONFIGURING", "None", JobState.RUNNING),
        ("STOPPED", "None", JobState.RUNNING),
        ("COMPLETED", "None", JobState.ENDED),
        ("CANCELLED", "None", JobState.ENDED),
        ("CANCELLED", "JobHeldAdmin", JobState.ENDED),
        ("FAILED", "NonZeroExitCode", JobState.ENDED),
        ("FAILED", "JobLaunchFailure", JobState.ENDED),
        ("BOOT_FAIL", "None", JobState.ENDED),
        ("NODE_FAIL", "NodeDown", JobState.ENDED),
        ("OUT_OF_MEMORY", "OutOfMemory", JobState.ENDED),
        ("TIMEOUT", "TimeLimit", JobState.ENDED),
        ("DEADLINE", "None", JobState.ENDED),
        ("PREEMPTED", "None", JobState.ENDED),
        ("SPECIAL_EXIT", "None", JobState.ENDED),
        ("REVOKED", "None", JobState.ENDED),
        ("SOMETHING_NEW", "None", JobState.PENDING),
    ],
)
def test_job_state(state, reason, expected):
    assert job_state(state, reason) is expected


def test_a_running_job_is_not_failed_by_a_reason_left_from_pending():
    assert job_state("RUNNING", "JobHeldAdmin") is JobState.RUNNING


# -- stderr noise --------------------------------------------------------------------------


def test_filter_stderr_noise_drops_slurmstepd_chatter_and_keeps_why_a_job_died():
    text = (
        "slurmstepd: error: Unable to create TMPDIR [/scratch/tmp/123]: No such file\n"
        "slurmstepd: error: Setting TMPDIR to /tmp\n"
        "slurmstepd-node7: error: couldn't chdir to `/home/a': No such file: going to /tmp\n"
        "Traceback (most recent call last):\n"
        "MemoryError\n"
        "slurmstepd: error: Detected 1 oom_kill event in StepId=123.batch.\n"
        "slurmstepd: error: *** JOB 123 ON node7 CANCELLED AT 2026-11-21T05:20:09 "
        "DUE TO TIME LIMIT ***\n"
    )
    assert filter_stderr_noise(text) == (
        "Traceback (most recent call last):\n"
        "MemoryError\n"
        "slurmstepd: error: Detected 1 oom_kill event in StepId=123.batch.\n"
        "slurmstepd: error: *** JOB 123 ON node7 CANCELLED AT 2026-11-21T05:20:09 "
        "DUE TO TIME LIMIT ***\n"
    )


def test_filter_stderr_noise_keeps_text_without_noise_unchanged():
    text = "a line\nslurmstepd: error: _get_primary_group: getpwnam_r() failed\nlast"
    assert filter_stderr_noise(text) == text


# -- environment of scheduler commands -----------------------------------------------------


def test_scheduler_environment_drops_the_drivers_job_and_keeps_preferences():
    environ = {
        "HOME": "/home/a",
        "PATH": "/usr/bin",
        "SLURM_JOB_ID": "99",
        "SLURM_ARRAY_TASK_ID": "3",
        "SLURM_CPUS_PER_TASK": "4",
        "SLURM_MEM_PER_NODE": "4000",
        "SLURM_NTASKS": "1",
        "SLURM_NODELIST": "n1",
        "SLURM_SUBMIT_DIR": "/home/a",
        "SLURM_CONF": "/etc/slurm/slurm.conf",
        "SLURM_CLUSTERS": "c1",
        "SBATCH_ACCOUNT": "physics",
        "SBATCH_PARTITION": "short",
        "SBATCH_ARRAY_INX": "0-9",
        "SBATCH_WAIT": "1",
        "SQUEUE_SORT": "-t",
    }
    assert scheduler_environment(environ) == {
        "HOME": "/home/a",
        "PATH": "/usr/bin",
        "SLURM_CONF": "/etc/slurm/slurm.conf",
        "SLURM_CLUSTERS": "c1",
        "SBATCH_ACCOUNT": "physics",
        "SBATCH_PARTITION": "short",
        "SQUEUE_SORT": "-t",
    }


# -- sbatch command lines ------------------------------------------------------------------


def test_sbatch_argv_of_one_job_per_worker_with_every_option():
    backend = SlurmBackend(
        partition="short",
        time="1:00:00",
        mem="4G",
        cpus_per_task=2,
        account="physics",
        qos="normal",
        sbatch_args=["--constraint", "avx2"],
        sbatch_path="/opt/sbatch",
    )
    assert backend.sbatch_argv(request()) == [
        "/opt/sbatch",
        "--parsable",
        "--job-name",
        NAME,
        "--output",
        "/work/pool_x/logs/%j.out",
        "--error",
        "/work/pool_x/logs/%j.err",
        "--partition",
        "short",
        "--time",
        "01:00:00",
        "--mem",
        "4096M",
        "--cpus-per-task",
        "2",
        "--account",
        "physics",
        "--qos",
        "normal",
        "--constraint",
        "avx2",
        "--wrap",
        "/venv/bin/python -m batchpool.worker /work/pool_x --job-id '{SLURM_JOB_ID}'",
    ]


def test_sbatch_argv_without_options_leaves_resources_to_the_cluster():
    assert SlurmBackend().sbatch_argv(request()) == [
        "sbatch",
        "--parsable",
        "--job-name",
        NAME,
        "--output",
        "/work/pool_x/logs/%j.out",
        "--error",
        "/work/pool_x/logs/%j.err",
        "--wrap",
        "/venv/bin/python -m batchpool.worker /work/pool_x --job-id '{SLURM_JOB_ID}'",
    ]


def test_sbatch_argv_of_an_array_has_one_element_per_worker_and_no_throttle():
    backend = SlurmArrayBackend(mem="1G", sbatch_args=["--nice=10"])
    assert backend.sbatch_argv(request(count=4)) == [
        "sbatch",
        "--parsable",
        "--job-name",
        NAME,
        "--array",
        "0-3",
        "--output",
        "/work/pool_x/logs/%A_%a.out",
        "--error",
        "/work/pool_x/logs/%A_%a.err",
        "--mem",
        "1024M",
        "--nice=10",
        "--wrap",
        "/venv/bin/python -m batchpool.worker /work/pool_x "
        "--job-id '{SLURM_ARRAY_JOB_ID}_{SLURM_ARRAY_TASK_ID}'",
    ]


def test_the_wrapped_command_quotes_paths_with_spaces():
    req = JobRequest(Path("/work/my pool"), NAME, 1, "/my venv/bin/python", Path("/w/l"))
    wrap = SlurmBackend().sbatch_argv(req)[-1]
    assert shlex.split(wrap) == [
        "/my venv/bin/python",
        "-m",
        "batchpool.worker",
        "/work/my pool",
        "--job-id",
        "{SLURM_JOB_ID}",
    ]


@pytest.mark.parametrize(
    ("backend", "sbatch_output", "env"),
    [
        (SlurmBackend(), "7056\n", {"SLURM_JOB_ID": "7056"}),
        (
            SlurmArrayBackend(),
            "7055\n",
            {"SLURM_JOB_ID": "7058", "SLURM_ARRAY_JOB_ID": "7055", "SLURM_ARRAY_TASK_ID": "2"},
        ),
    ],
)
def test_a_worker_names_itself_as_squeue_and_the_backend_name_its_job(backend, sbatch_output, env):
    """The job id the worker writes into its claims (from the template in --wrap and the
    job's variables) is the id the backend gave the job and squeue prints (``%i``)."""
    req = request(count=3)
    template = shlex.split(backend.sbatch_argv(req)[-1])[-1]
    named = job_id_from_environment(template, env)
    jobs = backend.jobs_of(req, parse_sbatch_parsable(sbatch_output))
    index = int(env.get("SLURM_ARRAY_TASK_ID", 0))
    assert jobs[index].job_id == named
    task = env.get("SLURM_ARRAY_TASK_ID", "N/A")
    line = f"{named}|{env['SLURM_JOB_ID']}|{task}|n1|{NAME}|RUNNING|None"
    assert list(job_statuses(parse_squeue(line), [named])) == [named]


def test_array_spec():
    assert array_spec(1) == "0-0"
    assert array_spec(100) == "0-99"
    assert array_spec(100, 7) == "0-99%7"
    with pytest.raises(ValueError):
        array_spec(0)
    with pytest.raises(ValueError):
        array_spec(3, 0)


def test_parse_sbatch_parsable():
    output, rc = recorded_output("commands_and_outputs.txt", "sbatch --parsable")
    assert rc == 0
    assert parse_sbatch_parsable(output) == "7055"
    assert parse_sbatch_parsable("123;cluster1\n") == "123"
    with pytest.raises(ValueError):
        parse_sbatch_parsable("Submitted batch job 7056\n")


def test_parse_max_array_size_from_recorded_scontrol():
    output, _ = recorded_output("commands_and_outputs.txt", "scontrol show config")
    assert parse_max_array_size(output) == 100001
    assert parse_max_array_size("MaxJobCount             = 200000\n") is None


def test_recorded_array_rejections_are_definitive_and_a_timeout_is_not():
    import subprocess

    rejections = [
        (cmd, out, rc)
        for name in ("commands_and_outputs.txt", "formats_misc.txt")
        for cmd, out, rc in recorded_blocks(name)
        if cmd.startswith("sbatch") and rc != 0
    ]
    assert len(rejections) == 4
    for cmd, out, rc in rejections:
        assert is_definitive_rejection(subprocess.CompletedProcess(cmd, rc, "", out)), cmd
    timeout = "sbatch: error: Batch job submission failed: Socket timed out on send/recv operation"
    assert not is_definitive_rejection(subprocess.CompletedProcess("sbatch", 1, "", timeout))


# -- the backends against fake programs ---------------------------------------------------


def test_submit_one_job_runs_sbatch_and_names_its_logs(tmp_path, monkeypatch):
    monkeypatch.setenv("SLURM_JOB_ID", "41")
    monkeypatch.setenv("SLURM_CONF", "/etc/slurm/slurm.conf")
    monkeypatch.setenv("SBATCH_ACCOUNT", "physics")
    sbatch = FakeProgram(tmp_path, "sbatch", ("7056\n", "", 0))
    backend = SlurmBackend(partition="short", sbatch_path=str(sbatch.path), command_policy=FAST)
    assert backend.max_jobs_per_submit() == 1
    jobs = backend.submit(request())
    assert jobs == [Job("7056", NAME, LOG / "7056.out", LOG / "7056.err")]
    (call,) = sbatch.calls
    assert call["argv"] == backend.sbatch_argv(request())[1:]
    assert "SLURM_JOB_ID" not in call["env"]
    assert call["env"]["SLURM_CONF"] == "/etc/slurm/slurm.conf"
    assert call["env"]["SBATCH_ACCOUNT"] == "physics"


def test_submit_refuses_more_jobs_than_one(tmp_path):
    sbatch = FakeProgram(tmp_path, "sbatch", ("7056\n", "", 0))
    backend = SlurmBackend(sbatch_path=str(sbatch.path), command_policy=FAST)
    with pytest.raises(ValueError, match="at most 1"):
        backend.submit(request(count=2))
    assert sbatch.calls == []


def test_unparsable_sbatch_output_is_a_scheduler_error(tmp_path):
    sbatch = FakeProgram(tmp_path, "sbatch", ("Submitted batch job 7056\n", "", 0))
    backend = SlurmBackend(sbatch_path=str(sbatch.path), command_policy=FAST)
    with pytest.raises(SchedulerError, match="no job id"):
        backend.submit(request())


def test_status_is_one_squeue_for_all_jobs(tmp_path):
    squeue = FakeProgram(tmp_path, "squeue", (SQUEUE_R, "", 0))
    backend = SlurmArrayBackend(squeue_path=str(squeue.path), command_policy=FAST)
    jobs = [job(f"7055_{i}", "rec") for i in range(6)]
    statuses = backend.status(jobs)
    assert sorted(statuses) == ["7055_0", "7055_1", "7055_2", "7055_3"]
    assert {s.state for s in statuses.values()} == {JobState.PENDING}
    assert [c["argv"] for c in squeue.calls] == [squeue_argv("x", ["rec"])[1:]]


def test_status_of_jobs_of_several_names_is_still_one_squeue(tmp_path):
    squeue = FakeProgram(tmp_path, "squeue", (SQUEUE_R, "", 0))
    backend = SlurmBackend(squeue_path=str(squeue.path), command_policy=FAST)
    jobs = [job("7057", "rec3"), job("7055_1", "rec"), job("7056", "rec2"), job("7055_2", "rec")]
    statuses = backend.status(jobs)
    assert statuses == {
        "7055_1": JobStatus(JobState.PENDING, "PENDING Priority"),
        "7055_2": JobStatus(JobState.PENDING, "PENDING Priority"),
        "7056": JobStatus(JobState.PENDING, "PENDING Priority"),
        "7057": JobStatus(JobState.PENDING, "PENDING JobHeldUser", unusual_wait="JobHeldUser"),
    }
    assert [c["argv"] for c in squeue.calls] == [squeue_argv("x", ["rec", "rec2", "rec3"])[1:]]


def test_status_runs_squeue_without_the_drivers_job(tmp_path, monkeypatch):
    monkeypatch.setenv("SLURM_JOB_ID", "41")
    monkeypatch.setenv("SQUEUE_SORT", "-t")
    squeue = FakeProgram(tmp_path, "squeue", ("", "", 0))
    backend = SlurmBackend(squeue_path=str(squeue.path), command_policy=FAST)
    assert backend.status([job("1")]) == {}  # not in the queue: not in the answer
    (call,) = squeue.calls
    assert "SLURM_JOB_ID" not in call["env"] and call["env"]["SQUEUE_SORT"] == "-t"


def test_status_of_no_jobs_asks_nothing(tmp_path):
    squeue = FakeProgram(tmp_path, "squeue", ("", "", 0))
    assert SlurmBackend(squeue_path=str(squeue.path)).status([]) == {}
    assert squeue.calls == []


def test_status_fails_with_the_schedulers_words(tmp_path):
    error = "slurm_load_jobs error: Unable to contact slurm controller (connect failure)\n"
    squeue = FakeProgram(tmp_path, "squeue", ("", error, 1))
    policy = CommandPolicy(num_retries=1, backoff_s=0.0)
    backend = SlurmBackend(squeue_path=str(squeue.path), command_policy=policy)
    with pytest.raises(SchedulerError, match="connect failure"):
        backend.status([job("1", "rec")])
    assert len(squeue.calls) == 2


def test_status_with_a_line_of_another_format_is_a_scheduler_error(tmp_path):
    squeue = FakeProgram(tmp_path, "squeue", ("7055 rec PENDING\n", "", 0))
    backend = SlurmBackend(squeue_path=str(squeue.path), command_policy=FAST)
    with pytest.raises(SchedulerError, match="cannot read") as caught:
        backend.status([job("7055", "rec")])
    assert caught.value.stdout == "7055 rec PENDING\n"


def test_delete_cancels_elements_one_by_one_in_calls_of_500(tmp_path):
    scancel = FakeProgram(tmp_path, "scancel", ("", "", 0))
    backend = SlurmBackend(scancel_path=str(scancel.path), command_policy=FAST)
    jobs = [job(f"7055_{i}") for i in range(1200)]
    backend.delete(jobs)
    calls = [c["argv"] for c in scancel.calls]
    assert [len(argv) for argv in calls] == [500, 500, 200]
    assert calls[0][:2] == ["7055_0", "7055_1"] and calls[2][-1] == "7055_1199"
    assert "7055" not in sum(calls, [])


def test_delete_of_jobs_already_gone_is_not_an_error(tmp_path):
    gone = "scancel: error: Kill job error on job id 999999: Invalid job id specified\n"
    scancel = FakeProgram(tmp_path, "scancel", ("", gone, 1))
    backend = SlurmBackend(scancel_path=str(scancel.path), command_policy=FAST)
    backend.delete([job("999999")])
    assert len(scancel.calls) == 1


def test_delete_that_fails_otherwise_is_a_scheduler_error(tmp_path):
    scancel = FakeProgram(
        tmp_path, "scancel", ("", "scancel: error: Access/permission denied\n", 1)
    )
    backend = SlurmBackend(scancel_path=str(scancel.path), command_policy=FAST)
    with pytest.raises(SchedulerError, match="permission denied"):
        backend.delete([job("5")])


def test_delete_of_no_jobs_runs_nothing(tmp_path):
    scancel = FakeProgram(tmp_path, "scancel", ("", "", 0))
    SlurmBackend(scancel_path=str(scancel.path), command_policy=FAST).delete([])
    assert scancel.calls == []


def test_filter_stderr_drops_slurmstepd_noise():
    text = "slurmstepd: error: Setting TMPDIR to /tmp\nTraceback\n"
    assert SlurmBackend().filter_stderr(text) == "Traceback\n"
    assert SlurmArrayBackend().filter_stderr(text) == "Traceback\n"


def test_array_submit_names_elements_like_squeue(tmp_path):
    config, _ = recorded_output("commands_and_outputs.txt", "scontrol show config")
    scontrol = FakeProgram(tmp_path, "scontrol", (config, "", 0))
    sbatch = FakeProgram(tmp_path, "sbatch", ("7055\n", "", 0))
    backend = SlurmArrayBackend(
        sbatch_path=str(sbatch.path), scontrol_path=str(scontrol.path), command_policy=FAST
    )
    assert backend.max_jobs_per_submit() == 100001
    assert backend.max_jobs_per_submit() == 100001
    jobs = backend.submit(request(count=3))
    assert jobs == [
        Job("7055_0", NAME, LOG / "7055_0.out", LOG / "7055_0.err"),
        Job("7055_1", NAME, LOG / "7055_1.out", LOG / "7055_1.err"),
        Job("7055_2", NAME, LOG / "7055_2.out", LOG / "7055_2.err"),
    ]
    assert [c["argv"] for c in scontrol.calls] == [["show", "config"]]
    assert sbatch.calls[0]["argv"][3:5] == ["--array", "0-2"]


def test_an_array_of_more_elements_than_max_array_size_is_refused(tmp_path):
    scontrol = FakeProgram(tmp_path, "scontrol", ("MaxArraySize = 4\n", "", 0))
    sbatch = FakeProgram(tmp_path, "sbatch", ("7055\n", "", 0))
    backend = SlurmArrayBackend(
        sbatch_path=str(sbatch.path), scontrol_path=str(scontrol.path), command_policy=FAST
    )
    assert len(backend.submit(request(count=4))) == 4  # indices 0-3, below MaxArraySize
    with pytest.raises(ValueError, match="at most 4"):
        backend.submit(request(count=5))
    assert len(sbatch.calls) == 1


@pytest.mark.parametrize(
    "answer",
    [
        ("", "slurm_load_ctl_conf error: Unable to contact slurm controller\n", 1),
        ("MaxJobCount = 10000\n", "", 0),
    ],
)
def test_max_array_size_falls_back_to_slurms_default_with_a_warning(tmp_path, answer):
    scontrol = FakeProgram(tmp_path, "scontrol", answer)
    backend = SlurmArrayBackend(scontrol_path=str(scontrol.path), command_policy=FAST)
    with pytest.warns(RuntimeWarning, match="MaxArraySize = 1001"):
        assert backend.max_jobs_per_submit() == 1001
    assert backend.max_jobs_per_submit() == 1001  # asked once
    assert len(scontrol.calls) == 1


def test_a_rejected_array_fails_at_once_and_says_what_to_do(tmp_path):
    rejection, rc = recorded_output("commands_and_outputs.txt", "sbatch --array 0-200000")
    sbatch = FakeProgram(tmp_path, "sbatch", ("", rejection, rc))
    scontrol = FakeProgram(tmp_path, "scontrol", ("MaxArraySize = 1001\n", "", 0))
    policy = CommandPolicy(num_retries=1, backoff_s=25.0)  # a retry would take 25 s
    backend = SlurmArrayBackend(
        sbatch_path=str(sbatch.path), scontrol_path=str(scontrol.path), command_policy=policy
    )
    backend.max_jobs_per_submit()
    start = time.monotonic()
    with pytest.raises(SchedulerError) as caught:
        backend.submit(request(count=2))
    assert time.monotonic() - start < 20
    assert len(sbatch.calls) == 1
    assert "MaxArraySize = 1001" in str(caught.value)
    assert "batchpool.slurm.Pool" in str(caught.value)
    assert "Invalid job array specification" in caught.value.stderr


def test_a_rejected_partition_fails_at_once(tmp_path):
    rejection, rc = recorded_output("commands_and_outputs.txt", "sbatch --partition nosuch")
    sbatch = FakeProgram(tmp_path, "sbatch", ("", rejection, rc))
    policy = CommandPolicy(num_retries=1, backoff_s=25.0)
    backend = SlurmBackend(sbatch_path=str(sbatch.path), command_policy=policy)
    with pytest.raises(SchedulerError, match="retrying would not help") as caught:
        backend.submit(request())
    assert "invalid partition" in caught.value.stderr
    assert len(sbatch.calls) == 1


def test_a_submit_limit_fails_at_once_and_says_what_to_do(tmp_path):
    stderr = (
        "sbatch: error: QOSMaxSubmitJobPerUserLimit\n"
        "sbatch: error: Batch job submission failed: Job violates accounting/QOS policy "
        "(job submit limit, user's size and/or time limits)\n"
    )
    sbatch = FakeProgram(tmp_path, "sbatch", ("", stderr, 1))
    policy = CommandPolicy(num_retries=1, backoff_s=25.0)
    backend = SlurmBackend(sbatch_path=str(sbatch.path), command_policy=policy)
    with pytest.raises(SchedulerError, match="limit of jobs you may have in the queue"):
        backend.submit(request())
    assert len(sbatch.calls) == 1


def test_a_transient_sbatch_failure_is_retried(tmp_path):
    busy = "sbatch: error: Batch job submission failed: Socket timed out on send/recv operation\n"
    sbatch = FakeProgram(tmp_path, "sbatch", ("", busy, 1), ("7060\n", "", 0))
    policy = CommandPolicy(num_retries=2, backoff_s=0.0)
    backend = SlurmBackend(sbatch_path=str(sbatch.path), command_policy=policy)
    (submitted,) = backend.submit(request())
    assert submitted.job_id == "7060"
    assert len(sbatch.calls) == 2


def test_a_cancelled_submit_raises_cancelled(tmp_path):
    import threading

    from batchpool.commands import Cancelled

    busy = "sbatch: error: Batch job submission failed: Socket timed out on send/recv operation\n"
    sbatch = FakeProgram(tmp_path, "sbatch", ("", busy, 1))
    policy = CommandPolicy(num_retries=3, backoff_s=30.0)
    backend = SlurmBackend(sbatch_path=str(sbatch.path), command_policy=policy)
    cancel = threading.Event()
    timer = threading.Timer(0.3, cancel.set)
    timer.start()
    start = time.monotonic()
    try:
        with pytest.raises(Cancelled):
            backend.submit(request(), cancel)
    finally:
        timer.cancel()
    assert time.monotonic() - start < 5
    assert len(sbatch.calls) == 1


# -- the pools -----------------------------------------------------------------------------


@pytest.mark.parametrize("module_name", ["batchpool.slurm", "batchpool.slurm.array"])
def test_pool_builds_its_backend_and_passes_common_options_on(monkeypatch, module_name):
    import importlib

    module = importlib.import_module(module_name)
    seen = {}

    def init(self, *args, **kwargs):
        seen.update(args=args, kwargs=kwargs)

    monkeypatch.setattr(batchpool.proto_pool.ProtoPool, "__init__", init)
    module.Pool(4, None, (), None, partition="short", sbatch_path="/x/sbatch", work_dir="/w")
    backend = seen["kwargs"].pop("backend")
    assert seen["args"] == (4, None, (), None, None)
    assert seen["kwargs"]["work_dir"] == "/w"
    assert "partition" not in seen["kwargs"] and "sbatch_path" not in seen["kwargs"]
    assert backend.name == module_name.replace("batchpool.", "")
    assert backend.resource_args == ["--partition", "short"]
    assert backend.sbatch_path == "/x/sbatch"
