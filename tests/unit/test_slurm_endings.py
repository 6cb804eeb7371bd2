"""Unit tests of what batchpool.slurm tells of a job's end (squeue's state, reason and node;
sacct; slurmstepd's lines in the job's stderr) and of the resources of a retry (memory,
time, excluded nodes).

Parsers run on output recorded from the real Slurm 22.05.8 of ci/slurm/start.sh and on
sacct output quoted in public issue threads (tests/data/slurm/*_real.txt, sacct_public.txt;
each file names its source). Backends run against fake programs (helpers/fake_programs.py).
"""

from __future__ import annotations

import shlex
import threading
from pathlib import Path
from typing import Optional

import pytest

from batchpool.backend import Ending, Job, JobRequest, JobState, JobStatus, Resources
from batchpool.commands import Cancelled, CommandPolicy
from batchpool.slurm import (
    SlurmBackend,
    base_resources,
    format_time,
    option_values,
    parse_slurm_mem_mb,
    parse_slurm_time_s,
    resource_change_args,
    without_options,
)
from batchpool.slurm.array import SlurmArrayBackend
from batchpool.slurm.squeue import (
    SACCT_FIELDS,
    job_ending,
    job_status,
    job_statuses,
    node_failed,
    parse_exit_code,
    parse_sacct,
    parse_sinfo_nodes,
    parse_squeue,
    sacct_argv,
    sacct_statuses,
    stderr_ending,
)
from helpers.fake_programs import FakeProgram

DATA = Path(__file__).resolve().parent.parent / "data" / "slurm"
FAST = CommandPolicy(timeout_s=20.0, num_retries=0, backoff_s=0.0)
NAME = "bp_20261121T054154_77_a1b2c3"
LOG = Path("/work/pool_x/logs")


def blocks(name: str) -> list[tuple[str, str, Optional[int]]]:
    """``(command, output, exit code)`` of each ``$ command`` of a recorded file; lines
    starting with ``#`` are comments, the exit code is None where none was recorded."""
    found: list[tuple[str, str, Optional[int]]] = []
    command: Optional[str] = None
    output: list[str] = []
    for line in (DATA / name).read_text().splitlines() + ["$ "]:
        if line.startswith("#"):
            continue
        if line.startswith("$ ") or line.startswith("rc="):
            if command is not None:
                found.append(
                    (command, "".join(output), int(line[3:]) if line[:3] == "rc=" else None)
                )
            command, output = (line[2:], []) if line.startswith("$ ") else (None, [])
        elif command is not None:
            output.append(line + "\n")
    return found


def outputs(name: str) -> list[str]:
    return [output for _, output, _ in blocks(name)]


def job(job_id: str, name: str = NAME) -> Job:
    return Job(job_id, name, Path("o"), Path("e"))


def request(count: int = 1, resources: Optional[Resources] = None, tier: int = 0) -> JobRequest:
    return JobRequest(
        pool_dir=Path("/work/pool_x"),
        job_name=NAME,
        count=count,
        python_path="/venv/bin/python",
        log_dir=LOG,
        resources=resources or Resources(),
        tier=tier,
    )


def statuses_of(text: str) -> dict[str, JobStatus]:
    lines = parse_squeue(text)
    return job_statuses(lines, [line.job_id for line in lines])


# -- squeue on the real Slurm: every ending -------------------------------------------------


def test_recorded_blocks_have_the_new_format():
    for name in ("squeue_endings_real.txt", "squeue_node_failure_real.txt"):
        commands = [command for command, _, _ in blocks(name)]
        assert commands and all('-o "%i|%A|%K|%N|%j|%T|%r"' in c for c in commands), name


def test_recorded_endings_on_the_real_slurm():
    first, requeued, settled, holds_cancelled = outputs("squeue_endings_real.txt")
    statuses = statuses_of(settled)
    assert statuses == {
        "7476": JobStatus(JobState.ENDED, "TIMEOUT TimeLimit", Ending.TIME_LIMIT, "vm"),
        "7477": JobStatus(JobState.ENDED, "CANCELLED None", Ending.CANCELLED, "vm"),
        "7478": JobStatus(JobState.ENDED, "FAILED NonZeroExitCode", Ending.FAILED, "vm"),
        # killed by OverMemoryKill: only the stderr tells it was the memory
        "7479": JobStatus(JobState.ENDED, "FAILED JobLaunchFailure", Ending.FAILED, "vm"),
        "7480": JobStatus(JobState.PENDING, "PENDING JobHeldUser", unusual_wait="JobHeldUser"),
        "7481": JobStatus(JobState.PENDING, "PENDING JobHeldAdmin", unusual_wait="JobHeldAdmin"),
        "7482": JobStatus(JobState.RUNNING, "RUNNING None", node="vm"),  # requeued, again
        "7483": JobStatus(
            JobState.PENDING,
            "PENDING job requeued in held state",
            unusual_wait="job requeued in held state",
        ),
    }
    # just after scancel / requeue: COMPLETING is still running, on its node
    for job_id in ("7477", "7482", "7483"):
        assert statuses_of(first)[job_id].state is JobState.RUNNING
        assert statuses_of(first)[job_id].node == "vm"
    # a requeued job waits (BeginTime) with no node, and is not lost
    assert statuses_of(requeued)["7482"] == JobStatus(
        JobState.PENDING, "PENDING BeginTime", unusual_wait="BeginTime"
    )
    # pending jobs cancelled from outside keep their reason
    cancelled = statuses_of(holds_cancelled)
    assert cancelled["7481"] == JobStatus(
        JobState.ENDED, "CANCELLED JobHeldAdmin", Ending.CANCELLED
    )
    assert cancelled["7483"].ending is Ending.CANCELLED


def test_recorded_node_failure_on_the_real_slurm():
    before, failed, waiting, again = outputs("squeue_node_failure_real.txt")
    assert {s.state for s in statuses_of(before).values()} == {JobState.RUNNING}
    statuses = statuses_of(failed)
    assert statuses["7485"] == JobStatus(
        JobState.ENDED, "NODE_FAIL NodeDown", Ending.NODE_FAILURE, "vm"
    )
    # requeued by Slurm (JobRequeue): pending again under the same ids, never NODE_FAIL
    for job_id in ("7484", "7486_0", "7486_1"):
        assert statuses[job_id] == JobStatus(JobState.PENDING, "PENDING None")
        assert statuses_of(waiting)[job_id] == JobStatus(
            JobState.PENDING, "PENDING BeginTime", unusual_wait="BeginTime"
        )
        assert statuses_of(again)[job_id] == JobStatus(JobState.RUNNING, "RUNNING None", node="vm")
    assert [line.unique_job_id for line in parse_squeue(again) if line.job_id == "7486_0"] == [
        "7487"
    ]


@pytest.mark.parametrize(
    ("state", "reason", "ending"),
    [
        ("COMPLETED", "None", Ending.COMPLETED),
        ("FAILED", "NonZeroExitCode", Ending.FAILED),
        ("SPECIAL_EXIT", "None", Ending.FAILED),
        ("TIMEOUT", "TimeLimit", Ending.TIME_LIMIT),
        ("DEADLINE", "None", Ending.TIME_LIMIT),
        ("OUT_OF_MEMORY", "OutOfMemory", Ending.MEMORY_LIMIT),
        ("NODE_FAIL", "NodeDown", Ending.NODE_FAILURE),
        ("BOOT_FAIL", "None", Ending.NODE_FAILURE),
        ("PREEMPTED", "None", Ending.PREEMPTED),
        ("CANCELLED", "None", Ending.CANCELLED),
        ("REVOKED", "None", Ending.CANCELLED),
        ("PENDING", "BadConstraints", Ending.ERROR_STATE),
        ("PENDING", "launch failed requeued held", Ending.ERROR_STATE),
        ("PENDING", "JobHoldMaxRequeue", Ending.ERROR_STATE),
        ("PENDING", "QOSMaxCpuPerJobLimit", Ending.ERROR_STATE),
        ("PENDING", "JobHeldAdmin", None),
        ("PENDING", "NodeDown", None),
        ("RESV_DEL_HOLD", "None", None),
        ("RUNNING", "None", None),
        ("COMPLETING", "None", None),
        ("SOMETHING_NEW", "None", None),
    ],
)
def test_job_ending(state, reason, ending):
    assert job_ending(state, reason) is ending


def test_a_request_that_can_never_start_is_an_error_state():
    assert job_status("PENDING", "PartitionTimeLimit") == JobStatus(
        JobState.FAILED, "PENDING PartitionTimeLimit", Ending.ERROR_STATE
    )


def test_status_answers_node_and_ending_through_the_backend(tmp_path):
    squeue = FakeProgram(tmp_path, "squeue", (outputs("squeue_endings_real.txt")[2], "", 0))
    backend = SlurmBackend(squeue_path=str(squeue.path), command_policy=FAST)
    statuses = backend.status([job("7476", "x_timeout"), job("7479", "x_mem"), job("9")])
    assert statuses == {
        "7476": JobStatus(JobState.ENDED, "TIMEOUT TimeLimit", Ending.TIME_LIMIT, "vm"),
        "7479": JobStatus(JobState.ENDED, "FAILED JobLaunchFailure", Ending.FAILED, "vm"),
    }
    assert squeue.calls[0]["argv"][-1] == "%i|%A|%K|%N|%j|%T|%r"


def test_an_empty_or_null_node_is_no_node():
    (line,) = parse_squeue("5|5|N/A|(null)|n|PENDING|Priority\n")
    assert line.node == ""


# -- slurmstepd's lines in the job's stderr ----------------------------------------------------


def test_stderr_endings_recorded_on_the_real_slurm():
    found = {
        command.split()[1]: stderr_ending(output)
        for command, output, _ in blocks("stderr_real.txt")
    }
    assert {path: (f and f[0]) for path, f in found.items()} == {
        "/tmp/bpx/7476.err": Ending.TIME_LIMIT,
        "/tmp/bpx/7477.err": None,  # scancel: squeue says CANCELLED itself
        "/tmp/bpx/7478.err": None,  # exit 3: nothing from slurmstepd
        "/tmp/bpx/7479.err": Ending.MEMORY_LIMIT,
        "/tmp/bpx/7483.err": Ending.PREEMPTED,  # DUE TO JOB REQUEUE
        "/tmp/bpx/7485.err": Ending.NODE_FAILURE,
    }
    assert found["/tmp/bpx/7479.err"] == (
        Ending.MEMORY_LIMIT,
        "slurmstepd-vm: error: StepId=7479.batch exceeded memory limit "
        "(434597888 > 209715200), being killed",
    )


def test_stderr_ending_finds_the_line_after_the_programs_own_output():
    text = (
        "Traceback (most recent call last):\n  ...\nMemoryError\n"
        "slurmstepd: error: Detected 1 oom_kill event in StepId=65138579.batch. "
        "Some of the step tasks have been OOM Killed.\n"
    )  # the cgroup line as quoted in github.com/jdblischak/smk-simple-slurm/issues/29
    ending, line = stderr_ending(text) or (None, "")
    assert ending is Ending.MEMORY_LIMIT and line.startswith("slurmstepd: error: Detected 1")
    assert stderr_ending("MemoryError\nsome line mentioning DUE TO TIME LIMIT\n") is None


def test_explain_reads_the_memory_kill_from_the_jobs_stderr_without_accounting(tmp_path):
    err = tmp_path / "5.err"
    err.write_text(
        "task output\nslurmstepd-vm: error: Exceeded job memory limit\n"
    )
    job = Job("5", "bp_x", tmp_path / "5.out", err)
    backend = SlurmBackend(sacct_path=str(tmp_path / "no-sacct-here"))
    (status,) = backend.explain([job]).values()
    assert status.ending is Ending.MEMORY_LIMIT and "Exceeded job memory limit" in status.detail


# -- sacct ------------------------------------------------------------------------------------


def reordered(output: str, header: Optional[str] = None) -> str:
    """Public sacct output rewritten into SACCT_FIELDS by its header's names; fields it
    does not have are empty."""
    rows = output.splitlines()
    names = (header or rows.pop(0)).split("|")
    names = ["JobID" if n == "JobIdRaw" else n for n in names]
    wanted = SACCT_FIELDS.split(",")
    return "".join(
        "|".join(dict(zip(names, row.split("|"))).get(n, "") for n in wanted) + "\n" for row in rows
    )


def test_sacct_argv_asks_for_allocations_of_all_jobs_in_one_call():
    assert sacct_argv("/opt/sacct", ["7476", "7055_3"]) == [
        "/opt/sacct",
        "-n",
        "-P",
        "-X",
        "-j",
        "7476,7055_3",
        "-o",
        "JobID,State,ExitCode,NodeList,Reason",
    ]


def test_parse_public_sacct_output_with_steps():
    output = outputs("sacct_public.txt")[0]
    lines = parse_sacct(reordered(output))
    assert [line.job_id for line in lines] == ["239023", "239024", "239025", "239026"]
    statuses = sacct_statuses(lines, ["239023", "239026", "1"])
    assert statuses["239023"] == JobStatus(
        JobState.ENDED,
        "COMPLETED ",
        Ending.COMPLETED,
        node="galvani-cn001",
        exit_code=0,
        detail="sacct: COMPLETED, exit code 0:0, reason ",
    )
    assert sorted(statuses) == ["239023", "239026"]


def test_parse_public_sacct_output_of_failed_jobs():
    output = outputs("sacct_public.txt")[1]
    statuses = sacct_statuses(
        parse_sacct(reordered(output, "JobIdRaw|State")), ["8183088", "8183089"]
    )
    assert statuses["8183088"].ending is Ending.FAILED
    assert statuses["8183088"].state is JobState.ENDED
    assert statuses["8183089"].ending is Ending.COMPLETED
    assert statuses["8183088"].exit_code is None  # not asked for there


def test_parse_sacct_of_every_ending():
    text = (
        "7476|TIMEOUT|0:0|vm|None\n"
        "7477|CANCELLED by 0|0:15|vm|None\n"
        "7478|FAILED|3:0|vm|NonZeroExitCode\n"
        "7479|OUT_OF_MEMORY|0:125|vm|OutOfMemory\n"
        "7480|PENDING|0:0|None assigned|JobHeldUser\n"
        "7485|NODE_FAIL|1:0|vm|NodeDown\n"
        "7490_[4-5]|CANCELLED+|0:0|None assigned|JobArrayTaskLimit\n"
    )
    statuses = sacct_statuses(
        parse_sacct(text), ["7476", "7477", "7478", "7479", "7480", "7485", "7490_5"]
    )
    summary = {i: (s.state, s.ending, s.node, s.exit_code, s.signal) for i, s in statuses.items()}
    assert summary == {
        "7476": (JobState.ENDED, Ending.TIME_LIMIT, "vm", 0, None),
        "7477": (JobState.ENDED, Ending.CANCELLED, "vm", None, 15),
        "7478": (JobState.ENDED, Ending.FAILED, "vm", 3, None),
        "7479": (JobState.ENDED, Ending.MEMORY_LIMIT, "vm", None, 125),
        "7480": (JobState.PENDING, None, "", 0, None),
        "7485": (JobState.ENDED, Ending.NODE_FAILURE, "vm", 1, None),
        "7490_5": (JobState.ENDED, Ending.CANCELLED, "", 0, None),
    }
    assert statuses["7477"].detail == "sacct: CANCELLED by 0, exit code 0:15, reason None"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3:0", (3, None)),
        ("0:0", (0, None)),
        ("0:9", (None, 9)),
        ("1:9", (1, 9)),
        ("", (None, None)),
    ],
)
def test_parse_exit_code(text, expected):
    assert parse_exit_code(text) == expected


def test_parse_sacct_rejects_a_line_of_another_format():
    with pytest.raises(ValueError, match="5"):
        parse_sacct("7476|TIMEOUT|0:0\n")


def test_explain_runs_one_sacct_and_answers_the_jobs_asked_for(tmp_path, monkeypatch):
    monkeypatch.setenv("SLURM_JOB_ID", "41")
    sacct = FakeProgram(
        tmp_path, "sacct", ("7476|TIMEOUT|0:0|vm|None\n9|COMPLETED|0:0|vm|None\n", "", 0)
    )
    backend = SlurmBackend(sacct_path=str(sacct.path), command_policy=FAST)
    statuses = backend.explain([job("7476"), job("7477")])
    assert list(statuses) == ["7476"] and statuses["7476"].ending is Ending.TIME_LIMIT
    (call,) = sacct.calls
    assert call["argv"] == sacct_argv("x", ["7476", "7477"])[1:]
    assert "SLURM_JOB_ID" not in call["env"]


def test_explain_without_accounting_answers_nothing_at_once_and_asks_no_more(tmp_path):
    ((_, stderr, rc),) = blocks("sacct_real.txt")
    sacct = FakeProgram(tmp_path, "sacct", ("", stderr, rc))
    policy = CommandPolicy(timeout_s=20.0, num_retries=3, backoff_s=25.0)  # a retry: 25 s
    backend = SlurmBackend(sacct_path=str(sacct.path), command_policy=policy)
    assert backend.explain([job("7476"), job("7479")]) == {}
    assert backend.explain([job("7476")]) == {}
    assert len(sacct.calls) == 1


def test_explain_that_keeps_failing_answers_nothing_after_one_retry(tmp_path):
    down = "sacct: error: Problem talking to the database: Connection refused\n"
    sacct = FakeProgram(tmp_path, "sacct", ("", down, 1))
    backend = SlurmBackend(
        sacct_path=str(sacct.path), command_policy=CommandPolicy(num_retries=4, backoff_s=0.0)
    )
    assert backend.explain([job("1")]) == {}
    assert len(sacct.calls) == 2
    assert backend.explain([job("1")]) == {}  # may answer another time
    assert len(sacct.calls) == 4


def test_explain_of_unreadable_output_or_a_missing_program_answers_nothing(tmp_path):
    sacct = FakeProgram(tmp_path, "sacct", ("7476 TIMEOUT\n", "", 0))
    assert (
        SlurmBackend(sacct_path=str(sacct.path), command_policy=FAST).explain([job("7476")]) == {}
    )
    missing = SlurmBackend(sacct_path=str(tmp_path / "nosuch"), command_policy=FAST)
    assert missing.explain([job("7476")]) == {}


def test_explain_of_no_jobs_asks_nothing_and_many_jobs_in_calls_of_500(tmp_path):
    sacct = FakeProgram(tmp_path, "sacct", ("", "", 0))
    backend = SlurmArrayBackend(sacct_path=str(sacct.path), command_policy=FAST)
    assert backend.explain([]) == {}
    assert sacct.calls == []
    backend.explain([job(f"7055_{i}") for i in range(1200)])
    assert [len(c["argv"][4].split(",")) for c in sacct.calls] == [500, 500, 200]


def test_explain_is_cancelled(tmp_path):
    sacct = FakeProgram(tmp_path, "sacct", ("", "", 0))
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        SlurmBackend(sacct_path=str(sacct.path), command_policy=FAST).explain([job("1")], cancel)


# -- resources ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "mb"),
    [
        ("4096", 4096),
        ("500M", 500),
        ("500m", 500),
        ("4G", 4096),
        ("4GB", 4096),
        ("1T", 1024 * 1024),
        ("512K", 1),
        ("1025K", 2),
        ("0", 0),
        (" 8G ", 8192),
    ],
)
def test_parse_slurm_mem_mb(text, mb):
    assert parse_slurm_mem_mb(text) == mb


@pytest.mark.parametrize("text", ["", "4 GiB", "4.5G", "-1", "G", "4X", "4GBB"])
def test_parse_slurm_mem_mb_rejects_what_slurm_rejects(text):
    with pytest.raises(ValueError):
        parse_slurm_mem_mb(text)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90", 90 * 60),
        ("1:30", 90),
        ("1:00:00", 3600),
        ("2-0", 2 * 86400),
        ("1-2", 86400 + 2 * 3600),
        ("1-2:30", 86400 + 2 * 3600 + 30 * 60),
        ("1-02:30:15", 86400 + 2 * 3600 + 30 * 60 + 15),
        ("00:20:00", 1200),
        ("UNLIMITED", None),
        ("infinite", None),
        ("-1", None),
        ("0", None),
    ],
)
def test_parse_slurm_time_s(text, seconds):
    assert parse_slurm_time_s(text) == seconds


@pytest.mark.parametrize("text", ["", "1h", "1:2:3:4", "1-2-3", "1-", "-5", "1.5"])
def test_parse_slurm_time_s_rejects_what_slurm_rejects(text):
    with pytest.raises(ValueError):
        parse_slurm_time_s(text)


def test_format_time():
    assert format_time(59) == "00:00:59"
    assert format_time(3600 + 61) == "01:01:01"
    assert format_time(86400) == "1-00:00:00"
    assert format_time(2 * 86400 + 3 * 3600 + 4 * 60 + 5) == "2-03:04:05"
    for seconds in (59, 3661, 86399, 86400, 200000):
        assert parse_slurm_time_s(format_time(seconds)) == seconds
    assert parse_slurm_time_s(format_time(0)) is None  # Slurm: zero is no limit
    with pytest.raises(ValueError):
        format_time(-1)


def test_base_resources_from_the_options_or_sbatch_args():
    assert SlurmBackend(mem="4G", time="1:00:00").base_resources() == Resources(4096, 3600)
    assert SlurmBackend().base_resources() == Resources()
    from_args = SlurmBackend(sbatch_args=["--mem=2G", "-t", "30", "--time-min=10"])
    assert from_args.base_resources() == Resources(2048, 1800)
    assert SlurmBackend(mem="1G", sbatch_args=["--mem", "2G"]).base_resources().mem_mb == 1024
    assert SlurmArrayBackend(mem="500", time="2-0").base_resources() == Resources(500, 172800)


def test_base_resources_that_cannot_be_raised_are_none():
    assert base_resources(None, None, ["--mem=0", "--time=UNLIMITED"]) == Resources()
    assert base_resources(None, None, ["--mem=lots", "-t", "soon"]) == Resources()
    assert base_resources(1024, 60, ["--mem=lots", "-t", "soon"]) == Resources(1024, 60)


def test_option_values_and_without_options():
    args = ["--mem=1G", "-t", "10", "--nice=5", "-t20", "--time", "30", "--time-min=5", "-x", "a"]
    assert option_values(args, ("--time", "-t")) == ["10", "20", "30"]
    assert option_values(args, ("--exclude", "-x")) == ["a"]
    assert without_options(args, ("--time", "-t")) == [
        "--mem=1G",
        "--nice=5",
        "--time-min=5",
        "-x",
        "a",
    ]
    assert without_options(["--mem"], ("--mem",)) == []


def test_resource_change_args_replace_memory_and_time_and_add_to_the_exclusions():
    sbatch_args = ["--mem-per-cpu=1G", "-t", "10", "--exclude=n1,n2", "--constraint", "avx2"]
    assert resource_change_args(sbatch_args, Resources()) == sbatch_args
    assert resource_change_args(sbatch_args, Resources(8192, 7200, ("n3", "n1"))) == [
        "--constraint",
        "avx2",
        "--mem=8192M",
        "--time=02:00:00",
        "--exclude=n1,n2,n3",
    ]


def test_sbatch_argv_with_more_memory_and_time_replaces_the_pools_own():
    backend = SlurmBackend(partition="short", time="1:00:00", mem="4G", sbatch_args=["--nice=10"])
    argv = backend.sbatch_argv(request(resources=Resources(8192, 90000, ("node7",)), tier=2))
    assert argv[8:-2] == [
        "--partition",
        "short",
        "--nice=10",
        "--mem=8192M",
        "--time=1-01:00:00",
        "--exclude=node7",
    ]
    assert shlex.split(argv[-1])[-2:] == ["--tier", "2"]
    only_time = backend.sbatch_argv(request(resources=Resources(time_s=120)))
    assert only_time[8:-2] == [
        "--partition",
        "short",
        "--mem",
        "4096M",
        "--nice=10",
        "--time=00:02:00",
    ]


def test_array_sbatch_argv_with_resources(tmp_path):
    backend = SlurmArrayBackend(mem="1G", sbatch_args=["-x", "n1"])
    argv = backend.sbatch_argv(
        request(count=3, resources=Resources(mem_mb=2048, exclude_nodes=("n2",)))
    )
    assert argv[5:7] == ["0-2", "--output"]
    assert argv[10:-2] == ["--mem=2048M", "--exclude=n1,n2"]


def test_submit_sends_the_changed_resources_to_sbatch(tmp_path):
    sbatch = FakeProgram(tmp_path, "sbatch", ("7060\n", "", 0))
    backend = SlurmBackend(mem="4G", sbatch_path=str(sbatch.path), command_policy=FAST)
    (submitted,) = backend.submit(request(resources=Resources(mem_mb=8192), tier=1))
    assert submitted.job_id == "7060"
    argv = sbatch.calls[0]["argv"]
    assert "--mem=8192M" in argv and "4096M" not in argv
    assert shlex.split(argv[-1])[-2:] == ["--tier", "1"]


def test_sinfo_node_states_tell_a_failed_node():
    # States as sinfo -N -o "%N|%T" printed them on the real Slurm here while its slurmd
    # was killed (tests/data/slurm/squeue_node_failure_real.txt): "mixed*" after 16 s,
    # "down*" after 28 s.
    states = parse_sinfo_nodes("vm|down*\nn2|mixed*\nn3|idle\nn4|drained\nn5|fail\n")
    assert {n for n, s in states.items() if node_failed(s)} == {"vm", "n2", "n5"}


def test_explain_a_requeued_job_by_the_state_of_its_node(tmp_path):
    sinfo = tmp_path / "sinfo"
    sinfo.write_text('#!/bin/sh\necho "vm|down*"\n')
    sinfo.chmod(0o755)
    job = Job("7", "bp_x", tmp_path / "7.out", tmp_path / "7.err")
    backend = SlurmBackend(sacct_path=str(tmp_path / "no-sacct"), sinfo_path=str(sinfo))
    (status,) = backend.explain([job], nodes={"7": "vm"}).values()
    assert status.ending is Ending.NODE_FAILURE and status.detail == "node vm down*"
    assert backend.explain([job]) == {}  # without the node, nothing to say
