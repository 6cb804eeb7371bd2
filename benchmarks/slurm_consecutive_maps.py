"""Consecutive small maps on one pool on the real Slurm, against as many bare arrays.

``--maps`` (default 20) maps of ``--tasks`` (default 8) trivial tasks, one after
the other, on one ``batchpool.slurm.array.Pool()`` (default options): the first
map starts the pool's standing workers, the others find them waiting. Against
the baseline: ``--maps`` back-to-back bare arrays ``sbatch --array=0-7`` whose
elements each ``touch DIR/$SLURM_ARRAY_TASK_ID``, each array polled every
``--poll-ms`` (default 50) until all its files exist, before the next one is
submitted.

The two runs alternate (pool, arrays, pool, arrays, ...) ``--repeats`` times
(default 3). Two tables, median and range (min-max) of the repeats:

- the total wall time of the maps (pool creation to the last map's result; the
  pool's exit is shown apart) against that of the arrays: goal <= 0.25x;
- one map: the first one, and the others (while the workers stand: goal median
  <= 50 ms), against one bare array.

Nothing is asserted. Needs the real Slurm (``bash ci/slurm/start.sh``).

    python benchmarks/slurm_consecutive_maps.py [--maps 20] [--tasks 8] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import _slurm_bench as bench
from _tasks import trivial

import batchpool.slurm.array


def pool_run(work_dir: Path, num_maps: int, items: list) -> dict:
    """``num_maps`` maps on one fresh pool: the wall time of each, in order."""
    start = time.perf_counter()
    pool = batchpool.slurm.array.Pool(work_dir=work_dir)
    with pool:
        per_map = []
        for _ in range(num_maps):
            t = time.perf_counter()
            results = pool.map(trivial, items)
            per_map.append(time.perf_counter() - t)
            assert results == [trivial(x) for x in items]
        total = time.perf_counter() - start
        own = pool.statistics()
        sbatch, squeue = own.num_submissions, own.num_status_queries
        t = time.perf_counter()
    exit_s = time.perf_counter() - t
    return {"total": total, "maps": per_map, "sbatch": sbatch, "squeue": squeue, "exit": exit_s}


def arrays_run(directory: Path, num_arrays: int, num_elements: int, args) -> list[float]:
    """``num_arrays`` bare arrays one after the other: the wall time of each."""
    return [
        bench.bare_sbatch_files(num_elements, directory, args.timeout_s, args.poll_ms / 1000)
        for _ in range(num_arrays)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--maps", type=int, default=20)
    parser.add_argument("--tasks", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--poll-ms", type=float, default=50.0)
    parser.add_argument("--timeout-s", type=float, default=120.0)
    args = parser.parse_args()

    items = list(range(args.tasks))
    pools: list[dict] = []
    arrays: list[list[float]] = []
    with tempfile.TemporaryDirectory(prefix="batchpool-bench-") as tmp:
        work_dir = Path(tmp) / "work"
        try:
            for pool, bare in bench.repeat(
                args.repeats,
                lambda: (
                    pool_run(work_dir, args.maps, items),
                    arrays_run(Path(tmp) / "floor", args.maps, args.tasks, args),
                ),
                lambda: bench.cleanup(work_dir),
            ):
                pools.append(pool)
                arrays.append(bare)
        finally:
            bench.cleanup(work_dir)

    last = args.tasks - 1
    bare = f"{args.maps} x sbatch --array=0-{last} (touch), polled every {args.poll_ms:g} ms"
    pool_label = f"slurm.array.Pool(): {args.maps} maps of {args.tasks} tasks"
    totals_bare = [sum(a) for a in arrays]
    totals_pool = [p["total"] for p in pools]
    ratio = statistics.median(totals_pool) / statistics.median(totals_bare)
    bench.print_grid(
        f"real Slurm, {args.maps} consecutive maps of {args.tasks} trivial tasks, "
        f"{args.repeats} repeats, interleaved; median (min-max)",
        ("run", "total s", "ratio", "sbatch", "squeue", "goal", "met?"),
        [
            (f"[1] {bare}", bench.spread(totals_bare), "1.00", str(args.maps), "-", "baseline", ""),
            (
                pool_label,
                bench.spread(totals_pool),
                f"{ratio:.2f}",
                bench.spread([p["sbatch"] for p in pools], "{:g}"),
                bench.spread([p["squeue"] for p in pools], "{:g}"),
                "<= 0.25",
                bench.verdict(ratio, 0.25),
            ),
        ],
    )
    print(f"(the pool's exit after its last map: {bench.spread([p['exit'] for p in pools])} s)")
    print()

    one_bare = [t for a in arrays for t in a]
    first = [p["maps"][0] for p in pools]
    standing = [t for p in pools for t in p["maps"][1:]]
    median_bare = statistics.median(one_bare)
    median_standing = statistics.median(standing)
    ms = "{:.1f}"
    bench.print_grid(
        f"one map of {args.tasks} trivial tasks (ms); median (min-max) of all maps of all repeats",
        ("run", "n", "ms", "ratio", "goal", "met?"),
        [
            (
                f"[1] sbatch --array=0-{last} (touch), polled every {args.poll_ms:g} ms",
                str(len(one_bare)),
                bench.spread([t * 1000 for t in one_bare], ms),
                "1.00",
                "baseline",
                "",
            ),
            (
                "slurm.array.Pool(): first map (starts the workers)",
                str(len(first)),
                bench.spread([t * 1000 for t in first], ms),
                f"{statistics.median(first) / median_bare:.2f}",
                "",
                "",
            ),
            (
                f"slurm.array.Pool(): maps 2-{args.maps} (workers standing)",
                str(len(standing)),
                bench.spread([t * 1000 for t in standing], ms),
                f"{median_standing / median_bare:.3f}",
                "<= 50 ms",
                bench.verdict(median_standing, 0.050),
            ),
        ],
    )


if __name__ == "__main__":
    main()
