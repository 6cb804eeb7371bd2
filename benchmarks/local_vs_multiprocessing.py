"""batchpool.local.Pool against multiprocessing.Pool on this machine.

Two workloads, each run by both pools in the same process, the best of
``--repeats`` wall times taken:

- ``--cpu-tasks`` tasks (default 200) that each burn ``--cpu-ms`` (default 20)
  milliseconds of CPU, with ``--processes`` (default 2) processes;
- ``--trivial-tasks`` tasks (default 100,000) that return at once, with the
  default chunking of each pool (``ceil(n / (4 * processes))``): once with a
  function of ``__main__`` (pickled by value: each batchpool job imports
  cloudpickle), once with the same function from an importable module.

Prints a table of wall times and the ratio batchpool / multiprocessing.
Goal for the CPU workload: ratio <= 1.3. Nothing is asserted.

    python benchmarks/local_vs_multiprocessing.py [--cpu-tasks 200] [--repeats 3]
"""

from __future__ import annotations

import argparse
import multiprocessing
import tempfile
import time

from _tasks import trivial as trivial_by_reference

import batchpool.local


def burn(milliseconds: float) -> int:
    """Spin on the CPU for ``milliseconds`` of process time."""
    end = time.process_time() + milliseconds / 1000.0
    n = 0
    while time.process_time() < end:
        n += 1
    return n


def trivial(x: int) -> int:
    return x + 1


def best_time(run, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--cpu-tasks", type=int, default=200)
    parser.add_argument("--cpu-ms", type=float, default=20.0)
    parser.add_argument("--trivial-tasks", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    cpu_items = [args.cpu_ms] * args.cpu_tasks
    trivial_items = list(range(args.trivial_tasks))
    rows = []
    with tempfile.TemporaryDirectory(prefix="batchpool-bench-") as work_dir:
        for label, func, items, goal in (
            (f"{args.cpu_tasks} x {args.cpu_ms:g} ms CPU", burn, cpu_items, "<= 1.3"),
            (f"{args.trivial_tasks:,} trivial", trivial, trivial_items, "(report)"),
            ("  same, by reference", trivial_by_reference, trivial_items, "(report)"),
        ):
            with multiprocessing.Pool(args.processes) as mp_pool:
                mp_pool.map(trivial, range(args.processes))  # workers are up
                t_mp = best_time(lambda p=mp_pool, f=func, i=items: p.map(f, i), args.repeats)
            with batchpool.local.Pool(args.processes, work_dir=work_dir) as bp_pool:
                t_bp = best_time(lambda p=bp_pool, f=func, i=items: p.map(f, i), args.repeats)
            rows.append((label, t_mp, t_bp, t_bp / t_mp, goal))

    print(
        f"processes={args.processes}, best of {args.repeats}, "
        f"ideal CPU time = {args.cpu_tasks * args.cpu_ms / 1000 / args.processes:.2f} s"
    )
    header = ("workload", "multiprocessing s", "batchpool.local s", "ratio", "goal")
    widths = (26, 18, 18, 7, 9)
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)))
    print("  ".join("-" * w for w in widths))
    for label, t_mp, t_bp, ratio, goal in rows:
        cells = (label, f"{t_mp:.3f}", f"{t_bp:.3f}", f"{ratio:.2f}", goal)
        print("  ".join(c.ljust(w) for c, w in zip(cells, widths)))


if __name__ == "__main__":
    main()
