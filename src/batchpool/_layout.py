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
    POOL/detached           exists once the driver detached (``batchpool.submit``): the
                            workers stay when the driver is gone; it holds the backend
                            and options for ``batchpool.attach`` (JSON)
    POOL/next               a hint: the lowest ticket number that may be unclaimed
    POOL/tickets/N          ticket N: which tasks of which session to run
    POOL/claims/N           created with O_EXCL by the worker that takes ticket N
                            (or by the driver that withdraws it)
    POOL/workers/JOB_ID     written by a worker once it is ready to take work (its job
                            started, the environment and the initializer worked)
    POOL/workers/JOB_ID.exited  written by a worker that exits by itself (idle, told to
                            stop, retired)
    POOL/logs/              the jobs' stdout and stderr
    POOL/jobs.jsonl         the driver's journal of submissions: written before each
                            submission and after it, and when the pool ended
    POOL/staging.N/         a map's tasks while they are written, before its session is known

A session directory (one per map; see :mod:`batchpool.session`) holds what a ticket
names: ``function.pkl``, ``tasks.pkl`` with ``tasks.idx`` (16 bytes a task: start
and stop offset), and the record files of its chunks: ``results/CHUNK.ATTEMPT.part``
while a worker runs the chunk, renamed ``results/CHUNK.pkl`` once the chunk ended.

A record file is a sequence of records (:data:`RECORD_HEAD`, then the payload): one
:data:`BEGIN`, one :data:`TASK` per task as soon as it ended, one :data:`END`. Each is
written with one ``write`` call, so a worker that dies keeps every task it finished, and
the first task without a record is the one it was running. A torn or damaged record
(its checksum does not match) ends the file for every reader.

Claims are atomic on NFS: ``open(O_CREAT | O_EXCL)`` is decided by the server. No
one trusts a directory listing: every file is looked up by a name known in advance.
"""

from __future__ import annotations

import errno
import os
import struct
import zlib
from typing import NamedTuple, Optional

# In a pool directory
ENVIRONMENT_FILE = "environment.pkl"
INITIALIZER_FILE = "initializer.pkl"
CONFIG_FILE = "config"
DRIVER_FILE = "driver"
STOP_FILE = "stop"
DETACHED_FILE = "detached"
NEXT_FILE = "next"
TICKETS_DIR = "tickets"
CLAIMS_DIR = "claims"
LOGS_DIR = "logs"
WORKERS_DIR = "workers"
EXITED_SUFFIX = ".exited"
STAGING_PREFIX = "staging."
JOBS_JOURNAL = "jobs.jsonl"

# In a session directory
FUNCTION_FILE = "function.pkl"
TASKS_FILE = "tasks.pkl"
TASKS_INDEX_FILE = "tasks.idx"
RESULTS_DIR = "results"
RESULT_SUFFIX = ".pkl"
PART_SUFFIX = ".part"
CANCELLED_FILE = "cancelled"

WITHDRAWN = "-"
"""The job id in a claim that the driver made to take a ticket back."""

TASK_INDEX = struct.Struct("<QQ")
"""One entry of ``tasks.idx``: start and stop offset of a task's pickle in ``tasks.pkl``."""
RECORD_HEAD = struct.Struct("<cIQdI")
"""The head of one record of a chunk's record file: kind, payload length, a number, seconds,
and the CRC-32 of the head's other fields and the payload."""
BEGIN = b"B"
"""Record kind: a worker began the chunk. Number: its first task; seconds: the wall-clock
time (``time.time()``); payload: the worker's :class:`Claim`."""
TASK = b"T"
"""Record kind: a task ended. Number: the task's index; seconds: how long it ran;
payload: its envelope, pickled, then (from batchpool 0.2) a :data:`USAGE_TRAILER`.
``pickle.loads`` ignores the bytes after a pickle, so older readers see the envelope."""
END = b"E"
"""Record kind: the chunk ended. Number: its stop task; seconds: how long its tasks ran."""
EXIT_FILE_SUFFIX = ".exit"
"""``POOL/workers/JOB_ID.exit``: how the worker process of a job ended, written by the
process that watched it: ``exit N``, ``signal N`` or ``stopped by signal N``, then the
task it was in (``task N of SESSION``), if any."""

NO_SPACE_ERRNOS = frozenset((errno.ENOSPC, errno.EDQUOT, errno.EROFS))
"""Errors of a write that no retry on this filesystem can mend (full, over quota, read-only)."""
NO_SPACE_EXIT = 75
"""The worker's exit code when it could not write a record: no space (``EX_TEMPFAIL``)."""


JOB_VARIABLE_PREFIXES = (b"SLURM_", b"SGE_", b"PBS_", b"LSB_", b"PMI_", b"PMIX_", b"OMPI_")
JOB_VARIABLES = frozenset(
    (
        b"JOB_ID",
        b"JOB_NAME",
        b"JOB_SCRIPT",
        b"TASK_ID",
        b"NSLOTS",
        b"NHOSTS",
        b"NQUEUES",
        b"QUEUE",
        b"PE",
        b"PE_HOSTFILE",
        b"RESTARTED",
        b"ENVIRONMENT",
        b"REQUEST",
        b"ARC",
        b"TMPDIR",
        b"TMP",
        b"HOSTNAME",
        b"CUDA_VISIBLE_DEVICES",
        b"ROCR_VISIBLE_DEVICES",
        b"GPU_DEVICE_ORDINAL",
        b"BATCHPOOL_JOB_ID",
    )
)


class Failure(NamedTuple):
    """What a task that raised left: its envelope is ``(False, Failure(...))``; a task
    that returned has ``(True, result)``. A plain 4-tuple reads as one (older records)."""

    exception: Optional[bytes]
    """The exception, pickled; None if it cannot be pickled and rebuilt."""
    type_name: str
    message: str
    traceback: str
    """The remote traceback, as text."""


class Ticket:
    """Ticket ``number``: run tasks ``start:stop`` of ``session_dir`` as its chunk ``chunk``."""

    __slots__ = (
        "number",
        "session_dir",
        "chunk",
        "attempt",
        "start",
        "stop",
        "function_key",
        "tier",
    )

    def __init__(
        self,
        number: int,
        session_dir: str,
        chunk: int,
        attempt: int,
        start: int,
        stop: int,
        function_key: str,
        tier: int = 0,
    ) -> None:
        self.number = number
        self.session_dir = session_dir
        self.chunk = chunk
        self.attempt = attempt
        self.start = start
        self.stop = stop
        self.function_key = function_key
        self.tier = tier
        """Only workers of this tier take the ticket (a retry with more memory or time)."""

    def encode(self) -> bytes:
        fields = (
            self.session_dir,
            self.chunk,
            self.attempt,
            self.start,
            self.stop,
            self.function_key,
            self.tier,
        )
        return "".join(f"{field}\n" for field in fields).encode()

    @classmethod
    def decode(cls, number: int, data: bytes) -> Ticket:
        """Raises ValueError for a ticket that is not whole."""
        lines = data.decode().split("\n")
        if len(lines) != 8 or lines[7]:
            raise ValueError(f"ticket {number} is not whole: {data!r}")
        session_dir, chunk, attempt, start, stop, key, tier = lines[:7]
        return cls(
            number, session_dir, int(chunk), int(attempt), int(start), int(stop), key, int(tier)
        )

    def __repr__(self) -> str:
        return (
            f"Ticket({self.number}, chunk {self.chunk} attempt {self.attempt} tier {self.tier}, "
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


def encode_record(kind: bytes, number: int, seconds: float, payload: bytes = b"") -> bytes:
    """One record of a chunk's record file (module docstring)."""
    fields = RECORD_HEAD.pack(kind, len(payload), number, seconds, 0)[: RECORD_HEAD.size - 4]
    checksum = zlib.crc32(payload, zlib.crc32(fields))
    return fields + struct.pack("<I", checksum) + payload


def encode_chunk(
    start: int, pickled_envelopes: list[bytes], elapsed_s: float = 0.0, claim: bytes = b""
) -> bytes:
    """A whole record file of a chunk that ended (for tools and tests that write one)."""
    records = [encode_record(BEGIN, start, 0.0, claim)]
    seconds = elapsed_s / max(1, len(pickled_envelopes))
    for index, envelope in enumerate(pickled_envelopes, start):
        records.append(encode_record(TASK, index, seconds, envelope))
    records.append(encode_record(END, start + len(pickled_envelopes), elapsed_s))
    return b"".join(records)


def decode_records(data: bytes) -> tuple[list[tuple[bytes, int, float, bytes]], bool]:
    """The records of a record file as ``(kind, number, seconds, payload)``, and whether the
    file was read to its end (False: it ends with a torn or damaged record)."""
    records: list[tuple[bytes, int, float, bytes]] = []
    pos = 0
    while pos < len(data):
        record = decode_record_at(data, pos)
        if record is None:
            return records, False
        records.append(record[0])
        pos = record[1]
    return records, True


def decode_record_at(
    data: bytes, pos: int
) -> tuple[tuple[bytes, int, float, bytes], int] | None:
    """The record that starts at ``pos`` and where the next one starts; None if there is
    no whole record with a matching checksum there."""
    if pos + RECORD_HEAD.size > len(data):
        return None
    kind, size, number, seconds, checksum = RECORD_HEAD.unpack_from(data, pos)
    start = pos + RECORD_HEAD.size
    payload = data[start : start + size]
    fields = data[pos : start - 4]
    if len(payload) != size or zlib.crc32(payload, zlib.crc32(fields)) != checksum:
        return None
    return (kind, number, seconds, payload), start + size


def record_file_names(chunk: int, attempt: int) -> tuple[str, str]:
    """A chunk's record file while it runs (per attempt) and once it ended, in ``results/``."""
    return f"{chunk}.{attempt}{PART_SUFFIX}", f"{chunk}{RESULT_SUFFIX}"


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


USAGE_TRAILER = struct.Struct("<dQ4s")
"""What a task used, after its envelope in its :data:`TASK` record: CPU seconds (user and
system, of the worker and the processes it waited for, while the task ran), the peak
resident memory of the job's worker so far in KiB (of it or of a process it waited for),
and :data:`USAGE_MAGIC`. A pickle ends with its STOP opcode ``.``, never with the magic,
so a payload that ends with the magic has the trailer."""
USAGE_MAGIC = b"BPU1"


def encode_usage(cpu_s: float, max_rss_kb: int) -> bytes:
    """The :data:`USAGE_TRAILER` of one task."""
    return USAGE_TRAILER.pack(cpu_s, max_rss_kb, USAGE_MAGIC)


def decode_usage(payload: bytes) -> tuple[float, int] | None:
    """``(cpu_s, max_rss_kb)`` from a :data:`TASK` payload; None if it has no trailer (a
    record of an older worker, or an envelope the driver made)."""
    if len(payload) <= USAGE_TRAILER.size or payload[-4:] != USAGE_MAGIC:
        return None
    cpu_s, max_rss_kb, _ = USAGE_TRAILER.unpack_from(payload, len(payload) - USAGE_TRAILER.size)
    return cpu_s, max_rss_kb


def is_job_variable(name: bytes) -> bool:
    """A variable that belongs to a job (the scheduler's, the node's), not to the driver."""
    return name in JOB_VARIABLES or name.startswith(JOB_VARIABLE_PREFIXES)


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` of this host is alive (a zombie is not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is dead, though kill() still finds it
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] not in ("Z", "X")
    except OSError:
        return True


class JobLogs:
    """The one place job logs are named: each job of a pool writes ``POOL/logs/NAME.out``
    and ``NAME.err``, one pair per job (a resubmission is a new job, with a new pair),
    private (0600: a scheduler that creates them itself does so with the submitter's
    umask, which the scheduler commands run with set to 077)."""

    OUT = ".out"
    ERR = ".err"

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = os.fspath(directory)

    def pair(self, name: str) -> tuple[str, str]:
        """The pair of job ``name``: its id, or the scheduler's pattern for it (``%j``,
        ``%A_%a``) in a submission's options."""
        stem = os.path.join(self.directory, name)
        return stem + self.OUT, stem + self.ERR

    @staticmethod
    def unique_name(prefix: str) -> str:
        """A name no other submission uses (``sge.5f0c2a9b71d3``), for a scheduler that
        cannot put the job id into it; an array's element ``i`` is ``NAME.i``."""
        return f"{prefix}.{os.urandom(6).hex()}"

    def new_pair(self, prefix: str) -> tuple[str, str]:
        """A pair under a :meth:`unique_name`, created empty and private now: for
        schedulers that keep the mode of a file that exists (SGE, PBS)."""
        paths = self.pair(self.unique_name(prefix))
        for path in paths:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        return paths

    def __repr__(self) -> str:
        return f"JobLogs({self.directory!r})"
