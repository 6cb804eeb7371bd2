"""Scheduler output that cannot be read is a SchedulerError naming the command and the
output, the same way for every backend (:func:`batchpool.commands.parsed`)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from batchpool.backend import Job
from batchpool.commands import CommandPolicy
from batchpool.errors import SchedulerError
from batchpool.pbs import PbsBackend
from batchpool.sge import SgeBackend
from batchpool.slurm import SlurmBackend
from batchpool.slurm.array import SlurmArrayBackend

GARBLED = "12345|this line is cut in the midd"
ONCE = CommandPolicy(timeout_s=10.0, num_retries=0, backoff_s=0.0)


def program_printing(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(f"#!/bin/sh\nprintf '%s\\n' '{text}'\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


BACKENDS = {
    "slurm": lambda path: SlurmBackend(squeue_path=path, command_policy=ONCE),
    "slurm.array": lambda path: SlurmArrayBackend(squeue_path=path, command_policy=ONCE),
    "sge": lambda path: SgeBackend(qstat_path=path, command_policy=ONCE),
    "pbs": lambda path: PbsBackend(qstat_path=path, dialect="torque", command_policy=ONCE),
}


@pytest.mark.parametrize("backend", sorted(BACKENDS))
@pytest.mark.parametrize("query", ["status", "jobs_named"])
def test_a_garbled_status_line_is_a_scheduler_error_naming_command_and_line(
    tmp_path, backend, query
):
    program = "squeue" if backend.startswith("slurm") else "qstat"
    path = program_printing(tmp_path, program, GARBLED)
    scheduler = BACKENDS[backend](path)
    job = Job("12345", "bp_x", tmp_path / "o", tmp_path / "e")
    with pytest.raises(SchedulerError) as caught:
        if query == "status":
            scheduler.status([job])
        else:
            scheduler.jobs_named("bp_x")
    text = str(caught.value)
    assert f"{program} printed output batchpool cannot read" in text
    assert f"command: {path}" in text
    assert GARBLED in text
