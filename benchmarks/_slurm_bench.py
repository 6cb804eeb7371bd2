"""Helpers shared by ``slurm_latency.py`` and ``slurm_throughput.py`` (real Slurm).

- :func:`bare_sbatch`: ``sbatch --wait --array=0-N --wrap true``, the baseline;
- :func:`timed_map`: one map through a batchpool Slurm pool, timed;
- :func:`cleanup`: ``scancel --name`` for every job this benchmark may have left;
- :func:`print_table`: the rows with the ratio against the baseline.

The job names are unique to this process, so cleanup never touches other people's jobs.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import time
from pathlib import Path
from typing import Callable, Optional

BARE_JOB_NAME = f"bpbench_{os.getpid()}"


def bare_sbatch(num_elements: int, timeout_s: float) -> float:
    """Wall seconds of ``sbatch --wait --array=0-(n-1) --wrap true``."""
    argv = [
        "sbatch",
        "--wait",
        "--quiet",
        f"--array=0-{num_elements - 1}",
        "--job-name",
        BARE_JOB_NAME,
        "--output",
        "/dev/null",
        "--wrap",
        "true",
    ]
    start = time.perf_counter()
    subprocess.run(argv, check=True, timeout=timeout_s, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def timed_map(make_pool: Callable, func: Callable, items: list, chunksize: Optional[int]) -> float:
    """Wall seconds of ``pool.map(func, items, chunksize)``, pool creation included."""
    start = time.perf_counter()
    with make_pool() as pool:
        results = pool.map(func, items, chunksize)
    elapsed = time.perf_counter() - start
    assert results == [func(x) for x in items]
    return elapsed


def cleanup(work_dir: Path) -> None:
    """Cancel the baseline's jobs and the jobs of every session left in ``work_dir``."""
    names = [BARE_JOB_NAME]
    if work_dir.is_dir():
        names += [f"bp_{p.name}" for p in work_dir.iterdir() if p.is_dir()]
    for name in names:
        subprocess.run(["scancel", "--name", name], check=False, timeout=30)


def print_table(title: str, rows: list[tuple[str, list[float], str]]) -> None:
    """``rows``: (label, wall times, goal); the first row is the baseline."""
    base = statistics.median(rows[0][1])
    print(title)
    header = ("run", "median s", "min s", "max s", "ratio", "goal")
    widths = (44, 9, 7, 7, 6, 8)
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)))
    print("  ".join("-" * w for w in widths))
    for label, times, goal in rows:
        if not times:
            cells = (label, "-", "-", "-", "-", goal)
        else:
            median = statistics.median(times)
            cells = (
                label,
                f"{median:.2f}",
                f"{min(times):.2f}",
                f"{max(times):.2f}",
                f"{median / base:.2f}",
                goal,
            )
        print("  ".join(c.ljust(w) for c, w in zip(cells, widths)), flush=True)


def pypoolparty_time(
    python: str, backend: str, num_tasks: int, chunksize: int, polling_interval: float, cwd: Path
) -> float:
    """Wall seconds of one pypoolparty 0.3.1 map, run by another interpreter.

    ``backend`` is ``slurm.array`` or ``slurm``. The map runs in a child process
    (``python`` has pypoolparty installed); its own timing is read from stdout.
    """
    pool = "pypoolparty.slurm.array.Pool" if backend == "slurm.array" else "pypoolparty.slurm.Pool"
    code = (
        "import time, pypoolparty, pypoolparty.slurm, pypoolparty.slurm.array\n"
        f"pool = {pool}(polling_interval={polling_interval!r}, work_dir={str(cwd)!r})\n"
        "start = time.perf_counter()\n"
        f"res = pool.map(abs, range({num_tasks}))\n"
        "print(time.perf_counter() - start)\n"
    )
    del chunksize  # pypoolparty 0.3.1's map takes no chunksize; it chunks itself
    out = subprocess.run(
        [python, "-c", code], check=True, timeout=600, capture_output=True, text=True, cwd=cwd
    )
    return float(out.stdout.strip().splitlines()[-1])
