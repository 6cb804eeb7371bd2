"""Latency of a small map on the real Slurm, against bare ``sbatch --wait``.

A map of ``--tasks`` (default 4) trivial tasks, one job each, through
``batchpool.slurm.array.Pool`` with the default ``polling_interval`` (5 s) and
with ``polling_interval=1``, against the baseline
``sbatch --wait --array=0-3 --wrap true`` (same number of jobs). Each run is
repeated ``--repeats`` times, interleaved; the table shows median, min and max
wall times and the median's ratio to two baselines: [1] ``sbatch --wait``, and
[2] the floor: the same array with ``touch DIR/$SLURM_ARRAY_TASK_ID`` as the
job, timed until every file is seen (looked for every 5 ms; ``sbatch --wait``
only looks every 2 s or more). Goal: <= 1.3x of [1].
Nothing is asserted. Needs ``sbatch`` (start the CI Slurm with
``bash ci/slurm/start.sh``).

``--pypoolparty PYTHON`` adds pypoolparty 0.3.1's array pool (polling 5 s and
1 s) as extra rows; ``PYTHON`` is an interpreter that has it::

    python3 -m venv /tmp/ppp && /tmp/ppp/bin/pip install pypoolparty==0.3.1

    python benchmarks/slurm_latency.py [--tasks 4] [--repeats 5] [--pypoolparty /tmp/ppp/bin/python]
"""

from __future__ import annotations

import argparse
import functools
import subprocess
import tempfile
from pathlib import Path

import _slurm_bench as bench

import batchpool.slurm.array


def trivial(x: int) -> int:
    return x


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--timeout-s", type=float, default=120.0)
    parser.add_argument("--pypoolparty", metavar="PYTHON", help="interpreter with pypoolparty")
    args = parser.parse_args()

    items = list(range(args.tasks))
    bare = f"sbatch --wait --array=0-{args.tasks - 1} --wrap true"
    labels = [
        bare,
        "slurm.array.Pool() (polling_interval=5)",
        "slurm.array.Pool(polling_interval=1)",
    ]
    floor = f"sbatch --array=0-{args.tasks - 1}, until all jobs touched their file"
    times: dict[str, list[float]] = {label: [] for label in [floor, *labels]}
    with tempfile.TemporaryDirectory(prefix="batchpool-bench-") as tmp:
        work_dir = Path(tmp) / "work"
        pools = {
            labels[1]: functools.partial(batchpool.slurm.array.Pool, work_dir=work_dir),
            labels[2]: functools.partial(
                batchpool.slurm.array.Pool, work_dir=work_dir, polling_interval=1.0
            ),
        }
        ppp = {}
        if args.pypoolparty:
            for interval in (5.0, 1.0):
                label = f"pypoolparty 0.3.1 slurm.array.Pool(polling_interval={interval:g})"
                ppp[label] = interval
                times[label] = []
        failures: dict[str, str] = {}
        try:
            for _ in range(args.repeats):
                times[floor].append(
                    bench.bare_sbatch_files(args.tasks, Path(tmp) / "floor", args.timeout_s)
                )
                times[bare].append(bench.bare_sbatch(args.tasks, args.timeout_s))
                for label, make_pool in pools.items():
                    times[label].append(bench.timed_map(make_pool, trivial, items, None))
                for label, interval in ppp.items():
                    ppp_dir = Path(tmp) / "ppp"
                    ppp_dir.mkdir(exist_ok=True)
                    try:
                        times[label].append(
                            bench.pypoolparty_time(
                                args.pypoolparty,
                                "slurm.array",
                                args.tasks,
                                1,
                                interval,
                                ppp_dir,
                                args.timeout_s,
                            )
                        )
                    except (subprocess.SubprocessError, ValueError, IndexError) as error:
                        failures[label] = type(error).__name__
                        bench.cleanup(work_dir, Path(tmp))
        finally:
            bench.cleanup(work_dir, Path(tmp))
    rows = [(bare, times[bare], "baseline"), (floor, times[floor], "floor")]
    rows += [(label, times[label], "<= 1.3") for label in labels[1:]]
    rows += [(label, times[label], failures.get(label, "")) for label in ppp]
    if not args.pypoolparty:
        rows.append(("pypoolparty 0.3.1 (not run: see --pypoolparty)", [], ""))
    bench.print_table(
        f"real Slurm, {args.tasks} trivial tasks = {args.tasks} jobs, {args.repeats} repeats",
        rows,
    )


if __name__ == "__main__":
    main()
