"""What the fronts hand the engine: a :class:`Call`, and the session it runs in.

A call is the work of one ``map``, one ``imap`` or a batch of ``apply`` calls of one
function (DESIGN, "The engine": the fronts never touch files or jobs). It carries a
*sink* (:class:`Sink`) that turns envelopes into the front's results, and the tasks
not cut into chunks yet. This module also opens a call's session: a new one, or the
unfinished session of the same map, resumed (DESIGN, "Resume": the same function,
backend, ``chunksize`` and tasks find the same session; its results are kept, and the
chunks a live worker of the dead driver holds are adopted rather than run twice).
"""

from __future__ import annotations

import collections
import enum
import functools
import hashlib
import io
import pickle
import shutil
import time
import types
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Protocol

import cloudpickle

from . import _code
from ._layout import Claim, read_tasks
from .errors import PoolError, SessionBusyError
from .policy import unwritable_error
from .progress import Progress
from .session import ChunkResult, Manifest, PoolDirectory, Session, SessionKey


class Sink(Protocol):
    """Where a call's results go (the fronts' result objects)."""

    def deliver(self, start: int, envelopes: list, session_dir: Path) -> None:
        """Envelopes ``(ok, value)`` of tasks ``start``, ``start + 1``, ... arrived."""
        ...

    def fail(self, error: BaseException) -> None:
        """The call ended without all its results."""
        ...

    def finish(self) -> None:
        """Every task of the call has been delivered."""
        ...


class PoolState(enum.Enum):
    """Where a pool is in its life, as ``multiprocessing.Pool`` has it: taking work,
    closed (what was given runs to its end), or terminated."""

    RUN = "run"
    CLOSE = "close"
    TERMINATE = "terminate"


class CallKind(enum.Enum):
    MAP = "map"
    IMAP = "imap"
    APPLY = "apply"


@dataclass(eq=False)
class Call:
    """The work of one ``map``, ``imap`` or batch of ``apply`` calls, and its session."""

    kind: CallKind
    function: Callable[..., Any]
    tasks: Optional[list]
    sink: Sink
    chunksize: Optional[int] = None
    inputs: Optional[Iterator] = None
    """An ``imap``'s iterable, read by the pool's feeder (:meth:`add_tasks`)."""
    session: Optional[Session] = field(default=None, init=False)
    function_key: str = field(default="", init=False)
    progress: Optional[Progress] = field(default=None, init=False)
    uncut: collections.deque[range] = field(default_factory=collections.deque, init=False)
    num_tasks_known: int = field(default=0, init=False)
    input_done: bool = field(init=False)
    input_error: Optional[tuple[int, BaseException]] = field(default=None, init=False)
    num_delivered: int = field(default=0, init=False)
    num_failed_tasks: int = field(default=0, init=False)
    next_chunk: int = field(default=0, init=False)
    ended: bool = field(default=False, init=False)
    per_task: bool = field(default=False, init=False)
    """Deliver each task's result as soon as its record is there, not a chunk at a
    time (the Executor's futures)."""
    backend_name: str = field(default="", init=False)
    """The backend's name, for the session's manifest (set when it is opened)."""
    attach_to: Optional[Path] = field(default=None, init=False)
    """The session of a detached map to drive (:func:`batchpool.attach`), instead of
    ``function`` and ``tasks``."""
    retry_failed: bool = field(default=True, init=False)
    """On resume, run again the chunks whose tasks raised; else deliver their errors
    (:func:`batchpool.attach` with ``retry_failed=False``)."""

    def __post_init__(self) -> None:
        self.input_done = self.inputs is None

    @property
    def num_uncut(self) -> int:
        return sum(len(r) for r in self.uncut)

    @property
    def most_chunks(self) -> int:
        """How many chunks the uncut tasks make at most."""
        if self.chunksize:
            return sum(-(-len(span) // self.chunksize) for span in self.uncut)
        return self.num_uncut

    @property
    def all_delivered(self) -> bool:
        # Tasks after an input error are never read: they are not among those known.
        return self.input_done and not self.uncut and self.num_delivered >= self.num_tasks_known

    def describe(self) -> str:
        return f"{self.kind.value} of {describe_function(self.function)}"

    def deliver(self, start: int, envelopes: list) -> None:
        """Hand the envelopes of tasks ``start``... to the sink; count them."""
        assert self.session is not None
        self.sink.deliver(start, envelopes, self.session.dir)
        self.num_delivered += len(envelopes)
        self.num_failed_tasks += sum(1 for succeeded, _ in envelopes if not succeeded)
        if self.progress is not None:
            self.progress.advance(len(envelopes))

    def new_chunk_number(self) -> int:
        self.next_chunk += 1
        return self.next_chunk - 1

    def add_tasks(self, pickled: list[bytes], done: bool, error: Optional[tuple]) -> None:
        """More tasks of an ``imap`` that the feeder read (``error``: (index, exception))."""
        if self.ended or self.session is None:
            return
        start = self.num_tasks_known
        self.session.append_tasks(pickled)
        self.num_tasks_known += len(pickled)
        if pickled:
            self.uncut.append(range(start, self.num_tasks_known))
        if error is not None:
            self.input_error = error
        if done:
            self.input_done = True
            self.session.write_manifest(self.manifest(self.num_tasks_known))

    def manifest(self, num_tasks: Optional[int]) -> Manifest:
        created = time.strftime("%Y-%m-%dT%H:%M:%S")
        function = describe_function(self.function)
        return Manifest(num_tasks, self.chunksize, self.backend_name, function, created)

    def short_repr(self, index: int) -> str:
        """A short ``repr`` of task ``index``'s argument, for an error message."""
        assert self.session is not None
        return short_argument(self.session.dir, index)


def short_argument(session_dir: Path, index: int, limit: int = 200) -> str:
    """A short ``repr`` of the argument of task ``index`` of a session, for a message."""
    try:
        (pickled,) = read_tasks(str(session_dir), index, index + 1)
        text = repr(pickle.loads(pickled))
    except Exception as error:  # the message must not fail for want of a repr
        text = f"<not shown: {error!r}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


# -- opening a call's session ---------------------------------------------------------------


@dataclass(frozen=True)
class Adopted:
    """A chunk of a resumed session that a live worker of the dead driver may hold."""

    number: int
    tasks: range
    tries: int
    claim: Claim
    job_name: str


def open_session(
    call: Call,
    pool_dir: PoolDirectory,
    work_dir: Path,
    resume: bool,
    verbose: bool,
    progress: bool = True,
) -> Optional[list[Adopted]]:
    """Write the call's function and tasks into its session: a new one (then None), or
    the unfinished session of the same map, resumed (then the chunks to adopt). The
    tasks are pickled and written one by one (into the pool's staging directory while
    the session's key, their digest, is not known yet), so that the driver never holds
    all their pickles. ``call.backend_name`` is set."""
    function = pickle_for_jobs("the function", call.function)
    call.function_key = hashlib.sha256(function).hexdigest()[:16]
    resumable = call.kind is not CallKind.IMAP and resume
    key = SessionKey([function, call.backend_name.encode(), repr(call.chunksize).encode()])
    tasks, call.tasks = call.tasks or [], None

    def pickled_tasks() -> Iterator[bytes]:
        for task in tasks:
            pickled = pickle_for_jobs("a task", task)
            key.add(pickled)
            yield pickled

    staging = pool_dir.staging_dir()
    try:
        try:
            num_tasks = Session.stage_tasks(staging, pickled_tasks())
        except OSError as error:
            raise unwritable_error(work_dir, error) from error
        if resumable:
            adopted = reattach(call, work_dir, key.hexdigest(), num_tasks, verbose, progress)
            if adopted is not None:
                return adopted
        else:
            key = SessionKey([function, str(id(call)).encode(), str(time.time()).encode()])
        try:
            call.session = Session.create(work_dir, key.hexdigest(), tasks_from=staging)
            call.session.write_function(function)
            call.session.write_manifest(call.manifest(num_tasks if call.input_done else None))
        except OSError as error:
            if call.session is not None:
                call.session.remove()  # half made: nothing in it to resume
                call.session = None
            raise unwritable_error(work_dir, error) from error
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    call.num_tasks_known = num_tasks
    if num_tasks:
        call.uncut.append(range(num_tasks))
    if call.kind is CallKind.MAP:
        call.progress = Progress(num_tasks, call.describe(), verbose, show=progress)
    return None


def attach(call: Call, work_dir: Path, verbose: bool, progress: bool = True) -> list[Adopted]:
    """Drive the session of a detached map (``call.attach_to``) as a resume of it, its
    function and tasks read from the session instead of given (:mod:`batchpool.detach`)."""
    assert call.attach_to is not None
    session = Session(call.attach_to)
    manifest = session.manifest()
    call.function_key = hashlib.sha256(Path(session.paths.function).read_bytes()).hexdigest()[:16]
    key = session.key
    adopted = None
    if manifest.num_tasks is not None:
        adopted = reattach(call, work_dir, key, manifest.num_tasks, verbose, progress)
    if adopted is None:
        raise PoolError(f"{session.dir} is no unfinished session of a map", session.dir)
    return adopted


def reattach(
    call: Call, work_dir: Path, key: str, num_tasks: int, verbose: bool, progress: bool = True
) -> Optional[list[Adopted]]:
    """Take over the unfinished session of the same map: deliver its results, withdraw
    the dead driver's unclaimed tickets; the chunks its live workers hold, to adopt.
    None if there is no such session (or it is this very driver's own)."""
    session = Session.find_unfinished(work_dir, key)
    if session is None:
        return None
    try:
        session.acquire()
    except SessionBusyError as error:
        holder = session.lock_holder()
        if holder is not None and holder.is_mine():
            return None  # an identical map of this very driver: run side by side
        raise PoolError(
            f"Cannot run this map: {error}. Two drivers never drive one session; wait "
            "for the other one, or stop it.",
            session.dir,
        ) from None
    call.session = session
    session.reopen_tasks()
    call.num_tasks_known = num_tasks
    results = _resumed_results(session)
    for result in sorted(results, key=lambda r: r.chunk):  # the summary's usage lines
        session.log_usage(result.job_id, result)
    kept = []
    for start, envelopes in _newest_envelopes(results, call.retry_failed):
        call.deliver(start, envelopes)
        kept.append(range(start, start + len(envelopes)))
    adopted = _claimed_chunks(call, session, {r.chunk for r in results})
    call.uncut.extend(_complement(num_tasks, kept + [a.tasks for a in adopted]))
    if call.kind is CallKind.MAP:
        call.progress = Progress(num_tasks, call.describe(), verbose, show=progress)
        call.progress.advance(call.num_delivered)
    return adopted


def _resumed_results(session: Session) -> list[ChunkResult]:
    """Every result of the session, the files not yet collected folded in. Results
    that fail their checks are left out (their tasks run again), and said so."""
    archive = session.read_archive()
    for span in archive.damaged:
        session.log(
            "archive damaged: skipped, its tasks run again", offset=span.offset, length=span.length
        )
    results = list(archive.results)
    archived = {r.chunk for r in results}
    for chunk, tries in session.record_files():
        if chunk not in archived:  # else the driver died between archiving and removing
            taken = session.take_record(chunk, tries, whole_only=True)
            if taken is not None and taken.tasks:
                results.append(taken)
                archived.add(chunk)
    return results


def _newest_envelopes(results: list[ChunkResult], retry_failed: bool) -> list[tuple[int, list]]:
    """``(start, envelopes)`` to deliver on resume, in task order: where two chunks hold a
    task (an earlier resume cut the tasks of a failed chunk again), the newer chunk's.
    With ``retry_failed``, a chunk whose tasks raised is left out: it runs again (the
    failure may have been passing)."""
    covered: list[range] = []
    found = []
    for result in sorted(results, key=lambda r: r.chunk, reverse=True):
        envelopes = result.envelopes()
        if retry_failed and not all(ok for ok, _ in envelopes):
            continue
        first = result.tasks.start
        for gap in _complement(result.tasks.stop, [range(first), *covered]):
            found.append((gap.start, envelopes[gap.start - first : gap.stop - first]))
        covered.append(result.tasks)
    return sorted(found, key=lambda item: item[0])


def _claimed_chunks(call: Call, session: Session, finished: set[int]) -> list[Adopted]:
    """The chunks of ``session`` that a live worker of the dead driver may still hold:
    their tickets were claimed and they have no result. Its other tickets are
    withdrawn, so that no worker takes them now."""
    latest = {}
    for event in session.chunk_events():
        call.next_chunk = max(call.next_chunk, event.chunk + 1)
        if event.event == "posted" and event.chunk not in finished:
            latest[event.chunk] = event
    adopted = []
    for event in latest.values():
        pool = PoolDirectory(Path(event.pool))
        if not pool.dir.is_dir():
            continue  # that pool ended: no worker of it holds anything
        claim = session.record_claim(event.chunk, event.attempt)
        if claim is None and session.withdraw(event.chunk, event.attempt):
            continue
        claim = claim or session.record_claim(event.chunk, event.attempt)
        claim = claim or Claim("?", "", 0, "")
        if not claim.withdrawn:
            tasks = range(event.start, event.stop)
            adopted.append(Adopted(event.chunk, tasks, event.attempt, claim, pool.job_name))
    return adopted


def _complement(num_tasks: int, covered: list[range]) -> list[range]:
    """The task ranges of ``range(num_tasks)`` that no range of ``covered`` holds."""
    gaps = []
    position = 0
    for span in sorted(covered, key=lambda r: r.start):
        if span.start > position:
            gaps.append(range(position, span.start))
        position = max(position, span.stop)
    if position < num_tasks:
        gaps.append(range(position, num_tasks))
    return gaps


# -- apply batches --------------------------------------------------------------------------


def batch_of_applies(calls: list[Call]) -> list[Call]:
    """``apply`` calls that arrived together, one call per function (the caller's own,
    seen through the fronts' wrappers): the tasks of a batch are those of its calls in
    order, and each result goes to the sink of the call it came from."""
    groups: dict[int, list[Call]] = {}
    for call in calls:
        groups.setdefault(id(inner_function(call.function)), []).append(call)
    batches = []
    for same in groups.values():
        if len(same) == 1:
            batches.append(same[0])
            continue
        tasks = [task for call in same for task in (call.tasks or [])]
        sink = _ApplyBatch([(c.sink, len(c.tasks or [])) for c in same])
        batches.append(Call(CallKind.APPLY, same[0].function, tasks, sink))
    return batches


class _ApplyBatch:
    """The sink of a batch of ``apply`` calls: each task goes to its own call's sink."""

    def __init__(self, sinks: list[tuple[Sink, int]]) -> None:
        self.sinks = [sink for sink, _ in sinks]
        self.owner: list[tuple[Sink, int]] = []
        """By task of the batch: its call's sink, and its index there."""
        for sink, num_tasks in sinks:
            self.owner.extend((sink, i) for i in range(num_tasks))

    def deliver(self, start: int, envelopes: list, session_dir: Path) -> None:
        for i, envelope in enumerate(envelopes, start):
            sink, index = self.owner[i]
            sink.deliver(index, [envelope], session_dir)

    def fail(self, error: BaseException) -> None:
        for sink in self.sinks:
            sink.fail(error)

    def finish(self) -> None:
        for sink in self.sinks:
            sink.finish()


# -- functions and tasks as the jobs get them -----------------------------------------------


class _JobPickler(cloudpickle.Pickler):  # type: ignore[misc]
    """cloudpickle, but tracebacks on the nodes name the user's files, as in
    ``multiprocessing``:

    - a bound method that its object gives by name travels as that object and the name,
      as ``pickle`` sends it: a method of a class that the workers can import keeps its
      code, its file and its lines (cloudpickle 3.1.3 sends such a method's function by
      value);
    - code sent by value keeps its ``co_filename``, which cloudpickle 3 blanks
      (:mod:`batchpool._code`)."""

    def reducer_override(self, obj: object) -> Any:
        if isinstance(obj, types.MethodType):
            owner, name = obj.__self__, obj.__func__.__name__
            if getattr(owner, name, None) == obj:
                return getattr, (owner, name)
        if isinstance(obj, types.CodeType):
            reduce = self.dispatch_table.get(types.CodeType)
            if reduce is not None:
                build, args = reduce(obj)
                if obj.co_filename not in args:  # blanked
                    return _code.with_filename, (build, args, obj.co_filename)
        return super().reducer_override(obj)


def pickle_for_jobs(what: str, obj: object) -> bytes:
    """``obj`` cloudpickled (:class:`_JobPickler`); a failure says that nothing was
    submitted for it."""
    try:
        buffer = io.BytesIO()
        _JobPickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(obj)
        return buffer.getvalue()
    except Exception as error:
        if hasattr(error, "add_note"):
            error.add_note(f"batchpool: {what} cannot be pickled; nothing was submitted.")
        raise


def inner_function(func: Callable) -> Callable:
    """The caller's function inside the fronts' star/apply wrappers (``functools.partial``)."""
    return func.args[0] if isinstance(func, functools.partial) and func.args else func


def describe_function(func: Callable) -> str:
    """``module.qualname`` of a task function, seen through the fronts' wrappers."""
    inner = inner_function(func)
    module = getattr(inner, "__module__", None) or "?"
    return f"{module}.{getattr(inner, '__qualname__', type(inner).__qualname__)}"
