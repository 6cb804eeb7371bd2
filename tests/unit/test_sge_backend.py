"""Unit tests of batchpool.sge.

The parsers run on ``qstat -xml``, ``qstat -j`` and ``qacct -j`` output recorded from a
real SGE 8.1.9 (tests/data/sge/; a ``.txt`` file names its command and job in a header).
The backend runs against fake ``qsub``/``qstat``/``qdel``/``qacct`` programs written into
tmp_path, which log their argv, stdin and environment and print a given answer.
"""

from __future__ import annotations

import os
import pwd
import re
import shlex
from pathlib import Path

import pytest

from batchpool._layout import job_id_from_environment
from batchpool.backend import Ending, Job, JobRequest, JobState, JobStatus
from batchpool.commands import CommandPolicy
from batchpool.errors import SchedulerError
from batchpool.sge import (
    QstatJob,
    SgeBackend,
    job_script,
    job_state,
    job_statuses,
    parse_qstat_xml,
    parse_qsub_terse,
    queue_host,
    sge_job_name,
    state_ending,
)
from helpers.fake_programs import FakeProgram

DATA = Path(__file__).resolve().parent.parent / "data" / "sge"
FAST = CommandPolicy(timeout_s=20.0, num_retries=0, backoff_s=0.0)
USER = pwd.getpwuid(os.getuid()).pw_name


NAME = "2026-11-21T05:41:54"
"""A job name SGE does not take as it is (a pool's own names are valid already)."""

LOGS = ("/work/pool_x/logs/sge.x.out", "/work/pool_x/logs/sge.x.err")

def request(count: int = 1, log_dir: Path = Path("/work/pool_x/logs")) -> JobRequest:
    return JobRequest(
        pool_dir=Path("/work/pool_x"),
        job_name=NAME,
        count=count,
        python_path="/venv/bin/python",
        log_dir=log_dir,
    )


def job(job_id: str, name: str = NAME) -> Job:
    return Job(job_id, name, Path("o"), Path("e"))


def recorded(name: str) -> str:
    """A recorded output; for a ``.txt`` file, the part after its ``# ---`` header."""
    text = (DATA / name).read_text()
    if name.endswith(".txt"):
        return text.split("# ---\n", 1)[1]
    return text


# -- names, job script, qsub command line ---------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("mymap", "mymap"),
        ("2026-11-21T05:41:54", "bp2026-11-21T05_41_54"),
        ("a/b:c@d\\e*f?g h", "a_b_c_d_e_f_g_h"),
        ("tab\tnew\nline", "tab_new_line"),
        ("ünïcode", "_n_code"),
        ("", "bp"),
    ],
)
def test_sge_job_name(name, expected):
    assert sge_job_name(name) == expected


def test_job_script_execs_the_worker_by_absolute_path():
    req = JobRequest(Path("/work/my pool"), "m", 1, "/venv/bin/python", Path("/work/my pool/l"))
    assert job_script(req) == (
        "#!/bin/sh\nexec /venv/bin/python -m batchpool.worker '/work/my pool' --job-id '{JOB_ID}'\n"
    )


def test_a_worker_names_itself_as_qstat_and_the_backend_name_its_job():
    exec_line = job_script(request()).splitlines()[1]
    template = shlex.split(exec_line)[-1]
    named = job_id_from_environment(template, {"JOB_ID": "42", "SGE_TASK_ID": "undefined"})
    assert named == parse_qsub_terse("42\n")


def test_qsub_argv_with_every_option():
    backend = SgeBackend(
        queue_name="all.q",
        resources=["h_vmem=4G", "h_rt=1:00:00"],
        qsub_args=["-p", "-10"],
        qsub_path="/opt/qsub",
    )
    assert backend.qsub_argv(request(), LOGS) == [
        "/opt/qsub",
        "-terse",
        "-S",
        "/bin/sh",
        "-N",
        "bp2026-11-21T05_41_54",
        "-o",
        "/work/pool_x/logs/sge.x.out",
        "-e",
        "/work/pool_x/logs/sge.x.err",
        "-wd",
        "/work/pool_x",
        "-q",
        "all.q",
        "-l",
        "h_vmem=4G",
        "-l",
        "h_rt=1:00:00",
        "-p",
        "-10",
    ]


def test_qsub_argv_without_options():
    assert SgeBackend().qsub_argv(request(), LOGS) == [
        "qsub",
        "-terse",
        "-S",
        "/bin/sh",
        "-N",
        "bp2026-11-21T05_41_54",
        "-o",
        "/work/pool_x/logs/sge.x.out",
        "-e",
        "/work/pool_x/logs/sge.x.err",
        "-wd",
        "/work/pool_x",
    ]


def test_parse_qsub_terse():
    assert parse_qsub_terse("12\n") == "12"
    assert parse_qsub_terse("12.1-10:1\n") == "12"
    with pytest.raises(ValueError):
        parse_qsub_terse('Your job 12 ("x") has been submitted\n')


# -- qstat -xml ----------------------------------------------------------------------------


def test_parse_recorded_empty_qstat():
    assert parse_qstat_xml(recorded("qstat-xml-empty.xml")) == []


def test_parse_recorded_pending_and_running_jobs():
    jobs = parse_qstat_xml(recorded("qstat-xml-pending-running.xml"))
    assert [(j.job_id, j.name, j.state) for j in jobs] == [
        ("2", "t2", "r"),
        ("3", "sl1", "r"),
        ("4", "sl2", "qw"),
        ("5", "sl3", "qw"),
        ("6", "sl4", "qw"),
        ("7", "held", "hqw"),
    ]
    assert jobs[0] == QstatJob("2", "t2", "root", "r", "", "all.q@vm")
    assert jobs[2] == QstatJob("4", "sl2", "root", "qw", "", "")


def test_parse_recorded_error_state_jobs():
    jobs = parse_qstat_xml(recorded("qstat-xml-eqw.xml"))
    assert [(j.job_id, j.name, j.state) for j in jobs] == [
        ("8", "e_out", "Eqw"),
        ("9", "e_wd", "Eqw"),
    ]


@pytest.mark.parametrize(
    "name", ["qstat-xml-empty.xml", "qstat-xml-eqw.xml", "qstat-xml-pending-running.xml"]
)
def test_parser_agrees_with_the_qstat_package(name):
    from qstat._tools import xml2queue_and_job_info

    queue_info, job_info = xml2queue_and_job_info(recorded(name))
    theirs = [(j["JB_job_number"], j["JB_name"], j["state"]) for j in queue_info + job_info]
    assert [(j.job_id, j.name, j.state) for j in parse_qstat_xml(recorded(name))] == theirs


def test_parse_qstat_xml_reads_array_tasks():
    xml = (
        "<?xml version='1.0'?><job_info><queue_info/><job_info>"
        "<job_list state='pending'><JB_job_number>12</JB_job_number><JB_name>a</JB_name>"
        "<JB_owner>u</JB_owner><state>qw</state><tasks>2-10:1</tasks></job_list>"
        "</job_info></job_info>"
    )
    assert parse_qstat_xml(xml) == [QstatJob("12", "a", "u", "qw", "2-10:1", "")]


def test_parse_qstat_xml_rejects_what_is_not_xml():
    with pytest.raises(ValueError, match="not XML"):
        parse_qstat_xml("error: failed receiving gdi request\n")


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ("qw", JobState.PENDING),
        ("hqw", JobState.PENDING),
        ("hRwq", JobState.PENDING),
        ("Rq", JobState.PENDING),
        ("r", JobState.RUNNING),
        ("t", JobState.RUNNING),
        ("Rr", JobState.RUNNING),
        ("Rt", JobState.RUNNING),
        ("s", JobState.PENDING),
        ("S", JobState.PENDING),
        ("T", JobState.PENDING),
        ("ts", JobState.PENDING),
        ("Eqw", JobState.FAILED),
        ("Ehqw", JobState.FAILED),
        ("EhRqw", JobState.FAILED),
        ("dr", JobState.FAILED),
        ("dt", JobState.FAILED),
        ("dRr", JobState.FAILED),
    ],
)
def test_job_state(state, expected):
    assert job_state(state) is expected


def test_job_statuses_answer_only_the_jobs_asked_for_by_id_and_name():
    jobs = parse_qstat_xml(recorded("qstat-xml-pending-running.xml"))
    asked = [job("3", "sl2"), job("4", "sl2"), job("5", "sl3"), job("99", "sl2")]
    statuses = job_statuses(jobs, asked)
    # 3 is sl1 in the queue: an id of another job (SGE reuses ids after a restart)
    assert statuses == {
        "4": JobStatus(JobState.PENDING, "qw"),
        "5": JobStatus(JobState.PENDING, "qw"),
    }


@pytest.mark.parametrize(
    ("state", "ending"),
    [
        ("qw", None),
        ("r", None),
        ("Rr", None),
        ("s", None),
        ("Eqw", Ending.ERROR_STATE),
        ("Ehqw", Ending.ERROR_STATE),
        ("EhRqw", Ending.ERROR_STATE),
        ("dr", Ending.CANCELLED),
        ("dt", Ending.CANCELLED),
        ("dRr", Ending.CANCELLED),
    ],
)
def test_state_ending(state, ending):
    assert state_ending(state) is ending


def test_queue_host():
    assert queue_host("all.q@vm") == "vm"
    assert queue_host("long.q@node7.cluster.example.org") == "node7.cluster.example.org"
    assert queue_host("") == ""


def test_job_statuses_of_recorded_deleting_running_and_error_state_jobs():
    jobs = parse_qstat_xml(recorded("qstat-xml-dr.txt"))
    asked = [job("1032", "rec_dr"), job("1020", "rec_eqw_wd"), job("130", "other")]
    assert job_statuses(jobs, asked) == {
        "1032": JobStatus(JobState.FAILED, "dr", ending=Ending.CANCELLED, node="vm"),
        "1020": JobStatus(JobState.FAILED, "Eqw", ending=Ending.ERROR_STATE),
    }


def test_job_statuses_match_the_sanitized_name():
    qstat_jobs = [QstatJob("4", "bp2026-11-21T05_41_54", "u", "r", queue="all.q@n1")]
    assert job_statuses(qstat_jobs, [job("4", NAME)]) == {
        "4": JobStatus(JobState.RUNNING, "r", node="n1")
    }
    assert job_statuses(qstat_jobs, [job("4", "other")]) == {}


def test_job_statuses_of_no_jobs_are_empty():
    assert job_statuses(parse_qstat_xml(recorded("qstat-xml-eqw.xml")), []) == {}


# -- the backend against fake programs -----------------------------------------------------


def test_submit_gives_the_job_script_on_stdin_and_private_log_files(tmp_path):
    qsub = FakeProgram(tmp_path, "qsub", ("42\n", "", 0))
    backend = SgeBackend(qsub_path=str(qsub.path), command_policy=FAST)
    assert backend.max_jobs_per_submit() == 1
    req = request(log_dir=tmp_path / "logs")
    req.log_dir.mkdir()
    (submitted,) = backend.submit(req)
    assert (submitted.job_id, submitted.name) == ("42", NAME)
    stem = submitted.stdout_path.with_suffix("")
    assert stem.parent == req.log_dir and re.fullmatch(r"sge\.[0-9a-f]{12}", stem.name)
    assert submitted.stdout_path == Path(f"{stem}.out")
    assert submitted.stderr_path == Path(f"{stem}.err")
    for path in (submitted.stdout_path, submitted.stderr_path):
        assert path.read_bytes() == b""
        assert path.stat().st_mode & 0o777 == 0o600  # SGE keeps the mode of existing files
    (call,) = qsub.calls
    assert call["argv"] == backend.qsub_argv(req, (f"{stem}.out", f"{stem}.err"))[1:]
    assert call["stdin"] == job_script(req)


def test_every_submission_has_log_files_of_its_own(tmp_path):
    qsub = FakeProgram(tmp_path, "qsub", ("42\n", "", 0), ("43\n", "", 0))
    backend = SgeBackend(qsub_path=str(qsub.path), command_policy=FAST)
    req = request(log_dir=tmp_path)
    (first,), (second,) = backend.submit(req), backend.submit(req)
    assert (first.job_id, second.job_id) == ("42", "43")
    assert first.stdout_path != second.stdout_path
    assert first.stderr_path != second.stderr_path


def test_submit_refuses_more_jobs_than_one(tmp_path):
    qsub = FakeProgram(tmp_path, "qsub", ("42\n", "", 0))
    backend = SgeBackend(qsub_path=str(qsub.path), command_policy=FAST)
    with pytest.raises(ValueError):
        backend.submit(request(count=2, log_dir=tmp_path))
    assert qsub.calls == []


def test_unparsable_qsub_output_is_a_scheduler_error(tmp_path):
    qsub = FakeProgram(tmp_path, "qsub", ('Your job 42 ("x") has been submitted\n', "", 0))
    backend = SgeBackend(qsub_path=str(qsub.path), command_policy=FAST)
    with pytest.raises(SchedulerError, match="no job id"):
        backend.submit(request(log_dir=tmp_path))


def test_a_failing_qsub_is_a_scheduler_error(tmp_path):
    denied = 'Unable to run job: Job was rejected because job requests unknown queue "x.q".\n'
    qsub = FakeProgram(tmp_path, "qsub", ("", denied, 1))
    backend = SgeBackend(qsub_path=str(qsub.path), command_policy=FAST)
    with pytest.raises(SchedulerError, match="unknown queue"):
        backend.submit(request(log_dir=tmp_path))


def test_status_is_one_qstat_for_this_user(tmp_path):
    qstat = FakeProgram(tmp_path, "qstat", (recorded("qstat-xml-eqw.xml"), "", 0))
    backend = SgeBackend(qstat_path=str(qstat.path), command_policy=FAST)
    jobs = [job("8", "e_out"), job("10", "e_out")]
    assert backend.status(jobs) == {
        "8": JobStatus(JobState.FAILED, "Eqw", ending=Ending.ERROR_STATE)
    }
    assert [c["argv"] for c in qstat.calls] == [["-xml", "-u", USER]]


def test_status_of_jobs_of_several_names_is_still_one_qstat(tmp_path):
    qstat = FakeProgram(tmp_path, "qstat", (recorded("qstat-xml-pending-running.xml"), "", 0))
    backend = SgeBackend(qstat_path=str(qstat.path), command_policy=FAST)
    statuses = backend.status([job("3", "sl1"), job("7", "held"), job("6", "sl4")])
    assert statuses == {
        "3": JobStatus(JobState.RUNNING, "r", node="vm"),
        "6": JobStatus(JobState.PENDING, "qw"),  # its ordinary turn: no unusual wait
        "7": JobStatus(JobState.PENDING, "hqw", unusual_wait="hqw"),
    }
    assert len(qstat.calls) == 1


def test_status_matches_the_sanitized_name(tmp_path):
    xml = recorded("qstat-xml-pending-running.xml").replace(">sl2<", ">bp2026-11-21T05_41_54<")
    qstat = FakeProgram(tmp_path, "qstat", (xml, "", 0))
    backend = SgeBackend(qstat_path=str(qstat.path), command_policy=FAST)
    statuses = backend.status([job("4", NAME)])
    assert statuses == {"4": JobStatus(JobState.PENDING, "qw")}


def test_status_of_no_jobs_asks_nothing(tmp_path):
    qstat = FakeProgram(tmp_path, "qstat", (recorded("qstat-xml-empty.xml"), "", 0))
    backend = SgeBackend(qstat_path=str(qstat.path), command_policy=FAST)
    assert backend.status([]) == {}
    assert qstat.calls == []


def test_status_of_an_empty_queue_is_empty(tmp_path):
    qstat = FakeProgram(tmp_path, "qstat", (recorded("qstat-xml-empty.xml"), "", 0))
    backend = SgeBackend(qstat_path=str(qstat.path), command_policy=FAST)
    assert backend.status([job("4", "m")]) == {}


def test_status_with_output_that_is_not_xml_is_a_scheduler_error(tmp_path):
    qstat = FakeProgram(tmp_path, "qstat", ("oops\n", "", 0))
    backend = SgeBackend(qstat_path=str(qstat.path), command_policy=FAST)
    with pytest.raises(SchedulerError, match="not XML"):
        backend.status([job("4", "m")])


def test_delete_many_jobs_in_few_calls(tmp_path):
    qdel = FakeProgram(tmp_path, "qdel", ("root has registered the job 1 for deletion\n", "", 0))
    backend = SgeBackend(qdel_path=str(qdel.path), command_policy=FAST)
    backend.delete([job(str(1000 + i)) for i in range(600)])
    calls = [c["argv"] for c in qdel.calls]
    assert [len(argv) for argv in calls] == [500, 100]
    assert calls[0][0] == "1000" and calls[1][-1] == "1599"


def test_delete_of_jobs_already_gone_is_not_an_error(tmp_path):
    answer = (
        "root has registered the job 12 for deletion\n",
        'denied: job "99999" does not exist\n',
        1,
    )
    qdel = FakeProgram(tmp_path, "qdel", answer)
    backend = SgeBackend(qdel_path=str(qdel.path), command_policy=FAST)
    backend.delete([job("12"), job("99999")])
    assert len(qdel.calls) == 1


@pytest.mark.parametrize(
    "answer",
    [
        ("", "error: commlib error: got select error (Connection refused)\n", 1),
        ("", "", 1),
        ("root has registered the job 12 for deletion\n", "", 1),
    ],
)
def test_delete_that_fails_otherwise_is_a_scheduler_error(tmp_path, answer):
    qdel = FakeProgram(tmp_path, "qdel", answer)
    backend = SgeBackend(qdel_path=str(qdel.path), command_policy=FAST)
    with pytest.raises(SchedulerError, match="failed 1 times"):
        backend.delete([job("12")])


def test_filter_stderr_keeps_everything():
    text = "error: something\nTraceback\n"
    assert SgeBackend().filter_stderr(text) == text


# -- the pool ------------------------------------------------------------------------------


def test_pool_builds_its_backend_and_passes_common_options_on(monkeypatch):
    import batchpool.sge

    seen = {}

    def init(self, *args, **kwargs):
        seen.update(args=args, kwargs=kwargs)

    monkeypatch.setattr(batchpool.proto_pool.ProtoPool, "__init__", init)
    batchpool.sge.Pool(2, queue_name="all.q", resources=["h_vmem=1G"], polling_interval=1.0)
    backend = seen["kwargs"].pop("backend")
    assert seen["args"] == (2, None, (), None, None)
    assert seen["kwargs"]["polling_interval"] == 1.0
    assert "queue_name" not in seen["kwargs"] and "resources" not in seen["kwargs"]
    assert (backend.name, backend.queue_name, backend.resources) == ("sge", "all.q", ["h_vmem=1G"])
