"""Task functions for test_detach.py, imported by reference in the jobs (the submitting
script is gone by the time they run)."""

from __future__ import annotations

import os
import time


def record_square(args: tuple) -> int:
    """``(path, x)``: append ``x PID TIME`` to ``path`` (one ``write``), sleep 0.3 s,
    return ``x * x``."""
    path, x = args
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(fd, f"{x} {os.getpid()} {time.time():.6f}\n".encode())
    finally:
        os.close(fd)
    time.sleep(0.3)
    return x * x
