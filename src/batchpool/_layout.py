"""File names and record formats shared by the driver and the worker (standard library only).

The worker imports this module on every job start, so it imports nothing heavy.
:mod:`batchpool.session` owns the layout (it builds every path from these names);
the worker only reads and writes what a ticket points it at.

A pool directory (one per :class:`~batchpool.Pool`, the queue its workers take work from)::

    POOL/environment.pkl    the driver's environment, sys.path and working directory
    POOL/initializer.pkl    (initializer, initargs), cloudpickled
    POOL/config             worker settings: idle seconds, max chunks per worker
    POOL/driver             the driver's heartbeat: host, process space, pid, and a counter
                            it rewrites in place
    POOL/tickets            the driver's log (records, below): tickets, the tickets it
                            closed, sessions cancelled, and "stop" once the pool closes
    POOL/detached           exists once the driver detached (``batchpool.submit``): the
                            workers stay when the driver is gone; it holds the backend
                            and options for ``batchpool.attach`` (JSON)
    POOL/workers/JOB_ID     the mailbox of a job (records, below): its worker's "ready"
                            (job id, host, pid), each ticket it claimed and finished, its
                            "exited", and how its process ended
    POOL/logs/              the jobs' stdout and stderr
    POOL/jobs.jsonl         the driver's journal of submissions: written before each
                            submission and after it, and when the pool ended
    POOL/staging.N/         a map's tasks while they are written, before its session is known

:class:`PoolPaths` joins these names.

A session directory (one per map, :class:`SessionPaths`; see :mod:`batchpool.session`)
holds what a ticket names: ``function.pkl``, ``tasks.pkl`` with ``tasks.idx`` (16 bytes
a task: start and stop offset), and the record files of its chunks,
``results/CHUNK.TRY.rec``, one for each time the chunk was posted; and what only the
driver reads: its manifest, lock, archive of collected results and journals.

A record file is a sequence of records (:data:`RECORD_HEAD`, then the payload): one
:data:`BEGIN`, one :data:`TASK` per task as soon as it ended, one :data:`END`. Each is
written with one ``write`` call, so a worker that dies keeps every task it finished, and
the first task without a record is the one it was running. A torn or damaged record
(its checksum does not match) ends the file for every reader. The driver's log and the
mailboxes are made of the same records, of other kinds.

The shared filesystem
---------------------
The work_dir lives on the filesystem that the login node and the compute nodes share:
NFS on most small clusters, Lustre, GPFS or BeeGFS on large ones. Each host sees it
through its own client and caches. What the protocol relies on, and what it does not:

* **Close-to-open consistency.** A file opened after its writer closed it shows what
  the writer wrote (NFS: the ``open`` revalidates the file's attributes with the server,
  RFC 7530 section 10.3.1 and ``nfs(5)``, "Data and metadata coherence"). A FUSE view
  keeps the size it cached even at ``open``, so every reader here asks the server
  for it (:func:`sync_attributes`), opens the file again for each look and reads from
  where it left off. The logs and mailboxes are appended to a whole record at a time
  and closed after each; a record file is read once its worker said it finished it
  (and closed it), or once its job is gone (a process's files are flushed as it
  ends); a look at a claim in a record file that is still open may find it not
  written yet, which reads as "no claim yet".
* **Exclusive create is decided once, at the server** (``O_CREAT | O_EXCL``: NFSv3
  ``CREATE`` in ``EXCLUSIVE`` mode, RFC 1813 section 3.3.8; NFSv4 ``OPEN`` with
  ``EXCLUSIVE4``). The claim of a ticket is the exclusive create of its record file.
* **Lookups of names are cached, and so is their absence.** A client that looked up a
  name that did not exist keeps "no such file" for up to ``acdirmin``..``acdirmax``
  (30..60 s by default, ``nfs(5)``, "lookupcache"), even after another host created
  it; FUSE views do the same for ``negative_timeout``; Lustre and GPFS are coherent.
  Snakemake's ``--latency-wait`` and batchtools issue 85 are this cache. So nobody here
  waits for a name to appear: the driver creates each job's mailbox before anyone
  looks at it, learns of claims and results from the mailboxes' content, and opens a
  record file only once its mailbox said it exists; the workers learn of tickets and
  of "stop" from the content of the driver's log, which exists before any job starts.
* **Attributes are cached** (``acregmin``/``acregmax``: 3..60 s): no one trusts a size
  or an mtime of a file another host writes; readers read until the end.
* **Metadata costs a round trip** to a server the whole cluster shares, for every
  create, rename and unlink (submitit issue 1592: 45 submissions took 50 s in a folder
  of 300,000 files). Posting a ticket, closing it and telling of a claim are appends;
  a chunk costs one create (its record file, which is also its claim) and one unlink
  (once the driver archived it), plus a failed exclusive create for each other worker
  that tried the same ticket first (workers race for the tickets they read). The
  work_dir holds the record files of the chunks in flight, one mailbox per job and a
  few files per pool and session.
* **Pids and clocks are per host.** A pid is compared only within the same process
  space (:func:`process_space`: boot id and pid namespace); a heartbeat is a counter
  that must change, timed by the reader's own monotonic clock, never compared with
  another host's time.
"""

from __future__ import annotations

import errno
import os
import struct
import zlib
from typing import Any, NamedTuple, Optional

# The names of the work_dir, spelled here only: :class:`PoolPaths` and :class:`SessionPaths`
# join them (``tests/unit/test_layout_names.py`` keeps every other module from spelling one).
POOL_PREFIX = "pool_"
"""A pool directory's name starts with it; a session's with its time."""

# In a pool directory
ENVIRONMENT_FILE = "environment.pkl"
INITIALIZER_FILE = "initializer.pkl"
CONFIG_FILE = "config"
DRIVER_FILE = "driver"
DETACHED_FILE = "detached"
CLOCK_FILE = ".clock"
"""Rewritten to read the filesystem's own clock (:func:`file_age_s`)."""
TICKETS_FILE = "tickets"
LOGS_DIR = "logs"
WORKERS_DIR = "workers"
STAGING_PREFIX = "staging."
JOBS_JOURNAL = "jobs.jsonl"

# In a session directory
FUNCTION_FILE = "function.pkl"
TASKS_FILE = "tasks.pkl"
TASKS_INDEX_FILE = "tasks.idx"
MANIFEST_FILE = "session.json"
RESULTS_DIR = "results"
RECORD_SUFFIX = ".rec"
DAMAGED_SUFFIX = ".damaged"
ARCHIVE_FILE = "results.archive"
CHUNK_EVENTS_FILE = "chunks.jsonl"
LOG_FILE = "log.jsonl"
LOCK_FILE = "driver.lock"
DONE_FILE = "done"
FAILED_FILE = "failed"

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

# Records of the driver's log, ``POOL/tickets``
POSTED = b"P"
"""A ticket. Number: the ticket's; payload: :meth:`Ticket.encode`."""
CLOSED = b"C"
"""Ticket ``number`` is done with (collected, or withdrawn): nobody is to claim it."""
CANCELLED = b"X"
"""Skip the tickets of a session. Payload: the session directory."""
STOP = b"S"
"""The pool closed: workers exit."""

# Records of a job's mailbox, ``POOL/workers/JOB_ID``
READY = b"R"
"""The worker is ready to take work (its job started, the environment and the
initializer worked). Payload: its :class:`Claim`; again after a requeue."""
CLAIMED = b"G"
"""The worker claimed ticket ``number`` (its record file exists)."""
FINISHED = b"F"
"""The worker finished ticket ``number`` (its record file is whole and closed)."""
EXITED = b"Q"
"""The worker exits by itself (idle, told to stop, retired)."""
ENDED = b"D"
"""How the worker process ended, written by the process that watched it. Payload:
``exit N``, ``signal N`` or ``stopped by signal N``, then any signal received first."""

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


class Ticket(NamedTuple):
    """Ticket ``number``: run tasks ``start:stop`` of ``session_dir`` as its chunk ``chunk``
    (posted for the ``attempt``-th time); only workers of ``tier`` take it (a retry with
    more memory or time)."""

    number: int
    session_dir: str
    chunk: int
    attempt: int
    start: int
    stop: int
    function_key: str
    tier: int = 0

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
    """Who took a ticket: a worker (its job id, host and pid) or the driver (``WITHDRAWN``).
    ``space`` is the process space the pid belongs to (:func:`process_space`)."""

    __slots__ = ("job_id", "host", "pid", "space")

    def __init__(self, job_id: str, host: str, pid: int, space: Optional[str] = None) -> None:
        self.job_id = job_id
        self.host = host
        self.pid = pid
        self.space = process_space() if space is None else space
        """Empty where it is not known (then the pid is not watched)."""

    @property
    def withdrawn(self) -> bool:
        return self.job_id == WITHDRAWN

    @property
    def here(self) -> bool:
        """Whether the pid is one of this process space (its process can be watched)."""
        return self.space == process_space()

    def encode(self) -> bytes:
        return f"{self.job_id}\n{self.host}\n{self.pid}\n{self.space}\n".encode()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Claim) and self.encode() == other.encode()

    def __hash__(self) -> int:
        return hash(self.encode())

    @classmethod
    def decode(cls, data: bytes) -> Claim | None:
        """None while the claimant has not finished writing it."""
        lines = data.decode(errors="replace").split("\n")
        if len(lines) != 5 or lines[4] or not lines[2].isdigit():
            return None
        return cls(lines[0], lines[1], int(lines[2]), lines[3])

    def __repr__(self) -> str:
        return f"Claim(job {self.job_id} on {self.host}, pid {self.pid})"


class DriverBeat:
    """The content of ``POOL/driver``: where the driver runs, and a counter it raises
    every few seconds, rewritten in place (no new name for a cache to miss)."""

    __slots__ = ("host", "space", "pid", "counter")
    WIDTH = 20
    """Digits of the counter: the file keeps its size, so a rewrite is one write."""

    def __init__(self, host: str, space: str, pid: int, counter: int) -> None:
        self.host = host
        self.space = space
        self.pid = pid
        self.counter = counter

    @property
    def here(self) -> bool:
        """Whether the driver's pid is one of this process space."""
        return self.space == process_space()

    def encode(self) -> bytes:
        counter = str(self.counter).rjust(self.WIDTH, "0")
        return f"{self.host}\n{self.space}\n{self.pid}\n{counter}\n".encode()

    @classmethod
    def decode(cls, data: bytes) -> DriverBeat | None:
        """None for a file that is not whole."""
        lines = data.decode(errors="replace").split("\n")
        if len(lines) != 5 or lines[4] or not (lines[2].isdigit() and lines[3].isdigit()):
            return None
        return cls(lines[0], lines[1], int(lines[2]), int(lines[3]))


def modified(path: str) -> float:
    """The modification time of ``path`` as its server has it (:func:`sync_attributes`)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        sync_attributes(fd)
        return os.fstat(fd).st_mtime
    finally:
        os.close(fd)


def file_age_s(path: str | os.PathLike[str]) -> float:
    """Seconds since ``path`` was last written, by the clock of the filesystem that holds
    it: a file rewritten now beside it (:data:`CLOCK_FILE`) tells that clock's "now" (an
    NFS server stamps both), so no two hosts' clocks are compared. FileNotFoundError if
    there is no such file."""
    probe = os.path.join(os.path.dirname(os.path.abspath(path)), CLOCK_FILE)
    write_in_place(probe, b"now\n")
    return modified(probe) - modified(os.fspath(path))


def write_in_place(path: str, payload: bytes) -> None:
    """Overwrite the start of a private file (created if missing) with ``payload`` and
    close it: the same name and inode, so every host that knows the file sees the new
    content at its next ``open``."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        os.pwrite(fd, payload, 0)
    finally:
        os.close(fd)


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


def record_file_name(chunk: int, tries: int) -> str:
    """The record file of a chunk posted for the ``tries``-th time, in ``results/``."""
    return f"{chunk}.{tries}{RECORD_SUFFIX}"


def directory_name(prefix: str, stamp: str, key: str, n: int = 0) -> str:
    """The name of a new directory in a work_dir: a session's ``<stamp>_<key>`` (its
    map's key), a pool's ``pool_<stamp>_<pid>_<random>``; ``_N`` if that was taken."""
    return f"{prefix}{stamp}_{key}" + (f"_{n}" if n else "")


def key_of(name: str) -> str:
    """The key in a session directory's :func:`directory_name` ("" if there is none)."""
    return (name.split("_")[1:2] or [""])[0]


def parse_record_file_name(name: str) -> tuple[int, int] | None:
    """``(chunk, tries)`` of a record file's name; None for another name."""
    stem, dot, suffix = name.rpartition(".")
    chunk, _, tries = stem.partition(".")
    if "." + suffix != RECORD_SUFFIX or not (chunk.isdigit() and tries.isdigit()):
        return None
    return int(chunk), int(tries)


class _Directory:
    """A directory of the work_dir, whose paths are strings (as the worker wants them)."""

    __slots__ = ("dir",)

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.dir = os.fspath(directory)

    def _join(self, *names: str) -> str:
        return os.path.join(self.dir, *names)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.dir!r})"


class _Name:
    """A file or directory of a :class:`_Directory`: its path, joined when read."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, directory: _Directory, owner: object = None) -> str:
        return os.path.join(directory.dir, self.name)


class PoolPaths(_Directory):
    """The paths of a pool directory (module docstring): the one place they are joined."""

    __slots__ = ()
    environment = _Name(ENVIRONMENT_FILE)
    initializer = _Name(INITIALIZER_FILE)
    config = _Name(CONFIG_FILE)
    heartbeat = _Name(DRIVER_FILE)
    """The driver's heartbeat (:class:`DriverBeat`)."""
    detached = _Name(DETACHED_FILE)
    tickets = _Name(TICKETS_FILE)
    """The driver's log."""
    workers = _Name(WORKERS_DIR)
    """The directory of the jobs' mailboxes (:meth:`mailbox`)."""
    logs = _Name(LOGS_DIR)
    """The directory of the jobs' stdout and stderr (:class:`JobLogs`)."""
    journal = _Name(JOBS_JOURNAL)
    """The driver's journal of submissions."""

    def mailbox(self, job_id: str) -> str:
        return self._join(WORKERS_DIR, job_id)

    def staging(self, n: int) -> str:
        return self._join(f"{STAGING_PREFIX}{n}")


class SessionPaths(_Directory):
    """The paths of a session directory: the one place they are joined."""

    __slots__ = ()
    function = _Name(FUNCTION_FILE)
    """The task function, cloudpickled."""
    tasks = _Name(TASKS_FILE)
    """Every task, pickled on its own."""
    tasks_index = _Name(TASKS_INDEX_FILE)
    """:data:`TASK_INDEX` of each task in :attr:`tasks`."""
    manifest = _Name(MANIFEST_FILE)
    """Number of tasks, chunksize, backend, function name (JSON); written last."""
    results = _Name(RESULTS_DIR)
    """The directory of the chunks' record files (:meth:`record`), and damaged ones."""
    archive = _Name(ARCHIVE_FILE)
    """The collected results, folded in while the map runs."""
    chunk_events = _Name(CHUNK_EVENTS_FILE)
    """Every chunk posted (tasks, attempt, pool, ticket), claimed (job) or lost."""
    log = _Name(LOG_FILE)
    """What the pool did for this map (JSON lines)."""
    lock = _Name(LOCK_FILE)
    """Host, pid and heartbeat of the driver driving the session now."""
    done = _Name(DONE_FILE)
    """Written when the map succeeded."""
    failed = _Name(FAILED_FILE)
    """Written when the map ended because tasks raised (their number, JSON)."""

    def record(self, chunk: int, tries: int) -> str:
        """The record file of a chunk posted for the ``tries``-th time: its claim, then
        its tasks' envelopes as they end."""
        return self._join(RESULTS_DIR, record_file_name(chunk, tries))

    def stale_lock(self, pid: int) -> str:
        """Where driver ``pid`` moves a stale lock before it removes it."""
        return self._join(f"{LOCK_FILE}.stale.{pid}")

    def relative(self, path: str | os.PathLike[str]) -> str:
        """``path`` as a message names it: within the session (``results/3.0.rec``)."""
        return os.path.relpath(path, self.dir)

    @staticmethod
    def damaged(path: str | os.PathLike[str], n: int = 0) -> str:
        """A name that keeps the damaged file ``path`` aside: ``NAME.damaged``, or
        ``NAME.damaged.N`` for ``n`` > 0."""
        return f"{os.fspath(path)}{DAMAGED_SUFFIX}{f'.{n}' if n else ''}"

    @staticmethod
    def is_damaged(name: str) -> bool:
        """Whether ``name`` is a file kept aside by :meth:`damaged`."""
        return DAMAGED_SUFFIX in name


class RecordReader:
    """Reads the records appended to a file since the last look: the file is opened
    again for every look (close-to-open: what its writer closed is there), read from
    where the last look stopped, and a record not yet whole waits for the next look."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.offset = 0
        self.damaged = False
        """The file holds a record that fails its checks: nothing after it is read."""

    def read(self) -> list[tuple[bytes, int, float, bytes]]:
        """The whole records written since the last call (none if there is no file)."""
        if self.damaged:
            return []
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return []
        try:
            data = _read_from(fd, self.offset)
        finally:
            os.close(fd)
        records = []
        pos = 0
        while True:
            found = decode_record_at(data, pos)
            if found is None:
                break
            records.append(found[0])
            pos = found[1]
        if len(data) - pos >= RECORD_HEAD.size:
            kind, size = RECORD_HEAD.unpack_from(data, pos)[:2]
            if len(data) - pos >= RECORD_HEAD.size + size:  # whole, but its checksum fails
                self.damaged = True
        self.offset += pos
        return records


def _read_from(fd: int, offset: int) -> bytes:
    """Everything from ``offset`` to the end, after :func:`sync_attributes`: a client
    that cached the file's size ends a read there."""
    sync_attributes(fd)
    chunks = []
    while data := os.pread(fd, 1 << 20, offset):
        chunks.append(data)
        offset += len(data)
    return b"".join(chunks)


def sync_attributes(fd: int) -> None:
    """Ask the filesystem's server for the attributes (the size) of the open file ``fd``:
    ``statx(AT_STATX_FORCE_SYNC)`` (Linux 4.11; ``statx(2)``), which NFS and FUSE honour
    even within their attribute cache time. An NFS ``open`` revalidates them anyway
    (close-to-open), a FUSE ``open`` does not. Elsewhere an ``fstat``."""
    global _statx
    if _statx is None:
        _statx = _load_statx()
    if not _statx or _statx(fd, b"", _AT_EMPTY_PATH | _AT_STATX_FORCE_SYNC, _STATX_SIZE, _buffer):
        os.fstat(fd)


def _load_statx() -> Any:
    try:
        import ctypes  # only here: the worker's start-up stays light elsewhere

        function = ctypes.CDLL(None, use_errno=True).statx
    except (ImportError, OSError, AttributeError):
        return False
    global _buffer
    _buffer = ctypes.create_string_buffer(256)  # struct statx
    return function


_statx: Any = None
_buffer: Any = None
_AT_EMPTY_PATH = 0x1000
_AT_STATX_FORCE_SYNC = 0x2000
_STATX_SIZE = 0x200


def append_record(path: str, kind: bytes, number: int, payload: bytes = b"") -> None:
    """Append one record to a log or a mailbox, and close it (which makes it visible to
    any host that opens the file afterwards)."""
    append_bytes(path, encode_record(kind, number, 0.0, payload))


def append_bytes(path: str, data: bytes) -> None:
    """Append ``data`` in one write to a private file (created if missing) and close it."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def read_file(path: str) -> bytes | None:
    """The content of ``path`` as its server has it (:func:`sync_attributes`), or None if
    there is no such file."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        return _read_from(fd, 0)
    finally:
        os.close(fd)


def read_tasks(session_dir: str, start: int, stop: int) -> list:
    """The pickled tasks ``start:stop`` of a session, each still pickled."""
    if stop <= start:
        return []
    paths = SessionPaths(session_dir)
    with open(paths.tasks_index, "rb") as f:
        f.seek(TASK_INDEX.size * start)
        index = f.read(TASK_INDEX.size * (stop - start))
    if len(index) != TASK_INDEX.size * (stop - start):
        raise ValueError(f"tasks {start}:{stop} are not in {session_dir}")
    bounds = [TASK_INDEX.unpack_from(index, i * TASK_INDEX.size) for i in range(stop - start)]
    first, last = bounds[0][0], bounds[-1][1]
    with open(paths.tasks, "rb") as f:
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


def process_space() -> str:
    """What makes a pid meaningful: this machine's boot id and this process's pid
    namespace. Two processes of one space can watch each other's pids; a host name
    says nothing of that (a container or a simulated node may share it)."""
    global _process_space
    if _process_space is None:
        boot = read_file("/proc/sys/kernel/random/boot_id") or os.uname().nodename.encode()
        try:
            namespace = os.readlink("/proc/self/ns/pid")
        except OSError:
            namespace = "?"
        _process_space = f"{boot.decode().strip()}/{namespace}"
    return _process_space


_process_space: str | None = None


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` of this host is alive (a zombie is not; nor is pid 0)."""
    if pid <= 0:
        return False
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

    SCRIPT = ".sh"

    def new_pair(self, prefix: str) -> tuple[str, str]:
        """A pair under a :meth:`unique_name`, created empty and private now: for
        schedulers that keep the mode of a file that exists (SGE, PBS)."""
        return self.created_pair(self.unique_name(prefix))

    def created_pair(self, name: str) -> tuple[str, str]:
        """The pair of job ``name`` (a :meth:`unique_name`), created empty and private now."""
        paths = self.pair(name)
        for path in paths:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        return paths

    def script(self, name: str) -> str:
        """The job script of the submission ``name`` (a :meth:`unique_name`), beside its
        logs: for schedulers that take a script file (PBS)."""
        return os.path.join(self.directory, name + self.SCRIPT)

    def __repr__(self) -> str:
        return f"JobLogs({self.directory!r})"
