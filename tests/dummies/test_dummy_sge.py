"""The dummy Grid Engine, driven through its installed programs like a real one."""

from __future__ import annotations

import getpass
import re
from pathlib import Path

from batchpool.backend import Ending, Job, JobState
from batchpool.sge import SgeBackend, acct_status, parse_qacct, parse_qstat_j
from batchpool.testing import DummyConfig, Fault, FaultKind
from helpers.dummy_programs import qsub, run
from helpers.dummy_programs import sge_states as qstat_states
from helpers.dummy_programs import wait_sge_gone as wait_gone

DATA = Path(__file__).resolve().parent.parent / "data" / "sge"


def normalized(xml_text):
    """The layout of ``qstat -xml`` without what depends on the job, time or host."""
    rules = (
        (r"<JB_job_number>\d+<", "<JB_job_number>N<"),
        (r"<JB_name>[^<]*<", "<JB_name>NAME<"),
        (r"<JB_owner>[^<]*<", "<JB_owner>USER<"),
        (r"(time)>[0-9T:-]+<", r"\1>TIME<"),
        (r"<JAT_prio>0\.[1-9]\d*<", "<JAT_prio>PRIO<"),
        (r"<queue_name>all\.q@[^<]+<", "<queue_name>all.q@HOST<"),
    )
    for pattern, replacement in rules:
        xml_text = re.sub(pattern, replacement, xml_text)
    return xml_text


def test_job_runs_script_with_sge_environment(dummy_cluster, work):
    script = work / "job.sh"
    script.write_text(
        'echo "$JOB_ID $JOB_NAME $SGE_TASK_ID $NSLOTS $SGE_O_WORKDIR $FOO" > result.txt\n'
        'test -d "$TMPDIR" && echo tmpdir-ok\n'
    )
    environment = {**dummy_cluster.environment(), "FOO": "exported"}
    result = run(
        dummy_cluster, "qsub", "-N", "named", "-cwd", "-V", str(script), cwd=work, env=environment
    )
    assert result.returncode == 0, result.stderr
    job_id = re.fullmatch(r'Your job (\d+) \("named"\) has been submitted\n', result.stdout)[1]
    wait_gone(dummy_cluster, job_id)
    assert (work / "result.txt").read_text() == f"{job_id} named undefined 1 {work} exported\n"
    assert (work / f"named.o{job_id}").read_text() == "tmpdir-ok\n"
    assert (work / f"named.e{job_id}").read_text() == ""


def test_without_dash_v_the_submitters_environment_stays_behind(dummy_cluster, work):
    script = work / "job.sh"
    script.write_text('echo "[$FOO] $PATH" > result.txt\n')
    environment = {**dummy_cluster.environment(), "FOO": "exported"}
    result = run(dummy_cluster, "qsub", "-terse", "-cwd", str(script), cwd=work, env=environment)
    assert result.returncode == 0, result.stderr
    wait_gone(dummy_cluster, result.stdout.strip())
    assert (work / "result.txt").read_text() == "[] /usr/local/bin:/bin:/usr/bin\n"


def test_binary_job_merged_output_and_stdin_script(dummy_cluster, work):
    binary = qsub(
        dummy_cluster,
        "-b",
        "y",
        "-j",
        "y",
        "-cwd",
        "-o",
        "out.$JOB_ID",
        "/bin/sh",
        "-c",
        "echo to-out; echo to-err >&2",
        cwd=work,
    )
    piped = qsub(dummy_cluster, "-wd", str(work), cwd="/", input="echo from-stdin\n")
    wait_gone(dummy_cluster, binary)
    wait_gone(dummy_cluster, piped)
    assert (work / f"out.{binary}").read_text() == "to-out\nto-err\n"
    assert (work / f"STDIN.o{piped}").read_text() == "from-stdin\n"


def test_qstat_xml_layout_matches_recorded(dummy_cluster, work):
    empty = run(dummy_cluster, "qstat", "-xml").stdout
    assert empty == (DATA / "qstat-xml-empty.xml").read_text()
    dummy_cluster.set_config(slots=2)
    for name in ("t2", "sl1"):
        qsub(dummy_cluster, "-N", name, "-cwd", "-b", "y", "sleep", "5", cwd=work)
    for name in ("sl2", "sl3", "sl4"):
        qsub(dummy_cluster, "-N", name, "-cwd", "-b", "y", "true", cwd=work)
    qsub(dummy_cluster, "-h", "-N", "held", "-cwd", "-b", "y", "true", cwd=work)
    run(dummy_cluster, "qstat", "-xml")  # the first listing shows the new jobs in "t"
    ours = run(dummy_cluster, "qstat", "-xml").stdout
    recorded = (DATA / "qstat-xml-pending-running.xml").read_text()
    assert normalized(ours) == normalized(recorded)
    assert f"<JB_owner>{getpass.getuser()}</JB_owner>" in ours


def test_eqw_for_missing_output_dir_and_wd(dummy_cluster, work):
    qsub(
        dummy_cluster, "-N", "e_out", "-o", str(work / "missing" / "o"), "-b", "y", "true", cwd=work
    )
    qsub(dummy_cluster, "-N", "e_wd", "-wd", str(work / "missing"), "-b", "y", "true", cwd=work)
    run(dummy_cluster, "qstat", "-xml")
    ours = run(dummy_cluster, "qstat", "-xml").stdout
    assert normalized(ours) == normalized((DATA / "qstat-xml-eqw.xml").read_text())
    assert "<JB_name>e_out</JB_name>" in ours and "<JB_name>e_wd</JB_name>" in ours


def test_qdel_messages_and_dr(dummy_cluster, work):
    dummy_cluster.set_config(slots=1)
    running = qsub(dummy_cluster, "-cwd", "-b", "y", "sleep", "30", cwd=work)
    pending = qsub(dummy_cluster, "-cwd", "-b", "y", "true", cwd=work)
    assert qstat_states(dummy_cluster)[running] in ("t", "r")
    user = getpass.getuser()
    result = run(dummy_cluster, "qdel", f"{running},{pending}")
    assert result.returncode == 0
    assert result.stdout == (
        f"{user} has registered the job {running} for deletion\n{user} has deleted job {pending}\n"
    )
    assert qstat_states(dummy_cluster) == {running: "dr"}
    assert qstat_states(dummy_cluster) == {}
    missing = run(dummy_cluster, "qdel", "99999")
    assert (missing.returncode, missing.stdout) == (1, 'denied: job "99999" does not exist\n')


def test_invalid_name_and_held_job(dummy_cluster, work):
    result = run(dummy_cluster, "qsub", "-N", "1abc", "-b", "y", "true", cwd=work)
    assert result.returncode == 1
    assert result.stderr.splitlines()[0] == (
        'Unable to run job: denied: "1abc" is not a valid object name (cannot start with a digit)'
    )
    assert run(dummy_cluster, "qsub", "-N", "a/b", "-b", "y", "true", cwd=work).returncode == 1
    held = qsub(dummy_cluster, "-h", "-b", "y", "true", cwd=work)
    for _ in range(3):
        assert qstat_states(dummy_cluster) == {held: "hqw"}
    assert dummy_cluster.jobs()[0].held


def test_array_tasks(dummy_cluster, work):
    result = run(
        dummy_cluster,
        "qsub",
        "-t",
        "1-5:2",
        "-cwd",
        "-N",
        "arr",
        cwd=work,
        input='echo "$SGE_TASK_ID $SGE_TASK_FIRST $SGE_TASK_LAST $SGE_TASK_STEPSIZE"\n',
    )
    job_id = re.fullmatch(
        r'Your job-array (\d+)\.1-5:2 \("arr"\) has been submitted\n', result.stdout
    )[1]
    wait_gone(dummy_cluster, job_id)
    for task in (1, 3, 5):
        assert (work / f"arr.o{job_id}.{task}").read_text() == f"{task} 1 5 2\n"


def test_slots_shared_and_config_roundtrip(dummy_cluster, work):
    config = dummy_cluster.set_config(slots=0, partitions=["local", "short.q"])
    assert config == DummyConfig(slots=0, partitions=("local", "short.q"))
    job = qsub(dummy_cluster, "-q", "short.q", "-b", "y", "true", cwd=work)
    assert qstat_states(dummy_cluster) == {job: "qw"}
    rejected = run(dummy_cluster, "qsub", "-q", "nosuch.q", "-b", "y", "true", cwd=work)
    assert rejected.returncode == 1 and "unknown queue" in rejected.stderr


# -- qstat -j and qacct --------------------------------------------------------------------


def test_qstat_j_shows_the_error_reason_and_leaves_out_missing_jobs(dummy_cluster, work):
    outputs = ("-o", str(work / "o"), "-e", str(work / "e"))
    wd = ("-wd", str(work / "missing"))
    eqw = qsub(dummy_cluster, "-N", "e_wd", *outputs, *wd, "-b", "y", "true", cwd=work)
    qstat_states(dummy_cluster)
    result = run(dummy_cluster, "qstat", "-j", f"99999,{eqw}")
    assert (result.returncode, result.stderr) == (0, "")
    (detail,) = parse_qstat_j(result.stdout)
    assert (detail.job_id, detail.name) == (eqw, "e_wd")
    assert detail.error_reasons == (
        f"error: can't chdir to {work / 'missing'}: No such file or directory",
    )
    assert "scheduling info:            Job is in error state" in result.stdout
    missing = run(dummy_cluster, "qstat", "-j", "99998,99999")
    assert (missing.returncode, missing.stdout) == (1, "")
    assert missing.stderr == "Following jobs do not exist: \n99998, 99999\n"


def acct(dummy_cluster, job_id):
    """The ending the dummy ``qacct -j`` tells of one job."""
    result = run(dummy_cluster, "qacct", "-j", job_id)
    assert result.returncode == 0, result.stderr
    (record,) = parse_qacct(result.stdout)
    return acct_status(record)


def test_qacct_records_of_ended_jobs(dummy_cluster, work):
    dummy_cluster.add_fault(Fault(FaultKind.CRASH, job=2))
    ok = qsub(dummy_cluster, "-N", "same", "-cwd", cwd=work, input="true\n")
    three = qsub(dummy_cluster, "-N", "same", "-cwd", cwd=work, input="exit 3\n")
    crashed = qsub(dummy_cluster, "-N", "crash", "-cwd", cwd=work, input="sleep 5\n")
    for job_id in (ok, three, crashed):
        wait_gone(dummy_cluster, job_id)
    assert (acct(dummy_cluster, ok).ending, acct(dummy_cluster, ok).exit_code) == (
        Ending.COMPLETED,
        0,
    )
    assert (acct(dummy_cluster, three).ending, acct(dummy_cluster, three).exit_code) == (
        Ending.FAILED,
        3,
    )
    killed = acct(dummy_cluster, crashed)
    assert (killed.ending, killed.signal, killed.exit_code) == (Ending.FAILED, 9, None)
    by_name = run(dummy_cluster, "qacct", "-j", "sa[m]e")
    assert [r.job_id for r in parse_qacct(by_name.stdout)] == [ok, three]


def test_qacct_of_deleted_and_error_state_jobs(dummy_cluster, work):
    dummy_cluster.set_config(slots=1)
    running = qsub(dummy_cluster, "-cwd", cwd=work, input="sleep 30\n")
    pending = qsub(dummy_cluster, "-cwd", cwd=work, input="true\n")
    assert qstat_states(dummy_cluster)[running] in ("t", "r")
    run(dummy_cluster, "qdel", running, pending)
    wait_gone(dummy_cluster, running)
    deleted = acct(dummy_cluster, running)
    assert (deleted.ending, deleted.signal) == (Ending.FAILED, 9)
    never_ran = run(dummy_cluster, "qacct", "-j", pending)
    assert (never_ran.returncode, never_ran.stdout) == (1, "")
    assert never_ran.stderr == f"error: job id {pending} not found\n"
    outputs = ("-o", str(work / "o"), "-e", str(work / "e"))
    eqw = qsub(dummy_cluster, *outputs, "-wd", str(work / "missing"), "-b", "y", "true", cwd=work)
    assert qstat_states(dummy_cluster)[eqw] == "Eqw"
    launch = acct(dummy_cluster, eqw)
    assert (launch.ending, launch.exit_code) == (Ending.FAILED, None)
    assert launch.detail.startswith("failed 28  : changing into working directory")


def test_backend_explains_dummy_jobs(dummy_cluster, work):
    backend = SgeBackend(
        qsub_path=dummy_cluster.qsub_path,
        qstat_path=dummy_cluster.qstat_path,
        qdel_path=dummy_cluster.qdel_path,
        qacct_path=dummy_cluster.qacct_path,
    )
    eqw = qsub(dummy_cluster, "-N", "m", "-wd", str(work / "missing"), "-b", "y", "true", cwd=work)
    done = qsub(dummy_cluster, "-N", "m", "-cwd", cwd=work, input="exit 4\n")
    wait_gone(dummy_cluster, done)
    jobs = [Job(job_id, "m", Path("o"), Path("e")) for job_id in (eqw, done)]
    assert backend.status(jobs)[eqw].ending is Ending.ERROR_STATE
    told = backend.explain(jobs)
    assert told[eqw].state is JobState.FAILED and told[eqw].ending is Ending.ERROR_STATE
    assert "No such file or directory" in told[eqw].detail
    assert (told[done].ending, told[done].exit_code) == (Ending.FAILED, 4)
    backend.delete(jobs)
