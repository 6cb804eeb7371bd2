"""The pool that every backend shares.

``map``, ``starmap``, ``imap``, ``imap_unordered``, ``apply`` and the async
forms all go through :meth:`ProtoPool._chunk_results`, which runs one
:class:`MapRun`: pickle the tasks into a new session directory, submit one job
per chunk, collect result files as they appear, ask the backend for the jobs'
states at most once per ``polling_interval``, resubmit jobs that failed or
vanished, and clean up.
"""

from __future__ import annotations

import collections
import datetime
import functools
import inspect
import multiprocessing
import os
import pickle
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import closing
from pathlib import Path
from typing import Any, Callable, ClassVar, Optional

import cloudpickle

from . import worker
from .backend import Backend, Job, JobState, Submission, filtered_stderr
from .chunking import DEFAULT_MAX_NUM_CHUNKS, chunk_bounds, default_chunksize
from .errors import JobsLostError, PoolError, RemoteError, RemoteTraceback, SchedulerError
from .progress import Progress
from .session import HEARTBEAT_S, Manifest, Session, SessionBusyError, session_key

_RUN, _CLOSE, _TERMINATE = "RUN", "CLOSE", "TERMINATE"
_MIN_FS_WAIT_S = 0.005
_MAX_FS_WAIT_S = 0.1  # one scandir of results/, which holds only uncollected files
_SUBMITS_PER_ROUND = 16  # then results are collected before more jobs are submitted


class ProtoPool:
    """A ``multiprocessing.Pool`` whose chunks run as jobs of ``backend``.

    Parameters
    ----------
    processes
        As in ``multiprocessing.Pool``: for the local backend the number of
        worker processes; for a cluster backend a cap on this pool's running
        jobs (unless ``num_simultaneously_running_tasks`` is given). Without a
        ``chunksize``, a map is cut into at most ``4 * processes`` chunks.
    initializer, initargs
        Called as ``initializer(*initargs)`` in every job before its tasks.
    maxtasksperchild
        Accepted for compatibility; every job is a fresh process anyway.
    backend
        The scheduler: see :mod:`batchpool.backend`.
    work_dir
        Where session directories are made; must be reachable from the
        compute nodes. Default ``./.batchpool``.
    python_path
        The interpreter that runs the jobs. Default: this one, by absolute path.
    polling_interval
        Seconds: the longest wait between two status queries to the scheduler.
        Result files are looked for more often.
    max_num_resubmissions
        How often one chunk's job may be resubmitted after it failed or vanished.
    num_simultaneously_running_tasks
        Cap on this pool's jobs in the scheduler at once (fair share).
    keep_work_dir
        Keep the session directory after a successful map (it is always kept
        when something went wrong).
    verbose
        Print one line to stderr for every state change of the map.
    lost_job_grace_period_s
        How long a job may be out of the queue without its result before it
        counts as lost (shared filesystems show new files late).
    resume
        Re-attach to the unfinished session of the same map (same function,
        tasks, chunks and backend in the same ``work_dir``), keeping its
        results and queued jobs. ``False`` always starts a new session.
    """

    default_max_num_chunks: int = DEFAULT_MAX_NUM_CHUNKS

    def __init__(
        self,
        processes: Optional[int] = None,
        initializer: Optional[Callable[..., object]] = None,
        initargs: Iterable[Any] = (),
        maxtasksperchild: Optional[int] = None,
        *,
        backend: Backend,
        work_dir: str | os.PathLike[str] = ".batchpool",
        python_path: Optional[str | os.PathLike[str]] = None,
        polling_interval: float = 5.0,
        max_num_resubmissions: int = 10,
        num_simultaneously_running_tasks: Optional[int] = None,
        keep_work_dir: bool = False,
        verbose: bool = False,
        lost_job_grace_period_s: float = 10.0,
        resume: bool = True,
    ) -> None:
        if processes is not None and processes < 1:
            raise ValueError("Number of processes must be at least 1")
        if initializer is not None and not callable(initializer):
            raise TypeError("initializer must be a callable")
        if maxtasksperchild is not None and (
            not isinstance(maxtasksperchild, int) or maxtasksperchild <= 0
        ):
            raise ValueError("maxtasksperchild must be a positive int or None")
        if polling_interval <= 0:
            raise ValueError(f"polling_interval must be positive, not {polling_interval}")
        if max_num_resubmissions < 0:
            raise ValueError("max_num_resubmissions must be at least 0")
        if num_simultaneously_running_tasks is not None and num_simultaneously_running_tasks < 1:
            raise ValueError("num_simultaneously_running_tasks must be at least 1")
        self._processes = processes
        self._initializer = initializer
        self._initargs = tuple(initargs)
        self.backend = backend
        self.work_dir = Path(work_dir).absolute()
        self.python_path = _check_python_path(python_path)
        self.polling_interval = float(polling_interval)
        self.max_num_resubmissions = max_num_resubmissions
        self.num_simultaneously_running_tasks = num_simultaneously_running_tasks or processes
        self.keep_work_dir = keep_work_dir
        self.verbose = verbose
        self.lost_job_grace_period_s = float(lost_job_grace_period_s)
        self.resume = resume
        self._state = _RUN
        self._cancel = threading.Event()
        self._threads: set[threading.Thread] = set()
        self._threads_lock = threading.Lock()

    # -- the multiprocessing.Pool surface -------------------------------------------

    def map(
        self, func: Callable[[Any], Any], iterable: Iterable[Any], chunksize: Optional[int] = None
    ) -> list:
        """Apply ``func`` to every item; return the results in order."""
        return self._map(func, self._prepare(func, iterable), chunksize)

    def starmap(
        self,
        func: Callable[..., Any],
        iterable: Iterable[Iterable[Any]],
        chunksize: Optional[int] = None,
    ) -> list:
        """Like :meth:`map`, with each item unpacked as ``func(*item)``."""
        return self.map(_star(func), iterable, chunksize)

    def imap(
        self, func: Callable[[Any], Any], iterable: Iterable[Any], chunksize: Optional[int] = None
    ) -> Iterator:
        """Like :meth:`map`, but yield each result, in order, as soon as it is there."""
        return self._imap(func, self._prepare(func, iterable), chunksize, ordered=True)

    def imap_unordered(
        self, func: Callable[[Any], Any], iterable: Iterable[Any], chunksize: Optional[int] = None
    ) -> Iterator:
        """Like :meth:`imap`, but in the order the chunks finish."""
        return self._imap(func, self._prepare(func, iterable), chunksize, ordered=False)

    def apply(self, func: Callable[..., Any], args: Iterable[Any] = (), kwds: dict = {}) -> Any:  # noqa: B006 (multiprocessing's signature)
        """Call ``func(*args, **kwds)`` in one job and return its result."""
        return self.map(_apply(func), [(tuple(args), dict(kwds))], 1)[0]

    def apply_async(
        self,
        func: Callable[..., Any],
        args: Iterable[Any] = (),
        kwds: dict = {},  # noqa: B006 (multiprocessing's signature)
        callback: Optional[Callable[[Any], object]] = None,
        error_callback: Optional[Callable[[BaseException], object]] = None,
    ) -> AsyncResult:
        """Like :meth:`apply`, returning an :class:`AsyncResult` at once."""
        call = _apply(func)
        task = self._prepare(call, [(tuple(args), dict(kwds))])
        return self._async(lambda: self._map(call, task, 1)[0], callback, error_callback)

    def map_async(
        self,
        func: Callable[[Any], Any],
        iterable: Iterable[Any],
        chunksize: Optional[int] = None,
        callback: Optional[Callable[[list], object]] = None,
        error_callback: Optional[Callable[[BaseException], object]] = None,
    ) -> AsyncResult:
        """Like :meth:`map`, returning an :class:`AsyncResult` at once."""
        tasks = self._prepare(func, iterable)
        return self._async(lambda: self._map(func, tasks, chunksize), callback, error_callback)

    def starmap_async(
        self,
        func: Callable[..., Any],
        iterable: Iterable[Iterable[Any]],
        chunksize: Optional[int] = None,
        callback: Optional[Callable[[list], object]] = None,
        error_callback: Optional[Callable[[BaseException], object]] = None,
    ) -> AsyncResult:
        """Like :meth:`starmap`, returning an :class:`AsyncResult` at once."""
        return self.map_async(_star(func), iterable, chunksize, callback, error_callback)

    def close(self) -> None:
        """Accept no more work; running maps go on."""
        if self._state == _RUN:
            self._state = _CLOSE

    def terminate(self) -> None:
        """Stop at once: delete every job of this pool's running maps."""
        self._state = _TERMINATE
        self._cancel.set()
        self._join_threads()

    def join(self) -> None:
        """Wait for the async maps; call :meth:`close` or :meth:`terminate` first."""
        if self._state == _RUN:
            raise ValueError("Pool is still running")
        self._join_threads()

    def __enter__(self) -> ProtoPool:
        self._check_running()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.terminate()

    def __repr__(self) -> str:
        return (
            f"<{type(self).__module__}.{type(self).__qualname__} "
            f"state={self._state} backend={self.backend.name} work_dir={self.work_dir}>"
        )

    # -- one path for all of them ---------------------------------------------------

    def _check_running(self) -> None:
        if self._state != _RUN:
            raise ValueError("Pool not running")

    def _prepare(self, func: Callable, iterable: Iterable) -> list:
        self._check_running()
        if not callable(func):
            raise TypeError(f"func must be callable, not {type(func).__name__}")
        return list(iterable)

    def _map(self, func: Callable, tasks: list, chunksize: Optional[int]) -> list:
        results: list = [None] * len(tasks)
        for bounds, envelopes, run in self._chunk_results(func, tasks, chunksize):
            for i, envelope in zip(bounds, envelopes):
                results[i] = _value(envelope, run.session.dir)
        return results

    def _imap(
        self, func: Callable, tasks: list, chunksize: Optional[int], ordered: bool
    ) -> Iterator:
        waiting: dict[int, tuple] = {}
        next_start = 0
        for bounds, envelopes, run in self._chunk_results(func, tasks, chunksize):
            if not ordered:
                for envelope in envelopes:
                    yield _value(envelope, run.session.dir)
                continue
            waiting[bounds.start] = (envelopes, run)
            while next_start in waiting:
                ready, ready_run = waiting.pop(next_start)
                for envelope in ready:
                    yield _value(envelope, ready_run.session.dir)
                next_start += len(ready)

    def _chunk_results(
        self, func: Callable, tasks: list, chunksize: Optional[int]
    ) -> Iterator[tuple[range, list, MapRun]]:
        """Yield ``(task indices, envelopes, run)`` for every chunk as it finishes."""
        if chunksize is None:
            max_chunks = 4 * self._processes if self._processes else self.default_max_num_chunks
            chunksize = default_chunksize(len(tasks), max_chunks)
        bounds = chunk_bounds(len(tasks), chunksize)  # checks chunksize >= 1
        if not tasks:
            return
        run = MapRun.start(self, func, tasks, bounds)
        with run, closing(run.finished_chunks()) as finished:
            for chunk, envelopes in finished:
                yield bounds[chunk], envelopes, run
            run.succeeded = True

    def _async(
        self,
        compute: Callable[[], Any],
        callback: Optional[Callable],
        error_callback: Optional[Callable],
    ) -> AsyncResult:
        self._check_running()
        result = AsyncResult(callback, error_callback)

        def target() -> None:
            try:
                value = compute()
            except BaseException as error:  # handed to the caller through get()
                result._set(False, error)
            else:
                result._set(True, value)
            finally:
                with self._threads_lock:
                    self._threads.discard(threading.current_thread())

        thread = threading.Thread(target=target, name="batchpool-async", daemon=True)
        with self._threads_lock:
            self._threads.add(thread)
        thread.start()
        return result

    def _join_threads(self) -> None:
        with self._threads_lock:
            threads = list(self._threads)
        for thread in threads:
            if thread is not threading.current_thread():
                thread.join()

    def _say(self, session: Session, message: str, **fields: object) -> None:
        session.log(message, **fields)
        if self.verbose:
            extra = " ".join(f"{k}={v}" for k, v in fields.items())
            sys.stderr.write(f"batchpool {session.name}: {message} {extra}\n")


class BackendPool(ProtoPool):
    """A pool of one ``backend_class``: the keyword options that the backend class takes
    (see its parameters) build the backend, the others go to :class:`ProtoPool`.

    A backend's pool is then a docstring and ``backend_class = ...``.
    """

    backend_class: ClassVar[Callable[..., Backend]]

    def __init__(
        self,
        processes: Optional[int] = None,
        initializer: Optional[Callable[..., object]] = None,
        initargs: Iterable[Any] = (),
        maxtasksperchild: Optional[int] = None,
        **options: Any,
    ) -> None:
        names = _keyword_names(self.backend_class)
        backend = self.backend_class(**{k: options.pop(k) for k in list(options) if k in names})
        super().__init__(
            processes, initializer, initargs, maxtasksperchild, backend=backend, **options
        )


def _keyword_names(cls: type) -> set[str]:
    """The keyword parameters of ``cls`` and of the classes whose ``__init__`` it extends."""
    names = set()
    for klass in cls.__mro__:
        if "__init__" in vars(klass) and klass is not object:
            parameters = inspect.signature(klass.__init__).parameters.values()
            names |= {p.name for p in parameters if p.kind is p.KEYWORD_ONLY}
    return names


class AsyncResult:
    """The result of an ``*_async`` call, as ``multiprocessing.pool.AsyncResult``."""

    def __init__(self, callback: Optional[Callable], error_callback: Optional[Callable]) -> None:
        self._event = threading.Event()
        self._callback = callback
        self._error_callback = error_callback
        self._success = False
        self._value: Any = None

    def ready(self) -> bool:
        return self._event.is_set()

    def successful(self) -> bool:
        if not self.ready():
            raise ValueError(f"{self!r} not ready")
        return self._success

    def wait(self, timeout: Optional[float] = None) -> None:
        self._event.wait(timeout)

    def get(self, timeout: Optional[float] = None) -> Any:
        self.wait(timeout)
        if not self.ready():
            raise multiprocessing.TimeoutError
        if self._success:
            return self._value
        raise self._value

    def _set(self, success: bool, value: Any) -> None:
        self._success, self._value = success, value
        if success and self._callback is not None:
            self._callback(value)
        if not success and self._error_callback is not None:
            self._error_callback(value)
        self._event.set()


class MapRun:
    """One map's session and jobs: submit, poll, resubmit, collect, clean up."""

    def __init__(self, pool: ProtoPool, session: Session, chunk_sizes: list[int]) -> None:
        self.pool = pool
        self.backend = pool.backend
        self.session = session
        self.chunk_sizes = chunk_sizes
        self.num_chunks = len(chunk_sizes)
        self.todo: collections.deque[int] = collections.deque(range(self.num_chunks))
        self.live: dict[int, Job] = {}
        self.submissions: collections.Counter[int] = collections.Counter()
        self.collected: set[int] = set()
        self.unfolded: list[Job] = []
        self.out_of_queue_since: dict[str, float] = {}
        self.last_reason: dict[int, str] = {}
        self.last_job: dict[int, Job] = {}
        self.resumed_results: list[tuple[int, bytes]] = []
        self.resumed = False
        self.succeeded = False
        self.progress = Progress(sum(chunk_sizes), session.name, pool.verbose)

    @classmethod
    def start(cls, pool: ProtoPool, func: Callable, tasks: list, bounds: list[range]) -> MapRun:
        """Pickle everything, then re-attach to the unfinished session of the same map, or
        write a new one; nothing is submitted yet."""
        function = _pickle("the function", (pool._initializer, pool._initargs, func))
        chunks = [_pickle(f"task {b.start}", tasks[b.start : b.stop]) for b in bounds]
        key = session_key([function, pool.backend.name.encode(), *chunks])
        session = Session.find_unfinished(pool.work_dir, key) if pool.resume else None
        if session is not None and not _took_over(session):
            session = None  # the same map, driven by another thread of this driver
        resumed = session is not None
        if session is None:
            manifest = Manifest(
                num_tasks=len(tasks),
                chunksize=len(bounds[0]),
                num_chunks=len(bounds),
                backend=pool.backend.name,
                function=_describe(func),
                created=datetime.datetime.now().isoformat(timespec="seconds"),
            )
            session = _write_session(pool.work_dir, key, function, chunks, manifest)
        run = cls(pool, session, [len(b) for b in bounds])
        run.resumed = resumed
        if not resumed:
            pool._say(
                session, "session", tasks=len(tasks), chunks=len(bounds), backend=pool.backend.name
            )
        return run

    def _reattach(self) -> None:
        """Take over an unfinished session: keep its results, adopt its queued jobs."""
        # A chunk whose tasks raised runs again: the failure may have been passing.
        self.resumed_results = [
            (chunk, payload)
            for chunk, payload in sorted(self.session.archived_results().items())
            if all(ok for ok, _ in pickle.loads(payload))
        ]
        self.collected = {chunk for chunk, _ in self.resumed_results}
        self.resumed_results += self._collect()
        for entry in self.session.journal():
            self.submissions[entry.chunk] += 1
            self.last_job[entry.chunk] = entry.job()
        open_jobs = [j for c, j in self.last_job.items() if c not in self.collected]
        statuses = self.backend.status(self.session.job_name, open_jobs) if open_jobs else {}
        gone = []
        for job in open_jobs:
            status = statuses.get(job.job_id)
            if status is not None and status.state in (JobState.PENDING, JobState.RUNNING):
                self.live[job.chunk] = job
            else:
                self.last_reason[job.chunk] = (
                    status.reason if status else "gone while no driver ran"
                )
                gone.append(job)
        self.todo = collections.deque(
            c for c in range(self.num_chunks) if c not in self.collected and c not in self.last_job
        )
        self.pool._say(
            self.session,
            "resumed",
            results=len(self.collected),
            queued_jobs=len(self.live),
            gone_jobs=len(gone),
        )
        self._delete([j for j in gone if statuses.get(j.job_id)], "re-attached")
        self._resubmit(gone)

    def __enter__(self) -> MapRun:
        return self

    def __exit__(self, exc_type: object, error: Optional[BaseException], tb: object) -> None:
        if isinstance(error, PoolError) and error.session_dir is None:
            error.session_dir = self.session.dir
        try:
            self._delete(list(self.live.values()), "the map ended")
        except SchedulerError as delete_error:
            if error is None:
                raise
            # Do not hide the error that ended the map; tell about this one.
            sys.stderr.write(
                f"batchpool: could not delete the jobs of {self.session.dir}: {delete_error}\n"
            )
        finally:
            self.progress.close()
            self._fold_logs(self.unfolded)
            self._finish(error)

    def _finish(self, error: Optional[BaseException]) -> None:
        if self.succeeded and error is None:
            self.pool._say(self.session, "done")
            self.session.mark_done()
            if self.pool.keep_work_dir:
                self.session.close_log()
                self.session.release()
            else:
                self.session.remove()
        else:
            self.pool._say(self.session, "stopped", error=repr(error), kept=str(self.session.dir))
            self.session.close_log()
            self.session.release()

    def finished_chunks(self) -> Iterator[tuple[int, list]]:
        """Yield ``(chunk, envelopes)`` as results arrive, until every chunk has one."""
        fs_wait = _MIN_FS_WAIT_S
        last_status = last_heartbeat = time.monotonic()
        if self.resumed:
            self._reattach()
        self.progress.advance(sum(self.chunk_sizes[chunk] for chunk, _ in self.resumed_results))
        for chunk, payload in self.resumed_results:
            yield chunk, pickle.loads(payload)
        self.resumed_results = []
        while len(self.collected) < self.num_chunks:
            if time.monotonic() - last_heartbeat >= HEARTBEAT_S:
                last_heartbeat = time.monotonic()
                self.session.heartbeat()
            more_to_submit = self._submit_due()
            arrived = self._collect()
            got_results = bool(arrived)
            arrived.reverse()
            while arrived:  # each payload is dropped once unpickled, to keep the peak low
                chunk, payload = arrived.pop()
                envelopes = pickle.loads(payload)
                del payload
                yield chunk, envelopes
            unfinished = len(self.collected) < self.num_chunks
            if unfinished and time.monotonic() - last_status >= self.pool.polling_interval:
                last_status = time.monotonic()
                self._check_status()
            fs_wait = _MIN_FS_WAIT_S if got_results else min(2 * fs_wait, _MAX_FS_WAIT_S)
            if unfinished and not more_to_submit:
                until_status = last_status + self.pool.polling_interval - time.monotonic()
                if self.pool._cancel.wait(max(0.0, min(fs_wait, until_status))):
                    raise PoolError("The pool was terminated while the map ran.")

    def _submit_due(self) -> bool:
        """Submit due chunks, at most ``_SUBMITS_PER_ROUND`` submissions; True if more are
        due right now."""
        if not self.todo:
            return False
        cap = self.pool.num_simultaneously_running_tasks
        per_submit = self.backend.max_chunks_per_submit()
        native = (
            cap is not None
            and self.backend.throttles
            and not self.live
            and len(self.todo) <= per_submit
        )
        room = len(self.todo) if cap is None or native else cap - len(self.live)
        for _ in range(_SUBMITS_PER_ROUND):
            if room <= 0 or not self.todo:
                return False
            batch = tuple(self.todo.popleft() for _ in range(min(room, per_submit, len(self.todo))))
            submission = Submission(
                session_dir=self.session.dir,
                job_name=self.session.job_name,
                chunks=batch,
                python_path=self.pool.python_path,
                log_dir=self.session.log_dir,
                max_running=cap if native else None,
            )
            try:
                jobs = self.backend.submit(submission)
            except BaseException:
                self.todo.extendleft(reversed(batch))
                raise
            self.session.record_jobs(jobs)
            for job in jobs:
                self.live[job.chunk] = job
                self.last_job[job.chunk] = job
                self.submissions[job.chunk] += 1
            self.pool._say(self.session, "submitted", chunks=len(jobs), first_job=jobs[0].job_id)
            room -= len(batch)
        return room > 0 and bool(self.todo)

    def _collect(self) -> list[tuple[int, bytes]]:
        arrived: list[tuple[int, bytes]] = []
        for chunk in self.session.new_result_chunks():
            if chunk in self.collected:  # a second job of the same chunk also finished
                self.session.result_path(chunk).unlink()
                continue
            arrived.append((chunk, self.session.collect_result(chunk)))
            self.collected.add(chunk)
            job = self.live.pop(chunk, None)
            if job is not None:
                self.unfolded.append(job)
        if arrived:
            self.pool._say(self.session, "collected", chunks=len(arrived))
            self.progress.advance(sum(self.chunk_sizes[chunk] for chunk, _ in arrived))
        return arrived

    def _check_status(self) -> None:
        jobs = list(self.live.values()) + self.unfolded
        if not jobs:
            return
        statuses = self.backend.status(self.session.job_name, jobs)
        now = time.monotonic()
        failed, lost = [], []
        for chunk, job in list(self.live.items()):
            status = statuses.get(job.job_id)
            if status is not None and status.state in (JobState.PENDING, JobState.RUNNING):
                self.out_of_queue_since.pop(job.job_id, None)
            elif status is not None and status.state is JobState.FAILED:
                self.last_reason[chunk] = status.reason
                failed.append(job)
            elif not self.session.result_path(chunk).exists():
                self.last_reason[chunk] = status.reason if status else "vanished from the queue"
                since = self.out_of_queue_since.setdefault(job.job_id, now)
                if now - since >= self.pool.lost_job_grace_period_s:
                    lost.append(job)
        queued = [statuses.get(job.job_id) for job in self.live.values()]
        self.progress.counts.pending = sum(1 for q in queued if q and q.state is JobState.PENDING)
        self.progress.counts.running = sum(1 for q in queued if q and q.state is JobState.RUNNING)
        self.progress.counts.failed += len(failed) + len(lost)
        self.progress.show_counts()
        self._delete(failed, "error state")
        self._resubmit(failed + lost)
        gone = [j for j in self.unfolded if _has_left(statuses.get(j.job_id))]
        self._fold_logs(gone)

    def _resubmit(self, jobs: Sequence[Job]) -> None:
        exhausted = []
        for job in jobs:
            self.live.pop(job.chunk, None)
            self.out_of_queue_since.pop(job.job_id, None)
            self.unfolded.append(job)
            used = self.submissions[job.chunk] - 1
            if used >= self.pool.max_num_resubmissions:
                exhausted.append(job.chunk)
            else:
                self.todo.append(job.chunk)
                self.progress.counts.resubmitted += 1
                self.pool._say(
                    self.session,
                    "resubmitting",
                    chunk=job.chunk,
                    job=job.job_id,
                    reason=self.last_reason[job.chunk],
                )
        if exhausted:
            raise self._lost_error(exhausted)

    def _lost_error(self, chunks: list[int]) -> JobsLostError:
        lines = [
            f"{len(chunks)} chunk(s) lost: their jobs failed or vanished "
            f"{self.pool.max_num_resubmissions + 1} times "
            f"(max_num_resubmissions={self.pool.max_num_resubmissions})."
        ]
        for chunk in chunks:
            job = self.last_job[chunk]
            tail = filtered_stderr(self.backend, self.session.stderr_tail(job, num_lines=50))
            tail = "\n".join(tail.splitlines()[-10:])
            lines.append(
                f"  chunk {chunk}: last job {job.job_id}, last state: {self.last_reason[chunk]}"
            )
            if tail:
                lines.append("    stderr: " + tail.replace("\n", "\n            "))
        return JobsLostError("\n".join(lines), self.session.dir, chunks)

    def _delete(self, jobs: Sequence[Job], why: str) -> None:
        if not jobs:
            return
        self.pool._say(self.session, "deleting", jobs=len(jobs), why=why)
        self.backend.delete(jobs)

    def _fold_logs(self, jobs: list[Job]) -> None:
        if jobs:
            self.session.fold_logs(jobs)
            folded = {id(j) for j in jobs}
            self.unfolded = [j for j in self.unfolded if id(j) not in folded]


def _took_over(session: Session) -> bool:
    """Become the driver of an unfinished session; False if this process drives it."""
    try:
        session.acquire()
    except SessionBusyError as error:
        holder = session.lock_holder()
        if holder is not None and holder.is_mine():
            return False
        raise PoolError(
            f"Cannot run this map: {error}. Two drivers never drive one session; wait for "
            "the other one, or stop it.",
            session.dir,
        ) from None
    return True


def _write_session(
    work_dir: Path, key: str, function: bytes, chunks: list[bytes], manifest: Manifest
) -> Session:
    try:
        session = Session.create(work_dir, key)
        session.write_function(function)
        session.write_tasks(chunks)
        session.write_environment()
        session.write_manifest(manifest)
    except OSError as error:
        raise PoolError(
            f"Cannot write the session into work_dir {work_dir}: {error}. "
            "Nothing was submitted. The work_dir must be writable, have free space, "
            "and be reachable from the compute nodes."
        ) from error
    return session


def _has_left(status: object) -> bool:
    return status is None or getattr(status, "state", None) is JobState.ENDED


def _pickle(what: str, obj: object) -> bytes:
    try:
        return cloudpickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as error:
        if hasattr(error, "add_note"):
            error.add_note(f"batchpool: {what} cannot be pickled; nothing was submitted.")
        raise


def _value(envelope: tuple, session_dir: Path) -> Any:
    ok, value = envelope
    if ok:
        return value
    raise _task_error(value, session_dir)


def _task_error(payload: tuple, session_dir: Path) -> BaseException:
    """The exception a task raised, rebuilt, with the remote traceback as its cause."""
    exc_pickle, type_name, message, traceback_text = payload
    where = f"The session directory is kept at {session_dir}"
    error: Optional[BaseException] = None
    if exc_pickle is not None:
        try:
            error = pickle.loads(exc_pickle)
        except Exception as load_error:  # the type does not exist here
            message += f" (not rebuilt here: {load_error!r})"
    if error is None:
        error = RemoteError(f"{type_name}: {message}", session_dir, type_name, traceback_text)
    elif hasattr(error, "add_note"):
        error.add_note(where)
    error.__cause__ = RemoteTraceback(f'\n"""\n{traceback_text}"""\n{where}')
    return error


def _describe(func: Callable) -> str:
    """``module.qualname`` of a task function, seen through our star/apply wrappers."""
    inner = func.args[0] if isinstance(func, functools.partial) and func.args else func
    module = getattr(inner, "__module__", None) or "?"
    return f"{module}.{getattr(inner, '__qualname__', type(inner).__qualname__)}"


def _check_python_path(python_path: Optional[str | os.PathLike[str]]) -> str:
    path = Path(python_path) if python_path is not None else Path(sys.executable)
    if not str(path) or not path.is_file() or not os.access(path, os.X_OK):
        raise ValueError(
            f"python_path {str(path)!r} is not an executable file; give the absolute path "
            "of a Python interpreter (with batchpool installed) that the compute nodes can run."
        )
    return str(path.absolute())


def _star(func: Callable) -> Callable:
    if not callable(func):
        raise TypeError(f"func must be callable, not {type(func).__name__}")
    return functools.partial(worker.starcall, func)


def _apply(func: Callable) -> Callable:
    if not callable(func):
        raise TypeError(f"func must be callable, not {type(func).__name__}")
    return functools.partial(worker.applycall, func)
