"""Another benchmark script, run on this checkout's ``src`` and on an older revision's.

A refactor should leave every benchmark within noise. This runs one of the scripts
here (its own arguments after ``--``) alternately on two source trees — this
checkout's ``src/`` and a git worktree of ``--base`` (made in a temporary directory,
removed after) — ``--repeats`` times each, interleaved (base, this, base, this...),
each tree with its own copy of the script (it may read the pool's statistics another
way), ``PYTHONPATH`` pointing at the tree (the workers a pool starts inherit it). It
prints each run's output lines that match ``--keep`` (a regular expression; default
every line), then the wall time of the script
itself per tree, median and range, and their ratio. Nothing is asserted.

    python benchmarks/against_revision.py --base 2e561ee local_standing_workers.py -- --maps 20
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPOSITORY = HERE.parent


def run(script: str, arguments: list[str], tree: Path, keep: re.Pattern) -> float:
    """Run ``script`` of ``tree``'s benchmarks with the package from ``tree``; its wall
    time. Prints the lines of its output that ``keep`` matches."""
    benchmarks, source = tree / "benchmarks", tree / "src"
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join((str(source), str(benchmarks)))}
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, str(benchmarks / script), *arguments],
        env=environment,
        capture_output=True,
        text=True,
        timeout=3600,
    )
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{script} failed on {source}:\n{done.stdout}\n{done.stderr}")
    for line in done.stdout.splitlines():
        if keep.search(line):
            print(f"    {line}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="the older revision (git)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--keep", default=".", help="which lines of each run to show")
    parser.add_argument("script", help="a benchmark script of this folder")
    parser.add_argument("arguments", nargs=argparse.REMAINDER, help="after --: its own")
    args = parser.parse_args()
    arguments = args.arguments[1:] if args.arguments[:1] == ["--"] else args.arguments
    keep = re.compile(args.keep)
    with tempfile.TemporaryDirectory(prefix="batchpool-base-") as scratch:
        base_tree = Path(scratch) / "base"
        subprocess.run(
            ["git", "-C", str(REPOSITORY), "worktree", "add", "-q", "--detach",
             str(base_tree), args.base],
            check=True,
        )
        trees = {args.base: base_tree, "this": REPOSITORY}
        walls: dict[str, list[float]] = {name: [] for name in trees}
        try:
            for repeat in range(args.repeats):
                for name, tree in trees.items():
                    print(f"{name}, run {repeat + 1}:")
                    walls[name].append(run(args.script, arguments, tree, keep))
        finally:
            subprocess.run(
                ["git", "-C", str(REPOSITORY), "worktree", "remove", "--force", str(base_tree)],
                check=False,
            )
    print(f"\nwall time of {args.script} {' '.join(arguments)}:")
    for name, times in walls.items():
        print(
            f"  {name:>10}: median {statistics.median(times):.1f} s "
            f"(range {min(times):.1f}-{max(times):.1f})"
        )
    ratio = statistics.median(walls["this"]) / statistics.median(walls[args.base])
    print(f"  this / {args.base}: {ratio:.2f}")


if __name__ == "__main__":
    main()
