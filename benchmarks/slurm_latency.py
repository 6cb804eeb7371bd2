"""Latency of a small map on the real Slurm, against bare ``sbatch --wait``.

A map of ``--tasks`` (default 4) trivial tasks, one job each, through
``batchpool.slurm.array.Pool`` with the default ``polling_interval`` (5 s) and
with ``polling_interval=1``, against the baseline
``sbatch --wait --array=0-3 --wrap true`` (same number of jobs). Each run is
repeated ``--repeats`` times, interleaved; the table shows median, min and max
wall times and the median's ratio to the baseline. Goal: <= 1.3x.
Nothing is asserted. Needs ``sbatch`` (start the CI Slurm with
``bash ci/slurm/start.sh``).

    python benchmarks/slurm_latency.py [--tasks 4] [--repeats 3]
"""

from __future__ import annotations

import argparse
import functools
import tempfile
from pathlib import Path

import _slurm_bench as bench

import batchpool.slurm.array


def trivial(x: int) -> int:
    return x


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--timeout-s", type=float, default=120.0)
    args = parser.parse_args()

    items = list(range(args.tasks))
    bare = f"sbatch --wait --array=0-{args.tasks - 1} --wrap true"
    labels = [
        bare,
        "slurm.array.Pool() (polling_interval=5)",
        "slurm.array.Pool(polling_interval=1)",
    ]
    times: dict[str, list[float]] = {label: [] for label in labels}
    with tempfile.TemporaryDirectory(prefix="batchpool-bench-") as tmp:
        work_dir = Path(tmp) / "work"
        pools = {
            labels[1]: functools.partial(batchpool.slurm.array.Pool, work_dir=work_dir),
            labels[2]: functools.partial(
                batchpool.slurm.array.Pool, work_dir=work_dir, polling_interval=1.0
            ),
        }
        try:
            for _ in range(args.repeats):
                times[bare].append(bench.bare_sbatch(args.tasks, args.timeout_s))
                for label, make_pool in pools.items():
                    times[label].append(bench.timed_map(make_pool, trivial, items, None))
        finally:
            bench.cleanup(work_dir)
    goal = ["baseline", "<= 1.3", "<= 1.3"]
    bench.print_table(
        f"real Slurm, {args.tasks} trivial tasks = {args.tasks} jobs, {args.repeats} repeats",
        [(label, times[label], g) for label, g in zip(labels, goal)],
    )


if __name__ == "__main__":
    main()
