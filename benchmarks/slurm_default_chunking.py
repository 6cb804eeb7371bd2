"""Default chunking (``chunksize=None``) on the real Slurm, against hand-picked chunk sizes.

Two workloads, each map on a fresh ``batchpool.slurm.array.Pool()`` with default
options (``polling_interval`` 5 s, ``worker_idle_s`` 5 s), whose scheduler programs
are logging wrappers (:class:`_slurm_bench.CallLog`) so that the jobs it submits
are counted:

- ``--trivial-tasks`` (default 1,000) trivial tasks, with the pool's own chunking
  (chunks cut by measured task time), against the same map with each of
  ``--chunksizes`` (default 63 = 16 jobs, 125, 250, 500, 1000 = 1 job); the
  fastest of those (by median, in this run) is the baseline. Goals: wall <= 1.5x
  the best hand-picked chunksize; <= 20 jobs.
- ``--sleep-tasks`` (default 200) tasks of ``time.sleep(0.5)``, with the pool's
  own chunking, against 16 bare jobs (one ``sbatch --array=0-15``, all submitted at
  once) of ``sleep 6.5`` (= 200 x 0.5 s / 16 slots, rounded up to whole tasks)
  then ``touch``, polled every ``--poll-ms`` (default 50) until every file exists.
  Goal: wall <= 1.25x.

Runs alternate within each repeat (``--trivial-repeats``, default 5, the order
reversed every other repeat; ``--sleep-repeats``, default 3); median and range
(min-max). Every pool keeps its work dir (``keep_work_dir=True``, so that no
setting pays the session's removal inside ``map``): the chunks a default map cut are
read from its session's ``chunks.jsonl``, and the time its first worker was ready
from the pool's ``workers/`` files, which splits the trivial maps' wall time into
Slurm's job start and what follows. Nothing is asserted.

    python benchmarks/slurm_default_chunking.py [--trivial-repeats 5] [--sleep-repeats 3]
    python benchmarks/slurm_default_chunking.py --only trivial  # or sleep
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import tempfile
import time
from pathlib import Path
from typing import Optional

import _slurm_bench as bench
from _tasks import sleep_for, trivial

import batchpool.slurm.array

SLOTS = 16


def pool_run(
    tmp: Path, func, items: list, expected: list, chunksize: Optional[int], keep: bool = False
) -> dict:
    """One map on a fresh pool with logging wrappers; wall time and what it asked for."""
    calls = bench.CallLog(Path(tempfile.mkdtemp(prefix="calls-", dir=tmp)))
    work_dir = Path(tempfile.mkdtemp(prefix="work-", dir=tmp))
    start = time.perf_counter()
    start_epoch = time.time()
    try:
        with batchpool.slurm.array.Pool(
            work_dir=work_dir, keep_work_dir=keep, **calls.paths
        ) as pool:
            results = pool.map(func, items, chunksize)
            wall = time.perf_counter() - start
            counts = calls.counts()
            jobs = calls.jobs_submitted()
    finally:
        bench.cleanup(work_dir)
    assert results == expected
    return {
        "wall": wall,
        "sbatch": counts["sbatch"],
        "squeue": counts["squeue"],
        "jobs": jobs,
        "chunks": chunk_sizes(work_dir) if keep else [],
        "first worker": first_worker_s(work_dir, start_epoch) if keep else float("nan"),
    }


def first_worker_s(work_dir: Path, start_epoch: float) -> float:
    """Seconds from the pool's creation to its first worker being ready (the earliest
    ``workers/JOB`` file of the pool directory, kept with ``keep_work_dir``)."""
    ready = [f.stat().st_mtime for f in work_dir.glob("pool_*/workers/*")]
    return min(ready) - start_epoch if ready else float("nan")


def chunk_sizes(work_dir: Path) -> list[int]:
    """Sizes of the chunks posted in the session(s) left in ``work_dir``, in order."""
    sizes = []
    for log in sorted(work_dir.glob("*/chunks.jsonl")):
        for line in log.read_text().splitlines():
            event = json.loads(line)
            if event.get("event") == "posted":
                sizes.append(event["stop"] - event["start"])
    return sizes


def describe_chunks(sizes: list[int]) -> str:
    """``n chunks: 1 x8, 23, 250 x3, ...`` (runs of equal sizes collapsed)."""
    runs: list[list[int]] = []
    for size in sizes:
        if runs and runs[-1][0] == size:
            runs[-1][1] += 1
        else:
            runs.append([size, 1])
    text = ", ".join(f"{s}" if n == 1 else f"{s} x{n}" for s, n in runs)
    return f"{len(sizes)} chunks: {text}"


def trivial_part(tmp: Path, args) -> None:
    items = list(range(args.trivial_tasks))
    expected = [trivial(x) for x in items]
    labels = ["default (chunksize=None)"] + [f"chunksize={c}" for c in args.chunksizes]
    sizes: list[Optional[int]] = [None, *args.chunksizes]
    runs: dict[str, list[dict]] = {label: [] for label in labels}
    for repeat in range(args.trivial_repeats):
        order = list(zip(labels, sizes))
        if repeat % 2:
            order.reverse()  # so that no setting always runs right after the same other one
        for label, size in order:
            runs[label].append(pool_run(tmp, trivial, items, expected, size, keep=True))
    medians = {label: statistics.median(r["wall"] for r in rs) for label, rs in runs.items()}
    best = min(labels[1:], key=medians.get)
    default = labels[0]
    ratio = medians[default] / medians[best]
    max_jobs = max(r["jobs"] for r in runs[default])
    rows = []
    for label in labels:
        rs = runs[label]
        goal = ""
        if label == default:
            goal = "wall <= 1.5, jobs <= 20"
        elif label == best:
            goal = "baseline (fastest)"
        rows.append(
            (
                label,
                bench.spread([r["wall"] for r in rs]),
                f"{medians[label] / medians[best]:.2f}",
                bench.spread([r["first worker"] for r in rs]),
                bench.spread([r["wall"] - r["first worker"] for r in rs]),
                bench.spread([r["jobs"] for r in rs], "{:g}"),
                bench.spread([r["sbatch"] for r in rs], "{:g}"),
                bench.spread([r["squeue"] for r in rs], "{:g}"),
                goal,
            )
        )
    bench.print_grid(
        f"real Slurm, {len(items):,} trivial tasks, a fresh slurm.array.Pool() per map, "
        f"{args.trivial_repeats} repeats, interleaved; median (min-max)",
        ("map", "wall s", "ratio", "1st worker s", "then s", "jobs", "sbatch", "squeue", "goal"),
        rows,
    )
    print(
        "1st worker: the pool's creation to its first worker ready (Slurm's job start and the "
        "worker's own start); then: from there to the map's result"
    )
    for i, r in enumerate(runs[default], 1):
        print(f"default, repeat {i}: {describe_chunks(r['chunks'])}")
    then = {
        label: statistics.median(r["wall"] - r["first worker"] for r in rs)
        for label, rs in runs.items()
    }
    print(
        f"default against {best}: {ratio:.2f}x {bench.verdict(ratio, 1.5)}; "
        f"jobs max {max_jobs} {bench.verdict(max_jobs, 20)}; after the first worker: "
        f"{then[default]:.3f} s against {then[best]:.3f} s ({then[default] / then[best]:.2f}x)"
    )
    print()


def sleep_part(tmp: Path, args) -> None:
    items = [args.sleep_s] * args.sleep_tasks
    per_job_s = math.ceil(args.sleep_tasks / SLOTS) * args.sleep_s
    bare: list[float] = []
    pools: list[dict] = []

    def run_once() -> tuple[float, dict]:
        floor = bench.bare_sbatch_files(
            SLOTS, tmp / "floor", args.timeout_s, args.poll_ms / 1000, f"sleep {per_job_s:g}"
        )
        return floor, pool_run(tmp, sleep_for, items, items, None, keep=True)

    def clean() -> None:
        for work_dir in tmp.glob("work-*"):
            bench.cleanup(work_dir)

    for floor, pool in bench.repeat(args.sleep_repeats, run_once, clean):
        bare.append(floor)
        pools.append(pool)
    base = statistics.median(bare)
    ratio = statistics.median(r["wall"] for r in pools) / base
    bench.print_grid(
        f"real Slurm, {args.sleep_tasks} tasks of time.sleep({args.sleep_s:g}) "
        f"({args.sleep_tasks * args.sleep_s:g} s of work, {SLOTS} slots), "
        f"{args.sleep_repeats} repeats, interleaved; median (min-max)",
        ("run", "wall s", "ratio", "jobs", "sbatch", "squeue", "goal"),
        [
            (
                f"[1] sbatch --array=0-{SLOTS - 1} (sleep {per_job_s:g}; touch), "
                f"polled every {args.poll_ms:g} ms",
                bench.spread(bare),
                "1.00",
                str(SLOTS),
                "1",
                "-",
                "baseline",
            ),
            (
                "slurm.array.Pool(), default (chunksize=None)",
                bench.spread([r["wall"] for r in pools]),
                f"{ratio:.2f}",
                bench.spread([r["jobs"] for r in pools], "{:g}"),
                bench.spread([r["sbatch"] for r in pools], "{:g}"),
                bench.spread([r["squeue"] for r in pools], "{:g}"),
                "<= 1.25",
            ),
        ],
    )
    for i, r in enumerate(pools, 1):
        print(f"default, repeat {i}: {describe_chunks(r['chunks'])}")
    print(f"default against the bare jobs: {ratio:.2f}x {bench.verdict(ratio, 1.25)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trivial-tasks", type=int, default=1000)
    parser.add_argument("--chunksizes", type=int, nargs="+", default=[63, 125, 250, 500, 1000])
    parser.add_argument("--sleep-tasks", type=int, default=200)
    parser.add_argument("--sleep-s", type=float, default=0.5)
    parser.add_argument("--trivial-repeats", type=int, default=5)
    parser.add_argument("--sleep-repeats", type=int, default=3)
    parser.add_argument("--poll-ms", type=float, default=50.0)
    parser.add_argument("--timeout-s", type=float, default=300.0)
    parser.add_argument("--only", choices=("trivial", "sleep"))
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="batchpool-bench-") as tmp:
        try:
            if args.only != "sleep":
                trivial_part(Path(tmp), args)
            if args.only != "trivial":
                sleep_part(Path(tmp), args)
        finally:
            for work_dir in Path(tmp).glob("work-*"):
                bench.cleanup(work_dir)


if __name__ == "__main__":
    main()
