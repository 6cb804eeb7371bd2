"""A map laid out on disk as the dispatcher lays it out, one step at a time, for the tests
of what reads sessions afterwards (``batchpool.load``, the ``batchpool`` command)."""

from __future__ import annotations

import hashlib
import os
import pickle
import socket

import cloudpickle

from batchpool import _layout
from batchpool.session import ChunkEvent, Manifest, PoolDirectory, Session
from batchpool.worker import Worker
from helpers.pool_dirs import record_path

CREATED = "2026-01-02T03:04:05"


class ScriptedDriver:
    """A map laid out on disk as the dispatcher lays it out, one step at a time."""

    def __init__(self, work_dir, function, tasks, *, imap=False, key="0123456789abcdef"):
        self.new_pool(work_dir)
        self.session = Session.create(work_dir, key)
        payload = cloudpickle.dumps(function)
        self.function_key = hashlib.sha256(payload).hexdigest()[:16]
        self.session.write_function(payload)
        self.session.append_tasks([pickle.dumps(task) for task in tasks])
        name = f"{function.__module__}.{function.__qualname__}"
        num_tasks = None if imap else len(tasks)
        self.session.write_manifest(Manifest(num_tasks, None, "local", name, CREATED))

    def new_pool(self, work_dir):
        """Post from now on to a new pool (the first one, or a resumed map's)."""
        self.pool = PoolDirectory.create(work_dir)
        self.pool.write_setup(cloudpickle.dumps((None, ())), 0.0, 1)  # one ticket per run()
        self.pool.heartbeat(1)
        self.next_ticket = 0
        self.chunk_of_ticket = {}
        return self.pool

    def post(self, chunk, tasks, attempt=0):
        """Post chunk ``chunk`` (tasks ``tasks``) as the next ticket; its number."""
        number = self.next_ticket
        self.next_ticket += 1
        ticket = _layout.Ticket(
            number,
            str(self.session.dir),
            chunk,
            attempt,
            tasks.start,
            tasks.stop,
            self.function_key,
        )
        self.session.record_chunks(
            [
                ChunkEvent(
                    "posted", chunk, tasks.start, tasks.stop, attempt, str(self.pool.dir), number
                )
            ]
        )
        self.pool.post([ticket])
        self.chunk_of_ticket[number] = (chunk, attempt)
        return number

    def run(self, job_id, collect=True, ticket=None):
        """The worker of job ``job_id`` claims the ticket (by default the last posted) and
        runs it; the driver sees the claim and, if ``collect``, collects the result."""
        ticket = self.next_ticket - 1 if ticket is None else ticket
        worker = Worker(str(self.pool.dir), job_id)
        worker.read_log()
        worker.pending = {ticket: worker.pending[ticket]}
        assert worker.run() == 1
        self._claimed(job_id, ticket)
        if collect:  # and logs what its tasks used, as the driver does
            result = self.session.take_record(*self.chunk_of_ticket[ticket])
            assert result is not None
            self.session.log_usage(job_id, result)

    def lose(self, job_id, ticket=None):
        """Job ``job_id`` claims the ticket and dies before it writes a result."""
        ticket = self.next_ticket - 1 if ticket is None else ticket
        claim = _layout.Claim(job_id, socket.gethostname(), os.getpid())
        path = record_path(self.session, *self.chunk_of_ticket[ticket])
        begin = _layout.encode_record(_layout.BEGIN, 0, 0.0, claim.encode())
        assert _layout.create_exclusively(str(path), begin)
        mailbox = str(self.pool.dir / _layout.WORKERS_DIR / job_id)
        _layout.append_record(mailbox, _layout.CLAIMED, ticket)
        self._claimed(job_id, ticket)

    def _claimed(self, job_id, ticket):
        self.pool.read_mailboxes([job_id])
        claim = self.pool.claim(ticket)
        chunk, _ = self.chunk_of_ticket[ticket]
        self.session.record_chunks([ChunkEvent("claimed", chunk, job_id=claim.job_id)])

    def end(self, done=False):
        """As a driver that ended leaves its session."""
        if done:
            self.session.mark_done()
        self.session.release()
        return self.session
