"""Small calls on ``batchpool.local.Pool(2)`` with standing workers, against multiprocessing.

``batchpool.local.Pool(2)`` and ``multiprocessing.Pool(2)`` are up side by side in
this process, each warmed by one map first (its workers started). Then, alternating
(multiprocessing, batchpool, multiprocessing, ...):

- ``--maps`` (default 50) maps of ``--tasks`` (default 8) trivial tasks each
  (``_tasks.trivial``, by reference): goal batchpool median <= 20 ms;
- ``--apply-repeats`` (default 10) rounds of ``--calls`` (default 200)
  ``apply_async(trivial, (i,))`` then ``get()`` of each: goal batchpool median
  <= 30x multiprocessing's;
- ``--fresh-repeats`` (default 3) rounds of the same on a fresh pool of each kind,
  pool creation and exit included (reported, no goal).

The batchpool workers stand between calls because the gaps are far below
``worker_idle_s`` (5 s). Median and range (min-max). Nothing is asserted.

    python benchmarks/local_standing_workers.py [--maps 50] [--apply-repeats 10]
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import tempfile
import time

import _slurm_bench as bench
from _tasks import trivial

import batchpool.local


def time_map(pool, items: list) -> float:
    start = time.perf_counter()
    results = pool.map(trivial, items)
    elapsed = time.perf_counter() - start
    assert results == [trivial(x) for x in items]
    return elapsed


def time_applies(pool, num_calls: int) -> float:
    start = time.perf_counter()
    pending = [pool.apply_async(trivial, (i,)) for i in range(num_calls)]
    results = [r.get(timeout=120) for r in pending]
    elapsed = time.perf_counter() - start
    assert results == [trivial(i) for i in range(num_calls)]
    return elapsed


def time_fresh(make_pool, num_calls: int) -> float:
    start = time.perf_counter()
    with make_pool() as pool:
        time_applies(pool, num_calls)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--tasks", type=int, default=8)
    parser.add_argument("--maps", type=int, default=50)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--apply-repeats", type=int, default=10)
    parser.add_argument("--fresh-repeats", type=int, default=3)
    args = parser.parse_args()

    items = list(range(args.tasks))
    times: dict[str, dict[str, list[float]]] = {
        w: {"mp": [], "bp": []} for w in ("map", "apply", "fresh")
    }
    with tempfile.TemporaryDirectory(prefix="batchpool-bench-") as work_dir:
        mp_pool = multiprocessing.Pool(args.processes)
        bp_pool = batchpool.local.Pool(args.processes, work_dir=work_dir)
        with mp_pool, bp_pool:
            time_map(mp_pool, items)
            time_map(bp_pool, items)
            for _ in range(args.maps):
                times["map"]["mp"].append(time_map(mp_pool, items))
                times["map"]["bp"].append(time_map(bp_pool, items))
            for _ in range(args.apply_repeats):
                times["apply"]["mp"].append(time_applies(mp_pool, args.calls))
                times["apply"]["bp"].append(time_applies(bp_pool, args.calls))
            submissions = bp_pool.statistics().num_submissions
        for _ in range(args.fresh_repeats):
            times["fresh"]["mp"].append(
                time_fresh(lambda: multiprocessing.Pool(args.processes), args.calls)
            )
            times["fresh"]["bp"].append(
                time_fresh(
                    lambda: batchpool.local.Pool(args.processes, work_dir=work_dir), args.calls
                )
            )

    ms = "{:.1f}"
    rows = []
    verdicts = []
    for key, label, goal in (
        ("map", f"map of {args.tasks} trivial tasks, workers standing ({args.maps}x)", "<= 20 ms"),
        (
            "apply",
            f"{args.calls} apply_async + get(), workers standing ({args.apply_repeats}x)",
            "<= 30x",
        ),
        ("fresh", f"same on a fresh pool, creation and exit included ({args.fresh_repeats}x)", ""),
    ):
        mp, bp = times[key]["mp"], times[key]["bp"]
        ratio = statistics.median(bp) / statistics.median(mp)
        rows.append(
            (
                label,
                bench.spread([t * 1000 for t in mp], ms),
                bench.spread([t * 1000 for t in bp], ms),
                f"{ratio:.1f}",
                goal,
            )
        )
        if key == "map":
            value = statistics.median(bp) * 1000
            verdicts.append(f"map: {value:.1f} ms {bench.verdict(value, 20)} (<= 20 ms)")
        elif key == "apply":
            verdicts.append(f"apply_async: {ratio:.1f}x {bench.verdict(ratio, 30)} (<= 30x)")
    bench.print_grid(
        f"processes={args.processes}, interleaved; median (min-max) in ms",
        ("workload", "multiprocessing ms", "batchpool.local ms", "ratio", "goal"),
        rows,
    )
    print(f"(backend submissions of the standing batchpool pool over all its calls: {submissions})")
    for line in verdicts:
        print(line)


if __name__ == "__main__":
    main()
