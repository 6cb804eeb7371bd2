"""Task functions for the contract suite, importable by multiprocessing and batchpool's worker."""

import ctypes
import os
import sys
import threading
import time


def square(x):
    return x * x


def add(a, b):
    return a + b


def identity(x):
    return x


def keyword_call(a, b=0, *, c=0):
    return (a, b, c)


class TaskFailed(Exception):
    """Raised on purpose by a task."""


def fail_on_three(x):
    if x == 3:
        raise TaskFailed(f"task {x} failed on purpose")
    return x


class NeedsTwoArguments(Exception):
    """Pickles, but cannot be unpickled (its __init__ wants two arguments)."""

    def __init__(self, a, b):
        super().__init__(f"{a} {b}")


def raise_unrebuildable(x):
    raise NeedsTwoArguments(x, "b")


def getenv(name):
    return os.environ.get(name)


def big_bytes(num_mb):
    return bytes([num_mb % 256]) * (num_mb * 1024 * 1024)


def noisy(x):
    for i in range(200):
        print(f"stdout line {i} of task {x}")
        print(f"stderr line {i} of task {x}", file=sys.stderr)
    return x


def exit_hard(x):
    os._exit(3)


def segfault(x):
    import resource

    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # no core file in the working directory
    ctypes.string_at(0)


def sleep_then_return(seconds):
    time.sleep(seconds)
    return seconds


def pid_of_worker(_):
    return os.getpid()


_initialized = []


def remember(value):
    _initialized.append(value)


def initialized(_):
    return list(_initialized)


def return_a_lock(_):
    return threading.Lock()


def noisy_then_exit(x):
    print(f"last words of task {x}", file=sys.stderr, flush=True)
    os._exit(5)


def stepd_noise_then_exit(x):
    print(f"real trouble in task {x}", file=sys.stderr)
    print(
        "slurmstepd: error: Unable to create TMPDIR [/tmp/user/1]: Permission denied",
        file=sys.stderr,
        flush=True,
    )
    os._exit(6)


def logged_square(args):
    """``(log_path, x, seconds)``: append ``start x`` to the log, sleep, append ``end x``;
    return ``x * x``. The log counts how often each task started and finished."""
    log_path, x, seconds = args
    with open(log_path, "a") as log:
        log.write(f"start {x}\n")
    time.sleep(seconds)
    with open(log_path, "a") as log:
        log.write(f"end {x}\n")
    return x * x


_CALLS_IN_THIS_PROCESS = [0]


def count_calls_in_worker(_):
    """(pid, how many tasks this process ran so far): standing workers count on."""
    _CALLS_IN_THIS_PROCESS[0] += 1
    return os.getpid(), _CALLS_IN_THIS_PROCESS[0]


def touch(path):
    """A side effect: create ``path``."""
    with open(path, "w"):
        pass
    return path


def numbers_then_fail(count, error_at):
    """An input that yields 0, 1, ... and raises at ``error_at``."""
    for i in range(count):
        if i == error_at:
            raise KeyError(f"input {i} failed")
        yield i
