"""emcee with ``pool=batchpool.slurm.array.Pool()`` on the real Slurm, against multiprocessing.

``--walkers`` (default 32) walkers, ``--steps`` (default 20) steps of emcee's default
stretch move on a ``--ndim``-dimensional standard normal (``_tasks.gaussian_log_prob``,
pickled by reference). emcee evaluates the initial walkers in one map (32 tasks), then
each step in two maps of half the walkers: 1 + 2 x 20 = 41 maps. The same sampling
runs three ways, interleaved, ``--repeats`` times (default 3):

- no pool (emcee's serial ``map``);
- ``multiprocessing.Pool(2)``;
- ``batchpool.slurm.array.Pool()`` with default options (scheduler programs behind
  logging wrappers, to count the jobs).

Each run seeds numpy (``np.random.seed(--seed)``), draws the initial positions from it
and then builds the ``EnsembleSampler``, which copies numpy's global random state into
its own generator at construction: the three chains must be equal element for element
(``np.array_equal`` of ``sampler.get_chain()`` and of ``get_log_prob()``).

Wall time is from the pool's creation to the end of ``run_mcmc`` (goal <= 10 s).
Each log-probability call appends ``PID FIRST`` to a file (``FIRST`` = first call in
that process): a worker unpickles emcee's function wrapper, importing emcee, once, so
emcee is imported once per worker process, i.e. once per job, not once per map.
Nothing is asserted.

    python benchmarks/emcee_slurm.py [--walkers 32] [--steps 20] [--repeats 3]
"""

from __future__ import annotations

import argparse
import collections
import multiprocessing
import statistics
import tempfile
import time
from pathlib import Path

import _slurm_bench as bench
import emcee
import numpy as np
from _tasks import gaussian_log_prob

import batchpool.slurm.array


def sample(pool, args, calls_file: Path, log_prob=gaussian_log_prob):
    """The chain, the log-probabilities and the wall time of each map of one emcee run."""
    map_s: list[float] = []
    if pool is not None:
        inner = pool.map

        def timed_map(func, iterable):
            start = time.perf_counter()
            try:
                return inner(func, iterable)
            finally:
                map_s.append(time.perf_counter() - start)

        pool.map = timed_map  # this instance only: time each of emcee's maps
    np.random.seed(args.seed)
    p0 = np.random.randn(args.walkers, args.ndim)
    sampler = emcee.EnsembleSampler(
        args.walkers, args.ndim, log_prob, args=(str(calls_file),), pool=pool
    )
    sampler.run_mcmc(p0, args.steps, progress=False)
    return sampler.get_chain(), sampler.get_log_prob(), map_s


def read_calls(calls_file: Path) -> tuple[int, int, int]:
    """(calls, distinct processes, first calls in a process) from the calls file."""
    lines = [line.split() for line in calls_file.read_text().splitlines()]
    pids = collections.Counter(pid for pid, _ in lines)
    return len(lines), len(pids), sum(int(first) for _, first in lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--walkers", type=int, default=32)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--ndim", type=int, default=5)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    kinds = ("no pool", "multiprocessing.Pool(2)", "slurm.array.Pool()")
    rows: dict[str, list[dict]] = {k: [] for k in kinds}
    reference = None
    with tempfile.TemporaryDirectory(prefix="batchpool-bench-") as tmp:
        work_dir = Path(tmp) / "work"
        try:
            for repeat in range(args.repeats):
                for kind in kinds:
                    calls_file = Path(tmp) / f"calls-{repeat}-{len(rows[kind])}-{kind[:5]}.txt"
                    calls_file.touch()
                    start = time.perf_counter()
                    extra = {}
                    if kind == "no pool":
                        chain, log_prob, map_s = sample(None, args, calls_file)
                    elif kind.startswith("multiprocessing"):
                        with multiprocessing.Pool(2) as pool:
                            chain, log_prob, map_s = sample(pool, args, calls_file)
                    else:
                        log = bench.CallLog(Path(tmp) / f"wrappers-{repeat}")
                        with batchpool.slurm.array.Pool(work_dir=work_dir, **log.paths) as pool:
                            chain, log_prob, map_s = sample(pool, args, calls_file)
                            extra = {
                                "sbatch": log.counts()["sbatch"],
                                "jobs": log.jobs_submitted(),
                            }
                    wall = time.perf_counter() - start
                    if reference is None:
                        reference = (chain, log_prob)
                    same = np.array_equal(chain, reference[0]) and np.array_equal(
                        log_prob, reference[1]
                    )
                    calls, processes, firsts = read_calls(calls_file)
                    rows[kind].append(
                        {
                            "wall": wall,
                            "same": same,
                            "maps": len(map_s),
                            "map_s": map_s,
                            "calls": calls,
                            "processes": processes,
                            "firsts": firsts,
                            **extra,
                        }
                    )
        finally:
            bench.cleanup(work_dir)

    base = statistics.median(r["wall"] for r in rows[kinds[1]])
    table = []
    for kind in kinds:
        rs = rows[kind]
        wall = statistics.median(r["wall"] for r in rs)
        standing = [t for r in rs for t in r["map_s"][1:]]
        table.append(
            (
                kind,
                bench.spread([r["wall"] for r in rs]),
                f"{wall / base:.2f}",
                "all equal" if all(r["same"] for r in rs) else "DIFFERENT",
                bench.spread([r["maps"] for r in rs], "{:g}") if rs[0]["maps"] else "-",
                bench.spread([t * 1000 for t in standing], "{:.0f}") if standing else "-",
                bench.spread([r["calls"] for r in rs], "{:g}"),
                bench.spread([r["processes"] for r in rs], "{:g}"),
                bench.spread([r["firsts"] for r in rs], "{:g}") if "jobs" in rs[0] else "-",
                bench.spread([r["jobs"] for r in rs], "{:g}") if "jobs" in rs[0] else "-",
                bench.spread([r["sbatch"] for r in rs], "{:g}") if "sbatch" in rs[0] else "-",
                "<= 10 s" if kind.startswith("slurm") else ("baseline" if kind == kinds[1] else ""),
            )
        )
    bench.print_grid(
        f"emcee {emcee.__version__}, {args.walkers} walkers, {args.steps} steps, ndim {args.ndim}, "
        f"seed {args.seed}, {args.repeats} repeats, interleaved; median (min-max)",
        (
            "pool",
            "wall s",
            "ratio",
            "chain vs no pool",
            "maps",
            "map 2.. ms",
            "calls",
            "processes",
            "first calls",
            "jobs",
            "sbatch",
            "goal",
        ),
        table,
    )
    slurm = rows[kinds[2]]
    wall = statistics.median(r["wall"] for r in slurm)
    same = all(r["same"] for r in slurm) and all(r["same"] for r in rows[kinds[1]])
    once = all(r["firsts"] == r["processes"] <= r["jobs"] < r["maps"] for r in slurm)
    print(
        "processes: distinct PIDs that ran the log-probability; first calls: batchpool workers "
        "whose first call it was (each imported emcee once, unpickling emcee's wrapper)"
    )
    print(f"slurm.array.Pool(): wall {wall:.2f} s {bench.verdict(wall, 10.0)} (<= 10 s)")
    print(f"chain identical to multiprocessing and to no pool: {'met' if same else 'NOT met'}")
    print(
        "emcee imported once per job (first calls = processes <= jobs < maps): "
        + ("met" if once else "NOT met")
    )


if __name__ == "__main__":
    main()
