"""``python -m batchpool.testing PROGRAM ARGS...``: run one dummy scheduler program.

PROGRAM is one of ``sbatch squeue scancel scontrol sacct sinfo qsub qstat qdel qacct``
or, for the dummy PBS, ``pbs-qsub pbs-qstat pbs-qdel``. The cluster
directory comes from ``$BATCHPOOL_DUMMY_DIR``. Every call is logged to
``calls.jsonl`` first; then command faults apply (outside the lock); then, under
the lock, the queue advances and the program does its work.

``python -m batchpool.testing supervise`` is the cluster's supervisor: while jobs wait
or run it moves the queue on with the wall clock (see
:func:`batchpool.testing.queue.supervise`). A program that leaves jobs waiting or
running starts it if it is not running.
"""

from __future__ import annotations

import importlib
import sys
import time
from collections.abc import Sequence
from typing import Optional

from .queue import (
    ClusterPaths,
    Context,
    DummyConfig,
    Fault,
    FaultKind,
    UsageError,
    advance,
    ensure_supervisor,
    load_config,
    locked_state,
    log_call,
    supervise,
    take_fault,
)

PROGRAMS: dict[str, tuple[str, str]] = {
    "sbatch": ("slurm", "sbatch"),
    "squeue": ("slurm", "squeue"),
    "scancel": ("slurm", "scancel"),
    "scontrol": ("slurm", "scontrol"),
    "sacct": ("slurm", "sacct"),
    "sinfo": ("slurm", "sinfo"),
    "qsub": ("sge", "qsub"),
    "qstat": ("sge", "qstat"),
    "qdel": ("sge", "qdel"),
    "qacct": ("sge", "qacct"),
    "pbs-qsub": ("pbs", "qsub"),
    "pbs-qstat": ("pbs", "qstat"),
    "pbs-qdel": ("pbs", "qdel"),
}
"""Each program: the module that has it and its function ``(args, context) -> returncode``
(a program imports only its own scheduler's module: they start often)."""


def _command_fault(paths: ClusterPaths, config: DummyConfig, program: str) -> Optional[Fault]:
    kinds = (FaultKind.COMMAND_FAILS, FaultKind.COMMAND_HANGS)
    with locked_state(paths) as state:
        return take_fault(state, config, lambda f: f.kind in kinds and f.program == program)


def run(program: str, args: Sequence[str]) -> int:
    """Run ``program`` with ``args`` against the cluster in ``$BATCHPOOL_DUMMY_DIR``."""
    paths = ClusterPaths.from_environment()
    log_call(paths, program, args)
    config = load_config(paths)
    fault = _command_fault(paths, config, program)
    if fault is not None and fault.kind is FaultKind.COMMAND_FAILS:
        sys.stdout.write(fault.stdout + ("\n" if fault.stdout else ""))
        sys.stderr.write(fault.stderr + ("\n" if fault.stderr else ""))
        return fault.returncode
    if fault is not None:
        time.sleep(fault.delay_s)
    module_name, function_name = PROGRAMS[program]
    function = getattr(importlib.import_module(f"{__package__}.{module_name}"), function_name)
    with locked_state(paths) as state:
        advance(state, config, paths)
        try:
            return function(args, Context(paths, config, state, _read_stdin))
        except UsageError as error:
            sys.stdout.flush()
            sys.stderr.write("\n".join(error.lines) + "\n")
            return error.returncode
        finally:
            ensure_supervisor(paths, state)


def _read_stdin() -> str:
    if sys.stdin is None or sys.stdin.isatty():
        return ""
    return sys.stdin.read()


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv == ["supervise"]:
        supervise(ClusterPaths.from_environment())
        return 0
    if not argv or argv[0] not in PROGRAMS:
        sys.stderr.write(f"usage: python -m batchpool.testing {{{','.join(PROGRAMS)}}} ARGS...\n")
        return 2
    return run(argv[0], argv[1:])


if __name__ == "__main__":
    sys.exit(main())
