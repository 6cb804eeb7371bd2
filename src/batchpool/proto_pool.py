"""The ``multiprocessing.Pool`` surface that every backend shares.

Every method registers its work with the pool's one
:class:`~batchpool.dispatcher.Dispatcher` and returns a result object at once
(``map`` and friends then wait on it): no thread per call. ``imap`` and
``imap_unordered`` read their input lazily, in the pool's one feeder thread, at most
:data:`~batchpool.dispatcher.TASKS_AHEAD` tasks ahead of what the caller consumed.
"""

from __future__ import annotations

import collections
import functools
import inspect
import multiprocessing
import os
import pickle
import sys
import textwrap
import threading
import typing
import weakref
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Callable, Optional, TypeVar, Union

from . import worker
from ._layout import Failure
from .backend import Backend
from .calls import Call, CallKind, pickle_for_jobs, short_argument
from .dispatcher import TASKS_AHEAD, Dispatcher, PoolStatistics
from .errors import RemoteError, RemoteTraceback
from .options import PoolSettings
from .policy import RetryPolicy

DEFAULT_WORK_DIR = ".batchpool"
DEFAULT_POLLING_INTERVAL = 5.0
"""Seconds between two status queries of a cluster pool (``polling_interval``)."""
DEFAULT_MAX_NUM_RESUBMISSIONS = 10
DEFAULT_GRACE_PERIOD_S = 10.0
"""How long a cluster job may be gone without its result (``lost_job_grace_period_s``)."""
DEFAULT_WORKER_IDLE_S = 5.0
"""A worker with nothing to do for this long exits (module docstring of the pool)."""
DEFAULT_SCHEDULER_OUTAGE_S = 1800.0

_RUN, _CLOSE, _TERMINATE = "RUN", "CLOSE", "TERMINATE"

# -- the documentation every pool shares -------------------------------------------------

POOL_ARGUMENTS_DOC = """\
processes
    As in ``multiprocessing.Pool``: for the local backend the number of worker
    processes; for a cluster backend a cap on this pool's jobs at once (unless
    ``num_simultaneously_running_tasks`` is given).
initializer, initargs
    Called as ``initializer(*initargs)`` once in every worker, before its tasks.
maxtasksperchild
    A worker exits after this many chunks (a chunk is what ``multiprocessing``
    counts as a task), and a new one takes its place if work remains.
context
    Accepted for compatibility with ``multiprocessing.Pool``; not used.
"""
"""The positional parameters of every pool, as ``multiprocessing.Pool``'s."""

POOL_OPTIONS_DOC = """\
work_dir
    Where the pool's queue and each map's session directory are made; must be
    reachable from the compute nodes. Default ``./.batchpool``.
python_path
    The interpreter that runs the jobs. Default: this one, by absolute path.
polling_interval
    Seconds: the longest wait between two status queries to the scheduler (one
    query for all of the pool's jobs). Claims and results are looked for often.
max_num_resubmissions
    How often the tasks of one chunk may be put back in the queue after their job
    failed or vanished while holding them. Tasks a dying job had finished are kept;
    what is retried, and how, depends on why the job died (``retry_policy``).
num_simultaneously_running_tasks
    Cap on this pool's jobs in the scheduler at once (fair share).
keep_work_dir
    Keep session directories after a successful map (they are always kept when
    something went wrong).
verbose
    Print one line to stderr for every state change.
lost_job_grace_period_s
    How long a job may be out of the queue without the result of the chunk it
    held before that chunk counts as lost (shared filesystems show files late).
resume
    Re-attach to the unfinished session of the same map (same function, tasks,
    chunksize and backend in the same ``work_dir``), keeping its results and the
    chunks that live workers hold. ``False`` always starts a new session.
worker_idle_s
    Seconds a worker waits for new work before its job exits, and a job still
    queued when the work ran out before it is deleted. The default, 5 s,
    bridges the pauses between consecutive maps of a script (an MCMC step, a
    loop's own bookkeeping) while giving an idle job's slot back to the
    cluster soon. 0 gives one chunk per job.
scheduler_outage_s
    How long a scheduler that cannot be asked is waited out before
    :class:`~batchpool.SchedulerError` (default 30 minutes). Results that arrive
    meanwhile are collected, and no job is deleted for it.
retry_policy
    How lost jobs are retried by their cause (time limit, memory limit, a task that
    crashes its worker, ...): a :class:`~batchpool.RetryPolicy`, e.g.
    ``RetryPolicy(max_mem="16G", max_time="4:00:00")`` to let a task killed by a
    limit retry with more. The table is in :mod:`batchpool.policy`.
"""
"""The keyword options common to every pool, documented once: each pool's docstring
is composed of these texts (:func:`pool_doc`)."""

PROFILE_DOC = """\
profile
    The profile of the configuration file whose options this pool takes where
    they are not given here (:mod:`batchpool.config`); also the ``BATCHPOOL_*``
    variables. None: ``$BATCHPOOL_PROFILE``, else the file's default profile if it
    is one of this backend.
"""


def pool_doc(summary: str, *parameters: str) -> str:
    """A pool's docstring: ``summary``, then a numpydoc ``Parameters`` section made of
    ``parameters``, each a run of ``name`` lines with their indented description."""
    entries = "".join(textwrap.dedent(p).strip("\n") + "\n" for p in parameters if p.strip())
    return f"{inspect.cleandoc(summary)}\n\nParameters\n----------\n{entries}"


def parameters_of(klass: type) -> str:
    """The entries of the ``Parameters`` section of ``klass``'s own docstring, to compose
    into a pool's (:func:`pool_doc`); "" when it has none (``python -OO`` drops them)."""
    lines = inspect.cleandoc(klass.__doc__ or "").splitlines()
    if "Parameters" not in lines:
        return ""
    start = lines.index("Parameters") + 2  # after the underline
    end = next(
        (i for i in range(start, len(lines) - 1) if _is_underline(lines[i + 1])), len(lines)
    )
    return "\n".join(lines[start:end]).strip("\n") + "\n"


def _is_underline(line: str) -> bool:
    return len(line.strip()) >= 3 and set(line.strip()) == {"-"}


# -- typed signatures ----------------------------------------------------------------------

_Function = TypeVar("_Function", bound=Callable[..., Any])


def typed_signature(function: Callable[..., Any]) -> inspect.Signature:
    """``function``'s signature with its annotations evaluated: under ``from __future__
    import annotations`` they are strings, which ``help()`` would show in quotes."""
    hints = typing.get_type_hints(function)
    signature = inspect.signature(function)
    parameters = [
        p.replace(annotation=hints.get(p.name, p.annotation))
        for p in signature.parameters.values()
    ]
    returns = hints.get("return", signature.empty)
    return signature.replace(
        parameters=parameters, return_annotation=None if returns is type(None) else returns
    )


def _show_types(function: _Function) -> _Function:
    function.__signature__ = typed_signature(function)  # type: ignore[attr-defined]
    return function


def configured(backend: str) -> Callable[[_Function], _Function]:
    """Decorates the ``__init__`` of the ``Pool`` of ``backend`` (a name of
    :data:`batchpool.BACKENDS`): the options that are not given come from the profile and
    the ``BATCHPOOL_*`` variables (:mod:`batchpool.config`). The signature stays the
    one written, so an unknown keyword is the ``TypeError`` of the call."""

    def decorate(init: _Function) -> _Function:
        @functools.wraps(init)
        def configured_init(self: Pool, *args: Any, **options: Any) -> None:
            from .config import configured_options

            init(self, *args, **configured_options(backend, options, options.get("profile")))

        configured_init.__signature__ = typed_signature(init)  # type: ignore[attr-defined]
        return typing.cast(_Function, configured_init)

    return decorate


class Pool:
    __doc__ = pool_doc(
        """A ``multiprocessing.Pool`` whose work runs as jobs of ``backend``.

        The pool's jobs are standing workers: each takes the next chunk of any map of the
        pool as soon as it finished one, keeping imported modules and unpickled functions,
        until it has had nothing to do for ``worker_idle_s``. New jobs are requested only
        while there is more work than the live ones will take.

        The pools of the backends (:class:`batchpool.slurm.array.Pool`, ...) take the
        options of their backend in place of ``backend``, and a ``profile``.
        """,
        POOL_ARGUMENTS_DOC,
        """\
        backend
            The scheduler: see :mod:`batchpool.backend`.
        """,
        POOL_OPTIONS_DOC,
    )

    @_show_types
    def __init__(
        self,
        processes: Optional[int] = None,
        initializer: Optional[Callable[..., object]] = None,
        initargs: Iterable[Any] = (),
        maxtasksperchild: Optional[int] = None,
        context: object = None,
        *,
        backend: Backend,
        work_dir: Union[str, os.PathLike[str]] = DEFAULT_WORK_DIR,
        python_path: Optional[Union[str, os.PathLike[str]]] = None,
        polling_interval: float = DEFAULT_POLLING_INTERVAL,
        max_num_resubmissions: int = DEFAULT_MAX_NUM_RESUBMISSIONS,
        num_simultaneously_running_tasks: Optional[int] = None,
        keep_work_dir: bool = False,
        verbose: bool = False,
        lost_job_grace_period_s: float = DEFAULT_GRACE_PERIOD_S,
        resume: bool = True,
        worker_idle_s: float = DEFAULT_WORKER_IDLE_S,
        scheduler_outage_s: float = DEFAULT_SCHEDULER_OUTAGE_S,
        retry_policy: Optional[RetryPolicy] = None,
    ) -> None:
        _check_options(processes, initializer, maxtasksperchild, max_num_resubmissions)
        if polling_interval <= 0:
            raise ValueError(f"polling_interval must be positive, not {polling_interval}")
        if num_simultaneously_running_tasks is not None and num_simultaneously_running_tasks < 1:
            raise ValueError("num_simultaneously_running_tasks must be at least 1")
        if worker_idle_s < 0 or scheduler_outage_s < 0:
            raise ValueError("worker_idle_s and scheduler_outage_s must not be negative")
        self._processes = processes
        self.backend = backend
        self.work_dir = Path(work_dir).absolute()
        self.settings = PoolSettings(
            work_dir=self.work_dir,
            python_path=_check_python_path(python_path),
            polling_interval=float(polling_interval),
            max_num_resubmissions=max_num_resubmissions,
            max_workers=num_simultaneously_running_tasks or processes,
            keep_work_dir=keep_work_dir,
            verbose=verbose,
            lost_job_grace_period_s=float(lost_job_grace_period_s),
            resume=resume,
            worker_idle_s=float(worker_idle_s),
            maxtasksperchild=maxtasksperchild,
            scheduler_outage_s=float(scheduler_outage_s),
            retry_policy=retry_policy if retry_policy is not None else RetryPolicy(),
        )
        self._state = _RUN
        self._dispatcher = Dispatcher(backend, self.settings, initializer, tuple(initargs))
        self._feeder = _Feeder(self._dispatcher)
        # At exit or when collected unclosed, as multiprocessing's finalizer: jobs go.
        self._finalizer = weakref.finalize(self, _terminate, self._dispatcher, self._feeder)

    # -- the multiprocessing.Pool surface -------------------------------------------

    def map(
        self, func: Callable[[Any], Any], iterable: Iterable[Any], chunksize: Optional[int] = None
    ) -> list:
        """Apply ``func`` to every item; return the results in order."""
        results: list[Any] = self._wait(self.map_async(func, iterable, chunksize))
        return results

    def starmap(
        self,
        func: Callable[..., Any],
        iterable: Iterable[Iterable[Any]],
        chunksize: Optional[int] = None,
    ) -> list:
        """Like :meth:`map`, with each item unpacked as ``func(*item)``."""
        results: list[Any] = self._wait(self.starmap_async(func, iterable, chunksize))
        return results

    def imap(
        self, func: Callable[[Any], Any], iterable: Iterable[Any], chunksize: Optional[int] = None
    ) -> IMapIterator:
        """Like :meth:`map`, but yield each result, in order, as soon as it is there."""
        return self._imap(func, iterable, chunksize, ordered=True)

    def imap_unordered(
        self, func: Callable[[Any], Any], iterable: Iterable[Any], chunksize: Optional[int] = None
    ) -> IMapIterator:
        """Like :meth:`imap`, but in the order the tasks finish."""
        return self._imap(func, iterable, chunksize, ordered=False)

    def apply(
        self,
        func: Callable[..., Any],
        args: Iterable[Any] = (),
        kwds: dict[str, Any] = {},  # noqa: B006 (multiprocessing's signature)
    ) -> Any:
        """Call ``func(*args, **kwds)`` in a worker and return its result."""
        return self._wait(self.apply_async(func, args, kwds))

    def apply_async(
        self,
        func: Callable[..., Any],
        args: Iterable[Any] = (),
        kwds: dict[str, Any] = {},  # noqa: B006 (multiprocessing's signature)
        callback: Optional[Callable[[Any], object]] = None,
        error_callback: Optional[Callable[[BaseException], object]] = None,
    ) -> ApplyResult:
        """Like :meth:`apply`, returning an :class:`ApplyResult` at once."""
        self._check_running()
        result = ApplyResult(callback, error_callback)
        call = Call(CallKind.APPLY, _apply(func), [(tuple(args), dict(kwds))], result)
        self._dispatcher.submit(call)
        return result

    def map_async(
        self,
        func: Callable[[Any], Any],
        iterable: Iterable[Any],
        chunksize: Optional[int] = None,
        callback: Optional[Callable[[list], object]] = None,
        error_callback: Optional[Callable[[BaseException], object]] = None,
    ) -> MapResult:
        """Like :meth:`map`, returning a :class:`MapResult` at once."""
        return self._map_async(func, iterable, chunksize, callback, error_callback)

    def starmap_async(
        self,
        func: Callable[..., Any],
        iterable: Iterable[Iterable[Any]],
        chunksize: Optional[int] = None,
        callback: Optional[Callable[[list], object]] = None,
        error_callback: Optional[Callable[[BaseException], object]] = None,
    ) -> MapResult:
        """Like :meth:`starmap`, returning a :class:`MapResult` at once."""
        _check_callable(func)
        return self._map_async(
            functools.partial(worker.starcall, func), iterable, chunksize, callback, error_callback
        )

    def close(self) -> None:
        """Accept no more work; what was given runs to its end, then the workers exit."""
        if self._state == _RUN:
            self._state = _CLOSE
            self._feeder.close()
            self._dispatcher.close()

    def terminate(self) -> None:
        """Stop at once: delete every job of this pool; unfinished calls raise
        :class:`~batchpool.PoolError`."""
        self._state = _TERMINATE
        self._finalizer()

    def join(self) -> None:
        """Wait for the work given and for the workers to stop; call :meth:`close` or
        :meth:`terminate` first."""
        if self._state == _RUN:
            raise ValueError("Pool is still running")
        self._feeder.join()
        self._dispatcher.join()

    def submit_call(self, call: Call) -> None:
        """Hand ``call`` to the pool's engine, for fronts built on this pool (the
        Executor, :func:`batchpool.submit`): its sink gets the results."""
        self._check_running()
        self._dispatcher.submit(call)

    def statistics(self) -> PoolStatistics:
        """What the pool did so far: submissions, status queries, its jobs and directory."""
        return self._dispatcher.statistics()

    @property
    def polling_interval(self) -> float:
        return self.settings.polling_interval

    @property
    def python_path(self) -> str:
        return self.settings.python_path

    @property
    def max_num_resubmissions(self) -> int:
        return self.settings.max_num_resubmissions

    @property
    def size(self) -> int:
        """How many tasks the pool runs at once, at most (what schwimmbad and dynesty ask)."""
        return self.settings.max_workers or os.cpu_count() or 1

    def __enter__(self) -> Pool:
        self._check_running()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.terminate()

    def __reduce__(self) -> Any:
        raise NotImplementedError(
            "pool objects cannot be passed between processes or pickled"
        )

    def __repr__(self) -> str:
        return (
            f"<{type(self).__module__}.{type(self).__qualname__} "
            f"state={self._state} backend={self.backend.name} work_dir={self.work_dir}>"
        )

    # -- one path for all of them ---------------------------------------------------

    def _check_running(self) -> None:
        if self._state != _RUN:
            raise ValueError("Pool not running")

    def _map_async(
        self,
        func: Callable,
        iterable: Iterable,
        chunksize: Optional[int],
        callback: Optional[Callable],
        error_callback: Optional[Callable],
    ) -> MapResult:
        self._check_running()
        _check_callable(func)
        _check_chunksize(chunksize)
        tasks = list(iterable)
        result = MapResult(len(tasks), callback, error_callback)
        if tasks:
            self._dispatcher.submit(Call(CallKind.MAP, func, tasks, result, chunksize))
        return result

    def _imap(
        self, func: Callable, iterable: Iterable, chunksize: Optional[int], ordered: bool
    ) -> IMapIterator:
        self._check_running()
        _check_callable(func)
        _check_chunksize(chunksize)
        result = IMapIterator(ordered, self._feeder)
        call = Call(CallKind.IMAP, func, [], result, chunksize, inputs=iter(iterable))
        self._dispatcher.submit(call)
        self._feeder.feed(call, result)
        return result

    def _wait(self, result: ApplyResult) -> Any:
        try:
            return result.get()
        except KeyboardInterrupt:
            self.terminate()  # Ctrl-C: this pool's jobs go before the exception does
            raise


ProtoPool = Pool
"""The name of :class:`Pool` in batchpool 0.1."""


class ApplyResult:
    """The result of an ``*_async`` call, as ``multiprocessing.pool.ApplyResult``."""

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

    # -- the dispatcher's side (dispatcher.Sink) --

    def deliver(self, start: int, envelopes: list, session_dir: Path) -> None:
        ok, value = envelopes[0]
        if ok:
            self._set(True, value)
        else:
            self._set(False, task_error(value, session_dir))

    def fail(self, error: BaseException) -> None:
        if not self.ready():
            self._set(False, error)

    def finish(self) -> None:
        return None

    def _set(self, success: bool, value: Any) -> None:
        self._success, self._value = success, value
        try:
            if success and self._callback is not None:
                self._callback(value)
            if not success and self._error_callback is not None:
                self._error_callback(value)
        finally:
            self._event.set()


AsyncResult = ApplyResult


class MapResult(ApplyResult):
    """The result of ``map_async``: the list of results in order, or the first exception a
    task raised once every task has ended (as ``multiprocessing``)."""

    def __init__(
        self, num_tasks: int, callback: Optional[Callable], error_callback: Optional[Callable]
    ) -> None:
        super().__init__(callback, error_callback)
        self._values: list = [None] * num_tasks
        self._error: Optional[BaseException] = None
        if num_tasks == 0:
            self._set(True, [])

    def deliver(self, start: int, envelopes: list, session_dir: Path) -> None:
        for i, (ok, value) in enumerate(envelopes, start):
            if ok:
                self._values[i] = value
            elif self._error is None:
                self._error = task_error(value, session_dir, i)

    def finish(self) -> None:
        if self._error is not None:
            self._set(False, self._error)
        else:
            self._set(True, self._values)
        self._values = []


class IMapIterator:
    """The iterator of ``imap`` and ``imap_unordered``, with ``next(timeout)`` as in
    ``multiprocessing``."""

    def __init__(self, ordered: bool, feeder: _Feeder) -> None:
        self._ordered = ordered
        self._feeder = feeder
        self._cond = threading.Condition(threading.Lock())
        self._items: dict[int, tuple] = {}
        self._arrived: collections.deque[tuple] = collections.deque()
        self._next_index = 0
        self._consumed = 0
        self._length: Optional[int] = None
        self._input_error: Optional[tuple[int, BaseException]] = None
        self._error: Optional[BaseException] = None
        self._session_dir: Optional[Path] = None

    def __iter__(self) -> IMapIterator:
        return self

    def next(self, timeout: Optional[float] = None) -> Any:
        with self._cond:
            envelope = self._take()
            if envelope is None:
                if not self._cond.wait_for(lambda: self._can_take(), timeout):
                    raise multiprocessing.TimeoutError
                envelope = self._take()
            self._consumed += 1
            self._cond.notify_all()
        self._feeder.wake()
        if envelope is _END:
            raise StopIteration
        if isinstance(envelope, BaseException):
            raise envelope
        ok, value, index = envelope
        if ok:
            return value
        raise task_error(value, self._session_dir or Path("?"), index)

    __next__ = next

    def _can_take(self) -> bool:
        return self._peek() is not None

    def _take(self) -> Any:
        """The next envelope, and move on; an exception or the end stays where it is."""
        item = self._peek()
        if item is None or item is _END or isinstance(item, BaseException):
            return item
        if self._ordered:
            del self._items[self._next_index]
        else:
            self._arrived.popleft()
        self._next_index += 1
        return item

    def _peek(self) -> Any:
        """What ``next()`` gives now: an envelope, an exception, the end, or None (wait)."""
        if self._ordered and self._next_index in self._items:
            return self._items[self._next_index]
        if not self._ordered and self._arrived:
            return self._arrived[0]
        if self._input_error is not None and self._next_index == self._input_error[0]:
            return self._input_error[1]  # after the results of the tasks before it
        if self._error is not None:
            return self._error
        if self._length is not None and self._next_index >= self._length:
            return _END
        return None

    def consumed(self) -> int:
        with self._cond:
            return self._consumed

    def set_length(self, length: int, input_error: Optional[BaseException]) -> None:
        """The input ended after ``length`` tasks, with ``input_error`` if it raised."""
        with self._cond:
            self._length = length
            if input_error is not None:
                self._input_error = (length, input_error)
            self._cond.notify_all()

    # -- the dispatcher's side (dispatcher.Sink) --

    def deliver(self, start: int, envelopes: list, session_dir: Path) -> None:
        with self._cond:
            self._session_dir = session_dir
            for i, (ok, value) in enumerate(envelopes, start):
                if self._ordered:
                    self._items[i] = (ok, value, i)
                else:
                    self._arrived.append((ok, value, i))
            self._cond.notify_all()

    def fail(self, error: BaseException) -> None:
        with self._cond:
            self._error = error
            self._cond.notify_all()

    def finish(self) -> None:
        return None


_END = object()


class _Feeder:
    """The pool's one thread that reads ``imap`` inputs, a batch at a time from each input
    whose caller consumed enough: at most :data:`TASKS_AHEAD` tasks ahead of it, until
    the pool is closed (then every input is read to its end, as ``multiprocessing``
    does, so that the tasks of an unconsumed ``imap`` run before ``join`` returns)."""

    BATCH = 64

    def __init__(self, dispatcher: Dispatcher) -> None:
        self._dispatcher = dispatcher
        self._cond = threading.Condition()
        self._inputs: list[_Input] = []
        self._closed = False
        self._stopped = False
        self._thread: Optional[threading.Thread] = None

    def feed(self, call: Call, result: IMapIterator) -> None:
        with self._cond:
            self._inputs.append(_Input(call, result))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="batchpool-feeder")
                self._thread.daemon = True
                self._thread.start()
            self._cond.notify_all()

    def wake(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()

    def join(self) -> None:
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(
                    lambda: self._stopped
                    or any(self._ready(i) for i in self._inputs)
                    or (self._closed and not self._inputs)
                )
                if self._stopped or not self._inputs:
                    return
                current = next(i for i in self._inputs if self._ready(i))
            if self._read_batch(current):
                with self._cond:
                    self._inputs.remove(current)

    def _ready(self, feed: _Input) -> bool:
        if feed.call.ended:
            return True
        return self._closed or feed.num_read - feed.result.consumed() < TASKS_AHEAD

    def _read_batch(self, feed: _Input) -> bool:
        """Read up to :data:`BATCH` tasks, in whole chunks; True once the input ended.

        An exception from the input is raised by ``next()`` at the first task of the
        chunk in which it happened (the chunk's other tasks are dropped), after the
        results of the tasks before it, as in ``multiprocessing``."""
        if feed.call.ended:
            return True
        group = feed.call.chunksize or 1
        batch: list[bytes] = []
        error: Optional[tuple[int, BaseException]] = None
        done = False
        items: list[bytes] = []
        try:
            for _ in range(max(1, self.BATCH // group)):
                items = []
                for _ in range(group):
                    items.append(_pickle_task(next(feed.inputs)))
                batch.extend(items)
        except StopIteration:
            batch.extend(items)  # the last chunk may be short
            done = True
        except Exception as exc:  # raised by the caller's iterable, or unpicklable
            error = (feed.num_read + len(batch), exc)
            done = True
        feed.num_read += len(batch)
        if done:
            feed.result.set_length(feed.num_read, error[1] if error else None)
        self._dispatcher.more_tasks(feed.call, batch, done, error)
        return done


class _Input:
    """One ``imap`` input being read."""

    def __init__(self, call: Call, result: IMapIterator) -> None:
        assert call.inputs is not None
        self.call = call
        self.result = result
        self.inputs: Iterator = call.inputs
        self.num_read = 0


def _pickle_task(item: object) -> bytes:
    return pickle_for_jobs("a task", item)


def _terminate(dispatcher: Dispatcher, feeder: _Feeder) -> None:
    """Delete the pool's jobs and end its threads (terminate, collection, exit)."""
    feeder.stop()
    if dispatcher.started:
        dispatcher.terminate()
        dispatcher.join()


def task_error(payload: tuple, session_dir: Path, index: Optional[int] = None) -> BaseException:
    """The exception a task raised (its :class:`~batchpool._layout.Failure`), rebuilt, with
    the remote traceback as its cause; ``index``: the task's, in the session, to name it
    and its argument."""
    exc_pickle, type_name, message, traceback_text = Failure(*payload)
    where = f"The session directory is kept at {session_dir}"
    if index is not None:
        argument = short_argument(session_dir, index)
        where = f"batchpool: task {index} (argument {argument}) raised it. {where}"
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


def _check_options(
    processes: Optional[int],
    initializer: Optional[Callable],
    maxtasksperchild: Optional[int],
    max_num_resubmissions: int,
) -> None:
    if processes is not None and processes < 1:
        raise ValueError("Number of processes must be at least 1")
    if initializer is not None and not callable(initializer):
        raise TypeError("initializer must be a callable")
    if maxtasksperchild is not None and (
        not isinstance(maxtasksperchild, int) or maxtasksperchild <= 0
    ):
        raise ValueError("maxtasksperchild must be a positive int or None")
    if max_num_resubmissions < 0:
        raise ValueError("max_num_resubmissions must be at least 0")


def _check_callable(func: object) -> None:
    if not callable(func):
        raise TypeError(f"func must be callable, not {type(func).__name__}")


def _check_chunksize(chunksize: Optional[int]) -> None:
    if chunksize is not None and chunksize < 1:
        raise ValueError(f"chunksize must be at least 1, not {chunksize}")


def _check_python_path(python_path: Optional[str | os.PathLike[str]]) -> str:
    path = Path(python_path) if python_path is not None else Path(sys.executable)
    if not str(path) or not path.is_file() or not os.access(path, os.X_OK):
        raise ValueError(
            f"python_path {str(path)!r} is not an executable file; give the absolute path "
            "of a Python interpreter (with batchpool installed) that the compute nodes can run."
        )
    return str(path.absolute())


def _apply(func: Callable) -> Callable:
    _check_callable(func)
    return functools.partial(worker.applycall, func)
