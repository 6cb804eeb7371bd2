"""The README's test command on a host with a scheduler submits nothing unless asked:
the real-scheduler tests (``tests/real``, the contract suite's ``real-*`` kinds) run
only with ``--real`` or ``BATCHPOOL_TEST_REAL=1`` (``tests/conftest.py``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import batchpool
from helpers import pools
from helpers.fake_programs import FakeProgram

TESTS = Path(__file__).resolve().parents[1]
SCHEDULER_PROGRAMS = (
    *("sbatch", "squeue", "scancel", "scontrol", "sinfo", "sacct", "srun", "salloc"),
    *("qsub", "qstat", "qdel", "qacct", "qconf", "qhost", "pbsnodes"),
)
"""Every program of Slurm, SGE and PBS that a real-scheduler test may run."""


def test_a_host_with_sbatch_and_qsub_gets_no_job_without_real(tmp_path):
    """pytest on the real tests and the real contract kinds, with scheduler programs
    first on PATH (and as the PBS wrappers) that record their calls: nothing is called,
    every test is skipped saying how to run it, and the run is not green (exit 5)."""
    fakes = tmp_path / "bin"
    fakes.mkdir()
    programs = [
        FakeProgram(fakes, name, ("", "not a scheduler: a test's fake\n", 1))
        for name in SCHEDULER_PROGRAMS
    ]
    env = {k: v for k, v in os.environ.items() if k != pools.REAL_VARIABLE}
    env["PATH"] = f"{fakes}{os.pathsep}{env.get('PATH', '')}"
    env["BATCHPOOL_PBS_WRAPPERS"] = str(fakes)
    source = str(Path(batchpool.__file__).parents[1])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [source, env.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rs", "-k", "real"]
        + [str(TESTS / "real"), str(TESTS / "contract")],
        cwd=TESTS.parent,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert {p.path.name: p.calls for p in programs} == {p.path.name: [] for p in programs}
    summary = done.stdout.strip().splitlines()[-1]
    assert done.returncode == pytest.ExitCode.NO_TESTS_COLLECTED, done.stdout + done.stderr
    assert " skipped, " in summary and "passed" not in summary and "failed" not in summary
    assert f"run with --real or {pools.REAL_VARIABLE}=1" in done.stdout


@pytest.mark.parametrize(
    ("option", "environ", "asked"),
    [
        (False, {}, False),
        (False, {pools.REAL_VARIABLE: ""}, False),
        (False, {pools.REAL_VARIABLE: "0"}, False),
        (False, {pools.REAL_VARIABLE: "1"}, True),
        (True, {}, True),
    ],
)
def test_real_tests_are_asked_for_by_option_or_variable(option, environ, asked):
    assert pools.real_asked(option, environ) is asked


def test_require_real_skips_when_not_asked(monkeypatch):
    monkeypatch.setattr(pools, "real_is_asked", False)
    with pytest.raises(pytest.skip.Exception, match="run with --real"):
        pools.require_real("slurm")
