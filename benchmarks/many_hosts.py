"""Many hosts and a caching filesystem: Slurm's simulated nodes, ``nfs`` against ``coherent``.

Needs the cluster simulator (``bash ci/slurm/start.sh && bash ci/cluster-sim/start.sh``,
see ci/README.md, "Cluster simulator"): partition ``sim`` of the real Slurm, nodes
``sim1..3`` (4 CPUs each: 12 job slots), each in its own namespaces and seeing the
shared directories through its own caching view. Every pool is a
``batchpool.slurm.array.Pool(work_dir=DIR, partition="sim")`` (other options default),
``DIR`` a fresh directory under ``/var/tmp/batchpool-sim/shared/<profile>/``
(``tests/helpers/cluster_sim.work_dir``), which this driver sees through its own view:

- ``nfs``: 30 s entry, negative-entry and attribute caches (Linux NFS's ``acdirmin``);
- ``coherent``: no caching (Lustre/GPFS-like): the baseline of every ratio.

The same run, as a reference with no simulated node, uses partition ``local`` (this
host's slurmd, 16 slots) with a plain work_dir under ``/var/tmp``.

Three parts, the settings interleaved within each repeat (the order reversed every
other repeat), ``--repeats`` times (default 3); median and range (min-max):

- ``maps``: one pool, ``--maps`` + 1 (default 21) maps of ``--tasks`` (default 8)
  trivial tasks one after the other. The first ``--maps`` maps, from the pool's
  creation to the last one's result, are the "20 x 8" figure (total wall time, and the
  jobs submitted for them: the ``submitted`` rows of the pool's ``jobs.jsonl`` journal,
  their ``jobs`` lists, read after map 20); maps 2..21 are the warm maps (after the
  warm-up map 1), each timed: median of the 20 in ms. Settings: sim ``coherent``,
  sim ``nfs``, and ``local`` (reference). Goals: warm map on ``nfs`` <= 100 ms;
  20 x 8 nfs / coherent <= 2x; jobs nfs / coherent <= 2x.
- ``trivial``: ``--trivial-tasks`` (default 1,000) trivial tasks, ``chunksize``
  default, on a fresh pool: wall time from the pool's creation to the result.
  Goal: nfs / coherent <= 1.25x.
- ``sleep``: ``--sleep-tasks`` (default 200) tasks of ``time.sleep(--sleep-s)``
  (0.5), the same way. Goal: nfs / coherent <= 1.25x.

The pool's exit (deleting its jobs, removing its directory) is not in the wall times.
Nothing is asserted.

    python benchmarks/many_hosts.py [--repeats 3] [--only maps trivial sleep] [--no-local]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _slurm_bench as bench
from _tasks import sleep_for, trivial

import batchpool.slurm.array
from batchpool import _layout

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from helpers import cluster_sim  # noqa: E402  (tests/helpers/cluster_sim.py: the simulator's paths)

HERE = Path(__file__).resolve().parent
SIM = "sim"
LOCAL = "local"


class Setting:
    """Where a pool runs: a Slurm partition and where its work_dirs are made."""

    def __init__(self, label: str, partition: str, profile: str | None) -> None:
        self.label = label
        self.partition = partition
        self.profile = profile
        self.dirs: list[Path] = []

    def new_work_dir(self) -> Path:
        if self.profile is None:
            path = Path(tempfile.mkdtemp(prefix="batchpool-bench-hosts-", dir="/var/tmp"))
        else:
            path = cluster_sim.work_dir(self.profile, prefix="bench-hosts-")
        self.dirs.append(path)
        return path

    def pool(self, work_dir: Path) -> batchpool.slurm.array.Pool:
        return batchpool.slurm.array.Pool(work_dir=work_dir, partition=self.partition)

    def cleanup(self) -> None:
        for path in self.dirs:
            bench.cleanup(path)
            shutil.rmtree(path, ignore_errors=True)


def dirty() -> bool:
    """Whether ``src/`` has uncommitted changes."""
    status = subprocess.run(
        ["git", "status", "--porcelain", "--", "src"], capture_output=True, text=True, cwd=HERE
    )
    return bool(status.stdout.strip())


def jobs_submitted(pool) -> tuple[int, int]:
    """(jobs, submissions) so far, by the pool's own count."""
    own = pool.statistics()
    return own.num_jobs_submitted, own.num_submissions


def worker_hosts(pool) -> list[str]:
    """The hosts of the pool's workers that said they were ready (their mailboxes'
    ``READY`` records, read here from the files)."""
    pool_dir = pool.statistics().pool_dir
    hosts = set()
    if pool_dir is not None:
        for mailbox in (pool_dir / _layout.WORKERS_DIR).iterdir():
            records, _ = _layout.decode_records(mailbox.read_bytes())
            for kind, _, _, payload in records:
                claim = _layout.Claim.decode(payload) if kind == _layout.READY else None
                if claim is not None:
                    hosts.add(claim.host)
    return sorted(hosts)


def maps_run(setting: Setting, num_maps: int, items: list) -> dict:
    """``num_maps + 1`` maps on one fresh pool."""
    expected = [trivial(x) for x in items]
    work_dir = setting.new_work_dir()
    start = time.perf_counter()
    with setting.pool(work_dir) as pool:
        per_map = []
        for i in range(num_maps + 1):
            t = time.perf_counter()
            results = pool.map(trivial, items)
            per_map.append(time.perf_counter() - t)
            assert results == expected
            if i == num_maps - 1:
                total = time.perf_counter() - start
                jobs, submissions = jobs_submitted(pool)
        hosts = worker_hosts(pool)
        t = time.perf_counter()
    exit_s = time.perf_counter() - t
    return {
        "hosts": hosts,
        "total": total,
        "first": per_map[0],
        "warm": per_map[1:],
        "jobs": jobs,
        "submissions": submissions,
        "exit": exit_s,
    }


def one_map_run(setting: Setting, func, items: list, expected: list) -> dict:
    """One map on a fresh pool, ``chunksize`` default: wall time from the pool's creation."""
    work_dir = setting.new_work_dir()
    start = time.perf_counter()
    with setting.pool(work_dir) as pool:
        results = pool.map(func, items)
        wall = time.perf_counter() - start
        jobs, submissions = jobs_submitted(pool)
        hosts = worker_hosts(pool)
        t = time.perf_counter()
    exit_s = time.perf_counter() - t
    assert results == expected
    return {"hosts": hosts, "wall": wall, "jobs": jobs, "submissions": submissions, "exit": exit_s}


def interleaved(settings: list[Setting], repeats: int, run) -> dict[str, list[dict]]:
    runs: dict[str, list[dict]] = {s.label: [] for s in settings}
    for repeat in range(repeats):
        order = list(settings) if repeat % 2 == 0 else list(reversed(settings))
        for setting in order:
            runs[setting.label].append(run(setting))
            print(f"  ({setting.label}, repeat {repeat + 1} done)", file=sys.stderr, flush=True)
    return runs


def hosts_text(runs: list[dict]) -> str:
    """The workers' hosts over all runs, each with the number of runs it was in."""
    counts: dict[str, int] = {}
    for r in runs:
        for host in r["hosts"]:
            counts[host] = counts.get(host, 0) + 1
    return " ".join(
        f"{h}" + (f"({n})" if n != len(runs) else "") for h, n in sorted(counts.items())
    )


def ratio_text(value: float, base: float) -> str:
    return f"{value / base:.2f}" if base else "-"


def maps_part(settings: list[Setting], args) -> list[tuple[str, float, float]]:
    items = list(range(args.tasks))
    runs = interleaved(settings, args.repeats, lambda s: maps_run(s, args.maps, items))
    coherent, nfs = settings[0].label, settings[1].label
    goals: list[tuple[str, float, float]] = []

    warm = {label: [t * 1000 for r in rs for t in r["warm"]] for label, rs in runs.items()}
    base = statistics.median(warm[coherent])
    rows = []
    for setting in settings:
        values = warm[setting.label]
        median = statistics.median(values)
        is_nfs = setting.label == nfs
        rows.append(
            (
                setting.label,
                str(len(values)),
                bench.spread(values, "{:.1f}"),
                bench.spread(
                    [statistics.median(r["warm"]) * 1000 for r in runs[setting.label]], "{:.1f}"
                ),
                ratio_text(median, base),
                "<= 100 ms"
                if is_nfs
                else ("baseline" if setting.label == coherent else "reference"),
                bench.verdict(median, 100.0) if is_nfs else "",
            )
        )
        if is_nfs:
            goals.append(("warm map of 8 on nfs, ms (median)", median, 100.0))
    bench.print_grid(
        f"one warm map of {args.tasks} trivial tasks (maps 2-{args.maps + 1} of a pool, after "
        f"the warm-up map 1), {args.repeats} repeats, interleaved; ms, median (min-max) of all "
        "warm maps, and of the repeats' medians",
        ("setting", "n", "ms", "per repeat median ms", "ratio", "goal", "met?"),
        rows,
    )
    print()

    base_total = statistics.median(r["total"] for r in runs[coherent])
    base_jobs = statistics.median(r["jobs"] for r in runs[coherent])
    rows = []
    for setting in settings:
        rs = runs[setting.label]
        total = statistics.median(r["total"] for r in rs)
        jobs = statistics.median(r["jobs"] for r in rs)
        is_nfs = setting.label == nfs
        rows.append(
            (
                setting.label,
                bench.spread([r["total"] for r in rs]),
                ratio_text(total, base_total),
                bench.spread([r["first"] for r in rs]),
                bench.spread([r["jobs"] for r in rs], "{:g}"),
                ratio_text(jobs, base_jobs),
                bench.spread([r["submissions"] for r in rs], "{:g}"),
                bench.spread([r["exit"] for r in rs]),
                hosts_text(rs),
                "total <= 2x, jobs <= 2x"
                if is_nfs
                else ("baseline" if setting.label == coherent else "reference"),
                (
                    f"{bench.verdict(total / base_total, 2.0)}, "
                    f"{bench.verdict(jobs / base_jobs, 2.0) if base_jobs else '-'}"
                )
                if is_nfs
                else "",
            )
        )
        if is_nfs:
            goals.append(
                (f"{args.maps} x {args.tasks}: nfs / coherent total", total / base_total, 2.0)
            )
            if base_jobs:
                goals.append(
                    (f"{args.maps} x {args.tasks}: jobs nfs / coherent", jobs / base_jobs, 2.0)
                )
    bench.print_grid(
        f"{args.maps} maps x {args.tasks} trivial tasks on one pool (creation to map "
        f"{args.maps}'s result), {args.repeats} repeats, interleaved; median (min-max)",
        (
            "setting",
            "total s",
            "ratio",
            "map 1 s",
            "jobs",
            "ratio",
            "sbatch",
            "exit s",
            "worker hosts",
            "goal",
            "met?",
        ),
        rows,
    )
    print(
        "(worker hosts: from the READY records of the mailboxes, with the number of repeats "
        "a host was in if not all)"
    )
    print(
        "(jobs, sbatch: the 'submitted' rows of the pool's jobs.jsonl after map "
        f"{args.maps}; exit: the pool's exit after map {args.maps + 1}, not in the total)"
    )
    print()
    return goals


def one_map_part(
    settings: list[Setting], args, title: str, func, items: list, expected: list, goal_name: str
) -> list[tuple[str, float, float]]:
    """``expected``: the results, given (computing them here would run the tasks)."""
    runs = interleaved(settings, args.repeats, lambda s: one_map_run(s, func, items, expected))
    coherent, nfs = settings[0].label, settings[1].label
    base = statistics.median(r["wall"] for r in runs[coherent])
    rows = []
    goals = []
    for setting in settings:
        rs = runs[setting.label]
        wall = statistics.median(r["wall"] for r in rs)
        is_nfs = setting.label == nfs
        rows.append(
            (
                setting.label,
                bench.spread([r["wall"] for r in rs]),
                ratio_text(wall, base),
                bench.spread([r["jobs"] for r in rs], "{:g}"),
                bench.spread([r["submissions"] for r in rs], "{:g}"),
                bench.spread([r["exit"] for r in rs]),
                hosts_text(rs),
                "<= 1.25x"
                if is_nfs
                else ("baseline" if setting.label == coherent else "reference"),
                bench.verdict(wall / base, 1.25) if is_nfs else "",
            )
        )
        if is_nfs:
            goals.append((goal_name, wall / base, 1.25))
    bench.print_grid(
        f"{title}, a fresh pool per map (creation to result), {args.repeats} repeats, "
        "interleaved; median (min-max)",
        ("setting", "wall s", "ratio", "jobs", "sbatch", "exit s", "worker hosts", "goal", "met?"),
        rows,
    )
    print()
    return goals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--maps", type=int, default=20)
    parser.add_argument("--tasks", type=int, default=8)
    parser.add_argument("--trivial-tasks", type=int, default=1000)
    parser.add_argument("--sleep-tasks", type=int, default=200)
    parser.add_argument("--sleep-s", type=float, default=0.5)
    parser.add_argument("--profile", default="nfs", help="the caching profile (default nfs)")
    parser.add_argument(
        "--only",
        nargs="+",
        choices=("maps", "trivial", "sleep"),
        default=("maps", "trivial", "sleep"),
    )
    parser.add_argument(
        "--no-local",
        action="store_true",
        help="leave out the reference on partition local (warm maps only)",
    )
    args = parser.parse_args()

    reason = cluster_sim.slurm_unavailable_reason()
    if reason:
        raise SystemExit(reason)
    coherent = Setting("sim, coherent", SIM, "coherent")
    nfs = Setting(f"sim, {args.profile}", SIM, args.profile)
    local = Setting("local partition, /var/tmp (no sim node)", LOCAL, None)
    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=HERE
    ).stdout.strip()
    print(
        f"real Slurm, partition {SIM!r}: nodes {' '.join(cluster_sim.slurm_nodes())}; "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; git {head} "
        f"(+ uncommitted changes: {'yes' if dirty() else 'no'}); batchpool from "
        f"{Path(batchpool.__file__).parent}"
    )
    print()
    goals: list[tuple[str, float, float]] = []
    try:
        if "maps" in args.only:
            settings = [coherent, nfs] + ([] if args.no_local else [local])
            goals += maps_part(settings, args)
        if "trivial" in args.only:
            goals += one_map_part(
                [coherent, nfs],
                args,
                f"{args.trivial_tasks:,} trivial tasks, chunksize default",
                trivial,
                list(range(args.trivial_tasks)),
                [trivial(x) for x in range(args.trivial_tasks)],
                f"{args.trivial_tasks:,} trivial: nfs / coherent wall",
            )
        if "sleep" in args.only:
            goals += one_map_part(
                [coherent, nfs],
                args,
                f"{args.sleep_tasks} x time.sleep({args.sleep_s:g}), chunksize default",
                sleep_for,
                [args.sleep_s] * args.sleep_tasks,
                [args.sleep_s] * args.sleep_tasks,  # sleep_for returns its seconds
                f"{args.sleep_tasks} x sleep({args.sleep_s:g}): nfs / coherent wall",
            )
    finally:
        for setting in (coherent, nfs, local):
            setting.cleanup()
    print("goals")
    for name, value, limit in goals:
        print(f"  {name}: {value:.2f} (<= {limit:g}) {bench.verdict(value, limit)}")


if __name__ == "__main__":
    main()
