"""A :class:`concurrent.futures.Executor` on the pool's engine.

::

    import concurrent.futures
    import batchpool

    with batchpool.Executor() as executor:        # Slurm array, SGE or local, as Pool()
        futures = [executor.submit(simulate, p) for p in parameters]
        for future in concurrent.futures.as_completed(futures):
            print(future.result())

The executor owns one :class:`~batchpool.proto_pool.Pool` and hands its work to that
pool's one :class:`~batchpool.dispatcher.Dispatcher`, so its tasks run on the same
standing workers, with the same resubmission, resume and cap on jobs. Calls of
:meth:`Executor.submit` made within :data:`GATHER_S` of each other are gathered
(for at most :data:`MAX_GATHER_S`) and handed over together: the submits of one loop
share one session and ask the scheduler for workers once, as one ``map`` would.

A future is *pending* (and :meth:`~concurrent.futures.Future.cancel` works) while its
call is being gathered; once handed to the dispatcher it is *running*, whether its
task waits in the queue or runs in a job. A task that raised raises its own exception
from :meth:`~concurrent.futures.Future.result`, with the remote traceback as its
``__cause__`` (as :mod:`multiprocessing` does). Done-callbacks run in the pool's
dispatcher thread: they should be short.
"""

from __future__ import annotations

import concurrent.futures
import functools
import inspect
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Callable, Optional, Union

from . import proto_pool, worker
from .backend import Backend
from .calls import Call, CallKind, batch_of_applies, pickle_for_jobs
from .options import (
    OPTIONS,
    bind_given,
    compose_signature,
    parameters_doc,
    typed_signature,
    with_self,
)
from .proto_pool import task_error

GATHER_S = 0.05
"""Submits closer together than this (seconds) are handed to the dispatcher together..."""
MAX_GATHER_S = 1.0
"""...but the first of them waits no longer than this."""


class Executor(concurrent.futures.Executor):
    __doc__ = proto_pool.pool_doc(
        """A ``concurrent.futures.Executor`` whose calls run as jobs of a cluster (module
        docstring).""",
        """\
        max_workers
            Cap on the executor's jobs at once (the pool's ``processes``); for the local
            backend, the number of worker processes.
        initializer, initargs
            Called as ``initializer(*initargs)`` once in every worker, before its tasks.
        max_tasks_per_child
            A worker exits after this many chunks (the pool's ``maxtasksperchild``).
        backend
            A name of :data:`batchpool.BACKENDS` (``"slurm.array"``, ``"slurm"``, ``"sge"``,
            ``"local"``, ...), or a :class:`~batchpool.backend.Backend` object. Default:
            as :func:`batchpool.Pool`, the profile's backend or the one
            :func:`batchpool.pick_backend` picks.
        profile
            The profile of the configuration file to take options from
            (:mod:`batchpool.config`); explicit options win. Not used with a backend
            object.
        **options
            The options of the backend's ``Pool`` (``partition``, ``time``, ...), and these
            of every pool:
        """,
        parameters_doc(OPTIONS),
    )

    def __init__(
        self,
        max_workers: Optional[int] = None,
        initializer: Optional[Callable[..., object]] = None,
        initargs: Iterable[Any] = (),
        max_tasks_per_child: Optional[int] = None,
        *,
        backend: Union[str, Backend, None] = None,
        profile: Optional[str] = None,
        **options: Any,
    ) -> None:
        if max_workers is not None and max_workers < 1:
            raise ValueError("max_workers must be greater than 0")
        args = (max_workers, initializer, tuple(initargs), max_tasks_per_child)
        caller = "batchpool.Executor"
        if backend is None or isinstance(backend, str):
            from .config import make_pool

            self._pool: proto_pool.Pool = make_pool(
                args, options, backend=backend, profile=profile, caller=caller
            )
        else:
            bind_given(inspect.signature(proto_pool.Pool), caller, args, options)
            self._pool = proto_pool.Pool(*args, backend=backend, **options)
        self._gatherer = _Gatherer(self._pool.submit_call)
        self._shutdown_lock = threading.Lock()
        self._shutdown = False

    @property
    def pool(self) -> proto_pool.Pool:
        """The pool whose engine runs the executor's calls (its ``work_dir``, backend...)."""
        return self._pool

    def submit(
        self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any
    ) -> concurrent.futures.Future:
        """Schedule ``fn(*args, **kwargs)``; a :class:`~concurrent.futures.Future` of it.

        Raises the pickling error at once if ``fn`` or an argument cannot be pickled
        (nothing is submitted for it)."""
        if not callable(fn):
            raise TypeError(f"fn must be callable, not {type(fn).__name__}")
        with self._shutdown_lock:
            if self._shutdown:
                raise RuntimeError("cannot schedule new futures after shutdown")
            self._gatherer.check_picklable(fn, (args, kwargs))
            future: concurrent.futures.Future = concurrent.futures.Future()
            call = Call(
                CallKind.APPLY,
                functools.partial(worker.applycall, fn),
                [(args, kwargs)],
                _FutureSink([future]),
            )
            self._gatherer.add(fn, call, future)
        return future

    def map(
        self,
        fn: Callable[..., Any],
        *iterables: Iterable[Any],
        timeout: Optional[float] = None,
        chunksize: Optional[int] = None,
    ) -> Iterator[Any]:
        """``fn`` over the items of ``iterables`` in parallel, as one map of the pool.

        The inputs are read at once; the results are yielded in order, each as soon as
        it is there. ``timeout`` (seconds, from this call) raises
        :class:`TimeoutError` from the iterator; a task that raised raises its exception
        there. ``chunksize`` tasks run in series in one chunk; by default batchpool
        cuts chunks by measured task time."""
        if chunksize is not None and chunksize < 1:
            raise ValueError("chunksize must be >= 1.")
        if not callable(fn):
            raise TypeError(f"fn must be callable, not {type(fn).__name__}")
        end_time = None if timeout is None else timeout + time.monotonic()
        tasks = list(zip(*iterables))
        with self._shutdown_lock:
            if self._shutdown:
                raise RuntimeError("cannot schedule new futures after shutdown")
            futures: list[concurrent.futures.Future] = [
                concurrent.futures.Future() for _ in tasks
            ]
            if tasks:
                for future in futures:
                    future.set_running_or_notify_cancel()
                function = functools.partial(worker.starcall, fn)
                call = Call(CallKind.MAP, function, tasks, _FutureSink(futures), chunksize)
                call.per_task = True  # each future completes as its task ends
                self._pool.submit_call(call)
        return _results_in_order(futures, end_time)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Accept no more calls; with ``wait``, return once every call has ended and the
        workers exited. ``cancel_futures`` cancels the calls still being gathered (the
        pending futures); calls already handed over run to their end."""
        with self._shutdown_lock:
            self._shutdown = True
        self._gatherer.close(cancel=cancel_futures)
        self._pool.close()
        if wait:
            self._pool.join()

    def terminate(self) -> None:
        """Stop at once: delete every job; unfinished futures raise
        :class:`~batchpool.PoolError`."""
        with self._shutdown_lock:
            self._shutdown = True
        self._gatherer.close(cancel=True)
        self._pool.terminate()

    def __repr__(self) -> str:
        state = "shut down" if self._shutdown else "running"
        return (
            f"<batchpool.Executor {state} backend={self._pool.backend.name} "
            f"work_dir={self._pool.work_dir}>"
        )

    def __reduce__(self) -> Any:
        raise NotImplementedError("executors cannot be passed between processes or pickled")


def _signature() -> inspect.Signature:
    """The parameters of ``Executor.__init__`` but ``**options``, then the options of
    every pool (before ``profile``) and ``**options`` for those of the backend."""
    own = list(typed_signature(Executor.__init__).parameters.values())
    leading = [p for p in own if p.name not in ("self", "profile", "options")]
    return compose_signature(leading=leading, more=True)


Executor.__signature__ = _signature()  # type: ignore[attr-defined]
Executor.__init__.__signature__ = with_self(_signature())  # type: ignore[attr-defined]


class _FutureSink:
    """The sink (:class:`batchpool.dispatcher.Sink`) of a call: task ``i`` resolves
    ``futures[i]``."""

    def __init__(self, futures: list[concurrent.futures.Future]) -> None:
        self.futures = futures

    def deliver(self, start: int, envelopes: list, session_dir: Path) -> None:
        for future, (ok, value) in zip(self.futures[start:], envelopes):
            if future.done():
                continue
            if ok:
                future.set_result(value)
            else:
                future.set_exception(task_error(value, session_dir))

    def fail(self, error: BaseException) -> None:
        for future in self.futures:
            if not future.done():
                future.set_exception(error)

    def finish(self) -> None:
        return None


class _Gatherer:
    """Hands the submitted calls to the dispatcher in batches (module docstring), from
    one thread per executor, started at the first submit."""

    def __init__(self, submit: Callable[[Call], None]) -> None:
        self._submit = submit
        self._cond = threading.Condition()
        self._pending: list[tuple[Callable, Call, concurrent.futures.Future]] = []
        self._first_at = self._last_at = 0.0
        self._closed = False
        self._runner: Optional[threading.Thread] = None
        self._picklable: Optional[Callable] = None

    def check_picklable(self, fn: Callable, arguments: object) -> None:
        """Raise now what would fail the whole batch in the dispatcher."""
        if fn is not self._picklable:
            pickle_for_jobs("the function", fn)
            self._picklable = fn
        pickle_for_jobs("an argument", arguments)

    def add(self, fn: Callable, call: Call, future: concurrent.futures.Future) -> None:
        with self._cond:
            now = time.monotonic()
            if not self._pending:
                self._first_at = now
            self._last_at = now
            self._pending.append((fn, call, future))
            if self._runner is None:
                self._runner = threading.Thread(
                    target=self._run, name="batchpool-executor", daemon=True
                )
                self._runner.start()
            self._cond.notify_all()

    def close(self, cancel: bool) -> None:
        """Hand over (or, with ``cancel``, cancel) what is pending; end the thread."""
        with self._cond:
            self._closed = True
            if cancel:
                for _, _, future in self._pending:
                    future.cancel()
            self._cond.notify_all()
            thread = self._runner
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._pending or self._closed)
                if not self._pending:
                    return  # closed
                while not self._closed:
                    until = min(self._last_at + GATHER_S, self._first_at + MAX_GATHER_S)
                    left = until - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(left)
                batch, self._pending = self._pending, []
            self._hand_over(batch)

    def _hand_over(self, batch: list[tuple[Callable, Call, concurrent.futures.Future]]) -> None:
        """The calls whose futures were not cancelled, one call per function."""
        calls = [call for _, call, future in batch if future.set_running_or_notify_cancel()]
        for batched in batch_of_applies(calls):
            batched.per_task = True
            self._submit(batched)


def _results_in_order(
    futures: list[concurrent.futures.Future], end_time: Optional[float]
) -> Iterator[Any]:
    """What ``Executor.map`` returns: each result in order, as ``concurrent.futures``."""
    pending = list(reversed(futures))
    try:
        while pending:
            future = pending.pop()
            if end_time is None:
                yield future.result()
            else:
                yield future.result(max(0.0, end_time - time.monotonic()))
    finally:
        for future in pending:
            future.cancel()


__all__ = ["Executor"]
