"""How big a chunk is and how many workers a pool asks for: pure rules, no files, no clock.

Chunks cut by measured time
---------------------------
With ``chunksize`` given, every chunk has that many tasks, as in ``multiprocessing``.
Without it, a map's first chunks have one task each; once tasks of the same function
have been timed (by the workers, per chunk), a chunk gets as many tasks as take about
:data:`TARGET_CHUNK_S`, but no more than ``remaining / (2 * workers)`` (so that the
last chunks of a map are small and every worker finishes at about the same time) and
no fewer than take :data:`MIN_CHUNK_S` (a claim and a result file cost a few
milliseconds, far more on a loaded shared filesystem).

Tickets ahead
-------------
The driver keeps about one unclaimed ticket per live worker, so that a worker that ends
a chunk finds the next one without waiting for the driver. Chunks shorter than
:data:`AHEAD_S` (a ``chunksize`` given small for quick tasks) get more tickets ahead,
enough for :data:`AHEAD_S` of work per worker, but no more than :data:`MAX_AHEAD`.

Workers asked for
-----------------
Before any task was timed, a pool asks for :data:`INITIAL_WORKERS` in all (or fewer,
if there are fewer chunks to run). After, one worker per chunk in hand plus one per
:data:`WORKER_HORIZON_S` of work nobody has claimed yet, but no more than there are
chunks left to claim. Never more than the pool's cap (``processes`` or
``num_simultaneously_running_tasks``).
"""

from __future__ import annotations

import math
from typing import Optional

TARGET_CHUNK_S = 2.0
"""The time one chunk should take: long against a claim's cost, short for balance."""
MIN_CHUNK_S = 0.05
"""A chunk should take at least this long, unless the map has fewer tasks."""
INITIAL_WORKERS = 8
"""Workers asked for before any task of the function has been timed."""
WORKER_HORIZON_S = 5.0
"""Unclaimed work, in seconds, that makes one more worker worth asking for."""
MIN_TASK_S = 1e-7
"""Measured task times below this count as this (a trivial task still costs something)."""
AHEAD_S = 0.05
"""Work, in seconds, that the driver keeps posted ahead of each live worker..."""
MAX_AHEAD = 32
"""...in at most this many tickets a worker."""


def tickets_ahead(chunk_s: Optional[float]) -> int:
    """Unclaimed tickets to keep per live worker, for chunks measured at ``chunk_s``
    seconds (None: not measured yet)."""
    if chunk_s is None:
        return 1
    return max(1, min(MAX_AHEAD, int(AHEAD_S / max(chunk_s, MIN_TASK_S))))


def chunk_size(
    remaining: int, task_s: Optional[float], workers: int, chunksize: Optional[int] = None
) -> int:
    """How many of ``remaining`` tasks the next chunk gets (module docstring).

    ``task_s`` is the measured seconds per task (None before any were timed),
    ``workers`` the pool's live workers.
    """
    if remaining < 1:
        raise ValueError("no tasks remain to cut a chunk from")
    if chunksize is not None:
        if chunksize < 1:
            raise ValueError(f"chunksize must be at least 1, not {chunksize}")
        return min(chunksize, remaining)
    if task_s is None:
        return 1
    task_s = max(task_s, MIN_TASK_S)
    by_target = max(1, int(TARGET_CHUNK_S / task_s))
    balanced = max(1, math.ceil(remaining / (2 * max(1, workers))))
    at_least = max(1, math.ceil(MIN_CHUNK_S / task_s))
    return min(remaining, max(min(by_target, balanced), at_least))


def workers_wanted(
    busy: int,
    unclaimed_tasks: int,
    task_s: Optional[float],
    cap: Optional[int],
    unclaimed_chunks: Optional[int] = None,
) -> int:
    """How many workers the pool should have now (module docstring).

    ``busy``: chunks claimed and not finished; ``unclaimed_tasks``: tasks known to the
    pool that no worker took yet; ``task_s``: measured seconds per task, if known;
    ``unclaimed_chunks``: how many chunks those tasks make at most (fewer than the
    tasks when a ``chunksize`` is given); more workers than that would idle.
    """
    most = unclaimed_tasks if unclaimed_chunks is None else unclaimed_chunks
    if unclaimed_tasks <= 0:
        wanted = busy
    elif task_s is None:  # the first wave, counted with the workers already busy
        wanted = max(busy, min(INITIAL_WORKERS, busy + most))
    else:
        work_s = unclaimed_tasks * max(task_s, MIN_TASK_S)
        wanted = busy + min(most, max(1, math.ceil(work_s / WORKER_HORIZON_S)))
    return wanted if cap is None else min(wanted, cap)
