"""Task functions for tests/real/test_standing_workers.py.

Imported by reference in the jobs (the worker takes the driver's ``sys.path``), so they
must live in a module, not in a test. Each task that leaves a trace appends whole
lines to a file with one ``write`` (``O_APPEND``: lines of concurrent workers never mix).
"""

from __future__ import annotations

import os
import time


def job_id() -> str:
    """The id of the job this runs in, as ``squeue -r``/``qstat`` and the claims print it."""
    env = os.environ
    if env.get("SLURM_ARRAY_JOB_ID") and env.get("SLURM_ARRAY_TASK_ID"):
        return f"{env['SLURM_ARRAY_JOB_ID']}_{env['SLURM_ARRAY_TASK_ID']}"
    return env.get("SLURM_JOB_ID") or env.get("JOB_ID") or f"local-{os.getpid()}"


def append_line(path: str, line: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


def record(args: tuple) -> tuple:
    """``(path, index, sleep_s)``: log ``start``, sleep, log ``end``; return
    ``(index * index, job id)``.

    Each line of ``path``: ``start|end INDEX JOB_ID PID TIME``.
    """
    path, index, sleep_s = args
    me = job_id()
    append_line(path, f"start {index} {me} {os.getpid()} {time.time():.6f}")
    time.sleep(sleep_s)
    append_line(path, f"end {index} {me} {os.getpid()} {time.time():.6f}")
    return index * index, me


def square_in_job(args: tuple) -> tuple:
    """``(x, sleep_s)`` -> ``(x * x, job id)``."""
    x, sleep_s = args
    time.sleep(sleep_s)
    return x * x, job_id()


def fail_in(args: tuple) -> tuple:
    """``(path, index, sleep_s, how)``: as :func:`record`, but ``how`` ends the worker
    inside the task first: ``"exit"`` (``os._exit(3)``), ``"segfault"`` (a read of
    address 0 in C), ``"memory"`` (allocate and touch ``sleep_s`` GB... see below), or ``""``
    (nothing). For ``"memory"``, ``sleep_s`` is the MB to allocate, held for 5 s."""
    path, index, sleep_s, how = args
    me = job_id()
    append_line(path, f"start {index} {me} {os.getpid()} {time.time():.6f}")
    if how == "exit":
        os._exit(3)
    if how == "segfault":
        import ctypes

        ctypes.string_at(0)
    if how == "memory":
        block = bytearray(int(sleep_s) * 1024 * 1024)
        for offset in range(0, len(block), 4096):  # touch every page: resident memory
            block[offset] = 1
        time.sleep(5)
        del block
    elif sleep_s:
        time.sleep(sleep_s)
    append_line(path, f"end {index} {me} {os.getpid()} {time.time():.6f}")
    return index * index, me


def mark(args: tuple) -> tuple:
    """``(directory, index, sleep_s, how)``, for jobs on simulated hosts
    (tests/real/test_many_hosts.py): create ``INDEX~JOB~HOST~PID~NONCE.start`` in
    ``directory``, sleep, create the same name ``.end``; return ``(index * index, host,
    job id)``. One new file per event, never an append (several hosts' views of one
    file are not appended to safely); the host and a nonce tell runs apart, as pids of
    separate pid namespaces repeat. ``how`` as :func:`fail_in` (``"exit"`` or ``""``), or
    ``"once"``: sleep only in the task's first run (no earlier start file of ``index``)."""
    directory, index, sleep_s, how = args
    host = os.uname().nodename
    if how == "once" and any(name.startswith(f"{index}~") for name in os.listdir(directory)):
        sleep_s = 0
    stem = os.path.join(directory, f"{index}~{job_id()}~{host}~{os.getpid()}~{os.urandom(4).hex()}")
    open(stem + ".start", "w").close()
    if how == "exit":
        os._exit(3)
    if sleep_s:
        time.sleep(sleep_s)
    open(stem + ".end", "w").close()
    return index * index, host, job_id()


def hog(args: tuple) -> tuple:
    """``(path, index, mb, processes)``: as :func:`record`, holding ``mb`` MB of touched
    memory in each of ``processes`` processes (this one and children) for 4 s; ``mb`` 0:
    nothing. Returns ``(index * index, job id)``."""
    path, index, mb, processes = args
    me = job_id()
    append_line(path, f"start {index} {me} {os.getpid()} {time.time():.6f}")
    if mb:
        import subprocess
        import sys

        code = (
            f"import time; b = bytearray({mb} << 20); b[::4096] = b'x' * len(b[::4096]); "
            "time.sleep(4)"
        )
        children = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(processes - 1)]
        block = bytearray(mb << 20)
        block[::4096] = b"x" * len(block[::4096])
        time.sleep(4)
        del block
        for child in children:
            child.wait()
    append_line(path, f"end {index} {me} {os.getpid()} {time.time():.6f}")
    return index * index, me
