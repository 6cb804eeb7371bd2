"""What runs on the compute node: a standing worker that takes chunks from its pool's queue.

``python -m batchpool.worker POOL_DIR --job-id TEMPLATE``

``TEMPLATE`` names the job this worker runs in, from the scheduler's variables
(``{SLURM_JOB_ID}``, ``{SLURM_ARRAY_JOB_ID}_{SLURM_ARRAY_TASK_ID}``, ``{JOB_ID}``,
or a literal id); the worker writes it into every claim it makes.

The worker

1. restores the driver's environment exactly, except the variables that belong
   to this job (``SLURM_*``, ``SGE_*``, ``JOB_ID``, ...) and those the pool's
   ``setup`` lines set or unset (:func:`setup_changes`), which it keeps from the job;
   if a variable that only takes effect at interpreter start differs
   (``LD_LIBRARY_PATH``, ...), it re-executes itself once with the full environment;
2. takes the driver's ``sys.path`` and working directory, and runs the pool's
   ``initializer`` once;
3. then, until it is told to stop, takes ticket after ticket (of its ``--tier``):
   it reads the tickets the driver appended to ``POOL/tickets``, claims one by
   creating its record file ``results/CHUNK.TRY.rec`` exclusively, says so in its
   mailbox ``workers/JOB_ID``, runs the ticket's tasks in series (keeping imported
   modules and unpickled functions for the next ticket), and appends one record per
   task to the record file as soon as the task ended, its envelope ``(True, result)``
   or ``(False, (exception_pickle_or_None, type_name, message, traceback_text))``
   (:mod:`batchpool._layout`); once the chunk is complete it closes the file and says
   so in its mailbox.

The process the job started does not run tasks itself: it forks the worker and waits
for it, then appends to the mailbox how it ended (exit code or signal, and any signal
the scheduler sent first), so that the driver can tell a task that crashed its worker
from a job the scheduler killed.

It exits when no ticket came for ``worker_idle_s``, when the driver's log says
"stop", when its driver is gone (the driver's process is gone, if it is of this
process space, or its heartbeat has not changed for :data:`DRIVER_SILENT_S` of this
worker's own clock; not if ``POOL/detached`` exists), or after ``maxtasksperchild``
chunks (after one with ``worker_idle_s=0``).

This module is imported on every job start: it imports nothing heavy.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import sys
import time
import zlib

from ._layout import (
    BEGIN,
    CANCELLED,
    CLAIMED,
    CLOSED,
    END,
    ENDED,
    EXITED,
    FINISHED,
    NO_SPACE_ERRNOS,
    NO_SPACE_EXIT,
    POSTED,
    READY,
    STOP,
    TASK,
    Claim,
    DriverBeat,
    Failure,
    PoolPaths,
    RecordReader,
    SessionPaths,
    Ticket,
    append_record,
    encode_record,
    encode_usage,
    is_job_variable,
    job_id_from_environment,
    parse_config,
    process_alive,
    read_file,
    read_tasks,
)

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing
if TYPE_CHECKING:
    import resource
    from collections.abc import Callable, Iterable
    from typing import Any

# Read by the interpreter or the dynamic loader at process start only.
STARTUP_VARIABLES = (
    b"LD_LIBRARY_PATH",
    b"LD_PRELOAD",
    b"PYTHONHOME",
    b"PYTHONPATH",
    b"PYTHONSAFEPATH",
    b"PYTHONNOUSERSITE",
    b"PYTHONUSERBASE",
)
REEXEC_MARK = b"BATCHPOOL_WORKER_REEXEC"

MIN_WAIT_S = 0.002
"""First wait for a ticket that is not there yet; each further wait is 1.5 times longer..."""
MAX_WAIT_S = 0.05
"""...up to this: an idle worker reads the driver's log 20 times a second (one open each)."""
CHECK_S = 1.0
"""How often an idle worker looks at the driver's heartbeat."""
DRIVER_SILENT_S = 120.0
"""A driver on another host whose heartbeat has not changed for this long is gone."""
FUNCTION_CACHE_SIZE = 16


def merge_environment(driver: dict, job: dict) -> dict:
    """The driver's variables, but the job's own variables from the job (all ``bytes``)."""
    merged = {k: v for k, v in driver.items() if not is_job_variable(k)}
    merged.update({k: v for k, v in job.items() if is_job_variable(k)})
    return merged


SETUP_SNAPSHOT = b"BATCHPOOL_BEFORE_SETUP"
"""The job's variables before its ``setup`` lines ran, as ``NAME:crc32`` words, which the
job script sets with :data:`SNAPSHOT_CODE` (:func:`batchpool.backend.script_body`)."""
SNAPSHOT_CODE = (
    "import os,sys,zlib;sys.stdout.write(' '.join('%s:%x' % (k.decode('latin-1'), "
    "zlib.crc32(v)) for k, v in os.environb.items()))"
)


def setup_changes(target: dict, job: dict, snapshot: bytes) -> dict:
    """``target`` with the variables that the ``setup`` lines set or unset in ``job``:
    those whose value differs from ``snapshot`` (:data:`SETUP_SNAPSHOT`)."""
    before = dict(word.rsplit(b":", 1) for word in snapshot.split())
    merged = dict(target)
    merged.update(
        (k, v) for k, v in job.items() if before.get(k) != b"%x" % zlib.crc32(v)
    )
    for name in before.keys() - job.keys():
        merged.pop(name, None)
    return merged


def _restore_environment(pool_dir: str) -> None:
    with open(PoolPaths(pool_dir).environment, "rb") as f:
        saved = pickle.load(f)
    target = merge_environment(saved["environ"], dict(os.environb))
    snapshot = os.environb.get(SETUP_SNAPSHOT)
    if snapshot is not None:  # kept through a re-exec, which merges again
        target = setup_changes(target, dict(os.environb), snapshot)
    needs_reexec = any(os.environb.get(k) != target.get(k) for k in STARTUP_VARIABLES)
    if needs_reexec and REEXEC_MARK not in os.environb:
        target[REEXEC_MARK] = b"1"
        os.execve(sys.executable, [sys.executable, "-m", "batchpool.worker", *sys.argv[1:]], target)
    target.pop(REEXEC_MARK, None)
    target.pop(SETUP_SNAPSHOT, None)
    os.environb.clear()
    os.environb.update(target)
    sys.path[:] = saved["sys_path"]
    if os.path.isdir(saved["cwd"]):
        os.chdir(saved["cwd"])


def _failure(exc: BaseException) -> tuple[bool, Failure]:
    import traceback  # only when a task failed

    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    try:
        exc_pickle = pickle.dumps(exc)
        pickle.loads(exc_pickle)  # some exceptions pickle but cannot be rebuilt
    except Exception:
        exc_pickle = None
    return (False, Failure(exc_pickle, type(exc).__qualname__, str(exc), text))


def starcall(function: Callable[..., Any], args: Iterable[Any]) -> Any:
    """Runs a ``starmap`` task."""
    return function(*args)


def applycall(
    function: Callable[..., Any], args_and_kwds: tuple[tuple[Any, ...], dict[str, Any]]
) -> Any:
    """Runs an ``apply`` task."""
    args, kwds = args_and_kwds
    return function(*args, **kwds)


def run_task(function: Callable[[Any], Any], pickled: bytes) -> bytes:
    """Run one task; its envelope, pickled: ``(True, result)``, or the failure."""
    try:
        envelope = (True, function(pickle.loads(pickled)))
    except Exception as exc:
        envelope = _failure(exc)
    try:
        return pickle.dumps(envelope, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:
        # A result that cannot be pickled becomes that task's error, as in multiprocessing.
        from multiprocessing.pool import MaybeEncodingError  # type: ignore[attr-defined]

        return pickle.dumps(_failure(MaybeEncodingError(exc, envelope[1])))


def cpu_seconds() -> float:
    """CPU time of this process and of the children it waited for, user and system."""
    own, children = _rusage()
    return float(own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime)


def peak_rss_kb() -> int:
    """The peak resident memory of this process, or of the largest child it waited for,
    in KiB (what ``getrusage`` says on Linux)."""
    own, children = _rusage()
    return int(max(own.ru_maxrss, children.ru_maxrss))


def _rusage() -> tuple[resource.struct_rusage, resource.struct_rusage]:
    import resource  # a builtin module: costs nothing after the first task

    return resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)


class _Unusable:
    """Stands for a function that could not be unpickled: each task fails with its error."""

    def __init__(self, error: BaseException) -> None:
        self.error = error

    def __call__(self, task: object) -> Any:
        raise self.error


class Worker:
    """The ticket loop of one job (module docstring)."""

    def __init__(
        self, pool_dir: str, job_id: str, host: str = "", pid: int = 0, tier: int = 0
    ) -> None:
        self.pool_dir = pool_dir
        self.paths = PoolPaths(pool_dir)
        self.tier = tier
        self.claim = Claim(job_id, host or os.uname().nodename, pid or os.getpid()).encode()
        self.mailbox = self.paths.mailbox(job_id)
        config = read_file(self.paths.config)
        if config is None:
            raise FileNotFoundError(not_shared(pool_dir))
        self.idle_s, self.max_chunks = parse_config(config)
        if self.idle_s == 0:  # no standing: one chunk per job
            self.max_chunks = 1
        self.functions: dict[str, Callable[[Any], Any]] = {}
        self.log = RecordReader(self.paths.tickets)
        self.pending: dict[int, Ticket] = {}
        """Tickets of this worker's tier that it has not tried to claim, in order."""
        self.cancelled: set[str] = set()
        self.stopped = False
        self.num_chunks = 0
        self._driver_seen = (b"", time.monotonic())

    def run(self) -> int:
        """Take and run tickets until told to stop; the number of chunks run."""
        wait = MIN_WAIT_S
        last_work = next_check = time.monotonic()
        while True:
            now = time.monotonic()
            if now >= next_check:
                if self._driver_gone():
                    return self.num_chunks
                next_check = now + CHECK_S
            if self.take_one():
                last_work = time.monotonic()
                wait = MIN_WAIT_S
                if self.retired():
                    return self.num_chunks
                continue
            if now - last_work >= self.idle_s or self.stopped:
                return self.num_chunks
            time.sleep(wait)
            wait = min(wait * 1.5, MAX_WAIT_S)

    def take_one(self) -> bool:
        """Claim the next ticket there is and run it; False if there is none now."""
        self.read_log()
        while self.pending and not self.stopped:
            number = next(iter(self.pending))
            ticket = self.pending.pop(number)
            fd = self.claim_ticket(ticket)
            if fd is not None:
                self.run_ticket(ticket, fd)
                self.num_chunks += 1
                return True
        return False

    def read_log(self) -> set[int]:
        """Take in what the driver appended to its log; the tickets it closed."""
        closed = set()
        for kind, number, _, payload in self.log.read():
            if kind == POSTED:
                ticket = Ticket.decode(number, payload)
                if ticket.tier == self.tier and ticket.session_dir not in self.cancelled:
                    self.pending[number] = ticket
            elif kind == CLOSED:
                closed.add(number)
                self.pending.pop(number, None)
            elif kind == CANCELLED:
                session = payload.decode()
                self.cancelled.add(session)
                for n, ticket in list(self.pending.items()):
                    if ticket.session_dir == session:
                        del self.pending[n]
            elif kind == STOP:
                self.stopped = True
        return closed

    def claim_ticket(self, ticket: Ticket) -> int | None:
        """Claim ``ticket`` by creating its record file exclusively: the open file, or None
        if another worker (or the driver, withdrawing it) was first, or its session is gone.

        The driver removes a record file only after it closed the ticket in its log, so a
        claim that finds the ticket closed is undone: this worker read the log before."""
        path = record_path(ticket)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
        except (FileExistsError, FileNotFoundError):
            return None
        if ticket.number in self.read_log():
            os.close(fd)
            with contextlib.suppress(FileNotFoundError):  # the session is gone already
                os.unlink(path)
            return None
        os.write(fd, encode_record(BEGIN, ticket.start, time.time(), self.claim))
        append_record(self.mailbox, CLAIMED, ticket.number)
        return fd

    def retired(self) -> bool:
        """Whether ``maxtasksperchild`` chunks have been run."""
        return self.max_chunks is not None and self.num_chunks >= self.max_chunks

    def run_ticket(self, ticket: Ticket, fd: int) -> None:
        """Run the tasks of ``ticket`` into its record file ``fd`` (claimed), recording each
        as soon as it ended (module docstring of :mod:`batchpool._layout`)."""
        try:
            try:
                function = self._function(ticket)
                tasks = read_tasks(ticket.session_dir, ticket.start, ticket.stop)
            except FileNotFoundError:
                return  # the map ended meanwhile (another attempt of this chunk finished it)
            started = time.perf_counter()
            for index, pickled in enumerate(tasks, ticket.start):
                task_started, cpu_started = time.perf_counter(), cpu_seconds()
                envelope = run_task(function, pickled)
                seconds = time.perf_counter() - task_started
                usage = encode_usage(cpu_seconds() - cpu_started, peak_rss_kb())
                os.write(fd, encode_record(TASK, index, seconds, envelope + usage))
            os.write(fd, encode_record(END, ticket.stop, time.perf_counter() - started))
        finally:
            os.close(fd)
        append_record(self.mailbox, FINISHED, ticket.number)

    def _function(self, ticket: Ticket) -> Callable[[Any], Any]:
        function = self.functions.get(ticket.function_key)
        if function is None:
            with open(SessionPaths(ticket.session_dir).function, "rb") as f:
                payload = f.read()
            try:
                function = pickle.loads(payload)
            except Exception as error:  # e.g. a module missing on this node
                function = _Unusable(error)
            if len(self.functions) >= FUNCTION_CACHE_SIZE:
                del self.functions[next(iter(self.functions))]
            self.functions[ticket.function_key] = function
        return function

    def _driver_gone(self) -> bool:
        """The driver's process is gone (same process space), or its heartbeat stood still
        too long by this worker's clock; never for a detached pool, whose driver left on
        purpose (``batchpool.submit``)."""
        if os.path.exists(self.paths.detached):
            return False
        data = read_file(self.paths.heartbeat) or b""
        beat = DriverBeat.decode(data)
        if beat is not None and beat.here:
            return not process_alive(beat.pid)
        now = time.monotonic()
        seen, since = self._driver_seen
        if data != seen:
            self._driver_seen = (data, now)
            return False
        return now - since > DRIVER_SILENT_S


def record_path(ticket: Ticket) -> str:
    """The record file of ``ticket``'s chunk for this try."""
    return SessionPaths(ticket.session_dir).record(ticket.chunk, ticket.attempt)


NOT_SHARED_MARK = "is not there on this node: the work_dir must be on a filesystem"
"""The words of a worker that did not find its pool directory (what the driver looks for)."""


def not_shared(pool_dir: str) -> str:
    """What a worker says when the pool's directory is not there as the driver wrote it:
    the job sees another filesystem at the work_dir's path. Its last line is the same on
    every node, so that two jobs that said it count as the same failure."""
    return (
        f"batchpool worker on {os.uname().nodename}:\n"
        f"the pool directory {pool_dir} {NOT_SHARED_MARK} that the compute nodes share "
        "with the machine that runs the pool"
    )


def _run_initializer(pool_dir: str) -> None:
    data = read_file(PoolPaths(pool_dir).initializer)
    if data is not None:
        initializer, initargs = pickle.loads(data)
        if initializer is not None:
            initializer(*initargs)


NOT_SHARED_EXIT = 78
"""The worker's exit code when the pool's directory is not there (``EX_CONFIG``)."""
USAGE = "usage: python -m batchpool.worker POOL_DIR --job-id TEMPLATE [--tier N]\n"
FORWARDED_SIGNALS = ("SIGTERM", "SIGINT", "SIGHUP", "SIGUSR1", "SIGUSR2", "SIGXCPU")
"""Signals a scheduler sends before it kills a job (time limit, deletion, preemption)."""


def main(argv: list[str]) -> int:
    args = list(argv)
    if len(args) not in (3, 5) or args[1] != "--job-id" or args[3:4] not in ([], ["--tier"]):
        sys.stderr.write(USAGE)
        return 2
    pool_dir, template = args[0], args[2]
    tier = int(args[4]) if len(args) == 5 else 0
    os.umask(0o077)
    if not os.path.exists(PoolPaths(pool_dir).config):
        sys.stderr.write(not_shared(pool_dir) + "\n")
        return NOT_SHARED_EXIT
    if REEXEC_MARK not in os.environb:
        child = os.fork()
        if child:
            return _watch(child, pool_dir, job_id_from_environment(template))
    _restore_environment(pool_dir)
    job_id = job_id_from_environment(template)
    import faulthandler  # a crash in C code prints the Python stack to the job's stderr

    faulthandler.enable()
    _run_initializer(pool_dir)
    worker = Worker(pool_dir, job_id, tier=tier)
    try:
        append_record(worker.mailbox, READY, 0, worker.claim)
        worker.run()
        append_record(worker.mailbox, EXITED, 0)
    except OSError as error:
        if error.errno not in NO_SPACE_ERRNOS:
            raise
        sys.stderr.write(f"batchpool worker: cannot write to the pool's files: {error}\n")
        return NO_SPACE_EXIT
    return 0


def _watch(child: int, pool_dir: str, job_id: str) -> int:
    """Wait for the worker process ``child``, then append how it ended to the job's
    mailbox: what tells a crash inside a task (an exit code, a signal) from a kill by the
    scheduler (signalled first). Exits as the child did."""
    import signal

    received: list[int] = []

    def forward(signum: int, frame: object) -> None:
        received.append(signum)
        with contextlib.suppress(ProcessLookupError):  # it ended meanwhile
            os.kill(child, signum)

    for name in FORWARDED_SIGNALS:
        signal.signal(getattr(signal, name), forward)
    _, status = os.waitpid(child, 0)  # retried by Python when a signal came (PEP 475)
    if os.WIFSIGNALED(status):
        how, code = f"signal {os.WTERMSIG(status)}", 128 + os.WTERMSIG(status)
    else:
        code = os.waitstatus_to_exitcode(status)
        how = f"exit {code}"
    if received:
        how += f" after signal {received[0]}"
    try:
        append_record(PoolPaths(pool_dir).mailbox(job_id), ENDED, code, how.encode())
    except OSError as error:  # the pool directory is gone: nobody waits for the answer
        sys.stderr.write(f"batchpool worker: could not record its exit ({how}): {error}\n")
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
