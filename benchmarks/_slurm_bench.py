"""Helpers shared by the benchmarks on the real Slurm.

- :func:`bare_sbatch`: ``sbatch --wait --array=0-N --wrap true``, the baseline;
- :func:`bare_sbatch_files`: the same array touching one file per element, timed
  until every file is there (the floor), with its poll interval and an optional
  command to run before the ``touch``;
- :func:`timed_map`: one map through a batchpool Slurm pool, timed;
- :class:`CallLog`: wrapper scripts that log every ``sbatch``/``squeue``/``scancel``/
  ``scontrol`` call with its arguments, then ``exec`` the real program;
- :func:`cleanup`: ``scancel --name`` for every job this benchmark may have left;
- :func:`print_table`: the rows with the ratio against the baseline;
  :func:`print_grid`: any rows, columns as wide as their cells;
  :func:`spread`: ``median (min-max)`` of a list of numbers.

The job names are unique to this process, so cleanup never touches other people's jobs.
"""

from __future__ import annotations

import collections
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
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


def bare_sbatch_files(
    num_elements: int,
    directory: Path,
    timeout_s: float,
    poll_s: float = 0.005,
    before: str = "",
) -> float:
    """Wall seconds of ``sbatch --array=0-(n-1) --wrap 'touch DIR/$SLURM_ARRAY_TASK_ID'``
    until all ``n`` files are seen, looking every ``poll_s`` (default 5 ms): the floor
    for a pool that collects from disk (``sbatch --wait`` itself only looks every 2 s
    or more). ``before``: a shell command the job runs first (``sleep 6.5``)."""
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
        (f"{before} && " if before else "") + f"touch {directory}/$SLURM_ARRAY_TASK_ID",
    ]
    start = time.perf_counter()
    subprocess.run(argv, check=True, timeout=timeout_s, stdout=subprocess.DEVNULL)
    while len(os.listdir(directory)) < num_elements:
        if time.perf_counter() - start > timeout_s:
            raise TimeoutError(f"{argv} did not finish in {timeout_s} s")
        time.sleep(poll_s)
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
        for p in work_dir.iterdir():
            if p.is_dir():  # a pool's jobs are bp_<name without pool_>, older sessions' bp_<name>
                names.append("bp_" + p.name.removeprefix("pool_"))
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


SCHEDULER_PROGRAMS = ("sbatch", "squeue", "scancel", "scontrol")


class CallLog:
    """Wrappers of the Slurm programs in ``directory`` that log each call, one line of
    ``program args...`` (joined by spaces), and ``exec`` the real program (a ``/bin/sh``
    start, about a millisecond, is added to each call). :attr:`paths` are the pool's
    ``*_path`` options."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.log = directory / "calls.log"
        self.paths: dict[str, str] = {}
        for program in SCHEDULER_PROGRAMS:
            real = shutil.which(program)
            if real is None:
                raise SystemExit(f"{program} is not on PATH; start Slurm first (ci/slurm/start.sh)")
            wrapper = directory / program
            log = shlex.quote(str(self.log))
            wrapper.write_text(f'#!/bin/sh\necho "{program} $*" >> {log}\nexec {real} "$@"\n')
            wrapper.chmod(0o755)
            self.paths[f"{program}_path"] = str(wrapper)

    def lines(self) -> list[str]:
        if not self.log.exists():
            return []
        return [line for line in self.log.read_text().splitlines() if line.strip()]

    def counts(self) -> collections.Counter:
        return collections.Counter(line.split()[0] for line in self.lines())

    def jobs_submitted(self) -> int:
        """Jobs the logged ``sbatch`` calls asked for: the elements of each ``--array``,
        1 for an ``sbatch`` without one."""
        total = 0
        for line in self.lines():
            if line.split()[0] != "sbatch":
                continue
            match = re.search(r"--array[= ](\d+)(?:-(\d+))?", line)
            if match is None:
                total += 1
            else:
                first, last = int(match.group(1)), int(match.group(2) or match.group(1))
                total += last - first + 1
        return total


def spread(values: Sequence[float], fmt: str = "{:.2f}") -> str:
    """``median (min-max)``, each formatted with ``fmt``."""
    if not values:
        return "-"
    median = statistics.median(values)
    if len(values) == 1:
        return fmt.format(median)
    return f"{fmt.format(median)} ({fmt.format(min(values))}-{fmt.format(max(values))})"


def print_grid(title: str, header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """A table with a dashed line under ``header``; each column as wide as its widest cell."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    print(title)
    print("  ".join(str(h).ljust(w) for h, w in zip(header, widths)).rstrip())
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip(), flush=True)


def verdict(value: float, limit: float) -> str:
    """``met`` or ``NOT met`` for a goal ``value <= limit``."""
    return "met" if value <= limit else "NOT met"


def repeat(num: int, run_once: Callable[[], object], on_discard: Callable[[], None]) -> list:
    """``run_once()`` until it returned ``num`` times; a call that raised ``TimeoutError``
    (a bare array that did not end: another user stopped slurmctld or held the slots) is
    discarded with a note on stderr, ``on_discard()`` cleans up, and it runs again, at
    most 3 extra times."""
    results: list = []
    discarded = 0
    while len(results) < num:
        try:
            results.append(run_once())
        except TimeoutError as error:
            discarded += 1
            sys.stderr.write(f"(repeat {len(results) + 1} discarded and run again: {error})\n")
            on_discard()
            if discarded > 3:
                raise
    return results
