"""Scheduler commands per map, on the dummy Slurm of ``batchpool.testing`` or the real one.

For each number of chunks (``--chunks``, default 10 and 1,000; chunksize=1,
trivial tasks) and each ``--polling-intervals`` (default 0.5 and 2 s), one map
runs through ``batchpool.slurm.array.Pool`` (and ``batchpool.slurm.Pool`` with
``--per-chunk``), and the invocations of ``sbatch``, ``squeue``, ``scancel``
and ``scontrol`` are counted: on a fresh dummy cluster from its call log, or
with ``--real`` on the Slurm of this machine, through wrapper scripts that log
each call and ``exec`` the real command.

The dummy queue only moves when one of its programs runs; so that job starts
do not depend on the pool's own ``squeue`` calls, a thread of this script
advances the dummy queue every ``--pump-s`` seconds, as slurmctld would, without
being logged as a call. Status queries should follow ``wall / polling_interval``
(the last column), not the number of chunks.

The jobs really run (``--slots`` at once on the dummy, default 16) on this
machine, so 10,000 chunks take minutes of CPU: ``--chunks 10 1000 10000`` if
you have them.

    python benchmarks/scheduler_load.py [--real] [--chunks 10 1000] [--polling-intervals 0.5 2]
"""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import batchpool.slurm
import batchpool.slurm.array
from batchpool.testing import DummyConfig, install_dummies
from batchpool.testing.__main__ import PREPARERS
from batchpool.testing.queue import advance, load_config, locked_state

PROGRAMS = ("sbatch", "squeue", "scancel", "scontrol")


def trivial(x: int) -> int:
    return x


def pump(cluster, stop: threading.Event, period_s: float) -> None:
    """Advance the dummy queue like a scheduler daemon would (not a logged call)."""
    paths = cluster.paths
    while not stop.wait(period_s):
        config = load_config(paths)
        with locked_state(paths) as state:
            advance(state, config, paths, PREPARERS)


class DummySlurm:
    """A fresh dummy cluster whose queue a thread advances; counts from its call log."""

    def __init__(self, directory: Path, args: argparse.Namespace) -> None:
        self.cluster = install_dummies(
            directory,
            config=DummyConfig(slots=args.slots, min_job_age_s=60.0, max_array_size=1001),
        )
        self.stop = threading.Event()
        self.pumper = threading.Thread(
            target=pump, args=(self.cluster, self.stop, args.pump_s), daemon=True
        )
        self.pumper.start()
        self.paths = {f"{p}_path": getattr(self.cluster, f"{p}_path") for p in PROGRAMS}

    def counts(self) -> collections.Counter:
        return collections.Counter(c["program"] for c in self.cluster.calls())

    def close(self) -> None:
        self.stop.set()
        self.pumper.join()
        self.cluster.kill_all()


class RealSlurm:
    """This machine's Slurm, behind wrappers that log every call to ``calls.log``."""

    def __init__(self, directory: Path, args: argparse.Namespace) -> None:
        directory.mkdir()
        self.log = directory / "calls.log"
        self.paths = {}
        for program in PROGRAMS:
            real = shutil.which(program)
            if real is None:
                raise SystemExit(f"--real: {program} is not on PATH; start Slurm first")
            wrapper = directory / program
            wrapper.write_text(f'#!/bin/sh\necho {program} >> {self.log}\nexec {real} "$@"\n')
            wrapper.chmod(0o755)
            self.paths[f"{program}_path"] = str(wrapper)

    def counts(self) -> collections.Counter:
        lines = self.log.read_text().split() if self.log.exists() else []
        return collections.Counter(lines)

    def close(self) -> None:
        pass  # a map that ends, also by an error, deletes its own jobs


def one_map(
    tmp: Path, kind: str, num_chunks: int, polling_interval: float, args: argparse.Namespace
) -> dict:
    cluster = (RealSlurm if args.real else DummySlurm)(tmp / "cluster", args)
    paths = dict(cluster.paths)
    options = dict(work_dir=tmp / "work", polling_interval=polling_interval)
    try:
        if kind == "slurm.array":
            pool = batchpool.slurm.array.Pool(**options, **paths)
        else:
            paths.pop("scontrol_path")
            pool = batchpool.slurm.Pool(**options, **paths)
        start = time.perf_counter()
        with pool:
            results = pool.map(trivial, range(num_chunks), chunksize=1)
        wall = time.perf_counter() - start
        assert results == list(range(num_chunks))
    finally:
        cluster.close()
    counts = cluster.counts()
    return {"wall": wall, **{p: counts.get(p, 0) for p in PROGRAMS}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, nargs="+", default=[10, 1000])
    parser.add_argument("--polling-intervals", type=float, nargs="+", default=[0.5, 2.0])
    parser.add_argument("--per-chunk", action="store_true", help="also batchpool.slurm.Pool")
    parser.add_argument("--real", action="store_true", help="this machine's Slurm, not the dummy")
    parser.add_argument("--slots", type=int, default=16)
    parser.add_argument("--pump-s", type=float, default=0.05)
    args = parser.parse_args()

    kinds = ["slurm.array"] + (["slurm"] if args.per_chunk else [])
    header = ("pool", "chunks", "poll s", "wall s", *PROGRAMS, "wall/poll")
    widths = (12, 7, 7, 8, 7, 7, 8, 9, 10)
    if args.real:
        version = subprocess.run(["sinfo", "--version"], capture_output=True, text=True).stdout
        print(f"real {version.strip()}, this machine")
    else:
        print(f"dummy Slurm, {args.slots} slots, queue advanced every {args.pump_s} s")
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)), flush=True)
    print("  ".join("-" * w for w in widths), flush=True)
    for kind in kinds:
        for num_chunks in args.chunks:
            for polling_interval in args.polling_intervals:
                with tempfile.TemporaryDirectory(prefix="batchpool-bench-") as tmp:
                    row = one_map(Path(tmp), kind, num_chunks, polling_interval, args)
                cells = (
                    kind,
                    str(num_chunks),
                    f"{polling_interval:g}",
                    f"{row['wall']:.1f}",
                    *(str(row[p]) for p in PROGRAMS),
                    f"{row['wall'] / polling_interval:.1f}",
                )
                print("  ".join(c.ljust(w) for c, w in zip(cells, widths)), flush=True)


if __name__ == "__main__":
    main()
