"""Tasks into chunks. One chunk is the work of one job, run in series.

The default rule
----------------
When ``chunksize`` is not given, a map over ``n`` tasks is split into at most
``max_num_chunks`` chunks of equal size: ``chunksize = ceil(n / max_num_chunks)``.
Small maps (``n <= max_num_chunks``) get one task per job; a map over 100,000
tasks with the cluster default of 1,000 becomes 1,000 jobs of 100 tasks each.
The local pool uses ``max_num_chunks = 4 * processes``, as
``multiprocessing.Pool`` does.
"""

from __future__ import annotations

import math

DEFAULT_MAX_NUM_CHUNKS = 1000
"""The cluster pools' bound on the number of jobs of one map when chunksize is not given."""


def default_chunksize(num_tasks: int, max_num_chunks: int = DEFAULT_MAX_NUM_CHUNKS) -> int:
    """The smallest chunksize that keeps ``num_tasks`` within ``max_num_chunks`` chunks."""
    if max_num_chunks < 1:
        raise ValueError("max_num_chunks must be at least 1")
    return max(1, math.ceil(num_tasks / max_num_chunks))


def chunk_bounds(num_tasks: int, chunksize: int) -> list[range]:
    """The task indices of each chunk: ``[range(0, 3), range(3, 6), range(6, 7)]``."""
    if chunksize < 1:
        raise ValueError(f"chunksize must be at least 1, not {chunksize}")
    return [range(i, min(i + chunksize, num_tasks)) for i in range(0, num_tasks, chunksize)]
