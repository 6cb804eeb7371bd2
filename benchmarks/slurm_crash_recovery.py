"""How long a crashed worker costs a map on the real Slurm.

A map of ``--tasks`` (default 12) tasks of 0.5 s, 2 per chunk, on
``batchpool.slurm.array.Pool(3)`` with the default ``polling_interval`` (5 s) and
``lost_job_grace_period_s`` (10 s). In the crash run, task 7 ends its worker with
``os._exit(9)`` the first time it runs (its job is lost; the task runs again in a new
job and succeeds); the baseline is the same map with no crash, run alternately with
it (``--repeats`` times each). The table shows the map's wall time, and for the crash
runs the time from the crash to task 7 starting again, as the tasks wrote them.
Nothing is asserted. Needs ``sbatch`` (``bash ci/slurm/start.sh``).

    python benchmarks/slurm_crash_recovery.py [--tasks 12] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import _slurm_bench as bench

import batchpool.slurm.array

CRASHING_TASK = 7


def task(marks: str, crash: bool, index: int) -> int:
    """Sleeps 0.5 s; task :data:`CRASHING_TASK` of a crash run ends its worker the first
    time. Each start is a file ``INDEX.N`` holding its time."""
    starts = [name for name in os.listdir(marks) if name.startswith(f"{index}.")]
    Path(marks, f"{index}.{len(starts)}").write_text(repr(time.time()))
    if crash and index == CRASHING_TASK and not starts:
        os._exit(9)
    time.sleep(0.5)
    return index


def timed_run(base: Path, run: int, num_tasks: int, crash: bool) -> tuple[float, float]:
    """The map's wall time, and (crash runs) seconds from the crash to the rerun."""
    marks = base / f"marks-{run}"
    marks.mkdir()
    arguments = [(str(marks), crash, i) for i in range(num_tasks)]
    start = time.perf_counter()
    with batchpool.slurm.array.Pool(3, work_dir=base / "work", progress=False) as pool:
        assert pool.starmap(task, arguments, chunksize=2) == list(range(num_tasks))
    wall = time.perf_counter() - start
    if not crash:
        return wall, 0.0
    first, again = (float((marks / f"{CRASHING_TASK}.{n}").read_text()) for n in (0, 1))
    return wall, again - first


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    walls: dict[bool, list[float]] = {False: [], True: []}
    rerun_s: list[float] = []
    with tempfile.TemporaryDirectory(dir=Path.cwd(), prefix="crash-bench-") as directory:
        base = Path(directory)
        try:
            for run in range(args.repeats):
                for crash in (False, True):
                    wall, gap = timed_run(base, 2 * run + crash, args.tasks, crash)
                    walls[crash].append(wall)
                    if crash:
                        rerun_s.append(gap)
        finally:
            bench.cleanup(base / "work")
    rows = [
        (f"map of {args.tasks} tasks of 0.5 s, Pool(3), no crash", walls[False]),
        (f"the same, task {CRASHING_TASK} crashes its worker once", walls[True]),
        (f"from the crash to task {CRASHING_TASK} running again", rerun_s),
    ]
    for label, values in rows:
        print(f"{label:<48} {bench.spread(values)} s")
    ratio = statistics.median(walls[True]) / statistics.median(walls[False])
    print(f"crash / no crash, medians: {ratio:.2f}")


if __name__ == "__main__":
    main()
