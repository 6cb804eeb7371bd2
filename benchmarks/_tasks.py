"""Task functions that the benchmarks import, so that they are pickled by reference."""

from __future__ import annotations

import time


def stamp(path: str) -> str:
    """Record when the task started running."""
    t = time.time()
    with open(path, "w") as f:
        f.write(repr(t))
    return path


def result_of_size(size: int) -> bytes:
    """A result of ``size`` bytes (a new object each time)."""
    return bytes(size)


def trivial(x: int) -> int:
    return x + 1
