"""Task functions that the benchmarks import, so that they are pickled by reference."""

from __future__ import annotations

import os
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


def sleep_for(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


_FIRST_CALL_IN_PROCESS = [True]


def gaussian_log_prob(x, calls_file: str) -> float:
    """A standard normal's log-density (up to a constant) at ``x`` (a numpy vector), and one
    line ``PID FIRST`` appended to ``calls_file``: ``FIRST`` is 1 for the first call in this
    process (its worker unpickled emcee's function wrapper, importing emcee, just before),
    0 after. Imports nothing itself, so that other benchmarks' workers stay light."""
    first = _FIRST_CALL_IN_PROCESS[0]
    _FIRST_CALL_IN_PROCESS[0] = False
    with open(calls_file, "a") as f:
        f.write(f"{os.getpid()} {int(first)}\n")
    return -0.5 * float(x @ x)


def gaussian_log_prob_on_host(x, calls_file: str) -> float:
    """:func:`gaussian_log_prob`, the line naming the process ``HOST:PID`` (pids of
    different simulated nodes may be equal: each node has its own pid namespace)."""
    first = _FIRST_CALL_IN_PROCESS[0]
    _FIRST_CALL_IN_PROCESS[0] = False
    with open(calls_file, "a") as f:
        f.write(f"{os.uname().nodename}:{os.getpid()} {int(first)}\n")
    return -0.5 * float(x @ x)
