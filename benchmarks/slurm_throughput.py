"""Throughput of a larger map on the real Slurm, against bare ``sbatch --wait``.

``--tasks`` (default 1,000) trivial tasks with ``--chunksize`` (default 50),
that is 20 jobs, through ``batchpool.slurm.array.Pool`` (one ``sbatch --array``)
and ``batchpool.slurm.Pool`` (one ``sbatch`` per chunk), each with every
``--polling-intervals`` (default 5 = the default, and 1), against the baseline
``sbatch --wait --array=0-19 --wrap true`` (the same number of jobs; goal:
batchpool within 1.2x of it). Median,
min and max of ``--repeats`` interleaved runs, and the median's ratio to [1]
``sbatch --wait`` and to [2] the floor: the same array with
``touch DIR/$SLURM_ARRAY_TASK_ID`` as the job, timed until every file is seen.
Nothing is asserted.

pypoolparty 0.3.1 (a predecessor with the same idea) can be added as extra
rows: install it into its own venv and pass its interpreter::

    python3 -m venv /tmp/ppp && /tmp/ppp/bin/pip install pypoolparty==0.3.1
    python benchmarks/slurm_throughput.py --pypoolparty /tmp/ppp/bin/python

(its array pool ignores ``chunksize``, so there it maps ``sum`` over the tasks in
lists of ``chunksize``: the same 20 jobs; see ``_slurm_bench.pypoolparty_time``.)

    python benchmarks/slurm_throughput.py [--tasks 1000] [--chunksize 50] [--repeats 2]
"""

from __future__ import annotations

import argparse
import functools
import math
import subprocess
import tempfile
from pathlib import Path

import _slurm_bench as bench

import batchpool.slurm
import batchpool.slurm.array


def trivial(x: int) -> int:
    return x


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--chunksize", type=int, default=50)
    parser.add_argument("--polling-intervals", type=float, nargs="+", default=[5.0, 1.0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--timeout-s", type=float, default=300.0)
    parser.add_argument("--pypoolparty", metavar="PYTHON", help="interpreter with pypoolparty")
    parser.add_argument("--pypoolparty-timeout-s", type=float, default=120.0)
    args = parser.parse_args()

    items = list(range(args.tasks))
    num_jobs = math.ceil(args.tasks / args.chunksize)
    bare = f"sbatch --wait --array=0-{num_jobs - 1} --wrap true"
    floor = f"sbatch --array=0-{num_jobs - 1}, until all jobs touched their file"
    times: dict[str, list[float]] = {bare: [], floor: []}
    failures: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="batchpool-bench-") as tmp:
        work_dir = Path(tmp) / "work"
        pools = {}
        for name, module in (("slurm.array", batchpool.slurm.array), ("slurm", batchpool.slurm)):
            for interval in args.polling_intervals:
                label = f"{name}.Pool(polling_interval={interval:g})"
                pools[label] = functools.partial(
                    module.Pool, work_dir=work_dir, polling_interval=interval
                )
                times[label] = []
        ppp_labels = []
        if args.pypoolparty:
            for name in ("slurm.array", "slurm"):
                label = f"pypoolparty 0.3.1 {name}.Pool(polling_interval=1)"
                ppp_labels.append((label, name))
                times[label] = []
        try:
            for _ in range(args.repeats):
                times[floor].append(
                    bench.bare_sbatch_files(num_jobs, Path(tmp) / "floor", args.timeout_s)
                )
                times[bare].append(bench.bare_sbatch(num_jobs, args.timeout_s))
                for label, make_pool in pools.items():
                    times[label].append(bench.timed_map(make_pool, trivial, items, args.chunksize))
                for label, name in ppp_labels:
                    ppp_dir = Path(tmp) / "ppp"
                    ppp_dir.mkdir(exist_ok=True)
                    try:
                        times[label].append(
                            bench.pypoolparty_time(
                                args.pypoolparty,
                                name,
                                args.tasks,
                                args.chunksize,
                                1.0,
                                ppp_dir,
                                args.pypoolparty_timeout_s,
                            )
                        )
                    except (subprocess.SubprocessError, ValueError, IndexError) as error:
                        failures[label] = type(error).__name__
                        bench.cleanup(work_dir, Path(tmp))
        finally:
            bench.cleanup(work_dir, Path(tmp))
    rows = [(bare, times[bare], "baseline"), (floor, times[floor], "floor")]
    rows += [
        (label, times[label], "<= 1.2" if label in pools else "")
        for label in times
        if label not in (bare, floor)
    ]
    rows = [
        (label, t, f"failed: {failures[label]}" if label in failures else goal)
        for label, t, goal in rows
    ]
    if not args.pypoolparty:
        rows.append(("pypoolparty 0.3.1 (not run: see --pypoolparty)", [], ""))
    bench.print_table(
        f"real Slurm, {args.tasks} trivial tasks, chunksize {args.chunksize} = {num_jobs} jobs, "
        f"{args.repeats} repeats",
        rows,
    )


if __name__ == "__main__":
    main()
