"""emcee on the cluster simulator's nodes: ``nfs`` against ``coherent``, chain as multiprocessing.

The sampling of ``emcee_slurm.py`` (``--walkers`` 32, ``--steps`` 20, ``--ndim`` 5, a
standard normal; 1 + 2 x 20 = 41 maps) with ``pool=batchpool.slurm.array.Pool(work_dir=
DIR, partition="sim")`` (other options default) on the real Slurm's simulated nodes
(ci/README.md, "Cluster simulator"), ``DIR`` a fresh directory under
``/var/tmp/batchpool-sim/shared/<profile>/``:

- ``coherent`` (no caching): the baseline of the ratio;
- ``nfs`` (30 s entry, negative-entry and attribute caches on every node and on the
  driver's side).

Also ``multiprocessing.Pool(2)``, whose chain is the reference: every run seeds numpy
(``np.random.seed(--seed)``) before it draws the initial walkers and builds the sampler,
so the chains and log-probabilities must be equal element for element
(``np.array_equal``). The three run interleaved (the order reversed every other
repeat), ``--repeats`` times (default 3); median (min-max). Wall time from the pool's
creation to the end of ``run_mcmc`` (the pool's exit apart). The log-probability
(``_tasks.gaussian_log_prob_on_host``) appends ``HOST:PID FIRST`` to a file under
``/var/tmp`` (outside the views: a side channel of the benchmark, not the pool's) to
count the processes that ran it; jobs, ``sbatch`` calls and the workers' hosts come
from the pool directory (``jobs.jsonl``, the mailboxes). Goal: nfs / coherent wall
<= 2x; chains identical. Nothing is asserted.

    python benchmarks/emcee_many_hosts.py [--walkers 32] [--steps 20] [--repeats 3]
"""

from __future__ import annotations

import argparse
import multiprocessing
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import _slurm_bench as bench
import emcee
import numpy as np
from _tasks import gaussian_log_prob_on_host
from emcee_slurm import read_calls, sample
from many_hosts import HERE, cluster_sim, dirty, jobs_submitted, worker_hosts

import batchpool.slurm.array

MP = "multiprocessing.Pool(2)"


def run_once(kind: str, args, tmp: Path, dirs: list[Path]) -> dict:
    calls_file = Path(tempfile.mkstemp(prefix="calls-", dir=tmp)[1])
    extra: dict = {}
    start = time.perf_counter()
    if kind == MP:
        with multiprocessing.Pool(2) as pool:
            chain, log_prob, map_s = sample(pool, args, calls_file, gaussian_log_prob_on_host)
            wall = time.perf_counter() - start
    else:
        profile = kind.split(", ")[1]
        work_dir = cluster_sim.work_dir(profile, prefix="bench-emcee-")
        dirs.append(work_dir)
        start = time.perf_counter()
        with batchpool.slurm.array.Pool(work_dir=work_dir, partition="sim") as pool:
            chain, log_prob, map_s = sample(pool, args, calls_file, gaussian_log_prob_on_host)
            wall = time.perf_counter() - start
            jobs, submissions = jobs_submitted(pool)
            extra = {"jobs": jobs, "sbatch": submissions, "hosts": worker_hosts(pool)}
            t = time.perf_counter()
        extra["exit"] = time.perf_counter() - t
    calls, processes, firsts = read_calls(calls_file)
    return {
        "wall": wall,
        "chain": chain,
        "log_prob": log_prob,
        "map_s": map_s,
        "calls": calls,
        "processes": processes,
        "firsts": firsts,
        **extra,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--walkers", type=int, default=32)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--ndim", type=int, default=5)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--profile", default="nfs", help="the caching profile (default nfs)")
    args = parser.parse_args()

    reason = cluster_sim.slurm_unavailable_reason()
    if reason:
        raise SystemExit(reason)
    coherent, nfs = "sim, coherent", f"sim, {args.profile}"
    kinds = [MP, coherent, nfs]
    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=HERE
    ).stdout.strip()
    print(
        f"real Slurm, partition 'sim': nodes {' '.join(cluster_sim.slurm_nodes())}; "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; git {head} "
        f"(+ uncommitted changes in src: {'yes' if dirty() else 'no'})"
    )
    rows: dict[str, list[dict]] = {k: [] for k in kinds}
    dirs: list[Path] = []
    with tempfile.TemporaryDirectory(prefix="batchpool-bench-emcee-", dir="/var/tmp") as tmp_s:
        try:
            for repeat in range(args.repeats):
                order = kinds if repeat % 2 == 0 else list(reversed(kinds))
                for kind in order:
                    rows[kind].append(run_once(kind, args, Path(tmp_s), dirs))
        finally:
            for path in dirs:
                bench.cleanup(path)
                shutil.rmtree(path, ignore_errors=True)

    reference = rows[MP][0]
    for rs in rows.values():
        for r in rs:
            r["same"] = np.array_equal(r["chain"], reference["chain"]) and np.array_equal(
                r["log_prob"], reference["log_prob"]
            )
    base = statistics.median(r["wall"] for r in rows[coherent])
    table = []
    for kind in kinds:
        rs = rows[kind]
        wall = statistics.median(r["wall"] for r in rs)
        standing = [t * 1000 for r in rs for t in r["map_s"][1:]]
        slurm = kind != MP
        hosts = sorted({h for r in rs for h in r.get("hosts", [])})
        table.append(
            (
                kind,
                bench.spread([r["wall"] for r in rs]),
                f"{wall / base:.2f}",
                "all equal" if all(r["same"] for r in rs) else "DIFFERENT",
                bench.spread([len(r["map_s"]) for r in rs], "{:g}"),
                bench.spread([r["map_s"][0] for r in rs]),
                bench.spread(standing, "{:.0f}"),
                bench.spread([r["processes"] for r in rs], "{:g}"),
                bench.spread([r["jobs"] for r in rs], "{:g}") if slurm else "-",
                bench.spread([r["sbatch"] for r in rs], "{:g}") if slurm else "-",
                bench.spread([r["exit"] for r in rs]) if slurm else "-",
                " ".join(hosts) if slurm else "-",
                {MP: "reference chain", coherent: "baseline"}.get(kind, "<= 2x"),
            )
        )
    bench.print_grid(
        f"emcee {emcee.__version__}, {args.walkers} walkers, {args.steps} steps, ndim "
        f"{args.ndim}, seed {args.seed}, {args.repeats} repeats, interleaved; median (min-max)",
        (
            "pool",
            "wall s",
            "ratio",
            "chain vs mp",
            "maps",
            "map 1 s",
            "map 2.. ms",
            "processes",
            "jobs",
            "sbatch",
            "exit s",
            "worker hosts",
            "goal",
        ),
        table,
    )
    ratio = statistics.median(r["wall"] for r in rows[nfs]) / base
    same = all(r["same"] for rs in rows.values() for r in rs)
    print(f"{nfs} / {coherent} wall: {ratio:.2f} (<= 2) {bench.verdict(ratio, 2.0)}")
    print(f"chains identical to multiprocessing: {'met' if same else 'NOT met'}")


if __name__ == "__main__":
    main()
