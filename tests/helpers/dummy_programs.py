"""Run the programs of a dummy cluster (:mod:`batchpool.testing`) as a test would run a
real scheduler's, and wait for what they report; shared by the dummies' unit tests and
their fault scenarios."""

from __future__ import annotations

import subprocess
import time
import xml.etree.ElementTree as ET

from batchpool.commands import CommandPolicy
from batchpool.pbs import PbsBackend, parse_qstat_f
from batchpool.testing import Phase, Scheduler

DEADLINE_S = 10.0
"""The longest wait for a dummy job to reach a state."""
SLURM_ENDED = {"COMPLETED", "FAILED", "CANCELLED", "NODE_FAIL", "TIMEOUT", "OUT_OF_MEMORY"}
NO_RETRIES = CommandPolicy(timeout_s=30.0, num_retries=0, backoff_s=0.0)
"""A backend's commands on a dummy: a failure shows at once."""


def run(cluster, program, *args, cwd=None, input=None, env=None, bin_dir=None):
    """Run ``program`` of ``bin_dir`` (default ``cluster.bin_dir``: Slurm and SGE)."""
    return subprocess.run(
        [str((bin_dir or cluster.bin_dir) / program), *args],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=cwd,
        input=input,
        env=env if env is not None else cluster.environment(),
    )


def wait_until(predicate, deadline_s: float = DEADLINE_S):
    """The first true value of ``predicate()``, asked every 0.05 s until the deadline."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"condition not met in {deadline_s} s")


def sbatch(cluster, *args, cwd=None, input=None):
    """``sbatch --parsable ARGS``: the job id."""
    result = run(cluster, "sbatch", "--parsable", *args, cwd=cwd, input=input)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def slurm_states(cluster, *extra):
    """``{%i: %T}`` of every job, ended ones included."""
    result = run(cluster, "squeue", "-h", "-r", "-t", "all", "-o", "%i|%T", *extra)
    assert result.returncode == 0, result.stderr
    return dict(line.split("|") for line in result.stdout.splitlines())


def _records(cluster, scheduler, label):
    """The job records of ``label`` (``123``: a job or every element of array 123;
    ``123_4``: one element), read from the state without running a program."""
    base, _, task = label.partition("_")
    return [
        j
        for j in cluster.jobs()
        if j.scheduler is scheduler
        and (j.array_job_id if j.is_array else j.job_id) == int(base)
        and (not task or j.array_task_id == int(task))
    ]


def wait_slurm_ended(cluster, label):
    """The end state of the Slurm job ``label`` (``123``, ``123_4``) as ``squeue`` shows
    it, once the cluster (moving on by itself) has ended it."""
    wait_until(
        lambda: all(j.phase is Phase.ENDED for j in _records(cluster, Scheduler.SLURM, label))
    )
    state = slurm_states(cluster)[label]
    assert state in SLURM_ENDED, state
    return state


def qsub(cluster, *args, cwd=None, input=None):
    """SGE's ``qsub -terse ARGS``: the job id."""
    result = run(cluster, "qsub", "-terse", *args, cwd=cwd, input=input)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def sge_states(cluster):
    """``{job number: state}`` from SGE's ``qstat -xml``."""
    result = run(cluster, "qstat", "-xml")
    assert result.returncode == 0, result.stderr
    root = ET.fromstring(result.stdout)
    return {e.findtext("JB_job_number"): e.findtext("state") for e in root.iter("job_list")}


def wait_sge_gone(cluster, job_id):
    """Wait until SGE's ``qstat`` no longer lists ``job_id``: until the cluster (moving on
    by itself) has ended it or it is being deleted (a job in ``dr`` leaves at the next
    ``qstat``)."""
    wait_until(
        lambda: all(
            j.phase is Phase.ENDED or j.deleting for j in _records(cluster, Scheduler.SGE, job_id)
        )
    )
    wait_until(lambda: job_id not in sge_states(cluster))


def run_pbs(cluster, program, *args, input=None):
    """Run a dummy PBS program in the cluster's directory: jobs without ``-o``/``-e``
    write ``NAME.oID`` and ``NAME.eID`` where they were submitted."""
    return run(
        cluster, program, *args, cwd=cluster.directory, input=input, bin_dir=cluster.pbs_bin_dir
    )


def pbs_qsub(cluster, *args, script="#!/bin/sh\nsleep 30\n"):
    """PBS's ``qsub ARGS`` with ``script`` on stdin: the job id."""
    result = run_pbs(cluster, "qsub", *args, input=script)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def pbs_states(cluster, *args) -> dict[str, str]:
    """``{job id: state letter}`` from PBS's ``qstat -f ARGS``."""
    result = run_pbs(cluster, "qstat", "-f", *args)
    assert result.returncode == 0, result.stderr
    return {job.key: job.state for job in parse_qstat_f(result.stdout)}


def pbs_backend(cluster) -> PbsBackend:
    """batchpool's PBS backend on the cluster's dummy PBS (:data:`NO_RETRIES`)."""
    return PbsBackend(
        qsub_path=cluster.pbs_qsub_path,
        qstat_path=cluster.pbs_qstat_path,
        qdel_path=cluster.pbs_qdel_path,
        command_policy=NO_RETRIES,
    )
