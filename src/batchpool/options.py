"""The options of a pool."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from .policy import RetryPolicy


@dataclass(frozen=True)
class PoolSettings:
    """The options of a pool that the engine acts on (see :class:`~batchpool.Pool`)."""

    work_dir: Path
    python_path: str
    polling_interval: float
    max_num_resubmissions: int
    max_workers: Optional[int]
    keep_work_dir: bool
    verbose: bool
    lost_job_grace_period_s: float
    resume: bool
    worker_idle_s: float
    maxtasksperchild: Optional[int]
    scheduler_outage_s: float
    retry_policy: RetryPolicy = RetryPolicy()
