"""Start-up cost of ``python -m batchpool.worker`` against a bare interpreter.

Two pools with a session each are prepared, each by a one-task map through
``batchpool.local.Pool`` with ``keep_work_dir=True``; the task writes
``time.time()`` into a stamp file when it starts. In one the task function comes
from an importable module (``_tasks.stamp``, pickled by reference); in the other
it is defined in ``__main__`` (pickled by value, so the worker must import
``cloudpickle`` to rebuild it). Then a worker of each pool is started by hand
``--repeats`` times, each time with the same ticket posted again and
``worker_idle_s=0`` (same interpreter, same environment as the driver, so the
worker does not re-execute itself), measuring

- *to first task*: launch (``time.time()`` just before ``Popen``) until the task
  writes its stamp;
- *to exit*: launch until the worker process has exited (result written).

Baselines measured in the same run: the wall time of ``python -c pass``, the
time from launch to the first statement of ``python -c "<write time.time()>"``,
and ``python -c "import cloudpickle"`` (the floor of a by-value function).
Medians are printed, with ratios against ``python -c pass``. Goal: worker to
first task <= 2x ``python -c pass``. Nothing is asserted.

    python benchmarks/worker_startup.py [--repeats 20]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _tasks import stamp as stamp_by_reference

import batchpool.local
from batchpool._layout import Ticket
from batchpool.session import PoolDirectory

STAMP_CODE = (
    "import time, sys; t = time.time(); f = open(sys.argv[1], 'w'); f.write(repr(t)); f.close()"
)


def stamp(path: str) -> str:
    """The task, defined in ``__main__``: record when it started running."""
    t = time.time()
    with open(path, "w") as f:
        f.write(repr(t))
    return path


def launch(argv: list[str], stamp_path: Path | None) -> tuple[float, float]:
    """(seconds to the stamp, seconds to exit) of one run of ``argv``."""
    if stamp_path is not None and stamp_path.exists():
        stamp_path.unlink()
    start = time.time()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, timeout=60)
    end = time.time()
    first = float(stamp_path.read_text()) - start if stamp_path is not None else float("nan")
    return first, end - start


class PreparedPool:
    """A kept pool and session of a one-task map of ``task``, to start workers on by hand."""

    def __init__(self, work_dir: Path, task, stamp_path: Path) -> None:
        options = dict(work_dir=work_dir, keep_work_dir=True, worker_idle_s=0)
        with batchpool.local.Pool(1, **options) as pool:
            pool.map(task, [str(stamp_path)])
        self.pool = PoolDirectory(next(work_dir.glob("pool_*")))
        (self.session_dir,) = [p for p in work_dir.iterdir() if not p.name.startswith("pool_")]
        (self.pool.dir / "stop").unlink()
        self.pool.heartbeat(0)  # this process is its driver now: the worker must not stop
        self.ticket = Ticket.decode(0, (self.pool.dir / "tickets" / "0").read_bytes())
        self.result = self.session_dir / "results" / f"{self.ticket.chunk}.pkl"
        self.num_posted = 1

    def argv(self, python: str) -> list[str]:
        return [python, "-m", "batchpool.worker", str(self.pool.dir), "--job-id", "bench"]

    def post_again(self) -> None:
        """The same ticket under the next number, for the next worker to take."""
        t = self.ticket
        number = self.num_posted
        again = Ticket(number, t.session_dir, t.chunk, t.attempt, t.start, t.stop, t.function_key)
        self.pool.post(again)
        self.pool.set_hint(number)
        self.num_posted += 1
        self.result.unlink(missing_ok=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()

    python = sys.executable
    runs: dict[str, tuple[list[str], bool]] = {}  # label: (argv, writes a stamp)
    with tempfile.TemporaryDirectory(prefix="batchpool-bench-") as tmp:
        tmp_dir = Path(tmp)
        stamp_path = tmp_dir / "stamp"
        runs["python -c pass"] = ([python, "-c", "pass"], False)
        runs["python -c <stamp>"] = ([python, "-c", STAMP_CODE, str(stamp_path)], True)
        runs["python -c 'import cloudpickle'"] = ([python, "-c", "import cloudpickle"], False)
        pools = {}
        for label, task in (
            ("worker, task by reference", stamp_by_reference),
            ("worker, task by value", stamp),
        ):
            pools[label] = PreparedPool(tmp_dir / label.split()[-1], task, stamp_path)
            runs[label] = (pools[label].argv(python), True)

        samples: dict[str, list[tuple[float, float]]] = {label: [] for label in runs}
        for _ in range(args.repeats):  # interleaved, so that load on the machine hits all
            for label, (argv, stamps) in runs.items():
                prepared = pools.get(label)
                if prepared is not None:
                    prepared.post_again()
                samples[label].append(launch(argv, stamp_path if stamps else None))
                if prepared is not None and not prepared.result.exists():
                    raise RuntimeError(f"{label}: the worker wrote no result")

    def median(label: str, i: int) -> float:
        return statistics.median(s[i] for s in samples[label])

    base = median("python -c pass", 1)
    print(f"{python}, median of {args.repeats}, ratios against `python -c pass` ({base:.4f} s)")
    header = ("command", "to first task s", "ratio", "to exit s", "ratio", "goal")
    widths = (32, 16, 6, 10, 6, 20)
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)))
    print("  ".join("-" * w for w in widths))
    for label, (_, stamps) in runs.items():
        first = median(label, 0)
        total = median(label, 1)
        cells = (
            label,
            f"{first:.4f}" if stamps else "-",
            f"{first / base:.2f}" if stamps else "-",
            f"{total:.4f}",
            f"{total / base:.2f}",
            "to first task <= 2.0" if label in pools else "",
        )
        print("  ".join(c.ljust(w) for c, w in zip(cells, widths)))
    print(f"(nproc={os.cpu_count()}; {sys.version.split()[0]})")


if __name__ == "__main__":
    main()
