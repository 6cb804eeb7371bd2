"""Many ``apply_async`` calls on a fresh pool on the real Slurm: scheduler calls and wall time.

``--calls`` (default 100) ``pool.apply_async(trivial, (i,))`` in a row, then
``get()`` of each, on a fresh ``batchpool.slurm.array.Pool`` (the calls coalesce
into few sessions and few submissions), with the default ``polling_interval``
(5 s) and with ``--polling-intervals`` more (default also 1 s). The scheduler
programs are wrappers that log each call (:class:`_slurm_bench.CallLog`); the
pool's own counters ``pool.statistics().num_submissions`` and
``.num_status_queries`` are shown next to them. Baseline: a bare
``--calls``-element array of ``touch DIR/$SLURM_ARRAY_TASK_ID`` jobs, polled every
``--poll-ms`` (default 50) until every file exists (``--calls`` must stay below the
cluster's ``MaxArraySize``, 101 on the CI Slurm).

Runs alternate (array, pool per interval, array, ...) ``--repeats`` times
(default 3); median and range (min-max). Wall time is from the pool's creation to
the last ``get()``; the counts are taken then (the pool's exit adds a
``scancel`` at most). Goals: sbatch <= 3; squeue <= wall / polling_interval + 2;
wall <= 0.4x the bare array. Nothing is asserted.

    python benchmarks/slurm_apply_async.py [--calls 100] [--repeats 3] [--polling-intervals 5 1]
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


def pool_run(tmp: Path, work_dir: Path, num_calls: int, polling_interval: float) -> dict:
    calls = bench.CallLog(Path(tempfile.mkdtemp(prefix="calls-", dir=tmp)))
    start = time.perf_counter()
    pool = batchpool.slurm.array.Pool(
        work_dir=work_dir, polling_interval=polling_interval, **calls.paths
    )
    with pool:
        pending = [pool.apply_async(trivial, (i,)) for i in range(num_calls)]
        results = [r.get(timeout=300) for r in pending]
        wall = time.perf_counter() - start
        counts = calls.counts()
        own = pool.statistics()
        row = {
            "wall": wall,
            "sbatch": counts["sbatch"],
            "squeue": counts["squeue"],
            "jobs": calls.jobs_submitted(),
            "own sbatch": own.num_submissions,
            "own squeue": own.num_status_queries,
            "bound": wall / polling_interval + 2,
        }
    assert results == [trivial(i) for i in range(num_calls)]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--polling-intervals", type=float, nargs="+", default=[5.0, 1.0])
    parser.add_argument("--poll-ms", type=float, default=50.0)
    parser.add_argument("--timeout-s", type=float, default=300.0)
    args = parser.parse_args()

    bare: list[float] = []
    runs: dict[float, list[dict]] = {p: [] for p in args.polling_intervals}
    with tempfile.TemporaryDirectory(prefix="batchpool-bench-") as tmp:
        work_dir = Path(tmp) / "work"

        def run_once() -> tuple[float, dict]:
            floor = bench.bare_sbatch_files(
                args.calls, Path(tmp) / "floor", args.timeout_s, args.poll_ms / 1000
            )
            return floor, {i: pool_run(Path(tmp), work_dir, args.calls, i) for i in runs}

        try:
            for floor, pools in bench.repeat(
                args.repeats, run_once, lambda: bench.cleanup(work_dir)
            ):
                bare.append(floor)
                for interval, row in pools.items():
                    runs[interval].append(row)
        finally:
            bench.cleanup(work_dir)

    base = statistics.median(bare)
    rows = [
        (
            f"[1] sbatch --array=0-{args.calls - 1} (touch), polled every {args.poll_ms:g} ms",
            bench.spread(bare),
            "1.00",
            "1",
            "-",
            "-",
            str(args.calls),
            "baseline",
        )
    ]
    verdicts = []
    for interval, rs in runs.items():
        wall = [r["wall"] for r in rs]
        ratio = statistics.median(wall) / base
        worst_sbatch = max(r["sbatch"] for r in rs)
        squeue_ok = all(r["squeue"] <= r["bound"] for r in rs)
        rows.append(
            (
                f"slurm.array.Pool(polling_interval={interval:g})",
                bench.spread(wall),
                f"{ratio:.2f}",
                bench.spread([r["sbatch"] for r in rs], "{:g}"),
                bench.spread([r["squeue"] for r in rs], "{:g}"),
                bench.spread([r["bound"] for r in rs], "{:.1f}"),
                bench.spread([r["jobs"] for r in rs], "{:g}"),
                "wall <= 0.4, sbatch <= 3, squeue <= bound",
            )
        )
        verdicts.append(
            f"polling_interval={interval:g}: wall {ratio:.2f}x {bench.verdict(ratio, 0.4)}; "
            f"sbatch max {worst_sbatch} {bench.verdict(worst_sbatch, 3)}; "
            f"squeue <= bound in {sum(r['squeue'] <= r['bound'] for r in rs)}/{len(rs)} runs "
            f"{'met' if squeue_ok else 'NOT met'}"
        )
    bench.print_grid(
        f"real Slurm, {args.calls} x apply_async then get() on a fresh pool, {args.repeats} "
        "repeats, interleaved; median (min-max)",
        ("run", "wall s", "ratio", "sbatch", "squeue", "bound", "jobs", "goal"),
        rows,
    )
    print("bound = wall / polling_interval + 2; counts from logging wrappers of the programs")
    own = [
        f"{interval:g} s: sbatch {[r['own sbatch'] for r in rs]}, "
        f"squeue {[r['own squeue'] for r in rs]}"
        for interval, rs in runs.items()
    ]
    print("pool.statistics() per run: " + "; ".join(own))
    for line in verdicts:
        print(line)


if __name__ == "__main__":
    main()
