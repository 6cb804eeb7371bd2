"""Pool and session directories laid out by hand, as the driver lays them out, for the
tests of the worker (``tests/unit/test_worker.py`` runs it in the test's process,
``tests/integration/test_worker_process.py`` as ``python -m batchpool.worker``)."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

from batchpool import _layout
from batchpool._layout import RecordReader, Ticket
from batchpool.session import ChunkResult, PoolDirectory, Session

NODE = os.uname().nodename


def record_path(session: Session, chunk: int, tries: int) -> Path:
    """The record file of ``chunk`` posted for the ``tries``-th time."""
    return Path(session.paths.record(chunk, tries))


def new_pool(tmp_path: Path, idle_s: float = 0.05, max_chunks=None, initializer=(None, ())):
    pool = PoolDirectory.create(tmp_path / "work")
    pool.write_setup(pickle.dumps(initializer), idle_s, max_chunks)
    return pool


def new_session(tmp_path: Path, function, tasks, key: str = "f1") -> Session:
    session = Session.create(tmp_path / "work", key)
    function_pickle = function if isinstance(function, bytes) else pickle.dumps(function)
    session.write_function(function_pickle)
    session.append_tasks([pickle.dumps(t) for t in tasks])
    return session


def post(pool, number, session, chunk, start, stop, key="f1", attempt=0, tier=0) -> Ticket:
    ticket = Ticket(number, str(session.dir), chunk, attempt, start, stop, key, tier)
    pool.post([ticket])
    return ticket


def result(session: Session, chunk: int, tries: int = 0) -> ChunkResult:
    """What the record file of try ``tries`` of ``chunk`` holds (it must be there)."""
    data = record_path(session, chunk, tries).read_bytes()
    return ChunkResult.parse(chunk, data)


def mailbox(pool, job_id="job-1") -> list:
    """``(kind, number)`` of every record in the mailbox of job ``job_id``, read afresh."""
    path = str(pool.dir / _layout.WORKERS_DIR / job_id)
    return [(kind, number) for kind, number, _, _ in RecordReader(path).read()]


def claims(pool, *job_ids) -> PoolDirectory:
    """``pool`` after the driver's look at the mailboxes of ``job_ids`` (default job-1)."""
    pool.read_mailboxes(job_ids or ("job-1",))
    return pool


def values(envelopes: list) -> list:
    return [value if ok else ("error", value[1]) for ok, value in envelopes]
