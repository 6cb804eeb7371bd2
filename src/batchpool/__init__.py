"""batchpool: ``multiprocessing.Pool``'s API, with every chunk of work run as a cluster job.

::

    import batchpool

    with batchpool.Pool() as pool:      # Slurm array, SGE or local: whatever is here
        results = pool.map(simulate, parameters)

Backends: :mod:`batchpool.slurm` (``slurm.Pool``, ``slurm.array.Pool``),
:mod:`batchpool.sge`, :mod:`batchpool.pbs`, :mod:`batchpool.local`. Submodules are imported on first
use, so that ``python -m batchpool.worker`` starts fast on the compute node.
"""

from __future__ import annotations

# Only what the interpreter has loaded anyway: ``python -m batchpool.worker`` imports
# this package on every job start. Everything else is imported on first use.
import importlib
import os

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing
if TYPE_CHECKING:
    from typing import Any, Optional

    from .detach import attach, submit
    from .errors import (
        BrokenEnvironmentError,
        ConfigError,
        JobsLostError,
        NotASessionError,
        PoolError,
        RemoteError,
        ResultsError,
        SchedulerError,
        SessionBusyError,
        TaskKilledError,
        TaskMemoryError,
        TaskTimeoutError,
        WorkerCrashedError,
    )
    from .executor import Executor
    from .policy import RetryPolicy
    from .proto_pool import Pool as ProtoPool

__version__ = "0.3.0.dev0"

__all__ = [
    "BACKENDS",
    "BrokenEnvironmentError",
    "ConfigError",
    "Executor",
    "JobsLostError",
    "NotASessionError",
    "Pool",
    "PoolError",
    "RemoteError",
    "ResultsError",
    "RetryPolicy",
    "SchedulerError",
    "SessionBusyError",
    "TaskKilledError",
    "TaskMemoryError",
    "TaskTimeoutError",
    "WorkerCrashedError",
    "__version__",
    "attach",
    "load",
    "local",
    "pbs",
    "sge",
    "slurm",
    "submit",
]

BACKENDS = {
    "slurm.array": "batchpool.slurm.array",
    "slurm": "batchpool.slurm",
    "sge": "batchpool.sge",
    "pbs": "batchpool.pbs",
    "local": "batchpool.local",
}
"""The names ``BATCHPOOL_BACKEND`` accepts, and the module whose ``Pool`` each picks."""


def pick_backend() -> str:
    """``BATCHPOOL_BACKEND`` if set; else ``slurm.array`` if ``sbatch`` is on PATH;
    else, if ``qsub`` is, ``pbs`` when the ``qstat`` beside it answers ``--version`` as
    Torque or PBS Pro/OpenPBS do (:func:`batchpool.pbs.is_pbs_qstat`), ``sge`` when not;
    else ``local``."""
    name = os.environ.get("BATCHPOOL_BACKEND", "").strip()
    if name:
        if name not in BACKENDS:
            from .errors import ConfigError

            raise ConfigError(f"BATCHPOOL_BACKEND={name!r} is not one of {', '.join(BACKENDS)}")
        return name
    import shutil

    if shutil.which("sbatch"):
        return "slurm.array"
    if shutil.which("qsub"):
        from .pbs import is_pbs_qstat

        return "pbs" if is_pbs_qstat(shutil.which("qstat") or "qstat") else "sge"
    return "local"


def Pool(  # noqa: N802 (multiprocessing's name)
    *args: Any, profile: Optional[str] = None, **options: Any
) -> ProtoPool:
    """A pool on the backend of ``profile`` (:mod:`batchpool.config`), else the one
    :func:`pick_backend` picks; arguments as that backend's ``Pool``, over the options of
    the profile and the ``BATCHPOOL_*`` variables."""
    from .config import make_pool

    return make_pool(args, options, profile=profile)


def __getattr__(name: str) -> Any:
    if name.endswith("Error") and name in __all__:
        return getattr(importlib.import_module(".errors", __name__), name)
    if name == "RetryPolicy":
        return importlib.import_module(".policy", __name__).RetryPolicy
    if name in ("submit", "attach"):
        return getattr(importlib.import_module(".detach", __name__), name)
    if name == "Executor":
        return importlib.import_module(".executor", __name__).Executor
    if name == "load":
        return importlib.import_module(".results", __name__).load
    if name in ("local", "slurm", "sge", "pbs", "testing"):
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
