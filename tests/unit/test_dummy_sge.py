"""The dummy Grid Engine, driven through its installed programs like a real one."""

from __future__ import annotations

import getpass
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from batchpool.backend import Ending, Job, JobState
from batchpool.sge import SgeBackend, acct_status, parse_qacct, parse_qstat_j
from batchpool.testing import DummyConfig, Fault, FaultKind
from batchpool.testing.queue import DIRECTORY_VARIABLE

DATA = Path(__file__).resolve().parent.parent / "data" / "sge"
DEADLINE_S = 8.0


def run(cluster, program, *args, cwd=None, input=None):
    return subprocess.run(
        [str(cluster.bin_dir / program), *args],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=cwd,
        input=input,
        env=cluster.environment(),
    )


def install_qacct(cluster) -> Path:
    """The dummy ``qacct`` in the cluster's ``bin``, if ``install_dummies`` left it out."""
    path = cluster.bin_dir / "qacct"
    if not path.exists():
        path.write_text(
            f"#!{sys.executable}\n"
            "import os, sys\n"
            f"os.environ.setdefault({DIRECTORY_VARIABLE!r}, {str(cluster.directory)!r})\n"
            "from batchpool.testing import __main__ as dummy, sge\n"
            "dummy.PROGRAMS.setdefault('qacct', sge.qacct)\n"
            "sys.exit(dummy.main(['qacct', *sys.argv[1:]]))\n"
        )
        path.chmod(0o755)
    return path


def qsub(cluster, *args, cwd=None, input=None):
    result = run(cluster, "qsub", "-terse", *args, cwd=cwd, input=input)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def qstat_states(cluster):
    """``{job number: state}`` from ``qstat -xml``."""
    result = run(cluster, "qstat", "-xml")
    assert result.returncode == 0, result.stderr
    root = ET.fromstring(result.stdout)
    return {e.findtext("JB_job_number"): e.findtext("state") for e in root.iter("job_list")}


def wait_gone(cluster, job_id):
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        if job_id not in qstat_states(cluster):
            return
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} still queued: {qstat_states(cluster)}")


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


def test_job_runs_script_with_sge_environment(cluster, work):
    script = work / "job.sh"
    script.write_text(
        'echo "$JOB_ID $JOB_NAME $SGE_TASK_ID $NSLOTS $SGE_O_WORKDIR $FOO" > result.txt\n'
        'test -d "$TMPDIR" && echo tmpdir-ok\n'
    )
    result = subprocess.run(
        [cluster.qsub_path, "-N", "named", "-cwd", "-V", str(script)],
        capture_output=True,
        text=True,
        cwd=work,
        timeout=30,
        env={**cluster.environment(), "FOO": "exported"},
    )
    assert result.returncode == 0, result.stderr
    job_id = re.fullmatch(r'Your job (\d+) \("named"\) has been submitted\n', result.stdout)[1]
    wait_gone(cluster, job_id)
    assert (work / "result.txt").read_text() == f"{job_id} named undefined 1 {work} exported\n"
    assert (work / f"named.o{job_id}").read_text() == "tmpdir-ok\n"
    assert (work / f"named.e{job_id}").read_text() == ""


def test_without_dash_v_the_submitters_environment_stays_behind(cluster, work):
    script = work / "job.sh"
    script.write_text('echo "[$FOO] $PATH" > result.txt\n')
    result = subprocess.run(
        [cluster.qsub_path, "-terse", "-cwd", str(script)],
        capture_output=True,
        text=True,
        cwd=work,
        timeout=30,
        env={**cluster.environment(), "FOO": "exported"},
    )
    assert result.returncode == 0, result.stderr
    wait_gone(cluster, result.stdout.strip())
    assert (work / "result.txt").read_text() == "[] /usr/local/bin:/bin:/usr/bin\n"


def test_binary_job_merged_output_and_stdin_script(cluster, work):
    binary = qsub(
        cluster,
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
    piped = qsub(cluster, "-wd", str(work), cwd="/", input="echo from-stdin\n")
    wait_gone(cluster, binary)
    wait_gone(cluster, piped)
    assert (work / f"out.{binary}").read_text() == "to-out\nto-err\n"
    assert (work / f"STDIN.o{piped}").read_text() == "from-stdin\n"


def test_qstat_xml_layout_matches_recorded(cluster, work):
    empty = run(cluster, "qstat", "-xml").stdout
    assert empty == (DATA / "qstat-xml-empty.xml").read_text()
    cluster.set_config(slots=2)
    for name in ("t2", "sl1"):
        qsub(cluster, "-N", name, "-cwd", "-b", "y", "sleep", "5", cwd=work)
    for name in ("sl2", "sl3", "sl4"):
        qsub(cluster, "-N", name, "-cwd", "-b", "y", "true", cwd=work)
    qsub(cluster, "-h", "-N", "held", "-cwd", "-b", "y", "true", cwd=work)
    run(cluster, "qstat", "-xml")  # the first listing shows the new jobs in "t"
    ours = run(cluster, "qstat", "-xml").stdout
    recorded = (DATA / "qstat-xml-pending-running.xml").read_text()
    assert normalized(ours) == normalized(recorded)
    assert f"<JB_owner>{getpass.getuser()}</JB_owner>" in ours


def test_eqw_for_missing_output_dir_and_wd(cluster, work):
    qsub(cluster, "-N", "e_out", "-o", str(work / "missing" / "o"), "-b", "y", "true", cwd=work)
    qsub(cluster, "-N", "e_wd", "-wd", str(work / "missing"), "-b", "y", "true", cwd=work)
    run(cluster, "qstat", "-xml")
    ours = run(cluster, "qstat", "-xml").stdout
    assert normalized(ours) == normalized((DATA / "qstat-xml-eqw.xml").read_text())
    assert "<JB_name>e_out</JB_name>" in ours and "<JB_name>e_wd</JB_name>" in ours


def test_qdel_messages_and_dr(cluster, work):
    cluster.set_config(slots=1)
    running = qsub(cluster, "-cwd", "-b", "y", "sleep", "30", cwd=work)
    pending = qsub(cluster, "-cwd", "-b", "y", "true", cwd=work)
    assert qstat_states(cluster)[running] in ("t", "r")
    user = getpass.getuser()
    result = run(cluster, "qdel", f"{running},{pending}")
    assert result.returncode == 0
    assert result.stdout == (
        f"{user} has registered the job {running} for deletion\n{user} has deleted job {pending}\n"
    )
    assert qstat_states(cluster) == {running: "dr"}
    assert qstat_states(cluster) == {}
    missing = run(cluster, "qdel", "99999")
    assert (missing.returncode, missing.stdout) == (1, 'denied: job "99999" does not exist\n')


def test_invalid_name_and_held_job(cluster, work):
    result = run(cluster, "qsub", "-N", "1abc", "-b", "y", "true", cwd=work)
    assert result.returncode == 1
    assert result.stderr.splitlines()[0] == (
        'Unable to run job: denied: "1abc" is not a valid object name (cannot start with a digit)'
    )
    assert run(cluster, "qsub", "-N", "a/b", "-b", "y", "true", cwd=work).returncode == 1
    held = qsub(cluster, "-h", "-b", "y", "true", cwd=work)
    for _ in range(3):
        assert qstat_states(cluster) == {held: "hqw"}
    assert cluster.jobs()[0].held


def test_array_tasks(cluster, work):
    result = run(
        cluster,
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
    wait_gone(cluster, job_id)
    for task in (1, 3, 5):
        assert (work / f"arr.o{job_id}.{task}").read_text() == f"{task} 1 5 2\n"


def test_fault_error_state_shows_eqw_until_qdel(cluster, work):
    cluster.add_fault(Fault(FaultKind.ERROR_STATE, job=0, times=1))
    script = "touch ran-$JOB_ID\n"
    first = qsub(cluster, "-cwd", cwd=work, input=script)
    second = qsub(cluster, "-cwd", cwd=work, input=script)
    for _ in range(3):
        assert qstat_states(cluster).get(first) == "Eqw"
    wait_gone(cluster, second)
    assert run(cluster, "qdel", first).stdout.endswith(f"has deleted job {first}\n")
    assert qstat_states(cluster) == {}
    assert sorted(p.name for p in work.glob("ran-*")) == [f"ran-{second}"]


def test_fault_vanish_and_crash(cluster, work):
    cluster.add_fault(Fault(FaultKind.VANISH, job=0))
    cluster.add_fault(Fault(FaultKind.CRASH, job=1))
    vanished = qsub(cluster, "-cwd", cwd=work, input="touch v\n")
    crashed = qsub(cluster, "-cwd", cwd=work, input="sleep 1; touch c\n")
    normal = qsub(cluster, "-cwd", cwd=work, input="touch n\n")
    wait_gone(cluster, normal)
    assert vanished not in qstat_states(cluster) and crashed not in qstat_states(cluster)
    time.sleep(1.2)
    assert (work / "n").exists() and not (work / "v").exists() and not (work / "c").exists()
    assert [j.job_id for j in cluster.jobs()] == [int(crashed), int(normal)]


def test_job_faults_count_submissions_across_slurm_and_sge(cluster, work):
    crash = Fault(FaultKind.CRASH, job=1, times=3, seconds=0.5)
    cluster.add_fault(crash)
    sbatch = run(cluster, "sbatch", "--parsable", "--wrap", "touch ran-s0", cwd=work)
    assert sbatch.returncode == 0, sbatch.stderr
    array = qsub(cluster, "-t", "1-2", "-cwd", cwd=work, input="sleep 3; touch ran-t$SGE_TASK_ID\n")
    last = qsub(cluster, "-cwd", cwd=work, input="sleep 3; touch ran-q3\n")
    spared = qsub(cluster, "-cwd", cwd=work, input="touch ran-q4\n")
    assert [j.submission for j in cluster.jobs()] == [0, 1, 2, 3, 4]
    for job_id in (array.split(".")[0], last, spared):
        wait_gone(cluster, job_id)
    assert sorted(p.name for p in work.glob("ran-*")) == ["ran-q4", "ran-s0"]
    assert cluster.times_fired(crash) == 3


def test_command_faults(cluster, work):
    cluster.set_config(
        faults=[
            Fault(FaultKind.COMMAND_FAILS, program="qsub", stderr="error: commlib error"),
            {"kind": "command_hangs", "program": "qstat", "seconds": 1.0},
        ]
    )
    failed = run(cluster, "qsub", "-b", "y", "true", cwd=work)
    assert (failed.returncode, failed.stderr) == (1, "error: commlib error\n")
    assert qsub(cluster, "-b", "y", "true", cwd=work) == "1"
    start = time.monotonic()
    run(cluster, "qstat")
    assert time.monotonic() - start >= 1.0
    assert len(cluster.calls("qsub")) == 2 and len(cluster.calls()) == 3


def test_slots_shared_and_config_roundtrip(cluster, work):
    config = cluster.set_config(slots=0, partitions=["local", "short.q"])
    assert config == DummyConfig(slots=0, partitions=("local", "short.q"))
    job = qsub(cluster, "-q", "short.q", "-b", "y", "true", cwd=work)
    assert qstat_states(cluster) == {job: "qw"}
    rejected = run(cluster, "qsub", "-q", "nosuch.q", "-b", "y", "true", cwd=work)
    assert rejected.returncode == 1 and "unknown queue" in rejected.stderr


# -- qstat -j and qacct --------------------------------------------------------------------


def test_qstat_j_shows_the_error_reason_and_leaves_out_missing_jobs(cluster, work):
    outputs = ("-o", str(work / "o"), "-e", str(work / "e"))
    wd = ("-wd", str(work / "missing"))
    eqw = qsub(cluster, "-N", "e_wd", *outputs, *wd, "-b", "y", "true", cwd=work)
    qstat_states(cluster)
    result = run(cluster, "qstat", "-j", f"99999,{eqw}")
    assert (result.returncode, result.stderr) == (0, "")
    (detail,) = parse_qstat_j(result.stdout)
    assert (detail.job_id, detail.name) == (eqw, "e_wd")
    assert detail.error_reasons == (
        f"error: can't chdir to {work / 'missing'}: No such file or directory",
    )
    assert "scheduling info:            Job is in error state" in result.stdout
    missing = run(cluster, "qstat", "-j", "99998,99999")
    assert (missing.returncode, missing.stdout) == (1, "")
    assert missing.stderr == "Following jobs do not exist: \n99998, 99999\n"


def acct(cluster, job_id):
    """The ending the dummy ``qacct -j`` tells of one job."""
    result = run(cluster, str(install_qacct(cluster)), "-j", job_id)
    assert result.returncode == 0, result.stderr
    (record,) = parse_qacct(result.stdout)
    return acct_status(record)


def test_qacct_records_of_ended_jobs(cluster, work):
    cluster.add_fault(Fault(FaultKind.CRASH, job=2))
    ok = qsub(cluster, "-N", "same", "-cwd", cwd=work, input="true\n")
    three = qsub(cluster, "-N", "same", "-cwd", cwd=work, input="exit 3\n")
    crashed = qsub(cluster, "-N", "crash", "-cwd", cwd=work, input="sleep 5\n")
    for job_id in (ok, three, crashed):
        wait_gone(cluster, job_id)
    assert (acct(cluster, ok).ending, acct(cluster, ok).exit_code) == (Ending.COMPLETED, 0)
    assert (acct(cluster, three).ending, acct(cluster, three).exit_code) == (Ending.FAILED, 3)
    killed = acct(cluster, crashed)
    assert (killed.ending, killed.signal, killed.exit_code) == (Ending.FAILED, 9, None)
    by_name = run(cluster, str(install_qacct(cluster)), "-j", "sa[m]e")
    assert [r.job_id for r in parse_qacct(by_name.stdout)] == [ok, three]


def test_qacct_of_deleted_and_error_state_jobs(cluster, work):
    cluster.set_config(slots=1)
    running = qsub(cluster, "-cwd", cwd=work, input="sleep 30\n")
    pending = qsub(cluster, "-cwd", cwd=work, input="true\n")
    assert qstat_states(cluster)[running] in ("t", "r")
    run(cluster, "qdel", running, pending)
    wait_gone(cluster, running)
    deleted = acct(cluster, running)
    assert (deleted.ending, deleted.signal) == (Ending.FAILED, 9)
    never_ran = run(cluster, str(install_qacct(cluster)), "-j", pending)
    assert (never_ran.returncode, never_ran.stdout) == (1, "")
    assert never_ran.stderr == f"error: job id {pending} not found\n"
    outputs = ("-o", str(work / "o"), "-e", str(work / "e"))
    eqw = qsub(cluster, *outputs, "-wd", str(work / "missing"), "-b", "y", "true", cwd=work)
    assert qstat_states(cluster)[eqw] == "Eqw"
    launch = acct(cluster, eqw)
    assert (launch.ending, launch.exit_code) == (Ending.FAILED, None)
    assert launch.detail.startswith("failed 28  : changing into working directory")


def test_backend_explains_dummy_jobs(cluster, work):
    backend = SgeBackend(
        qsub_path=cluster.qsub_path,
        qstat_path=cluster.qstat_path,
        qdel_path=cluster.qdel_path,
        qacct_path=str(install_qacct(cluster)),
    )
    eqw = qsub(cluster, "-N", "m", "-wd", str(work / "missing"), "-b", "y", "true", cwd=work)
    done = qsub(cluster, "-N", "m", "-cwd", cwd=work, input="exit 4\n")
    wait_gone(cluster, done)
    jobs = [Job(job_id, "m", Path("o"), Path("e")) for job_id in (eqw, done)]
    assert backend.status(jobs)[eqw].ending is Ending.ERROR_STATE
    told = backend.explain(jobs)
    assert told[eqw].state is JobState.FAILED and told[eqw].ending is Ending.ERROR_STATE
    assert "No such file or directory" in told[eqw].detail
    assert (told[done].ending, told[done].exit_code) == (Ending.FAILED, 4)
    backend.delete(jobs)
