"""Start-up cost of ``python -m batchpool.worker`` against a bare interpreter.

A session is prepared once: a one-task map through ``batchpool.local.Pool``
with ``keep_work_dir=True``; its task writes ``time.time()`` into a stamp file
when it starts. Then the worker command of that session is re-run by hand
``--repeats`` times (same interpreter, same environment as the driver, so the
worker does not re-execute itself), measuring

- *to first task*: launch (``time.time()`` just before ``Popen``) until the task
  writes its stamp;
- *to exit*: launch until the worker process has exited (result written).

Baselines measured in the same run: the wall time of ``python -c pass``, and the
time from launch to the first statement of ``python -c "<write time.time()>"``.
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

import batchpool.local

STAMP_CODE = (
    "import time, sys; t = time.time(); f = open(sys.argv[1], 'w'); f.write(repr(t)); f.close()"
)


def stamp(path: str) -> str:
    """The task: record when it started running."""
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()

    python = sys.executable
    with tempfile.TemporaryDirectory(prefix="batchpool-bench-") as tmp:
        tmp_dir = Path(tmp)
        stamp_path = tmp_dir / "stamp"
        work_dir = tmp_dir / "work"
        with batchpool.local.Pool(1, work_dir=work_dir, keep_work_dir=True) as pool:
            pool.map(stamp, [str(stamp_path)])
        (session_dir,) = [p for p in work_dir.iterdir() if p.is_dir()]
        worker_argv = [python, "-m", "batchpool.worker", str(session_dir), "0"]
        result = session_dir / "results" / "0.pkl"

        samples: dict[str, list[tuple[float, float]]] = {"pass": [], "stamp": [], "worker": []}
        for _ in range(args.repeats):  # interleaved, so that load on the machine hits all
            samples["pass"].append(launch([python, "-c", "pass"], None))
            samples["stamp"].append(launch([python, "-c", STAMP_CODE, str(stamp_path)], stamp_path))
            if result.exists():
                result.unlink()
            samples["worker"].append(launch(worker_argv, stamp_path))
            assert result.exists(), "the worker wrote no result"

    def median(name: str, i: int) -> float:
        return statistics.median(s[i] for s in samples[name])

    base = median("pass", 1)
    rows = [
        ("python -c pass", float("nan"), median("pass", 1)),
        ("python -c <stamp>", median("stamp", 0), median("stamp", 1)),
        ("python -m batchpool.worker", median("worker", 0), median("worker", 1)),
    ]
    print(f"{python}, median of {args.repeats}, ratios against `python -c pass` ({base:.4f} s)")
    header = ("command", "to first task s", "ratio", "to exit s", "ratio", "goal")
    widths = (28, 16, 6, 10, 6, 24)
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)))
    print("  ".join("-" * w for w in widths))
    for label, first, total in rows:
        is_worker = label.startswith("python -m")
        cells = (
            label,
            "-" if first != first else f"{first:.4f}",
            "-" if first != first else f"{first / base:.2f}",
            f"{total:.4f}",
            f"{total / base:.2f}",
            "to first task <= 2.0" if is_worker else "",
        )
        print("  ".join(c.ljust(w) for c, w in zip(cells, widths)))
    print(f"(nproc={os.cpu_count()})")


if __name__ == "__main__":
    main()
