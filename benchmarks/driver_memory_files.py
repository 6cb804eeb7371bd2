"""The driver's peak memory, and the files of a session directory.

**Memory.** Each row runs in a fresh Python process that imports its pool,
notes its resident memory (RSS), runs one map of ``--tasks`` tasks (default
20,000) that each return ``--result-bytes`` bytes (default 10,000), and reports
the growth of its peak RSS (``ru_maxrss``) over the RSS before the map. The
baseline row builds the same list of results without any pool: its growth is
the size of the returned list. Goal: batchpool's growth <= 2x the size of the
returned list (plus a constant).

**Files.** A map of ``--file-tasks`` tasks (default 10,000) in
``--file-chunks`` chunks (default 1,000) through ``batchpool.local.Pool`` with
``keep_work_dir=True``, while a thread counts the files under the session
directory every few milliseconds: the peak, and the final number once the map
returned. The same with 10x fewer and 10x more tasks in the same chunks shows
what the count depends on. Goal: final <= a few dozen, independent of the
number of tasks.

    python benchmarks/driver_memory_files.py [--tasks 20000] [--file-tasks 10000]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from _tasks import result_of_size

import batchpool.local

MIB = 1024 * 1024


def rss_bytes() -> int:
    """Current resident memory of this process."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def list_bytes(values: list) -> int:
    """The list and every object in it (the results are flat ``bytes``)."""
    return sys.getsizeof(values) + sum(sys.getsizeof(v) for v in values)


def measure_memory(pool_name: str, num_tasks: int, size: int, work_dir: str) -> dict:
    """In this process: run one map on ``pool_name`` and return its memory figures."""
    items = [size] * num_tasks
    before = rss_bytes()
    if pool_name == "list":
        values = [result_of_size(item) for item in items]
    elif pool_name == "multiprocessing":
        with multiprocessing.Pool(2) as pool:
            values = pool.map(result_of_size, items)
    else:
        chunksize = None if pool_name == "batchpool.local" else int(pool_name.split("=")[1])
        with batchpool.local.Pool(2, work_dir=work_dir) as pool:
            values = pool.map(result_of_size, items, chunksize)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    if len(values) != num_tasks or any(len(v) != size for v in values):
        raise RuntimeError(f"{pool_name}: wrong results")
    return {"before": before, "growth": peak - before, "list": list_bytes(values)}


def count_files(directory: Path) -> int:
    return sum(len(files) for _, _, files in os.walk(directory))


def measure_files(num_tasks: int, num_chunks: int, work_dir: Path) -> tuple[int, int, int]:
    """(peak, final, samples) of the file count of one map's session directory."""
    work_dir.mkdir()
    peak = samples = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak, samples
        while not done.wait(0.002):
            peak = max(peak, count_files(work_dir))
            samples += 1

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    with batchpool.local.Pool(2, work_dir=work_dir, keep_work_dir=True) as pool:
        results = pool.map(abs, range(num_tasks), chunksize=-(-num_tasks // num_chunks))
    done.set()
    sampler.join()
    if results != list(range(num_tasks)):
        raise RuntimeError("wrong results")
    final = count_files(work_dir)
    return max(peak, final), final, samples


def print_table(header: tuple, widths: tuple, rows: list[tuple]) -> None:
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("--result-bytes", type=int, default=10_000)
    parser.add_argument("--file-tasks", type=int, default=10_000)
    parser.add_argument("--file-chunks", type=int, default=1_000)
    parser.add_argument("--child", help=argparse.SUPPRESS)  # one memory row, in a fresh process
    args = parser.parse_args()

    if args.child:
        with tempfile.TemporaryDirectory(prefix="batchpool-bench-") as work_dir:
            figures = measure_memory(args.child, args.tasks, args.result_bytes, work_dir)
        print(json.dumps(figures))
        return

    pools = ("list", "multiprocessing", "batchpool.local", "batchpool.local chunksize=20")
    memory = {}
    for name in pools:
        argv = [sys.executable, __file__, "--child", name, "--tasks", str(args.tasks)]
        argv += ["--result-bytes", str(args.result_bytes)]
        out = subprocess.run(argv, check=True, capture_output=True, text=True, timeout=600)
        memory[name] = json.loads(out.stdout)
    returned = memory["list"]["list"]
    print(
        f"Driver memory: {args.tasks:,} tasks returning {args.result_bytes:,} bytes each, "
        f"2 processes; the returned list is {returned / MIB:.1f} MiB"
    )
    rows = [
        (
            name,
            f"{memory[name]['before'] / MIB:.1f}",
            f"{memory[name]['growth'] / MIB:.1f}",
            f"{memory[name]['growth'] / returned:.2f}",
            "" if name == "list" or name == "multiprocessing" else "<= 2",
        )
        for name in pools
    ]
    header = ("driver", "RSS before MiB", "peak growth MiB", "growth / list", "goal")
    print_table(header, (30, 15, 16, 14, 5), rows)

    print()
    print("Session directory files, batchpool.local.Pool(2), keep_work_dir=True")
    rows = []
    with tempfile.TemporaryDirectory(prefix="batchpool-bench-") as tmp:
        for num_tasks in (args.file_tasks // 10, args.file_tasks, args.file_tasks * 10):
            start = time.perf_counter()
            peak, final, samples = measure_files(
                num_tasks, args.file_chunks, Path(tmp) / str(num_tasks)
            )
            wall = time.perf_counter() - start
            row = (f"{num_tasks:,}", f"{args.file_chunks:,}", peak, final, samples, f"{wall:.1f}")
            rows.append(row)
    header = ("tasks", "chunks", "peak files", "final files", "samples", "wall s")
    print_table(header, (9, 7, 11, 12, 8, 7), rows)


if __name__ == "__main__":
    main()
