"""Task functions for tests/real/test_real_executor.py, test_real_efficiency.py and
test_real_detach.py (imported by reference in the jobs)."""

from __future__ import annotations

import os
import time


class ExecutorTaskError(ValueError):
    """Raised by :func:`cube_or_fail` for its bad input."""


def cube_or_fail(x: int) -> tuple:
    """``(x ** 3, job id)``; raises :class:`ExecutorTaskError` for 13."""
    if x == 13:
        raise ExecutorTaskError(f"unlucky {x}")
    job = os.environ.get("SLURM_ARRAY_JOB_ID") or os.environ.get("SLURM_JOB_ID", "?")
    return x**3, job


def sleep_and_allocate(x: int) -> int:
    """Sleeps 0.3 s holding 200 MiB written byte by byte (so that it is resident)."""
    data = b"x" * (200 * 2**20)
    time.sleep(0.3)
    return x + len(data) // 2**30


def record_square(args: tuple) -> int:
    """``(path, x)``: append ``x JOB_ID TIME`` to ``path`` (one ``write``), sleep 0.3 s,
    return ``x * x`` (for test_real_detach.py)."""
    path, x = args
    env = os.environ
    job = env.get("SLURM_ARRAY_JOB_ID", "?") + "_" + env.get("SLURM_ARRAY_TASK_ID", "?")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(fd, f"{x} {job} {time.time():.6f}\n".encode())
    finally:
        os.close(fd)
    time.sleep(0.3)
    return x * x
