"""Many one-task chunks on batchpool.local.Pool(2): wall time, files in the work_dir, metadata ops.

``pool.map(trivial, range(N), chunksize=1)`` (``N`` = ``--chunks``, default 20,000;
``trivial`` from ``_tasks.py``, pickled by reference) on ``batchpool.local.Pool(2)`` with
a work_dir on local disk (a fresh directory under ``--tmp``, default ``/var/tmp``: no
caching, coherent), against ``multiprocessing.Pool(2)`` with ``chunksize=1`` in the same
run. Three measurements:

- wall time: the two pools interleaved, ``--repeats`` times (default 3), each map on
  a fresh pool (creation to result; the pool's exit apart); median (min-max);
- peak files: one more batchpool map, while a thread walks the work_dir every 0.1 s and
  counts its files and directories (the work_dir itself not counted); its wall time
  is shown too (the walks cost CPU);
- metadata operations: one more batchpool map (``--strace-chunks``, default the same
  ``N``) in a child process run under ``strace -f -ff --seccomp-bpf -y -e
  trace=openat,creat,rename,renameat,renameat2,unlink,unlinkat,mkdir,mkdirat,rmdir``
  (the pool's creation and exit included, a constant few); counted: ``openat``/``creat``
  with ``O_CREAT`` of a path under the work_dir (creates), renames, unlinks, ``mkdir``,
  ``rmdir`` (and ``unlinkat`` with ``AT_REMOVEDIR``) under it, failed calls included
  (an ``O_EXCL`` create that finds the file still asks the server); each kind divided
  by the number of chunks.

Goals: wall <= 10 s; peak files <= 2,000; operations per chunk at most half of the code
before the change (run the same script with that code first: ``git worktree add
/tmp/bp-old 1119315`` and ``PYTHONPATH=/tmp/bp-old/src``; the header says which
batchpool was imported). Nothing is asserted.

    python benchmarks/many_chunks.py [--chunks 20000] [--repeats 3] [--no-strace]
"""

from __future__ import annotations

import argparse
import collections
import multiprocessing
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import _slurm_bench as bench
from _tasks import trivial

import batchpool
import batchpool.local

HERE = Path(__file__).resolve().parent
SYSCALLS = "openat,creat,rename,renameat,renameat2,unlink,unlinkat,mkdir,mkdirat,rmdir"
KINDS = ("create", "rename", "unlink", "mkdir", "rmdir")


class Watcher(threading.Thread):
    """Walks ``root`` every ``interval_s`` and keeps the largest count of files and
    directories under it."""

    def __init__(self, root: Path, interval_s: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.root = root
        self.interval_s = interval_s
        self.peak = 0
        self.walks = 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            count = 0
            for _, dirs, files in os.walk(self.root):
                count += len(dirs) + len(files)
            self.peak = max(self.peak, count)
            self.walks += 1
            self.done.wait(self.interval_s)

    def stop(self) -> int:
        self.done.set()
        self.join()
        return self.peak


def batchpool_map(work_dir: Path, num_chunks: int, watch: bool = False) -> dict:
    """One map of one-task chunks on a fresh ``batchpool.local.Pool(2)``."""
    items = list(range(num_chunks))
    watcher = Watcher(work_dir) if watch else None
    start = time.perf_counter()
    with batchpool.local.Pool(2, work_dir=work_dir) as pool:
        if watcher is not None:
            watcher.start()
        results = pool.map(trivial, items, chunksize=1)
        wall = time.perf_counter() - start
        t = time.perf_counter()
    exit_s = time.perf_counter() - t
    peak = watcher.stop() if watcher is not None else None
    assert results == [trivial(x) for x in items]
    return {"wall": wall, "exit": exit_s, "peak": peak, "walks": watcher.walks if watch else 0}


def multiprocessing_map(num_chunks: int) -> dict:
    items = list(range(num_chunks))
    start = time.perf_counter()
    with multiprocessing.Pool(2) as pool:
        results = pool.map(trivial, items, chunksize=1)
        wall = time.perf_counter() - start
    assert results == [trivial(x) for x in items]
    return {"wall": wall}


_LINE = re.compile(r"^(?P<call>\w+)\((?P<args>.*)\)\s+=\s+(?P<ret>-?\d+|\?)")
_PATH = re.compile(r'(?:(?P<fd>(?:AT_FDCWD|-?\d+)(?:<(?P<fdpath>[^>]*)>)?),\s*)?"(?P<path>[^"]*)"')


def _paths(call: str, args: str) -> list[str]:
    """The absolute paths a traced call names (dirfd-relative names joined to the
    directory strace printed with ``-y``; names relative to the cwd left relative)."""
    out = []
    if call in ("openat", "unlinkat", "mkdirat", "renameat", "renameat2"):
        for m in _PATH.finditer(args):
            path = m.group("path")
            if not path.startswith("/") and m.group("fdpath"):
                path = os.path.join(m.group("fdpath"), path)
            out.append(path)
    else:
        out = re.findall(r'"([^"]*)"', args)
    return out


def count_ops(prefix: Path, work_dir: Path) -> tuple[collections.Counter, int, int]:
    """Operations under ``work_dir`` in the strace files ``prefix.PID``: (counts by kind,
    failed calls among them, calls with a relative path that could not be placed).
    The counts also have the creates split by flags (``create: O_EXCL``...) and
    ``new files``: the distinct paths opened with ``O_CREAT`` successfully (the work_dir
    starts empty, so each is a file created once)."""
    root = str(work_dir).rstrip("/") + "/"
    counts: collections.Counter = collections.Counter()
    created: set[str] = set()
    failed = unplaced = 0
    for trace in prefix.parent.glob(prefix.name + ".*"):
        for line in trace.read_text(errors="replace").splitlines():
            m = _LINE.match(line)
            if m is None:
                continue
            call, args = m.group("call"), m.group("args")
            paths = _paths(call, args)
            if not paths:
                continue
            if not paths[0].startswith("/"):
                unplaced += 1
                continue
            if not any((p + "/").startswith(root) or p.startswith(root) for p in paths):
                continue
            if call in ("openat", "creat"):
                if call == "openat" and "O_CREAT" not in args:
                    continue
                kind = "create"
                ok = m.group("ret") != "-1"
                if "O_EXCL" in args:
                    counts["create: O_EXCL" + ("" if ok else ", failed")] += 1
                elif "O_APPEND" in args:
                    counts["create: O_APPEND (no O_EXCL)"] += 1
                elif "O_TRUNC" in args:
                    counts["create: O_TRUNC"] += 1
                else:
                    counts["create: other"] += 1
                if ok:
                    created.add(paths[0])
            elif call.startswith("rename"):
                kind = "rename"
            elif call in ("mkdir", "mkdirat"):
                kind = "mkdir"
            elif call == "rmdir" or (call == "unlinkat" and "AT_REMOVEDIR" in args):
                kind = "rmdir"
            else:
                kind = "unlink"
            counts[kind] += 1
            if m.group("ret") == "-1":
                failed += 1
    counts["new files"] = len(created)
    return counts, failed, unplaced


def strace_run(tmp: Path, num_chunks: int) -> tuple[collections.Counter, int, int, float]:
    """One batchpool map in a child process under strace; its counts and wall time (the
    child's own, strace's slowdown included)."""
    if shutil.which("strace") is None:
        raise SystemExit("strace is missing: apt-get install -y strace (or --no-strace)")
    work_dir = Path(tempfile.mkdtemp(prefix="work-strace-", dir=tmp))
    traces = Path(tempfile.mkdtemp(prefix="strace-", dir=tmp))
    prefix = traces / "trace"
    argv = [
        "strace",
        "-f",
        "-ff",
        "--seccomp-bpf",
        "-y",
        "-s",
        "4096",
        "-e",
        f"trace={SYSCALLS}",
        "-o",
        str(prefix),
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        str(work_dir),
        "--chunks",
        str(num_chunks),
    ]
    out = subprocess.run(argv, check=True, capture_output=True, text=True, timeout=3600)
    wall = float(out.stdout.strip().splitlines()[-1])
    counts, failed, unplaced = count_ops(prefix, work_dir)
    shutil.rmtree(traces, ignore_errors=True)
    return counts, failed, unplaced, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3, help="0: no timed runs")
    parser.add_argument("--strace-chunks", type=int, default=None, help="default: --chunks")
    parser.add_argument("--no-strace", action="store_true")
    parser.add_argument("--no-watch", action="store_true", help="leave out the peak-files run")
    parser.add_argument("--tmp", default="/var/tmp", help="where the work_dirs are made")
    parser.add_argument("--child", metavar="WORK_DIR", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:  # the map traced by strace_run: print its wall time
        print(batchpool_map(Path(args.child), args.chunks)["wall"])
        return

    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        cwd=Path(batchpool.__file__).parent,
    ).stdout.strip()
    print(
        f"batchpool from {Path(batchpool.__file__).parent} (git {head}); "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {os.cpu_count()} CPUs"
    )
    n = args.chunks
    runs: dict[str, list[dict]] = {"mp": [], "bp": []}
    watched = None
    strace = None
    with tempfile.TemporaryDirectory(prefix="batchpool-bench-chunks-", dir=args.tmp) as tmp_s:
        tmp = Path(tmp_s)
        for repeat in range(args.repeats):
            order = ("mp", "bp") if repeat % 2 == 0 else ("bp", "mp")
            for kind in order:
                if kind == "mp":
                    runs[kind].append(multiprocessing_map(n))
                else:
                    work_dir = Path(tempfile.mkdtemp(prefix="work-", dir=tmp))
                    runs[kind].append(batchpool_map(work_dir, n))
                print(
                    f"  ({kind}, repeat {repeat + 1}: {runs[kind][-1]['wall']:.2f} s)",
                    file=sys.stderr,
                    flush=True,
                )
        if not args.no_watch:
            watched = batchpool_map(Path(tempfile.mkdtemp(prefix="work-w-", dir=tmp)), n, True)
            print(f"  (watched: {watched})", file=sys.stderr, flush=True)
        if not args.no_strace:
            strace = strace_run(tmp, args.strace_chunks or n)

    if args.repeats:
        base = statistics.median(r["wall"] for r in runs["mp"])
        wall = statistics.median(r["wall"] for r in runs["bp"])
        rows = [
            (
                "[1] multiprocessing.Pool(2), chunksize=1",
                bench.spread([r["wall"] for r in runs["mp"]]),
                "1.00",
                "-",
                "baseline",
                "",
            ),
            (
                "batchpool.local.Pool(2), chunksize=1",
                bench.spread([r["wall"] for r in runs["bp"]]),
                f"{wall / base:.1f}",
                bench.spread([r["exit"] for r in runs["bp"]]),
                "<= 10 s",
                bench.verdict(wall, 10.0),
            ),
        ]
        bench.print_grid(
            f"{n:,} one-task chunks (map(trivial, range({n}), chunksize=1)), a fresh pool per "
            f"map, {args.repeats} repeats, interleaved; median (min-max)",
            ("pool", "wall s", "ratio", "exit s", "goal", "met?"),
            rows,
        )
    if watched is not None:
        print(
            f"peak files + directories in the work_dir (walked every 0.1 s, {watched['walks']} "
            f"walks, 1 run): {watched['peak']:,} (goal <= 2,000: "
            f"{bench.verdict(watched['peak'], 2000)}); that run's wall {watched['wall']:.2f} s"
        )
    if strace is not None:
        counts, failed, unplaced, traced_wall = strace
        chunks = args.strace_chunks or n
        total = sum(counts[k] for k in KINDS)
        appends = counts["create: O_APPEND (no O_EXCL)"]
        print(
            f"metadata operations under the work_dir, 1 run of {chunks:,} chunks under strace "
            f"(wall {traced_wall:.1f} s traced), pool creation and exit included:"
        )
        bench.print_grid(
            "",
            ("kind", "calls", "per chunk"),
            [(k, f"{counts[k]:,}", f"{counts[k] / chunks:.2f}") for k in KINDS]
            + [("total", f"{total:,}", f"{total / chunks:.2f}")]
            + [
                (
                    "total without O_APPEND opens",
                    f"{total - appends:,}",
                    f"{(total - appends) / chunks:.2f}",
                )
            ]
            + [
                (f"  {k}", f"{counts[k]:,}", f"{counts[k] / chunks:.2f}")
                for k in sorted(counts)
                if k.startswith("create: ") or k == "new files"
            ],
        )
        print(
            f"(failed calls among them: {failed:,}; calls with a cwd-relative path, not "
            f"counted: {unplaced:,}); goal: total per chunk <= half of the old code's. "
            "O_APPEND opens: appends to a log or mailbox that exists (the first creates it)"
        )


if __name__ == "__main__":
    main()
