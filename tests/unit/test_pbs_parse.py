"""The parsers of batchpool.pbs on recorded ``qstat`` output.

tests/data/pbs/ holds Torque 6 ``qstat -x`` XML and PBS Pro / OpenPBS ``qstat -f -F json``
from public projects' recordings, and ``qstat -f`` text recorded from Slurm's Torque
wrappers on this project's CI machine; the first line of each file names its source and
is not part of the output.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from batchpool.backend import Ending, Job, JobState
from batchpool.pbs import (
    Dialect,
    PbsBackend,
    QstatJob,
    detect_dialect,
    exit_ending,
    job_key,
    job_status,
    job_statuses,
    parse_qstat_f,
    parse_qstat_json,
    parse_qstat_xml,
    parse_qsub_output,
    pbs_job_name,
)

DATA = Path(__file__).resolve().parent.parent / "data" / "pbs"


def recorded(name: str) -> str:
    """A recorded output without its first line (the note naming its source)."""
    first, _, rest = (DATA / name).read_text().partition("\n")
    assert first.startswith("# source:") or first.startswith("# Recorded"), first
    return rest


def by_key(jobs: list[QstatJob]) -> dict[str, QstatJob]:
    return {job.key: job for job in jobs}


# -- Torque 6 qstat -x ------------------------------------------------------------------------


def test_torque_xml_with_an_array_its_summary_and_elements():
    jobs = by_key(parse_qstat_xml(recorded("torque6-qstat-x-array.xml")))
    assert list(jobs) == ["665199", "667999", "673174", "673175[]", "673175[19]", "673175[20]"]
    element = jobs["673175[19]"]
    assert (element.job_id, element.name, element.state) == (
        "673175[19].fruster.stanford.edu",
        "t.sh-19",
        "C",
    )
    assert element.exit_status == 0 and element.node == "node11"
    assert jobs["673175[]"].exit_status is None  # the summary has none


def test_torque_xml_states_and_endings():
    jobs = by_key(parse_qstat_xml(recorded("torque6-qstat-x-array.xml")))
    running = job_status(jobs["665199"], Dialect.TORQUE)
    assert (running.state, running.node) == (JobState.RUNNING, "node01")
    assert job_status(jobs["667999"], Dialect.TORQUE).state is JobState.PENDING
    done = job_status(jobs["673174"], Dialect.TORQUE)
    assert (done.state, done.ending, done.exit_code) == (JobState.ENDED, Ending.COMPLETED, 0)


def test_torque_xml_held_job_is_pending():
    [held] = parse_qstat_xml(recorded("torque6-qstat-x-held.xml"))
    assert (held.key, held.name, held.state, held.hold_types) == (
        "15020227",
        "workflow_test",
        "H",
        "u",
    )
    status = job_status(held, Dialect.TORQUE)
    assert (status.state, status.reason) == (JobState.PENDING, "H (Hold_Types u)")
    assert status.unusual_wait == "H (Hold_Types u)"


def test_array_elements_are_matched_by_index_and_torques_name_suffix():
    qstat = parse_qstat_xml(recorded("torque6-qstat-x-array.xml"))
    ours = [
        Job("673175[19].superserver.stanford.edu", "t.sh", Path("o"), Path("e")),
        Job("673175[20].superserver.stanford.edu", "t.sh", Path("o"), Path("e")),
        Job("673175[3].superserver.stanford.edu", "t.sh", Path("o"), Path("e")),
    ]
    statuses = job_statuses(qstat, ours, Dialect.TORQUE)
    # the server part differs (fruster / superserver): jobs match by number and index
    assert sorted(statuses) == [ours[0].job_id, ours[1].job_id]
    assert all(s.ending is Ending.COMPLETED for s in statuses.values())


def test_a_job_of_another_name_under_the_same_number_is_not_ours():
    qstat = parse_qstat_xml(recorded("torque6-qstat-x-array.xml"))
    assert job_statuses(qstat, [Job("673174.x", "other", Path(), Path())], Dialect.TORQUE) == {}


def test_empty_torque_xml_is_no_jobs():
    assert parse_qstat_xml("") == [] and parse_qstat_xml("\n") == []


@pytest.mark.parametrize(
    "text", ["<Data><Job><Job_Id>1</Job_Id>", "<html>busy</html>", "<Data><Job></Job></Data>"]
)
def test_bad_torque_xml_is_an_error(text):
    with pytest.raises(ValueError):
        parse_qstat_xml(text)


# -- PBS Pro / OpenPBS qstat -f -F json ---------------------------------------------------------


def test_pbspro_json_held_job():
    [held] = parse_qstat_json(recorded("pbspro-qstat-f-json-held.json"))
    assert (held.job_id, held.name, held.state, held.hold_types) == (
        "157.pbs",
        "pbs_hold_job",
        "H",
        "u",
    )
    assert job_status(held, Dialect.PBSPRO).state is JobState.PENDING
    assert job_status(held, Dialect.PBSPRO).unusual_wait == "H (Hold_Types u)"


def test_pbspro_json_finished_array_with_exit_status():
    [job] = parse_qstat_json(recorded("openpbs-qstat-f-json-array.json"))
    assert (job.key, job.state, job.exit_status, job.node) == ("0", "F", 0, "725ccdf1a5fb")
    status = job_status(job, Dialect.PBSPRO)
    assert (status.state, status.ending) == (JobState.ENDED, Ending.COMPLETED)


def test_pbspro_json_without_jobs_is_no_jobs():
    empty = '{"timestamp": 1, "pbs_version": "22.05.11", "pbs_server": "s"}'
    assert parse_qstat_json(empty) == []


@pytest.mark.parametrize(
    "text", ["", "qstat: cannot connect to server", "[]", '{"Jobs": {"1": {}}}']
)
def test_bad_json_is_an_error(text):
    with pytest.raises(ValueError):
        parse_qstat_json(text)


# -- qstat -f text: Slurm's Torque wrappers (recorded here) and the text format ----------------


def test_slurm_wrapper_text_recorded_on_ci():
    jobs = by_key(parse_qstat_f(recorded("slurm-wrapper-qstat-f.txt")))
    assert jobs["9795"].name == "bp-pbstry-one" and jobs["9795"].state == "R"
    assert jobs["9795"].node == "vm"
    # the wrapper shows an array's running elements by their own Slurm ids and the
    # pending rest under the array's id; a held job is Q
    assert [jobs[k].state for k in ("9796", "9798", "9799")] == ["Q", "R", "R"]
    assert jobs["9797"].state == "Q" and jobs["9797"].name == "bp-pbstry-held"
    queued = job_status(jobs["9796"], Dialect.SLURM)
    assert (queued.state, queued.unusual_wait) == (JobState.PENDING, "")  # its ordinary turn
    assert job_status(jobs["9798"], Dialect.SLURM).unusual_wait == ""  # running
    ended = job_status(jobs["9783"], Dialect.SLURM)
    assert (ended.state, ended.ending) == (JobState.ENDED, None)  # no exit status


def test_text_with_continuation_lines_and_exit_status():
    text = (
        "Job Id: 12[3].server.example.org\n"
        "    Job_Name = sim\n"
        "    job_state = F\n"
        "    Variable_List = PBS_O_HOME=/home/u,PBS_O_PATH=/usr/bin:/bin,\n"
        "\tPBS_O_WORKDIR=/home/u\n"
        "    Exit_status = 271\n"
        "    exec_host = node7/0*2+node8/0*2\n"
        "\n"
    )
    [job] = parse_qstat_f(text)
    assert (job.key, job.name, job.exit_status, job.node) == ("12[3]", "sim", 271, "node7")
    status = job_status(job, Dialect.PBSPRO)
    assert (status.ending, status.signal, status.exit_code) == (Ending.FAILED, 15, None)


@pytest.mark.parametrize(
    "text", ["qstat: cannot connect to server pbs (errno=111)", "Job Id: 1\n    Job_Name = x\n"]
)
def test_bad_text_is_an_error(text):
    with pytest.raises(ValueError):
        parse_qstat_f(text)


# -- states, endings, ids -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "state, hold, expected",
    [
        ("Q", "n", JobState.PENDING),
        ("H", "u", JobState.PENDING),
        ("W", "n", JobState.PENDING),
        ("T", "n", JobState.PENDING),
        ("S", "n", JobState.PENDING),
        ("U", "n", JobState.PENDING),
        ("M", "n", JobState.PENDING),
        ("R", "n", JobState.RUNNING),
        ("E", "n", JobState.RUNNING),
        ("B", "n", JobState.RUNNING),
        ("C", "n", JobState.ENDED),
        ("F", "n", JobState.ENDED),
        ("X", "n", JobState.ENDED),
        ("H", "s", JobState.FAILED),
    ],
)
def test_state_map(state, hold, expected):
    status = job_status(QstatJob("1.s", "x", state, hold_types=hold), Dialect.TORQUE)
    assert status.state is expected
    if expected is JobState.FAILED:
        assert status.ending is Ending.ERROR_STATE


@pytest.mark.parametrize(
    "exit_status, dialect, expected",
    [
        (0, Dialect.TORQUE, (Ending.COMPLETED, 0, None)),
        (3, Dialect.TORQUE, (Ending.FAILED, 3, None)),
        (137, Dialect.PBSPRO, (Ending.FAILED, None, 9)),
        (265, Dialect.TORQUE, (Ending.FAILED, None, 9)),
        (271, Dialect.PBSPRO, (Ending.FAILED, None, 15)),
        (-11, Dialect.TORQUE, (Ending.TIME_LIMIT, None, None)),
        (-10, Dialect.TORQUE, (Ending.MEMORY_LIMIT, None, None)),
        (-3, Dialect.TORQUE, (Ending.PREEMPTED, None, None)),
        (-29, Dialect.PBSPRO, (Ending.TIME_LIMIT, None, None)),
        (-27, Dialect.PBSPRO, (Ending.MEMORY_LIMIT, None, None)),
        (-10, Dialect.PBSPRO, (Ending.FAILED, None, None)),  # JOB_EXEC_FAILUID there
        (-1, Dialect.TORQUE, (Ending.FAILED, None, None)),
    ],
)
def test_exit_status_endings(exit_status, dialect, expected):
    assert exit_ending(exit_status, dialect) == expected


@pytest.mark.parametrize(
    "text, dialect",
    [
        ("pbs_version = 2022.1.1\n", Dialect.PBSPRO),
        ("Version: 6.1.2\nCommit: 661e092552de43a785c15d39a3634a541d86898e\n", Dialect.TORQUE),
        (
            "Unknown option: version\nUsage:\n    qstat [-f] [-a|-i|-r] [-n [-1]] [-G|-M]",
            Dialect.SLURM,
        ),
    ],
)
def test_dialect_detection(text, dialect):
    assert detect_dialect(text) is dialect


def test_sges_qstat_is_no_pbs_dialect():
    with pytest.raises(ValueError, match="dialect option"):
        detect_dialect('error: ERROR! invalid option argument "--version"\nSGE 8.1.9\nusage: qstat')


@pytest.mark.parametrize(
    "stdout, job_id",
    [
        ("123.server.example.org\n", "123.server.example.org"),
        ("45[].pbs01\n", "45[].pbs01"),
        ("9795\n", "9795"),
        ("qsub: warning: something\n77.s\n", "77.s"),
    ],
)
def test_qsub_output(stdout, job_id):
    assert parse_qsub_output(stdout) == job_id


def test_qsub_output_without_an_id_is_an_error():
    with pytest.raises(ValueError, match="no job id"):
        parse_qsub_output("qsub: Job exceeds queue resource limits MSG=cannot satisfy\n")


def test_job_keys():
    assert job_key("673175[19].fruster.stanford.edu") == "673175[19]"
    assert job_key("45[].pbs01") == "45[]"
    assert job_key("9795") == "9795"


@pytest.mark.parametrize("text, mb", [("4gb", 4096), ("512MB", 512), ("2048", 2048), (1000, 1000)])
def test_mem_is_read_by_the_units_grammar(text, mb):
    assert PbsBackend(mem=text, dialect="torque").mem_mb == mb


@pytest.mark.parametrize("text", ["01:30:00", "90:00", "90", 90, "1.5h"])
def test_walltime_is_read_by_the_units_grammar(text):
    assert PbsBackend(walltime=text, dialect="torque").walltime_s == 5400


@pytest.mark.parametrize("bad", ["4 GiB", "lots", "1kw"])
def test_bad_sizes(bad):
    with pytest.raises(ValueError, match="mem=.* is not an amount of memory"):
        PbsBackend(mem=bad)


def test_bad_walltime():
    with pytest.raises(ValueError, match="walltime='1:2:3:4' is not a duration"):
        PbsBackend(walltime="1:2:3:4")


def test_job_names():
    assert pbs_job_name("bp_20261121T213753_955_cc654d") == "bp_20261121T213753_955_cc654d"
    assert pbs_job_name("2026-11-21T05:41:54") == "bp2026-11-21T05_41_54"
    assert len(pbs_job_name("x" * 300)) == 236


def test_pbspro_text_of_a_finished_job_with_cut_continuation_lines():
    [job] = parse_qstat_f(recorded("pbspro-qstat-xf-text.txt"))
    assert (job.key, job.name, job.state, job.exit_status) == ("7600424", "pi-mpi", "F", 0)
    assert job.node == "node0088"
    # a value cut mid-word goes on in the next tab-indented line, joined without a space
    assert job.comment.endswith("(node0085:ncpus=2:mem=1048576kb:ngpus=0:nphis=0) and finished")
    status = job_status(job, Dialect.PBSPRO)
    assert (status.state, status.ending, status.exit_code) == (JobState.ENDED, Ending.COMPLETED, 0)
