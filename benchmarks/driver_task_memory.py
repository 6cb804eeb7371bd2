"""The driver's peak memory against the size of its task list.

Each row runs in a fresh Python process that imports batchpool, builds a task list of
``--tasks`` distinct random ``bytes`` of ``--task-mib`` MiB each (default 200 x 1 MiB),
maps ``len`` over it, and reports its peak resident memory (``ru_maxrss``) over the
size of the task list. Rows:

- ``task list only``: the list is built and ``len`` applied here, no pool: the floor
  (the interpreter, its imports and the list itself);
- ``multiprocessing.Pool(2)``: the reference;
- ``batchpool.local.Pool(2)``: the driver streams the tasks into the session, pickled
  one by one. Goal: peak <= 1.5x the task list.

Rows are interleaved and repeated (``--repeat``, default 3); the table shows the median
and the range of each.

    python benchmarks/driver_task_memory.py [--tasks 200] [--task-mib 1] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import statistics
import subprocess
import sys
import tempfile

import batchpool.local

MIB = 1024 * 1024
ROWS = ("task list only", "multiprocessing.Pool(2)", "batchpool.local.Pool(2)")


def measure(row: str, num_tasks: int, task_bytes: int, work_dir: str) -> dict:
    """In this process: build the tasks, map ``len`` over them on ``row``."""
    tasks = [os.urandom(task_bytes) for _ in range(num_tasks)]
    if row == "task list only":
        lengths = [len(task) for task in tasks]
    elif row == "multiprocessing.Pool(2)":
        with multiprocessing.Pool(2) as pool:
            lengths = pool.map(len, tasks, chunksize=1)
    else:
        with batchpool.local.Pool(2, work_dir=work_dir) as pool:
            lengths = pool.map(len, tasks)
    if lengths != [task_bytes] * num_tasks:
        raise RuntimeError(f"{row}: wrong results")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    return {"peak": peak, "tasks": num_tasks * task_bytes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--task-mib", type=float, default=1.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", help=argparse.SUPPRESS)  # one row, in a fresh process
    args = parser.parse_args()
    task_bytes = int(args.task_mib * MIB)

    if args.child:
        with tempfile.TemporaryDirectory(prefix="batchpool-bench-") as work_dir:
            print(json.dumps(measure(args.child, args.tasks, task_bytes, work_dir)))
        return

    ratios: dict[str, list[float]] = {row: [] for row in ROWS}
    peaks: dict[str, list[float]] = {row: [] for row in ROWS}
    for _ in range(args.repeat):
        for row in ROWS:  # interleaved: a noisy neighbour hits every row alike
            argv = [sys.executable, __file__, "--child", row, "--tasks", str(args.tasks)]
            argv += ["--task-mib", str(args.task_mib)]
            out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
            figures = json.loads(out)
            peaks[row].append(figures["peak"] / MIB)
            ratios[row].append(figures["peak"] / figures["tasks"])
    size_mib = args.tasks * task_bytes / MIB
    print(f"task list: {args.tasks} x {args.task_mib:g} MiB = {size_mib:.0f} MiB", end="")
    print(f", {args.repeat} runs")
    print(f"{'row':26}  {'peak RSS MiB':<20}  peak / task list")
    for row in ROWS:
        peak, ratio = peaks[row], ratios[row]
        print(
            f"{row:26}  {statistics.median(peak):8.0f} ({min(peak):.0f}-{max(peak):.0f})"
            f"  {statistics.median(ratio):10.2f}x ({min(ratio):.2f}-{max(ratio):.2f})"
        )
    print("goal: batchpool.local.Pool(2) peak / task list <= 1.5x")


if __name__ == "__main__":
    main()
