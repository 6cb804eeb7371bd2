"""File names and record formats shared by the driver and the worker (standard library only).

The worker imports this module on every job start, so it imports nothing heavy.
:mod:`batchpool.session` owns the layout (it builds every path from these names);
the worker only reads and writes what a ticket points it at.

A pool directory (one per :class:`~batchpool.Pool`, the queue its workers take work from)::

    POOL/environment.pkl    the driver's environment, sys.path and working directory
    POOL/initializer.pkl    (initializer, initargs), cloudpickled
    POOL/config             worker settings: idle seconds, max chunks per worker
    POOL/driver             the driver's heartbeat: host, pid, a counter it rewrites
    POOL/stop               exists once the pool is closed or terminated: workers exit
    POOL/next               a hint: the lowest ticket number that may be unclaimed
    POOL/tickets/N          ticket N: which tasks of which session to run
    POOL/claims/N           created with O_EXCL by the worker that takes ticket N
                            (or by the driver that withdraws it)
    POOL/workers/JOB_ID     written by a worker once it is ready to take work (its job
                            started, the environment and the initializer worked)
    POOL/workers/JOB_ID.exited  written by a worker that exits by itself (idle, told to
                            stop, retired)
    POOL/logs/              the jobs' stdout and stderr

A session directory (one per map; see :mod:`batchpool.session`) holds what a ticket
names: ``function.pkl``, ``tasks.pkl`` with ``tasks.idx`` (16 bytes a task: start
and stop offset) and ``results/CHUNK.pkl``.

Claims are atomic on NFS: ``open(O_CREAT | O_EXCL)`` is decided by the server. No
one trusts a directory listing: every file is looked up by a name known in advance.
"""

from __future__ import annotations

import os
import struct

# In a pool directory
ENVIRONMENT_FILE = "environment.pkl"
INITIALIZER_FILE = "initializer.pkl"
CONFIG_FILE = "config"
DRIVER_FILE = "driver"
STOP_FILE = "stop"
NEXT_FILE = "next"
TICKETS_DIR = "tickets"
CLAIMS_DIR = "claims"
LOGS_DIR = "logs"
WORKERS_DIR = "workers"
EXITED_SUFFIX = ".exited"

# In a session directory
FUNCTION_FILE = "function.pkl"
TASKS_FILE = "tasks.pkl"
TASKS_INDEX_FILE = "tasks.idx"
RESULTS_DIR = "results"
CANCELLED_FILE = "cancelled"

WITHDRAWN = "-"
"""The job id in a claim that the driver made to take a ticket back."""

TASK_INDEX = struct.Struct("<QQ")
"""One entry of ``tasks.idx``: start and stop offset of a task's pickle in ``tasks.pkl``."""
RESULT_HEADER = struct.Struct("<QQd")
"""The head of a result file: first task, stop task, seconds the tasks took."""


class Ticket:
    """Ticket ``number``: run tasks ``start:stop`` of ``session_dir`` as its chunk ``chunk``."""

    __slots__ = ("number", "session_dir", "chunk", "attempt", "start", "stop", "function_key")

    def __init__(
        self,
        number: int,
        session_dir: str,
        chunk: int,
        attempt: int,
        start: int,
        stop: int,
        function_key: str,
    ) -> None:
        self.number = number
        self.session_dir = session_dir
        self.chunk = chunk
        self.attempt = attempt
        self.start = start
        self.stop = stop
        self.function_key = function_key

    def encode(self) -> bytes:
        fields = (
            self.session_dir,
            self.chunk,
            self.attempt,
            self.start,
            self.stop,
            self.function_key,
        )
        return "".join(f"{field}\n" for field in fields).encode()

    @classmethod
    def decode(cls, number: int, data: bytes) -> Ticket:
        """Raises ValueError for a ticket that is not whole."""
        lines = data.decode().split("\n")
        if len(lines) != 7 or lines[6]:
            raise ValueError(f"ticket {number} is not whole: {data!r}")
        session_dir, chunk, attempt, start, stop, key = lines[:6]
        return cls(number, session_dir, int(chunk), int(attempt), int(start), int(stop), key)

    def __repr__(self) -> str:
        return (
            f"Ticket({self.number}, chunk {self.chunk} attempt {self.attempt}, "
            f"tasks {self.start}:{self.stop} of {self.session_dir})"
        )


class Claim:
    """Who took a ticket: a worker (its job id, host and pid) or the driver (``WITHDRAWN``)."""

    __slots__ = ("job_id", "host", "pid")

    def __init__(self, job_id: str, host: str, pid: int) -> None:
        self.job_id = job_id
        self.host = host
        self.pid = pid

    @property
    def withdrawn(self) -> bool:
        return self.job_id == WITHDRAWN

    def encode(self) -> bytes:
        return f"{self.job_id}\n{self.host}\n{self.pid}\n".encode()

    @classmethod
    def decode(cls, data: bytes) -> Claim | None:
        """None while the claimant has not finished writing it."""
        lines = data.decode(errors="replace").split("\n")
        if len(lines) != 4 or lines[3] or not lines[2].isdigit():
            return None
        return cls(lines[0], lines[1], int(lines[2]))

    def __repr__(self) -> str:
        return f"Claim(job {self.job_id} on {self.host}, pid {self.pid})"


def write_atomically(path: str, payload: bytes) -> None:
    """Write a private file under a temporary name in the same directory, then rename it,
    so that nobody ever reads it half written."""
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
    except BaseException:
        os.unlink(tmp)
        raise
    os.rename(tmp, path)


def create_exclusively(path: str, payload: bytes) -> bool:
    """Create ``path`` with ``payload`` unless it exists: True if this call created it.

    The one atomic claim of the protocol (``O_EXCL``, decided by the NFS server too).
    The content follows the creation; readers treat an incomplete content as "being
    written" (:meth:`Claim.decode` returns None).
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "wb") as f:
        f.write(payload)
    return True


def read_file(path: str) -> bytes | None:
    """The content of ``path``, or None if there is no such file."""
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None


def read_tasks(session_dir: str, start: int, stop: int) -> list:
    """The pickled tasks ``start:stop`` of a session, each still pickled."""
    if stop <= start:
        return []
    with open(os.path.join(session_dir, TASKS_INDEX_FILE), "rb") as f:
        f.seek(TASK_INDEX.size * start)
        index = f.read(TASK_INDEX.size * (stop - start))
    if len(index) != TASK_INDEX.size * (stop - start):
        raise ValueError(f"tasks {start}:{stop} are not in {session_dir}")
    bounds = [TASK_INDEX.unpack_from(index, i * TASK_INDEX.size) for i in range(stop - start)]
    first, last = bounds[0][0], bounds[-1][1]
    with open(os.path.join(session_dir, TASKS_FILE), "rb") as f:
        f.seek(first)
        data = f.read(last - first)
    return [data[a - first : b - first] for a, b in bounds]


def format_config(worker_idle_s: float, maxtasksperchild: int | None) -> bytes:
    return f"worker_idle_s={worker_idle_s!r}\nmaxtasksperchild={maxtasksperchild or 0}\n".encode()


def parse_config(data: bytes) -> tuple[float, int | None]:
    """``(worker_idle_s, maxtasksperchild or None)`` from a pool's config file."""
    fields = dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)
    return float(fields["worker_idle_s"]), int(fields["maxtasksperchild"]) or None


def job_id_from_environment(template: str, environ: dict | None = None) -> str:
    """``template`` with ``{VARIABLE}`` replaced from the environment (``?`` if unset).

    Each backend gives the template of its job ids, e.g.
    ``{SLURM_ARRAY_JOB_ID}_{SLURM_ARRAY_TASK_ID}``.
    """
    env = os.environ if environ is None else environ

    class _Missing(dict):
        def __missing__(self, key: str) -> str:
            return "?"

    return template.format_map(_Missing(env))


def format_ranges(numbers: list[int]) -> str:
    """``[0, 1, 2, 5]`` -> ``"0-2,5"``."""
    if not numbers:
        raise ValueError("no numbers")
    parts = []
    start = prev = numbers[0]
    for n in [*numbers[1:], None]:
        if n is not None and n == prev + 1:
            prev = n
            continue
        parts.append(str(start) if start == prev else f"{start}-{prev}")
        if n is not None:
            start = prev = n
    return ",".join(parts)


def parse_ranges(text: str) -> list[int]:
    """``"0-2,5"`` -> ``[0, 1, 2, 5]``."""
    numbers: list[int] = []
    for part in text.split(","):
        first, _, last = part.partition("-")
        numbers.extend(range(int(first), int(last or first) + 1))
    return numbers
