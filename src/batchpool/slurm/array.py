"""Slurm, one ``sbatch --array`` per request for workers: :class:`SlurmArrayBackend`, :class:`Pool`.

Every element of the array is a standing worker of the pool. An element's job id is
``BASE_i``, as ``squeue`` prints it (``%i``), as ``scancel`` takes it and as the worker
names itself from ``SLURM_ARRAY_JOB_ID`` and ``SLURM_ARRAY_TASK_ID``. Status and
deletion are those of :class:`~batchpool.slurm.SlurmBackend`.
"""

from __future__ import annotations

import re
import threading
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from ..backend import Job, JobRequest
from ..errors import SchedulerError
from ..proto_pool import BackendPool
from . import SlurmBackend, SlurmPoolOptions, rejection_advice

if TYPE_CHECKING:
    from ..options import Unpack

__all__ = ["Pool", "SlurmArrayBackend", "parse_max_array_size"]

DEFAULT_MAX_ARRAY_SIZE = 1001
"""Slurm's default ``MaxArraySize``, used when ``scontrol show config`` does not tell."""


def parse_max_array_size(config_text: str) -> Optional[int]:
    """``MaxArraySize`` from ``scontrol show config`` output, or None if it is not there."""
    match = re.search(r"^\s*MaxArraySize\s*=\s*(\d+)\s*$", config_text, re.MULTILINE)
    return int(match.group(1)) if match else None


def array_spec(num_elements: int, max_running: Optional[int] = None) -> str:
    """``--array`` for elements ``0..num_elements-1``, ``%max_running`` at once."""
    if num_elements < 1:
        raise ValueError("an array needs at least one element")
    if max_running is None:
        return f"0-{num_elements - 1}"
    if max_running < 1:
        raise ValueError(f"max_running must be at least 1, not {max_running}")
    return f"0-{num_elements - 1}%{max_running}"


class SlurmArrayBackend(SlurmBackend):
    """One ``sbatch --array`` per request, one element per worker.

    Takes the options of :class:`~batchpool.slurm.SlurmBackend` and

    Parameters
    ----------
    scontrol_path
        ``scontrol``, asked once for the cluster's ``MaxArraySize``.
    """

    name = "slurm.array"
    job_id_template = "{SLURM_ARRAY_JOB_ID}_{SLURM_ARRAY_TASK_ID}"

    def __init__(self, *, scontrol_path: str = "scontrol", **options: Any) -> None:
        super().__init__(**options)
        self.scontrol_path = scontrol_path
        self._max_array_size: Optional[int] = None
        self._lock = threading.Lock()

    def max_jobs_per_submit(self) -> int:
        """The cluster's ``MaxArraySize`` (indices ``0..n-1`` must stay below it); read once."""
        with self._lock:
            if self._max_array_size is None:
                self._max_array_size = self._read_max_array_size()
            return self._max_array_size

    def _read_max_array_size(self) -> int:
        argv = [self.scontrol_path, "show", "config"]
        try:
            size = parse_max_array_size(self._run(argv).stdout)
            problem = "has no MaxArraySize line"
        except SchedulerError as error:
            size, problem = None, f"failed: {error}"
        if size is None:
            warnings.warn(
                f"'{' '.join(argv)}' {problem}; assuming Slurm's default "
                f"MaxArraySize = {DEFAULT_MAX_ARRAY_SIZE}.",
                RuntimeWarning,
                stacklevel=3,
            )
            return DEFAULT_MAX_ARRAY_SIZE
        return size

    def sbatch_argv(self, request: JobRequest) -> list[str]:
        """``sbatch --array`` with one element per worker of ``request``."""
        out, err = request.logs.pair("%A_%a")
        return [
            self.sbatch_path,
            "--parsable",
            "--job-name",
            request.job_name,
            "--array",
            array_spec(request.count),
            "--output",
            out,
            "--error",
            err,
            *self.request_args(request),
            "--wrap",
            self.wrap_command(request),
        ]

    def jobs_of(self, request: JobRequest, job_id: str) -> list[Job]:
        """Element ``i`` is job ``{job_id}_{i}`` with logs ``{job_id}_{i}.out/.err``."""
        ids = [f"{job_id}_{i}" for i in range(request.count)]
        return [Job(i, request.job_name, *map(Path, request.logs.pair(i))) for i in ids]

    def rejection_advice(self, stderr: str) -> str:
        return rejection_advice(stderr, self._max_array_size)


class SlurmArrayPoolOptions(SlurmPoolOptions, total=False):
    """What :class:`Pool` takes by keyword: :class:`~batchpool.slurm.SlurmPoolOptions`
    and the options that :class:`SlurmArrayBackend` adds."""

    scontrol_path: str


class Pool(BackendPool):
    """A ``multiprocessing.Pool`` whose workers run as the elements of Slurm job arrays."""

    backend_class = SlurmArrayBackend
    options_type = SlurmArrayPoolOptions

    def __init__(self, *args: Any, **options: Unpack[SlurmArrayPoolOptions]) -> None:
        super().__init__(*args, **options)
