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


def bare_sbatch_files(num_elements: int, directory: Path, timeout_s: float) -> float:
    """Wall seconds of ``sbatch --array=0-(n-1) --wrap 'touch DIR/$SLURM_ARRAY_TASK_ID'``
    until all ``n`` files are seen, looking every 5 ms: the floor for a pool that
    collects from disk (``sbatch --wait`` itself only looks every 2 s or more)."""
    directory.mkdir(parents=True, exist_ok=True)
    for old in directory.iterdir():
        old.unlink()
    argv = [
        "sbatch",
        "--quiet",
        f"--array=0-{num_elements - 1}",
        "--job-name",
        BARE_JOB_NAME,
        "--output",
        "/dev/null",
        "--wrap",
        f"touch {directory}/$SLURM_ARRAY_TASK_ID",
    ]
    start = time.perf_counter()
    subprocess.run(argv, check=True, timeout=timeout_s, stdout=subprocess.DEVNULL)
    while len(os.listdir(directory)) < num_elements:
        if time.perf_counter() - start > timeout_s:
            raise TimeoutError(f"{argv} did not finish in {timeout_s} s")
        time.sleep(0.005)
    return time.perf_counter() - start


def timed_map(make_pool: Callable, func: Callable, items: list, chunksize: Optional[int]) -> float:
    """Wall seconds of ``pool.map(func, items, chunksize)``, pool creation included."""
    start = time.perf_counter()
    with make_pool() as pool:
        results = pool.map(func, items, chunksize)
    elapsed = time.perf_counter() - start
    assert results == [func(x) for x in items]
    return elapsed


def cleanup(work_dir: Path, own_dir: Optional[Path] = None) -> None:
    """Cancel the baseline's jobs, the jobs of every session left in ``work_dir``, and
    every job submitted from under ``own_dir`` (pypoolparty's)."""
    names = [BARE_JOB_NAME]
    if work_dir.is_dir():
        names += [f"bp_{p.name}" for p in work_dir.iterdir() if p.is_dir()]
    for name in names:
        subprocess.run(["scancel", "--name", name], check=False, timeout=30)
    if own_dir is None:
        return
    listing = subprocess.run(
        ["squeue", "-h", "-o", "%i %Z"], capture_output=True, text=True, timeout=30
    ).stdout
    ids = [
        line.split()[0]
        for line in listing.splitlines()
        if len(line.split()) == 2 and line.split()[1].startswith(str(own_dir))
    ]
    if ids:
        subprocess.run(["scancel", *ids], check=False, timeout=30)


def print_table(title: str, rows: list[tuple[str, list[float], str]], num_bases: int = 2) -> None:
    """``rows``: (label, wall times, goal); the first ``num_bases`` rows are baselines,
    each gets a ratio column (median / baseline's median)."""
    bases = [statistics.median(rows[i][1]) for i in range(num_bases)]
    print(title)
    header = ("run", "median s", "min s", "max s", *(f"ratio/{i + 1}" for i in range(num_bases)))
    widths = (58, 9, 7, 7, *(8,) * num_bases, 8)
    print("  ".join(h.ljust(w) for h, w in zip((*header, "goal"), widths)))
    print("  ".join("-" * w for w in widths))
    for i, (label, times, goal) in enumerate(rows):
        label = f"[{i + 1}] {label}" if i < num_bases else label
        if not times:
            cells = (label, "-", "-", "-", *("-",) * num_bases, goal)
        else:
            median = statistics.median(times)
            cells = (
                label,
                f"{median:.2f}",
                f"{min(times):.2f}",
                f"{max(times):.2f}",
                *(f"{median / base:.2f}" for base in bases),
                goal,
            )
        print("  ".join(c.ljust(w) for c, w in zip(cells, widths)), flush=True)


def pypoolparty_time(
    python: str,
    backend: str,
    num_tasks: int,
    chunksize: int,
    polling_interval: float,
    cwd: Path,
    timeout_s: float,
) -> float:
    """Wall seconds of one pypoolparty 0.3.1 map, run by another interpreter.

    ``python`` has pypoolparty installed; the map runs in a child process in ``cwd``
    and prints its own timing. ``python_path`` is given explicitly: pypoolparty's
    default is ``which python``, which does not see the venv from the job.

    ``backend`` ``slurm``: ``pypoolparty.slurm.Pool`` maps ``abs`` over the tasks with
    ``chunksize``. ``slurm.array``: its array pool ignores ``chunksize`` (one element
    per task), so it maps ``sum`` over the tasks grouped into lists of ``chunksize``:
    the same jobs, the same work per job.
    """
    if backend == "slurm.array":
        pool = "pypoolparty.slurm.array.Pool"
        call = (
            f"sum, [list(range(i, min(i + {chunksize}, {num_tasks}))) "
            f"for i in range(0, {num_tasks}, {chunksize})]"
        )
    else:
        pool = "pypoolparty.slurm.Pool"
        call = f"abs, list(range({num_tasks})), chunksize={chunksize}"
    code = (
        "import time, pypoolparty, pypoolparty.slurm, pypoolparty.slurm.array\n"
        f"pool = {pool}(polling_interval={polling_interval!r}, work_dir={str(cwd)!r},"
        f" python_path={python!r})\n"
        "start = time.perf_counter()\n"
        f"res = pool.map({call})\n"
        "print(time.perf_counter() - start)\n"
    )
    out = subprocess.run(
        [python, "-c", code], check=True, timeout=timeout_s, capture_output=True, text=True, cwd=cwd
    )
    return float(out.stdout.strip().splitlines()[-1])
