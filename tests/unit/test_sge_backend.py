"""Unit tests of batchpool.sge.

The parser runs on ``qstat -xml`` output recorded from a real SGE 8.1.9 (tests/data/sge/).
The backend runs against fake ``qsub``/``qstat``/``qdel`` programs written into tmp_path,
which log their argv, stdin and environment and print a given answer.
"""

from __future__ import annotations

import os
import pwd
from pathlib import Path

import pytest
from fake_programs import FakeProgram

from batchpool.backend import Job, JobState, JobStatus, Submission
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
    sge_job_name,
)

DATA = Path(__file__).resolve().parent.parent / "data" / "sge"
FAST = CommandPolicy(timeout_s=20.0, num_retries=0, backoff_s=0.0)
USER = pwd.getpwuid(os.getuid()).pw_name


def submission(chunks: tuple[int, ...] = (7,), log_dir: Path = Path("/work/s/logs")) -> Submission:
    return Submission(
        session_dir=Path("/work/s"),
        job_name="2026-11-21T05:41:54",
        chunks=chunks,
        python_path="/venv/bin/python",
        log_dir=log_dir,
    )


def recorded(name: str) -> str:
    return (DATA / name).read_text()


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
    sub = Submission(
        session_dir=Path("/work/my session"),
        job_name="m",
        chunks=(3,),
        python_path="/venv/bin/python",
        log_dir=Path("/work/my session/logs"),
    )
    assert job_script(sub, 3) == (
        "#!/bin/sh\nexec /venv/bin/python -m batchpool.worker '/work/my session' 3\n"
    )


def test_qsub_argv_with_every_option():
    backend = SgeBackend(
        queue_name="all.q",
        resources=["h_vmem=4G", "h_rt=1:00:00"],
        qsub_args=["-p", "-10"],
        qsub_path="/opt/qsub",
    )
    assert backend.qsub_argv(submission(), 7, Path("/work/s/logs/7.x")) == [
        "/opt/qsub",
        "-terse",
        "-S",
        "/bin/sh",
        "-N",
        "bp2026-11-21T05_41_54",
        "-o",
        "/work/s/logs/7.x.out",
        "-e",
        "/work/s/logs/7.x.err",
        "-wd",
        "/work/s",
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
    assert SgeBackend().qsub_argv(submission((0,)), 0, Path("/work/s/logs/0.x")) == [
        "qsub",
        "-terse",
        "-S",
        "/bin/sh",
        "-N",
        "bp2026-11-21T05_41_54",
        "-o",
        "/work/s/logs/0.x.out",
        "-e",
        "/work/s/logs/0.x.err",
        "-wd",
        "/work/s",
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
    assert jobs[0] == QstatJob("2", "t2", "root", "r", "")


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
    assert parse_qstat_xml(xml) == [QstatJob("12", "a", "u", "qw", "2-10:1")]


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


def test_job_statuses_answer_only_this_maps_jobs():
    jobs = parse_qstat_xml(recorded("qstat-xml-pending-running.xml"))
    statuses = job_statuses(jobs, "sl2", ["3", "4", "5", "99"])
    assert statuses == {"4": JobStatus(JobState.PENDING, "qw")}


# -- the backend against fake programs -----------------------------------------------------


def test_submit_gives_the_job_script_on_stdin_and_private_log_files(tmp_path):
    qsub = FakeProgram(tmp_path, "qsub", ("42\n", "", 0))
    backend = SgeBackend(qsub_path=str(qsub.path), command_policy=FAST)
    sub = submission((7,), log_dir=tmp_path)
    (job,) = backend.submit(sub)
    assert (job.chunk, job.job_id) == (7, "42")
    assert job.stdout_path.parent == tmp_path and job.stdout_path.name.startswith("7.")
    assert job.stderr_path == job.stdout_path.with_suffix(".err")
    for path in (job.stdout_path, job.stderr_path):
        assert path.stat().st_mode & 0o777 == 0o600  # SGE keeps the mode of existing files
    (call,) = qsub.calls
    stem = tmp_path / job.stdout_path.stem
    assert call["argv"] == backend.qsub_argv(sub, 7, stem)[1:]
    assert call["stdin"] == job_script(sub, 7)


def test_submit_refuses_more_than_one_chunk():
    with pytest.raises(ValueError):
        SgeBackend().submit(submission((1, 2)))


def test_unparsable_qsub_output_is_a_scheduler_error(tmp_path):
    qsub = FakeProgram(tmp_path, "qsub", ('Your job 42 ("x") has been submitted\n', "", 0))
    backend = SgeBackend(qsub_path=str(qsub.path), command_policy=FAST)
    with pytest.raises(SchedulerError, match="no job id"):
        backend.submit(submission(log_dir=tmp_path))


def test_status_is_one_qstat_for_this_user(tmp_path):
    qstat = FakeProgram(tmp_path, "qstat", (recorded("qstat-xml-eqw.xml"), "", 0))
    backend = SgeBackend(qstat_path=str(qstat.path), command_policy=FAST)
    jobs = [Job(0, "8", Path("o"), Path("e")), Job(1, "10", Path("o"), Path("e"))]
    assert backend.status("e_out", jobs) == {"8": JobStatus(JobState.FAILED, "Eqw")}
    assert [c["argv"] for c in qstat.calls] == [["-xml", "-u", USER]]


def test_status_matches_the_sanitized_name(tmp_path):
    xml = recorded("qstat-xml-pending-running.xml").replace(">sl2<", ">bp2026-11-21T05_41_54<")
    qstat = FakeProgram(tmp_path, "qstat", (xml, "", 0))
    backend = SgeBackend(qstat_path=str(qstat.path), command_policy=FAST)
    statuses = backend.status("2026-11-21T05:41:54", [Job(0, "4", Path("o"), Path("e"))])
    assert statuses == {"4": JobStatus(JobState.PENDING, "qw")}


def test_status_of_an_empty_queue_is_empty(tmp_path):
    qstat = FakeProgram(tmp_path, "qstat", (recorded("qstat-xml-empty.xml"), "", 0))
    backend = SgeBackend(qstat_path=str(qstat.path), command_policy=FAST)
    assert backend.status("m", [Job(0, "4", Path("o"), Path("e"))]) == {}


def test_status_with_output_that_is_not_xml_is_a_scheduler_error(tmp_path):
    qstat = FakeProgram(tmp_path, "qstat", ("oops\n", "", 0))
    backend = SgeBackend(qstat_path=str(qstat.path), command_policy=FAST)
    with pytest.raises(SchedulerError, match="not XML"):
        backend.status("m", [Job(0, "4", Path("o"), Path("e"))])


def test_delete_many_jobs_in_few_calls(tmp_path):
    qdel = FakeProgram(tmp_path, "qdel", ("root has registered the job 1 for deletion\n", "", 0))
    backend = SgeBackend(qdel_path=str(qdel.path), command_policy=FAST)
    backend.delete([Job(i, str(1000 + i), Path("o"), Path("e")) for i in range(600)])
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
    backend.delete([Job(0, "12", Path("o"), Path("e")), Job(1, "99999", Path("o"), Path("e"))])
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
        backend.delete([Job(0, "12", Path("o"), Path("e"))])


# -- the pool ------------------------------------------------------------------------------


def test_pool_builds_its_backend_and_passes_common_options_on(monkeypatch):
    import batchpool.sge

    seen = {}

    def init(self, *args, **kwargs):
        seen.update(args=args, kwargs=kwargs)

    monkeypatch.setattr(batchpool.proto_pool.ProtoPool, "__init__", init)
    batchpool.sge.Pool(2, queue_name="all.q", resources=["h_vmem=1G"], polling_interval=1.0)
    backend = seen["kwargs"].pop("backend")
    assert seen == {"args": (2, None, (), None), "kwargs": {"polling_interval": 1.0}}
    assert (backend.name, backend.queue_name, backend.resources) == ("sge", "all.q", ["h_vmem=1G"])
