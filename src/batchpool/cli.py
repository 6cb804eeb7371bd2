"""The ``batchpool`` command (also ``python -m batchpool``)."""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections.abc import Sequence
from typing import Optional

import batchpool


def demo_task(x: int) -> tuple[int, str]:
    """The demo's task: a little arithmetic, and where it ran."""
    return sum(math.isqrt(i) for i in range(x * 1000)), os.uname().nodename


def demo(args: argparse.Namespace) -> int:
    if args.backend:
        os.environ["BATCHPOOL_BACKEND"] = args.backend
    backend = batchpool.pick_backend()
    print(
        f"batchpool {batchpool.__version__}: a map of {args.tasks} tasks on the {backend!r} backend"
    )
    start = time.monotonic()
    with batchpool.Pool(work_dir=args.work_dir, polling_interval=args.polling_interval) as pool:
        results = pool.map(demo_task, range(args.tasks))
    seconds = time.monotonic() - start
    hosts = sorted({host for _, host in results})
    print(f"results: {[value for value, _ in results]}")
    print(f"{len(results)} results in {seconds:.1f} s, computed on {', '.join(hosts)}")
    return 0


def parser() -> argparse.ArgumentParser:
    main_parser = argparse.ArgumentParser(
        prog="batchpool", description="multiprocessing.Pool's API on Slurm, SGE or this machine."
    )
    main_parser.add_argument("--version", action="version", version=batchpool.__version__)
    commands = main_parser.add_subparsers(dest="command", required=True)
    demo_parser = commands.add_parser("demo", help="run a small map on the picked backend")
    demo_parser.add_argument("--tasks", type=int, default=8, help="number of tasks (8)")
    demo_parser.add_argument(
        "--backend", choices=sorted(batchpool.BACKENDS), help="default: picked as batchpool.Pool()"
    )
    demo_parser.add_argument("--work-dir", default=".batchpool", help="default: ./.batchpool")
    demo_parser.add_argument(
        "--polling-interval", type=float, default=1.0, help="seconds between status queries (1)"
    )
    demo_parser.set_defaults(run=demo)
    return main_parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
