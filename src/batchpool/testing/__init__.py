"""Dummy Slurm, Grid Engine and PBS programs for tests.

:func:`install_dummies` writes executable ``sbatch squeue scancel scontrol qsub qstat
qdel`` into ``DIRECTORY/bin``, and PBS's ``qsub qstat qdel`` (Torque 6 or PBS Pro,
:mod:`batchpool.testing.pbs`) into ``DIRECTORY/pbs/bin``. They are real programs
(``python -m batchpool.testing PROGRAM``) that share one JSON queue state in
``DIRECTORY``, speak the real flags, print Slurm 22.05 / SGE 8.1.9 / Torque 6 output,
run the jobs on this machine and take faults as data (:class:`Fault` in :class:`DummyConfig`).
Like a real scheduler, the queue moves on with the wall clock: while jobs wait or run,
a small supervisor process (started by the program that left them there, gone a few
seconds after the queue is idle) starts pending jobs, notices ended ones and lets
scheduled faults happen without anybody calling ``squeue``::

    cluster = install_dummies(tmp_path, config=DummyConfig(slots=2))
    # the cluster's first two jobs (submission index 0 and 1) fail with NODE_FAIL
    cluster.add_fault(Fault(FaultKind.ERROR_STATE, job=0, times=2, state="NODE_FAIL"))
    # the third one is SIGKILLed (its whole process group) 1.5 s after it started
    cluster.add_fault(Fault(FaultKind.CRASH, job=2, seconds=1.5))
    pool = batchpool.slurm.Pool(sbatch_path=cluster.sbatch_path, ...)
    ...
    cluster.kill_all()
"""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Union

from .queue import (
    DIRECTORY_VARIABLE,
    SAVED_PYTHONPATH_VARIABLE,
    ClusterPaths,
    DummyConfig,
    Fault,
    FaultKind,
    JobRecord,
    Phase,
    Scheduler,
    cancel_job,
    load_config,
    load_state,
    locked_state,
    save_config,
)

__all__ = [
    "PBS_PROGRAMS",
    "PROGRAMS",
    "DummyCluster",
    "DummyConfig",
    "Fault",
    "FaultKind",
    "JobRecord",
    "Phase",
    "Scheduler",
    "install_dummies",
]

PROGRAMS = (
    "sbatch",
    "squeue",
    "scancel",
    "scontrol",
    "sacct",
    "sinfo",
    "qsub",
    "qstat",
    "qdel",
    "qacct",
)
PBS_PROGRAMS = {"qsub": "pbs-qsub", "qstat": "pbs-qstat", "qdel": "pbs-qdel"}
"""The dummy PBS programs in ``DIRECTORY/pbs/bin``, and the program each runs."""


@dataclass(frozen=True)
class DummyCluster:
    """A dummy cluster installed by :func:`install_dummies`.

    Attributes
    ----------
    directory
        Holds ``config.json``, ``state.json``, ``calls.jsonl`` and ``jobs/``.
    bin_dir
        Holds the programs; put it first on ``PATH`` or pass the ``*_path`` attributes.
    """

    directory: Path
    bin_dir: Path

    @property
    def paths(self) -> ClusterPaths:
        return ClusterPaths(self.directory)

    @property
    def sbatch_path(self) -> str:
        return str(self.bin_dir / "sbatch")

    @property
    def squeue_path(self) -> str:
        return str(self.bin_dir / "squeue")

    @property
    def scancel_path(self) -> str:
        return str(self.bin_dir / "scancel")

    @property
    def scontrol_path(self) -> str:
        return str(self.bin_dir / "scontrol")

    @property
    def sacct_path(self) -> str:
        return str(self.bin_dir / "sacct")

    @property
    def sinfo_path(self) -> str:
        return str(self.bin_dir / "sinfo")

    @property
    def qsub_path(self) -> str:
        return str(self.bin_dir / "qsub")

    @property
    def qstat_path(self) -> str:
        return str(self.bin_dir / "qstat")

    @property
    def qdel_path(self) -> str:
        return str(self.bin_dir / "qdel")

    @property
    def qacct_path(self) -> str:
        return str(self.bin_dir / "qacct")

    @property
    def pbs_bin_dir(self) -> Path:
        """Holds the dummy PBS ``qsub qstat qdel`` (SGE's have the same names)."""
        return self.directory / "pbs" / "bin"

    @property
    def pbs_qsub_path(self) -> str:
        return str(self.pbs_bin_dir / "qsub")

    @property
    def pbs_qstat_path(self) -> str:
        return str(self.pbs_bin_dir / "qstat")

    @property
    def pbs_qdel_path(self) -> str:
        return str(self.pbs_bin_dir / "qdel")

    def set_pbs_dialect(self, dialect: str) -> None:
        """Make the dummy PBS speak ``"torque"`` (the default) or ``"pbspro"``."""
        from .pbs import save_dialect

        save_dialect(self.paths, dialect)

    def environment(self) -> dict[str, str]:
        """``os.environ`` with ``bin_dir`` first on ``PATH`` and the cluster directory set."""
        env = dict(os.environ)
        env["PATH"] = f"{self.bin_dir}{os.pathsep}{env.get('PATH', '')}"
        env[DIRECTORY_VARIABLE] = str(self.directory)
        return env

    def config(self) -> DummyConfig:
        """The configuration as stored in ``config.json``."""
        return load_config(self.paths)

    def set_config(self, **fields: Any) -> DummyConfig:
        """Change fields of the configuration (e.g. ``slots=2``); return the new one.

        ``faults`` may be given as :class:`Fault` objects or as their JSON dicts.
        """
        data = {**self.config().to_json(), **fields}
        data["faults"] = [f.to_json() if isinstance(f, Fault) else f for f in data["faults"]]
        config = DummyConfig.from_json(data)
        save_config(self.paths, config)
        return config

    def add_fault(self, fault: Union[Fault, dict]) -> DummyConfig:
        """Append a fault to the configuration."""
        fault = fault if isinstance(fault, Fault) else Fault.from_json(fault)
        return self.set_config(faults=[*self.config().faults, fault])

    def times_fired(self, fault: Union[Fault, dict]) -> int:
        """How many jobs (job faults) or invocations (command faults) ``fault`` has hit."""
        fault = fault if isinstance(fault, Fault) else Fault.from_json(fault)
        return load_state(self.paths).faults_fired.get(fault.key(), 0)

    def calls(self, program: Optional[str] = None) -> list[dict]:
        """Logged invocations (``program``, ``argv``, ``time``, ``cwd``, ``pid``), oldest first."""
        if not self.paths.calls.exists():
            return []
        lines = self.paths.calls.read_text().splitlines()
        calls = [json.loads(line) for line in lines if line.strip()]
        return [c for c in calls if program is None or c["program"] == program]

    def jobs(self) -> list[JobRecord]:
        """A snapshot of every job record in the state (ended ones until they expire)."""
        with locked_state(self.paths) as state:
            return [dataclasses.replace(j) for j in state.jobs]

    def kill_all(self) -> None:
        """Kill every running dummy job and mark every job not ended yet ``CANCELLED``
        (for test teardown); the cluster's supervisor then exits by itself."""
        if not load_state(self.paths).jobs:
            return
        now = time.time()
        with locked_state(self.paths) as state:
            for job in state.jobs:
                if job.phase is not Phase.ENDED:
                    cancel_job(job, now)


def _source_dir() -> Optional[Path]:
    """The directory to put on ``PYTHONPATH`` so that ``batchpool`` imports, or None."""
    import batchpool

    root = Path(batchpool.__file__).resolve().parent.parent
    return None if root.name in ("site-packages", "dist-packages") else root


def wrapper_script(program: str, directory: Path) -> str:
    """The text of one program's ``#!/bin/sh`` wrapper."""
    lines = [
        "#!/bin/sh",
        f"# batchpool dummy {program}: python -m batchpool.testing {program}",
        f'{DIRECTORY_VARIABLE}="${{{DIRECTORY_VARIABLE}:-{shlex.quote(str(directory))}}}"',
        f"export {DIRECTORY_VARIABLE}",
    ]
    source = _source_dir()
    if source is not None:
        saved = SAVED_PYTHONPATH_VARIABLE
        lines += [
            f'if [ -n "${{PYTHONPATH+x}}" ]; then {saved}="set:$PYTHONPATH"; '
            f"else {saved}=unset; fi",
            f"export {saved}",
            f'PYTHONPATH={shlex.quote(str(source))}"${{PYTHONPATH:+:$PYTHONPATH}}"',
            "export PYTHONPATH",
        ]
    python = shlex.quote(os.path.abspath(sys.executable))
    lines.append(f'exec {python} -m batchpool.testing {program} "$@"')
    return "\n".join(lines) + "\n"


def install_dummies(
    directory: Union[str, os.PathLike], *, config: Optional[DummyConfig] = None
) -> DummyCluster:
    """Install the dummy programs into ``directory/bin`` and return the cluster.

    Parameters
    ----------
    directory
        The cluster's directory; created if needed. The programs default
        ``$BATCHPOOL_DUMMY_DIR`` to it, so they work without any environment.
    config
        Initial configuration (default :class:`DummyConfig()`), written to ``config.json``.

    Returns
    -------
    DummyCluster
    """
    directory = Path(directory).resolve()
    bin_dir = directory / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    (directory / "jobs").mkdir(exist_ok=True)
    save_config(ClusterPaths(directory), config or DummyConfig())
    for program in PROGRAMS:
        path = bin_dir / program
        path.write_text(wrapper_script(program, directory))
        path.chmod(0o755)
    cluster = DummyCluster(directory=directory, bin_dir=bin_dir)
    cluster.pbs_bin_dir.mkdir(parents=True, exist_ok=True)
    for name, program in PBS_PROGRAMS.items():
        path = cluster.pbs_bin_dir / name
        path.write_text(wrapper_script(program, directory))
        path.chmod(0o755)
    return cluster
