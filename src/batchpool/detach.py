"""Submit a map, let the script exit with its jobs running, and collect it later.

::

    session = batchpool.submit(simulate, parameters, chunksize=10)   # returns at once
    print(session)          # .batchpool/20260101T120000_0123456789abcdef
    # ... log out; later, from any process on a host that sees the work_dir:
    results = batchpool.attach(session).get()      # or: batchpool wait SESSION

:func:`submit` writes the map's session as any map does, posts every chunk as a ticket
in a new pool directory, marks that directory ``detached`` and asks the scheduler for
workers, then returns: the workers take the tickets and record each task's result in the
session, and do not stop when the submitting process is gone (as the workers of other
pools do). They exit once they have idled for ``worker_idle_s``.

:func:`attach` is a resume of that map (see *Resume* in the README): a new driver
takes the session over, keeps every result already recorded (the errors of tasks that
raised too, unless ``retry_failed=True``), adopts the chunks that live jobs hold, runs
the rest again on new workers (a chunk whose job was lost too), and returns the results
in input order, each task's exactly once. The detached pool's
backend and options are kept in its ``detached`` file, so that ``attach`` needs none;
options given to it win. On the local backend the detached workers are processes of this
machine that outlive the submitting script; ``attach`` watches those that hold chunks by
their pid, and must run on the same machine.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Callable, Optional, Union

from . import config, proto_pool
from .calls import Call, CallKind
from .dispatcher import Dispatcher
from .errors import PoolError
from .proto_pool import MapResult
from .session import PoolDirectory

PathLike = Union[str, "os.PathLike[str]"]
STORED_TYPES = (str, int, float, bool, list)
"""Options of these kinds are kept for :func:`attach` (not policies or callables)."""


def submit(
    func: Callable[[Any], Any],
    iterable: Iterable[Any],
    chunksize: Optional[int] = None,
    *,
    backend: Optional[str] = None,
    profile: Optional[str] = None,
    **options: Any,
) -> Path:
    """Submit ``map(func, iterable)`` and return its session directory at once; the jobs
    run on after this process exits (module docstring).

    ``backend``, ``profile`` and ``options`` are those of :func:`batchpool.Pool`.
    ``chunksize`` tasks run in series in one chunk; by default one task a chunk (no task
    time has been measured yet). The pool's cap on jobs (``processes``,
    ``num_simultaneously_running_tasks``) holds; without one, the first request asks for
    at most :data:`batchpool.chunking.INITIAL_WORKERS` jobs, and :func:`attach` asks for
    more by the measured task times.

    Raises what ``map`` raises before anything runs: an unpicklable function or task, a
    ``work_dir`` that cannot be written, a scheduler that refuses the jobs.
    """
    if not callable(func):
        raise TypeError(f"func must be callable, not {type(func).__name__}")
    if chunksize is not None and chunksize < 1:
        raise ValueError(f"chunksize must be at least 1, not {chunksize}")
    tasks = list(iterable)
    if not tasks:
        raise ValueError("nothing to submit: the iterable is empty")
    found = config.effective(backend, options, profile)
    pool = config.make_pool((), options, backend=found.backend, profile=found.profile)
    dispatcher = Dispatcher(pool.backend, pool.settings, threaded=False)
    result = MapResult(len(tasks), None, None)
    dispatcher.submit(Call(CallKind.MAP, func, tasks, result, chunksize))
    marker = json.dumps({"backend": found.backend, "options": _storable(found)}).encode()
    sessions = dispatcher.detach(marker)
    if result.ready() or not sessions:
        result.get()  # raises why the map could not be submitted
        raise PoolError("the map was not submitted")
    return sessions[0]


def attach(session_dir: PathLike, *, retry_failed: bool = False, **options: Any) -> AttachedMap:
    """Take over the map of ``session_dir`` (from :func:`submit`, or a map whose driver
    died) and collect its results (module docstring).

    Tasks that raised stay failed: their errors are delivered as they were recorded, and
    the map ends with the first one once every task has ended (as ``multiprocessing``'s
    ``map``). ``retry_failed=True`` runs the chunks that hold them again instead (as
    running the same map again does). ``options`` are those of :func:`batchpool.Pool`,
    over those the detached pool was made with; ``work_dir`` is the session's.
    ``keep_work_dir=True`` keeps the session for :func:`batchpool.load` after the
    results came.
    """
    from .results import open_session, pools_of_session

    session, manifest = open_session(session_dir)
    if manifest.num_tasks is None:
        raise PoolError(f"{session.dir} is the session of an imap: it cannot be attached to")
    stored: dict[str, Any] = {}
    for name in pools_of_session(session.dir):
        data = PoolDirectory(session.dir.parent / name).detached_marker()
        if data:
            stored = json.loads(data)
    backend = stored.get("backend", manifest.backend)
    merged = {**stored.get("options", {}), **options, "work_dir": session.dir.parent}
    pool = config.make_pool((), merged, backend=backend)
    result = MapResult(manifest.num_tasks, None, None)
    call = Call(CallKind.MAP, _DetachedFunction(manifest.function), None, result)
    call.chunksize = manifest.chunksize
    call.attach_to = session.dir
    call.retry_failed = retry_failed
    pool.submit_call(call)
    return AttachedMap(session.dir, pool, result)


class AttachedMap:
    """The results of an attached map, as a ``map_async`` result: :meth:`get` them. Its
    pool closes once they are all there, or the map failed."""

    def __init__(self, session_dir: Path, pool: proto_pool.Pool, result: MapResult) -> None:
        self.session_dir = session_dir
        self.pool = pool
        self._result = result

    def get(self, timeout: Optional[float] = None) -> list:
        """The results in input order; raises as ``map`` does, and
        ``multiprocessing.TimeoutError`` after ``timeout`` seconds."""
        try:
            return list(self._result.get(timeout))
        except KeyboardInterrupt:
            self.pool.terminate()  # this driver's jobs go; the session stays, unfinished
            raise
        finally:
            if self._result.ready():
                self.pool.close()
                self.pool.join()

    def wait(self, timeout: Optional[float] = None) -> None:
        self._result.wait(timeout)

    def ready(self) -> bool:
        return self._result.ready()

    def successful(self) -> bool:
        return self._result.successful()

    def __repr__(self) -> str:
        return f"<batchpool.AttachedMap {self.session_dir} ready={self.ready()}>"


class _DetachedFunction:
    """Stands for the function of an attached map in the driver's messages: the workers
    read the real one from the session."""

    def __init__(self, description: str) -> None:
        module, _, name = description.rpartition(".")
        self.__module__ = module or "?"
        self.__qualname__ = name

    def __call__(self, *args: Any) -> Any:
        raise RuntimeError("the function of an attached map runs in its workers only")


def _storable(found: config.Effective) -> dict[str, Any]:
    """The options of ``found`` that :func:`attach` can take from JSON."""
    kinds = config.option_kinds(found.backend)
    stored = {}
    for name, value in found.options.items():
        if kinds[name].type in STORED_TYPES:
            stored[name] = os.fspath(value) if isinstance(value, os.PathLike) else value
    return stored


__all__ = ["AttachedMap", "attach", "submit"]
