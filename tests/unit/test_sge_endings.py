"""Unit tests of how batchpool.sge tells why a job ended: ``qstat -j`` (error reasons)
and ``qacct -j`` (accounting records), parsed from outputs recorded on the real SGE
8.1.9 of ci/sge/start.sh (tests/data/sge/, each ``.txt`` naming its command and job),
and :meth:`SgeBackend.explain` against fake ``qstat``/``qacct`` programs.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from batchpool.backend import Ending, Job, JobState, JobStatus
from batchpool.commands import Cancelled, CommandPolicy
from batchpool.sge import (
    AcctRecord,
    QstatJobDetail,
    SgeBackend,
    acct_status,
    acct_statuses,
    category_requests,
    error_reason_text,
    limit_ending,
    parse_qacct,
    parse_qstat_j,
    qacct_queries,
)
from helpers.fake_programs import FakeProgram

DATA = Path(__file__).resolve().parent.parent / "data" / "sge"
FAST = CommandPolicy(timeout_s=20.0, num_retries=0, backoff_s=0.0)

CHDIR_REASON = (
    "11/21/2026 18:22:24 [0:23967]: error: can't chdir to /nonexistent: No such file or directory"
)
OUTPUT_REASON = (
    '11/21/2026 18:22:24 [0:23963]: error: can\'t open output file "/nonexistent/dir/out": '
    "No such file or directory"
)


def recorded(name: str) -> str:
    """The recorded stdout of a ``.txt`` file: what follows its ``# ---`` header."""
    return (DATA / name).read_text().split("# ---\n", 1)[1]


def job(job_id: str, name: str) -> Job:
    return Job(job_id, name, Path("o"), Path("e"))


def only_record(name: str) -> AcctRecord:
    (record,) = parse_qacct(recorded(name))
    return record


# -- qstat -j ------------------------------------------------------------------------------


def test_parse_recorded_qstat_j_of_two_error_state_jobs():
    assert parse_qstat_j(recorded("qstat-j-eqw.txt")) == [
        QstatJobDetail("1020", "rec_eqw_wd", (CHDIR_REASON,)),
        QstatJobDetail("1021", "rec_eqw_out", (OUTPUT_REASON,)),
    ]


def test_qstat_j_leaves_out_jobs_that_do_not_exist():
    assert parse_qstat_j(recorded("qstat-j-eqw-and-missing.txt")) == [
        QstatJobDetail("1020", "rec_eqw_wd", (CHDIR_REASON,))
    ]
    assert parse_qstat_j(recorded("qstat-j-missing.txt")) == []


def test_parse_qstat_j_of_a_job_without_error_and_of_array_tasks():
    text = (
        "==============================================================\n"
        "job_number:                 7\n"
        "job_name:                   plain\n"
        "scheduling info:            (Collecting of scheduler job information is turned off)\n"
        "==============================================================\n"
        "job_number:                 8\n"
        "job_name:                   arr\n"
        "error reason    1:          first\n"
        "error reason   12:          second: with colons\n"
    )
    assert parse_qstat_j(text) == [
        QstatJobDetail("7", "plain", ()),
        QstatJobDetail("8", "arr", ("first", "second: with colons")),
    ]


def test_error_reasons_of_jobs_that_failed_alike_read_the_same():
    # Real SGE 8.1.9: every job of a pool with qsub -e /nonexistent/dir/x.err went to Eqw
    # with the same reason but its own time and execd pid.
    first, second = (
        f'12/06/2026 03:14:{s} [0:{pid}]: error: can\'t open output file "/nonexistent/dir/x.err": '
        "No such file or directory"
        for s, pid in (("49", 22910), ("50", 23077))
    )
    assert error_reason_text(first) == error_reason_text(second)
    assert error_reason_text(first).startswith("error: can't open output file")
    assert error_reason_text("first") == "first"


# -- qacct -j: the recorded endings --------------------------------------------------------


def test_parse_recorded_qacct_record():
    assert only_record("qacct-h_rt.txt") == AcctRecord(
        job_id="1011",
        name="rec_hrt",
        hostname="vm",
        failed=37,
        failed_text="37  : qmaster enforced h_rt, h_cpu, or h_vmem limit",
        exit_status=137,
        started=True,
        wallclock_s=6.0,
        maxvmem_bytes=3.449 * 1024**2,
        maxvmem_text="3.449MB",
        category="-l h_rt=5",
    )


def test_recorded_time_limit():
    status = acct_status(only_record("qacct-h_rt.txt"))
    assert status == JobStatus(
        JobState.ENDED,
        "failed 37, exit_status 137",
        ending=Ending.TIME_LIMIT,
        node="vm",
        exit_code=None,
        signal=9,
        detail=(
            "failed 37  : qmaster enforced h_rt, h_cpu, or h_vmem limit; exit_status 137; "
            "maxvmem 3.449MB; category -l h_rt=5"
        ),
    )


def test_recorded_memory_limit_enforced_by_execd():
    record = only_record("qacct-h_vmem.txt")
    assert (record.failed, record.maxvmem_text, record.category) == (
        37,
        "476.164MB",
        "-l h_vmem=300M",
    )
    status = acct_status(record)
    assert (status.ending, status.signal, status.exit_code) == (Ending.MEMORY_LIMIT, 9, None)


def test_recorded_memory_limit_of_one_process_is_an_allocation_failure():
    """One process cannot pass h_vmem (SGE sets it as the address-space limit): Python
    raised MemoryError and exited 1, which only the job's stderr tells."""
    status = acct_status(only_record("qacct-h_vmem-rlimit.txt"))
    assert (status.ending, status.exit_code, status.signal) == (Ending.FAILED, 1, None)
    assert "category -l h_vmem=200M" in status.detail


def test_recorded_exit_code():
    status = acct_status(only_record("qacct-exit3.txt"))
    assert status == JobStatus(
        JobState.ENDED,
        "failed 0, exit_status 3",
        ending=Ending.FAILED,
        node="vm",
        exit_code=3,
        detail="failed 0; exit_status 3; maxvmem 0.000B; category NONE",
    )


@pytest.mark.parametrize("name", ["qacct-sigsegv.txt", "qacct-sigsegv-python.txt"])
def test_recorded_segfault(name):
    status = acct_status(only_record(name))
    assert (status.ending, status.signal, status.exit_code) == (Ending.FAILED, 11, None)
    assert status.detail.startswith("failed 100 : assumedly after job; exit_status 139")


def test_recorded_success():
    assert acct_status(only_record("qacct-ok.txt")) == JobStatus(
        JobState.ENDED, "failed 0, exit_status 0", ending=Ending.COMPLETED, node="vm", exit_code=0
    )


def test_a_qdel_of_a_running_job_is_recorded_as_a_sigkill():
    """SGE 8.1.9's accounting has no sign of a qdel: the job's state ``dr`` is the only one."""
    deleted = only_record("qacct-qdel-running.txt")
    killed = only_record("qacct-sigkill.txt")
    assert (deleted.failed, deleted.exit_status) == (100, 137)
    assert (killed.failed, killed.exit_status) == (100, 137)
    status = acct_status(deleted)
    assert (status.ending, status.signal, status.exit_code) == (Ending.FAILED, 9, None)


def test_recorded_launch_failure_of_an_error_state_job():
    record = only_record("qacct-eqw-wd.txt")
    assert not record.started
    assert acct_status(record) == JobStatus(
        JobState.ENDED,
        "failed 28, exit_status 0",
        ending=Ending.FAILED,
        node="vm",
        detail=(
            "failed 28  : changing into working directory; exit_status 0; maxvmem 0.000B; "
            "category NONE"
        ),
    )


def test_parse_recorded_records_of_one_name():
    records = parse_qacct(recorded("qacct-by-name.txt"))
    assert [(r.job_id, r.name, r.exit_status) for r in records] == [
        ("1033", "rec_same", 0),
        ("1034", "rec_same", 3),
    ]


def test_parse_qacct_of_nothing():
    assert parse_qacct(recorded("qacct-missing.txt")) == []
    assert parse_qacct("") == []


def test_parse_qacct_of_an_older_qacct_without_units():
    text = (
        "==============================================================\n"
        "jobname      x\njobnumber    5\nfailed       0    \nexit_status  0\n"
        "ru_wallclock 12\nmaxvmem      1.500G\n"
    )
    (record,) = parse_qacct(text)
    assert (record.wallclock_s, record.maxvmem_bytes, record.hostname) == (12.0, None, "")


# -- which limit a failed 37 job exceeded --------------------------------------------------


def limit_record(category: str, wallclock_s: float = 10.0, maxvmem_mb: float = 100.0):
    return AcctRecord(
        job_id="1",
        name="x",
        failed=37,
        exit_status=137,
        wallclock_s=wallclock_s,
        maxvmem_bytes=maxvmem_mb * 1024**2,
        category=category,
    )


@pytest.mark.parametrize(
    ("category", "wallclock_s", "maxvmem_mb", "expected"),
    [
        ("-l h_rt=10", 10.0, 100.0, Ending.TIME_LIMIT),
        ("-l h_rt=0:0:10", 11.0, 100.0, Ending.TIME_LIMIT),
        ("-l s_rt=5,h_rt=20", 6.0, 100.0, Ending.TIME_LIMIT),
        ("-l h_vmem=100M", 10.0, 100.0, Ending.MEMORY_LIMIT),
        ("-l h_rt=10,h_vmem=200M", 10.0, 250.0, Ending.MEMORY_LIMIT),
        ("-l h_rt=10,h_vmem=200M", 10.0, 150.0, Ending.TIME_LIMIT),
        ("-l h_rt=60,h_vmem=200M", 10.0, 150.0, None),  # h_cpu, or the queue's limit
        ("NONE", 10.0, 100.0, None),
        ("-q all.q -soft -l h_rt=5", 10.0, 100.0, None),  # a soft request is no limit
        ("-U arusers -l h_rt=5 -q all.q", 10.0, 100.0, Ending.TIME_LIMIT),
    ],
)
def test_limit_ending(category, wallclock_s, maxvmem_mb, expected):
    assert limit_ending(limit_record(category, wallclock_s, maxvmem_mb)) is expected


def test_a_failed_37_job_over_no_limit_of_its_own_failed():
    status = acct_status(limit_record("NONE"))
    assert (status.ending, status.signal) == (Ending.FAILED, 9)


def test_category_requests():
    category = "-U arusers -l h_rt=50,h_vmem=1G,s_rt=40 -q all.q -soft -l arch=lx-amd64"
    assert category_requests(category) == [("h_rt", "50"), ("h_vmem", "1G"), ("s_rt", "40")]
    assert category_requests("-l hostname=(v*)&!node1") == [("hostname", "(v*)&!node1")]
    assert category_requests("NONE") == []


def test_an_exit_code_over_128_without_a_failure_is_the_scripts_own():
    record = AcctRecord(job_id="1", name="x", failed=0, exit_status=139)
    status = acct_status(record)
    assert (status.ending, status.exit_code, status.signal) == (Ending.FAILED, 139, None)


def test_acct_statuses_take_the_last_record_of_the_jobs_asked_for():
    records = [
        AcctRecord(job_id="5", name="m", failed=100, exit_status=137),  # rescheduled
        AcctRecord(job_id="5", name="m", failed=0, exit_status=0),
        AcctRecord(job_id="6", name="other", failed=0, exit_status=0),  # id given again
        AcctRecord(job_id="7", name="m", failed=0, exit_status=2),
    ]
    statuses = acct_statuses(records, [job("5", "m"), job("6", "m"), job("8", "m")])
    assert list(statuses) == ["5"]
    assert statuses["5"].ending is Ending.COMPLETED


def test_acct_statuses_match_the_sanitized_name():
    records = [AcctRecord(job_id="5", name="bp2026-11-21T05_41_54", failed=0, exit_status=0)]
    assert list(acct_statuses(records, [job("5", "2026-11-21T05:41:54")])) == ["5"]


# -- qacct queries -------------------------------------------------------------------------


def test_qacct_queries_ask_for_a_lone_job_by_id_and_several_by_name():
    jobs = [job("1", "a"), job("2", "b"), job("3", "a"), job("4", "a")]
    assert qacct_queries(jobs) == [("a", [jobs[0], jobs[2], jobs[3]]), ("2", [jobs[1]])]


def test_qacct_queries_escape_what_fnmatch_would_read_as_a_pattern():
    jobs = [job("1", "m[1]"), job("2", "m[1]")]
    assert qacct_queries(jobs) == [("m\\[1\\]", jobs)]


def test_qacct_queries_never_pass_a_name_qacct_would_take_for_an_option():
    jobs = [job("1", "-x"), job("2", "-x")]
    assert qacct_queries(jobs) == [("1", [jobs[0]]), ("2", [jobs[1]])]


# -- explain against fake programs ---------------------------------------------------------


def backend(tmp_path: Path, qstat_answers, qacct_answers=None) -> tuple:
    qstat = FakeProgram(tmp_path, "qstat", *qstat_answers)
    qacct = FakeProgram(tmp_path, "qacct", *(qacct_answers or [("", "", 0)]))
    sge = SgeBackend(qstat_path=str(qstat.path), qacct_path=str(qacct.path), command_policy=FAST)
    return sge, qstat, qacct


NONE_EXIST = ("", "Following jobs do not exist: \n1011, 1019\n", 1)


def test_explain_an_error_state_job_and_one_that_left_the_queue(tmp_path):
    sge, qstat, qacct = backend(
        tmp_path,
        [(recorded("qstat-j-eqw-and-missing.txt"), "", 0)],
        [(recorded("qacct-h_rt.txt"), "", 0)],
    )
    told = sge.explain([job("1020", "rec_eqw_wd"), job("1011", "rec_hrt")])
    assert told["1020"] == JobStatus(
        JobState.FAILED,
        "E",
        ending=Ending.ERROR_STATE,
        detail="error: can't chdir to /nonexistent: No such file or directory",
    )
    assert told["1011"].ending is Ending.TIME_LIMIT
    assert [c["argv"] for c in qstat.calls] == [["-j", "1020,1011"]]
    assert [c["argv"] for c in qacct.calls] == [["-j", "1011"]]


def test_explain_jobs_of_one_name_with_one_qacct(tmp_path):
    sge, qstat, qacct = backend(tmp_path, [NONE_EXIST], [(recorded("qacct-by-name.txt"), "", 0)])
    told = sge.explain([job("1033", "rec_same"), job("1034", "rec_same"), job("1040", "rec_same")])
    assert {k: (v.ending, v.exit_code) for k, v in told.items()} == {
        "1033": (Ending.COMPLETED, 0),
        "1034": (Ending.FAILED, 3),
    }
    assert [c["argv"] for c in qacct.calls] == [["-j", "rec_same"]]


def test_explain_leaves_out_jobs_still_queued_without_an_error(tmp_path):
    still = (
        "==============================================================\n"
        "job_number:                 1032\njob_name:                   rec_dr\n"
    )
    sge, _, qacct = backend(tmp_path, [(still, "", 0)])
    assert sge.explain([job("1032", "rec_dr")]) == {}
    assert qacct.calls == []


def test_explain_asks_the_accounting_of_a_job_whose_id_came_back_under_another_name(tmp_path):
    sge, _, qacct = backend(
        tmp_path,
        [(recorded("qstat-j-eqw-and-missing.txt"), "", 0)],
        [(recorded("qacct-missing.txt"), "error: job id 1020 not found\n", 1)],
    )
    assert sge.explain([job("1020", "mine")]) == {}
    assert [c["argv"] for c in qacct.calls] == [["-j", "1020"]]


def test_a_job_the_accounting_does_not_know_yet_is_left_out(tmp_path):
    sge, _, qacct = backend(tmp_path, [NONE_EXIST], [("", "error: job id 1019 not found\n", 1)])
    assert sge.explain([job("1019", "rec_ok")]) == {}
    assert len(qacct.calls) == 1  # an answer: not tried again


@pytest.mark.parametrize(
    "answer",
    [
        ("", "error: commlib error: got select error (Connection refused)\n", 1),
        (
            "no jobs running since startup\n",
            "/var/lib/gridengine/default/common/accounting: No such file or directory\n",
            1,
        ),
        ("garbage\n", "", 0),
    ],
)
def test_a_failing_or_empty_qacct_leaves_its_jobs_out(tmp_path, answer):
    sge, _, _ = backend(tmp_path, [NONE_EXIST], [answer])
    assert sge.explain([job("1019", "rec_ok")]) == {}


def test_a_failing_qacct_leaves_out_only_its_own_jobs(tmp_path):
    sge, _, qacct = backend(
        tmp_path,
        [NONE_EXIST],
        [("", "error: commlib error\n", 2), (recorded("qacct-ok.txt"), "", 0)],
    )
    told = sge.explain([job("1011", "rec_hrt"), job("1019", "rec_ok")])
    assert list(told) == ["1019"]
    assert len(qacct.calls) == 2


def test_explain_without_a_qacct_program(tmp_path):
    qstat = FakeProgram(tmp_path, "qstat", NONE_EXIST)
    sge = SgeBackend(
        qstat_path=str(qstat.path), qacct_path=str(tmp_path / "no-qacct"), command_policy=FAST
    )
    assert sge.explain([job("1019", "rec_ok")]) == {}


def test_explain_with_a_qacct_that_cannot_be_run(tmp_path):
    qstat = FakeProgram(tmp_path, "qstat", NONE_EXIST)
    not_executable = tmp_path / "qacct"
    not_executable.write_text("#!/bin/sh\n")
    sge = SgeBackend(
        qstat_path=str(qstat.path), qacct_path=str(not_executable), command_policy=FAST
    )
    assert sge.explain([job("1019", "rec_ok")]) == {}


def test_a_failing_qstat_j_explains_nothing(tmp_path):
    sge, _, qacct = backend(tmp_path, [("", "error: commlib error\n", 1)])
    assert sge.explain([job("1019", "rec_ok")]) == {}
    assert qacct.calls == []


def test_explain_of_no_jobs_asks_nothing(tmp_path):
    sge, qstat, qacct = backend(tmp_path, [NONE_EXIST])
    assert sge.explain([]) == {}
    assert qstat.calls == [] and qacct.calls == []


def test_explain_asks_qstat_for_many_jobs_in_batches(tmp_path):
    sge, qstat, _ = backend(tmp_path, [NONE_EXIST], [("", "error: job name m not found\n", 1)])
    sge.explain([job(str(1000 + i), "m") for i in range(600)])
    assert [len(c["argv"][1].split(",")) for c in qstat.calls] == [500, 100]


def test_explain_lets_cancel_through(tmp_path):
    sge, qstat, _ = backend(tmp_path, [NONE_EXIST])
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        sge.explain([job("1019", "rec_ok")], cancel)
    assert qstat.calls == []
