"""The worker and the records it shares with the driver (batchpool.worker, batchpool._layout).

The ticket loop runs in this process on hand-built pool and session directories
(:class:`batchpool.worker.Worker`, :mod:`helpers.pool_dirs`); the worker as a process,
``python -m batchpool.worker``, is tested in ``tests/integration/test_worker_process.py``.
The driver's side of the files is :class:`batchpool.session.PoolDirectory` and
:class:`batchpool.session.Session`.
"""

from __future__ import annotations

import operator
import os
import pickle
import re
import socket
import subprocess
import threading
import time
import types
from multiprocessing.pool import MaybeEncodingError
from pathlib import Path

import pytest

from batchpool import _layout, worker
from batchpool._layout import Claim, DriverBeat, RecordReader, Ticket
from batchpool.session import Session
from helpers.pool_dirs import (
    NODE,
    claims,
    mailbox,
    new_pool,
    new_session,
    post,
    record_path,
    result,
    values,
)

ELSEWHERE = "00000000-0000-0000-0000-000000000000/pid:[4026531836]"
"""A process space that is not this one (another host's boot, or another pid namespace)."""

# -- task functions (by reference: this module is imported wherever they are unpickled) --


def square(x):
    return x * x


def lock_if_odd(x):
    return threading.Lock() if x % 2 else x


def fail_on_three(x):
    if x == 3:
        raise ValueError("three is bad")
    return x


class _Unloadable:
    """Pickles fine, fails to unpickle: a task whose class is missing on the node."""

    def __reduce__(self):
        return (_refuse, ())


def _refuse():
    raise ModuleNotFoundError("No module named 'only_on_the_driver'")


def mailbox_so_far(path):
    """The records of a mailbox as a task sees them while it runs."""
    return [(kind, number) for kind, number, _, _ in RecordReader(path).read()]


def record_file_so_far(path):
    """Whether a record file holds only whole records, and their kinds, as a task of it
    sees them while it runs."""
    records, whole = _layout.decode_records(Path(path).read_bytes())
    return whole, [kind for kind, _, _, _ in records]


# -- helpers -------------------------------------------------------------------------------


def run_worker(pool, job_id="job-1") -> int:
    return worker.Worker(str(pool.dir), job_id).run()


def write_beat(pool, beat: DriverBeat) -> None:
    _layout.write_in_place(str(pool.dir / _layout.DRIVER_FILE), beat.encode())


def dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


# -- _layout: tickets and claims -----------------------------------------------------------


def test_a_ticket_round_trips():
    ticket = Ticket(12, "/work/2026_abc def", 3, 2, 100, 140, "0123456789abcdef")
    back = Ticket.decode(12, ticket.encode())
    assert list(back) == [
        12,
        "/work/2026_abc def",
        3,
        2,
        100,
        140,
        "0123456789abcdef",
        0,
    ]
    assert Ticket.decode(1, Ticket(1, "/w", 0, 0, 0, 1, "k", tier=2).encode()).tier == 2
    assert "chunk 3 attempt 2" in repr(back) and "100:140" in repr(back)


def test_a_torn_ticket_is_refused():
    data = Ticket(12, "/work/s", 3, 0, 100, 140, "k").encode()
    for cut in range(len(data)):
        with pytest.raises(ValueError):
            Ticket.decode(12, data[:cut])
    with pytest.raises(ValueError):
        Ticket.decode(12, data + b"more\n")


def test_a_claim_round_trips():
    back = Claim.decode(Claim("7055_3", "node7", 4242, ELSEWHERE).encode())
    assert (back.job_id, back.host, back.pid, back.space, back.withdrawn) == (
        "7055_3",
        "node7",
        4242,
        ELSEWHERE,
        False,
    )
    assert not back.here  # its pid is of another process space: not to be watched here
    withdrawn = Claim.decode(Claim(_layout.WITHDRAWN, "login1", 99).encode())
    assert withdrawn.withdrawn
    assert withdrawn.space == _layout.process_space() and withdrawn.here  # made here


def test_a_torn_claim_is_being_written():
    data = Claim("7055_3", "node7", 4242).encode()
    for cut in range(len(data)):
        assert Claim.decode(data[:cut]) is None, data[:cut]
    assert Claim.decode(data + b"more\n") is None
    odd = Claim.decode(b"\xff\xfe\n\x80\n12\n\xfd\n")  # not text: still read
    assert odd.pid == 12 and not odd.here


# -- _layout: files --------------------------------------------------------------------------


def test_create_exclusively_lets_one_of_two_tries_win(tmp_path):
    path = str(tmp_path / "claim")
    assert _layout.create_exclusively(path, b"first")
    assert not _layout.create_exclusively(path, b"second")
    assert Path(path).read_bytes() == b"first"
    assert Path(path).stat().st_mode & 0o777 == 0o600


def test_create_exclusively_lets_one_of_many_concurrent_tries_win(tmp_path):
    path = str(tmp_path / "claim")
    barrier = threading.Barrier(16)
    wins = []

    def try_it(n):
        barrier.wait()
        if _layout.create_exclusively(path, b"%d" % n):
            wins.append(n)

    threads = [threading.Thread(target=try_it, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1
    assert Path(path).read_bytes() == b"%d" % wins[0]


def test_write_atomically_leaves_no_temporary_file(tmp_path):
    target = tmp_path / "r.pkl"
    _layout.write_atomically(str(target), b"payload")
    _layout.write_atomically(str(target), b"again")
    assert target.read_bytes() == b"again"
    assert [p.name for p in tmp_path.iterdir()] == ["r.pkl"]
    assert target.stat().st_mode & 0o777 == 0o600


def test_read_file_of_a_missing_file_is_none(tmp_path):
    assert _layout.read_file(str(tmp_path / "nothing")) is None
    (tmp_path / "empty").write_bytes(b"")
    assert _layout.read_file(str(tmp_path / "empty")) == b""


def test_read_tasks_reads_any_range(tmp_path):
    session = Session.create(tmp_path, "k")
    tasks = [pickle.dumps(t) for t in ("a", [1, 2], None, "d" * 1000, 5)]
    session.append_tasks(tasks[:2])
    session.append_tasks(tasks[2:])
    directory = str(session.dir)
    assert _layout.read_tasks(directory, 0, 5) == tasks
    assert _layout.read_tasks(directory, 0, 1) == tasks[:1]
    assert _layout.read_tasks(directory, 1, 4) == tasks[1:4]  # across the two appends
    assert _layout.read_tasks(directory, 4, 5) == tasks[4:]
    with pytest.raises(ValueError, match="not in"):
        _layout.read_tasks(directory, 3, 6)
    with pytest.raises(ValueError, match="not in"):
        _layout.read_tasks(directory, 5, 6)


def test_read_tasks_of_an_empty_range_is_empty(tmp_path):
    session = Session.create(tmp_path, "k")
    session.append_tasks([pickle.dumps(1), pickle.dumps(2)])
    assert _layout.read_tasks(str(session.dir), 1, 1) == []


@pytest.mark.parametrize(
    "numbers, text",
    [([3], "3"), ([0, 1, 2, 5], "0-2,5"), ([1, 3, 5], "1,3,5"), (list(range(100)), "0-99")],
)
def test_ranges_round_trip(numbers, text):
    assert _layout.format_ranges(numbers) == text
    assert _layout.parse_ranges(text) == numbers


def test_no_numbers_have_no_ranges():
    with pytest.raises(ValueError):
        _layout.format_ranges([])


@pytest.mark.parametrize(("idle_s", "max_chunks"), [(5.0, None), (0.0, 1), (0.25, 3)])
def test_config_round_trips(idle_s, max_chunks):
    assert _layout.parse_config(_layout.format_config(idle_s, max_chunks)) == (idle_s, max_chunks)


def test_job_id_from_environment():
    env = {"SLURM_ARRAY_JOB_ID": "7055", "SLURM_ARRAY_TASK_ID": "3", "JOB_ID": "12"}
    assert _layout.job_id_from_environment("{SLURM_ARRAY_JOB_ID}_{SLURM_ARRAY_TASK_ID}", env) == (
        "7055_3"
    )
    assert _layout.job_id_from_environment("{JOB_ID}", env) == "12"
    assert _layout.job_id_from_environment("{SLURM_JOB_ID}", env) == "?"
    assert _layout.job_id_from_environment("1234.7", env) == "1234.7"


def test_job_id_from_this_processs_environment(monkeypatch):
    monkeypatch.setenv("SLURM_JOB_ID", "99")
    assert _layout.job_id_from_environment("{SLURM_JOB_ID}") == "99"


# -- the worker's pure parts ---------------------------------------------------------------


def test_job_variables_come_from_the_job():
    driver = {
        b"PATH": b"/driver/bin",
        b"SLURM_JOB_ID": b"1",
        b"SLURM_ARRAY_TASK_ID": b"7",
        b"JOB_ID": b"2",
        b"SGE_TASK_ID": b"undefined",
        b"TMPDIR": b"/tmp/driver",
        b"ODD": b"quote \" ' \n $HOME `x` \xe2\x9c\x93 \xff",
    }
    job = {b"PATH": b"/usr/bin", b"SLURM_JOB_ID": b"42", b"TMPDIR": b"/tmp/job", b"HOME": b"/h"}
    merged = worker.merge_environment(driver, job)
    assert merged == {
        b"PATH": b"/driver/bin",
        b"SLURM_JOB_ID": b"42",
        b"TMPDIR": b"/tmp/job",
        b"ODD": driver[b"ODD"],
    }


def run_tasks(function, pickled_tasks):
    return [pickle.loads(worker.run_task(function, task)) for task in pickled_tasks]


def test_run_tasks_keeps_going_after_a_failure():
    envelopes = run_tasks(lambda x: 10 // x, [pickle.dumps(x) for x in (1, 0, 2)])
    assert envelopes[0] == (True, 10) and envelopes[2] == (True, 5)
    ok, (exc_pickle, type_name, message, traceback_text) = envelopes[1]
    assert not ok and type_name == "ZeroDivisionError"
    assert isinstance(pickle.loads(exc_pickle), ZeroDivisionError)
    assert "Traceback" in traceback_text and "10 // x" in traceback_text


def test_a_task_that_cannot_be_unpickled_fails_alone():
    tasks = [pickle.dumps(1), pickle.dumps(_Unloadable()), pickle.dumps(3)]
    envelopes = run_tasks(square, tasks)
    assert envelopes[0] == (True, 1) and envelopes[2] == (True, 9)
    assert envelopes[1][0] is False and envelopes[1][1][1] == "ModuleNotFoundError"


def test_an_exception_that_cannot_be_rebuilt_is_sent_as_text():
    class Local(Exception):  # not importable by name: pickles neither here nor there
        pass

    def fail(x):
        raise Local("local trouble")

    ((ok, (exc_pickle, type_name, message, text)),) = run_tasks(fail, [pickle.dumps(0)])
    assert (ok, exc_pickle, message) == (False, None, "local trouble")
    assert type_name.endswith("Local") and "local trouble" in text


def test_starcall_and_applycall():
    assert worker.starcall(operator.sub, (7, 2)) == 5
    assert worker.applycall(int, (("ff",), {"base": 16})) == 255


def test_unpicklable_results_become_errors_and_others_survive():
    results = [1, threading.Lock(), lambda: 3]
    envelopes = run_tasks(results.__getitem__, [pickle.dumps(i) for i in range(3)])
    assert envelopes[0] == (True, 1)
    for ok, error in envelopes[1:]:
        assert ok is False and error[1] == "MaybeEncodingError"
        assert isinstance(pickle.loads(error[0]), MaybeEncodingError)


# -- _layout: records read as they grow, record file names, the driver's heartbeat -----------


def test_a_record_reader_returns_only_whole_records_and_goes_on_where_it_stopped(tmp_path):
    path = str(tmp_path / "log")
    reader = RecordReader(path)
    assert reader.read() == []  # no file yet: nothing, no error
    first = _layout.encode_record(_layout.POSTED, 1, 0.0, b"ticket one")
    second = _layout.encode_record(_layout.CLOSED, 2, 0.5, b"payload of two")
    _layout.append_bytes(path, first)
    assert reader.read() == [(_layout.POSTED, 1, 0.0, b"ticket one")]
    assert reader.read() == []  # read once only
    head = _layout.RECORD_HEAD.size
    written = 0
    for cut in (1, head - 1, head, head + 3, len(second) - 1):  # half appended, in steps
        _layout.append_bytes(path, second[written:cut])
        written = cut
        assert reader.read() == [], cut
        assert not reader.damaged and reader.offset == len(first)
    _layout.append_bytes(path, second[written:])
    assert reader.read() == [(_layout.CLOSED, 2, 0.5, b"payload of two")]
    assert reader.offset == len(first) + len(second)
    third = _layout.encode_record(_layout.STOP, 0, 0.0)
    _layout.append_bytes(path, third + third)
    assert [r[0] for r in reader.read()] == [_layout.STOP, _layout.STOP]  # both at once
    assert [r[1] for r in RecordReader(path).read()] == [1, 2, 0, 0]  # a new reader: all


def test_a_record_reader_stops_at_a_damaged_record(tmp_path):
    path = str(tmp_path / "mailbox")
    good = _layout.encode_record(_layout.CLAIMED, 3, 0.0)
    bad = bytearray(_layout.encode_record(_layout.READY, 0, 0.0, b"job\nhost\n1\nspace\n"))
    bad[-2] ^= 0xFF  # whole, but its checksum fails
    _layout.append_bytes(path, good + bytes(bad))
    reader = RecordReader(path)
    assert reader.read() == [(_layout.CLAIMED, 3, 0.0, b"")]
    assert reader.damaged
    _layout.append_bytes(path, good)
    assert reader.read() == []  # nothing after a damaged record is read


@pytest.mark.parametrize(("chunk", "tries"), [(0, 0), (4, 2), (1234, 17)])
def test_record_file_names_round_trip(chunk, tries):
    name = _layout.record_file_name(chunk, tries)
    assert name == f"{chunk}.{tries}.rec"
    assert _layout.parse_record_file_name(name) == (chunk, tries)


@pytest.mark.parametrize("name", ["4.pkl", "4.rec", "4.0.rec.damaged", "a.0.rec", "4.0.part"])
def test_other_names_are_no_record_files(name):
    assert _layout.parse_record_file_name(name) is None


def test_a_driver_beat_round_trips():
    beat = DriverBeat("login1", ELSEWHERE, 4242, 17)
    data = beat.encode()
    back = DriverBeat.decode(data)
    assert (back.host, back.space, back.pid, back.counter) == ("login1", ELSEWHERE, 4242, 17)
    assert not back.here
    for cut in range(len(data)):
        assert DriverBeat.decode(data[:cut]) is None, data[:cut]
    assert DriverBeat.decode(data + b"more\n") is None
    # the counter keeps its width: a rewrite in place is one write of the same size
    assert len(DriverBeat("login1", ELSEWHERE, 4242, 10**15).encode()) == len(data)


def test_the_drivers_heartbeat_is_rewritten_in_place(tmp_path):
    pool = new_pool(tmp_path)
    path = pool.dir / _layout.DRIVER_FILE
    pool.heartbeat(1)
    before = path.stat()
    pool.heartbeat(123456)
    after = path.stat()
    assert (after.st_ino, after.st_size) == (before.st_ino, before.st_size)
    assert after.st_mode & 0o777 == 0o600
    beat = DriverBeat.decode(path.read_bytes())
    assert (beat.host, beat.space, beat.pid, beat.counter) == (
        socket.gethostname(),
        _layout.process_space(),
        os.getpid(),
        123456,
    )
    assert beat.here


# -- the ticket loop, in this process --------------------------------------------------------


def test_a_worker_runs_ticket_n_into_the_chunks_record_file(tmp_path):
    pool = new_pool(tmp_path)
    session = new_session(tmp_path, square, range(6))
    post(pool, 0, session, chunk=4, start=2, stop=5, attempt=3)
    assert run_worker(pool, "7055_3") == 1
    got = result(session, 4, tries=3)
    assert got.complete and got.began and not got.damaged and not got.withdrawn
    assert got.tasks == range(2, 5) and 0 <= got.elapsed_s < 1
    assert got.envelopes() == [(True, 4), (True, 9), (True, 16)]
    records, whole = _layout.decode_records(record_path(session, 4, 3).read_bytes())
    assert whole and [(kind, number) for kind, number, _, _ in records] == [
        (_layout.BEGIN, 2),
        (_layout.TASK, 2),
        (_layout.TASK, 3),
        (_layout.TASK, 4),
        (_layout.END, 5),
    ]
    claim = session.record_claim(4, 3)
    assert (claim.job_id, claim.host, claim.pid) == ("7055_3", NODE, os.getpid())
    assert claim.space == _layout.process_space() and claim.here
    claims(pool, "7055_3")
    assert pool.claim(0).job_id == "7055_3" and pool.finished == {0}
    assert sorted(p.name for p in (session.dir / "results").iterdir()) == ["4.3.rec"]
    assert session.record_files() == [(4, 3)]


def test_a_worker_takes_tickets_in_order_across_maps(tmp_path):
    pool = new_pool(tmp_path)
    first = new_session(tmp_path, square, [1, 2, 3], key="f1")
    second = new_session(tmp_path, str.upper, ["a", "b"], key="f2")
    post(pool, 0, first, chunk=0, start=0, stop=2, key="f1")
    post(pool, 1, second, chunk=0, start=0, stop=2, key="f2")
    post(pool, 2, first, chunk=1, start=2, stop=3, key="f1")
    assert run_worker(pool) == 3
    assert values(result(first, 0).envelopes()) == [1, 4]
    assert values(result(first, 1).envelopes()) == [9]
    assert values(result(second, 0).envelopes()) == ["A", "B"]
    claims(pool)
    assert all(pool.claim(n).job_id == "job-1" for n in range(3))
    assert [number for kind, number in mailbox(pool) if kind == _layout.CLAIMED] == [0, 1, 2]


def test_a_workers_claims_and_finishes_reach_its_mailbox_in_order(tmp_path):
    pool = new_pool(tmp_path)
    box = str(pool.dir / _layout.WORKERS_DIR / "job-1")
    session = new_session(tmp_path, mailbox_so_far, [box, box])
    post(pool, 0, session, chunk=0, start=0, stop=1)
    post(pool, 1, session, chunk=1, start=1, stop=2)
    assert run_worker(pool) == 2
    assert mailbox(pool) == [
        (_layout.CLAIMED, 0),
        (_layout.FINISHED, 0),
        (_layout.CLAIMED, 1),
        (_layout.FINISHED, 1),
    ]
    # each claim is told before the ticket's tasks run, each finish only after them
    assert result(session, 0).envelopes() == [(True, [(_layout.CLAIMED, 0)])]
    assert result(session, 1).envelopes() == [
        (True, [(_layout.CLAIMED, 0), (_layout.FINISHED, 0), (_layout.CLAIMED, 1)])
    ]
    claims(pool)
    assert [pool.claim(n).job_id for n in (0, 1)] == ["job-1", "job-1"]
    assert pool.finished == {0, 1}
    assert not pool.worker_started("job-1")  # "ready" is the process's to say (below)


def test_a_failing_task_fails_alone(tmp_path):
    pool = new_pool(tmp_path)
    session = new_session(tmp_path, fail_on_three, [2, 3, 4])
    post(pool, 0, session, chunk=0, start=0, stop=3)
    run_worker(pool)
    envelopes = result(session, 0).envelopes()
    assert values(envelopes) == [2, ("error", "ValueError"), 4]
    assert str(pickle.loads(envelopes[1][1][0])) == "three is bad"


def test_a_claimed_or_withdrawn_ticket_is_skipped(tmp_path):
    pool = new_pool(tmp_path)
    session = new_session(tmp_path, square, range(3))
    for n in range(3):
        post(pool, n, session, chunk=n, start=n, stop=n + 1)
    other = Claim("other_job", "node9", 1, ELSEWHERE).encode()
    taken = _layout.encode_record(_layout.BEGIN, 0, 0.0, other)
    assert _layout.create_exclusively(str(record_path(session, 0, 0)), taken)
    _layout.append_record(str(pool.dir / _layout.WORKERS_DIR / "other_job"), _layout.CLAIMED, 0)
    assert session.withdraw(1, 0)
    withdrawn = record_path(session, 1, 0).read_bytes()
    assert run_worker(pool) == 1
    assert record_path(session, 0, 0).read_bytes() == taken  # no task of it ran here
    assert record_path(session, 1, 0).read_bytes() == withdrawn
    assert session.take_record(1, 0) is None  # the driver's own claim holds no result
    assert result(session, 2).envelopes() == [(True, 4)]
    assert session.record_claim(0, 0).job_id == "other_job"
    assert session.record_claim(1, 0).withdrawn
    assert session.record_claim(2, 0).job_id == "job-1"
    claims(pool, "other_job", "job-1")
    assert pool.claim(0).job_id == "other_job" and pool.claim(1) is None
    assert pool.claim(2).job_id == "job-1"
    assert mailbox(pool) == [(_layout.CLAIMED, 2), (_layout.FINISHED, 2)]


def test_a_worker_exits_when_idle(tmp_path):
    pool = new_pool(tmp_path, idle_s=0.15)
    start = time.monotonic()
    assert run_worker(pool) == 0
    assert 0.15 <= time.monotonic() - start < 1.5


def test_a_worker_exits_at_once_when_the_pool_is_stopped(tmp_path):
    pool = new_pool(tmp_path, idle_s=30)
    session = new_session(tmp_path, square, [1])
    post(pool, 0, session, chunk=0, start=0, stop=1)
    pool.stop_workers()
    start = time.monotonic()
    assert run_worker(pool) == 0
    assert time.monotonic() - start < 1
    assert claims(pool).claim(0) is None
    assert session.record_files() == [] and mailbox(pool) == []


def test_a_waiting_worker_exits_soon_after_the_pool_is_stopped(tmp_path):
    pool = new_pool(tmp_path, idle_s=30)
    timer = threading.Timer(0.2, pool.stop_workers)
    timer.start()
    start = time.monotonic()
    try:
        assert run_worker(pool) == 0
    finally:
        timer.cancel()
    assert time.monotonic() - start < 1.5


def test_a_worker_exits_after_maxtasksperchild_chunks(tmp_path):
    pool = new_pool(tmp_path, idle_s=30, max_chunks=2)
    session = new_session(tmp_path, square, range(3))
    for n in range(3):
        post(pool, n, session, chunk=n, start=n, stop=n + 1)
    start = time.monotonic()
    assert run_worker(pool) == 2
    assert time.monotonic() - start < 1.5
    assert claims(pool).claim(2) is None and not record_path(session, 2, 0).exists()
    assert session.record_files() == [(0, 0), (1, 0)]


def test_a_worker_whose_driver_died_in_its_process_space_exits(tmp_path):
    pool = new_pool(tmp_path, idle_s=30)
    write_beat(pool, DriverBeat(NODE, _layout.process_space(), dead_pid(), 0))
    session = new_session(tmp_path, square, [1])
    post(pool, 0, session, chunk=0, start=0, stop=1)
    start = time.monotonic()
    assert run_worker(pool) == 0
    assert time.monotonic() - start < 1
    assert session.record_files() == []  # it took nothing: nobody would collect it


def test_a_worker_whose_driver_lives_waits_for_work(tmp_path):
    pool = new_pool(tmp_path, idle_s=0.1)
    pool.heartbeat(1)
    session = new_session(tmp_path, square, [5])
    post(pool, 0, session, chunk=0, start=0, stop=1)
    assert run_worker(pool) == 1


def test_a_pid_of_another_process_space_is_not_looked_up(tmp_path):
    """A driver elsewhere, even on a host of the same name, whose pid is dead here: the
    worker does not take that for the driver's death, and works."""
    pool = new_pool(tmp_path, idle_s=0.1)
    write_beat(pool, DriverBeat(NODE, ELSEWHERE, dead_pid(), 1))
    session = new_session(tmp_path, square, [5])
    post(pool, 0, session, chunk=0, start=0, stop=1)
    assert run_worker(pool) == 1
    assert result(session, 0).envelopes() == [(True, 25)]


def test_a_driver_elsewhere_is_gone_only_after_its_counter_stood_still(tmp_path, monkeypatch):
    """Judged by the worker's own monotonic clock: not by the beat file's mtime (set by
    another host's clock, or the server's), nor by any time in it."""
    now = [1000.0]
    clock = types.SimpleNamespace(
        monotonic=lambda: now[0], time=time.time, perf_counter=time.perf_counter, sleep=time.sleep
    )
    monkeypatch.setattr(worker, "time", clock)
    silent = worker.DRIVER_SILENT_S
    pool = new_pool(tmp_path)
    path = pool.dir / _layout.DRIVER_FILE
    write_beat(pool, DriverBeat("login1", ELSEWHERE, dead_pid(), 7))
    os.utime(path, (1, 1))  # 1970 by any clock: not looked at
    w = worker.Worker(str(pool.dir), "job-1")
    assert not w._driver_gone()  # first sight of the counter
    now[0] += silent - 1
    assert not w._driver_gone()
    write_beat(pool, DriverBeat("login1", ELSEWHERE, dead_pid(), 8))  # the driver beats
    os.utime(path, (1, 1))
    now[0] += 2  # past DRIVER_SILENT_S since the first sight, but the counter moved
    assert not w._driver_gone()
    now[0] += silent - 1
    assert not w._driver_gone()
    os.utime(path, None)  # a fresh mtime does not keep it alive either
    now[0] += 2  # the counter stood still for longer than DRIVER_SILENT_S
    assert w._driver_gone()
    (pool.dir / _layout.DETACHED_FILE).write_bytes(b"{}")
    assert not w._driver_gone()  # a detached pool's driver left on purpose


def test_a_worker_leaves_a_silent_driver_elsewhere_and_stays_with_a_beating_one(
    tmp_path, monkeypatch
):
    monkeypatch.setattr(worker, "DRIVER_SILENT_S", 0.5)
    monkeypatch.setattr(worker, "CHECK_S", 0.02)
    pool = new_pool(tmp_path, idle_s=30)
    write_beat(pool, DriverBeat("login1", ELSEWHERE, os.getpid(), 1))
    start = time.monotonic()
    assert run_worker(pool) == 0  # the counter never moves
    assert 0.5 <= time.monotonic() - start < 2.5

    stop = threading.Event()

    def beat():
        counter = 2
        while not stop.wait(0.05):
            write_beat(pool, DriverBeat("login1", ELSEWHERE, os.getpid(), counter))
            counter += 1

    beating = threading.Thread(target=beat)
    beating.start()
    timer = threading.Timer(1.0, pool.stop_workers)
    timer.start()
    start = time.monotonic()
    try:
        assert run_worker(pool, "job-2") == 0
    finally:
        timer.cancel()
        stop.set()
        beating.join()
    assert 0.9 <= time.monotonic() - start < 3  # it stayed until told to stop


def test_a_worker_skips_the_tickets_the_log_closed(tmp_path):
    pool = new_pool(tmp_path, idle_s=0.1)
    session = new_session(tmp_path, square, range(10))
    for n in range(5):
        post(pool, n, session, chunk=n, start=n, stop=n + 1)
    pool.close_tickets(range(5))  # collected or withdrawn: their files are gone
    post(pool, 5, session, chunk=5, start=5, stop=6)
    w = worker.Worker(str(pool.dir), "job-1")
    assert w.read_log() == {0, 1, 2, 3, 4}
    assert list(w.pending) == [5]
    assert w.run() == 1
    assert session.record_files() == [(5, 0)]
    assert result(session, 5).envelopes() == [(True, 25)]
    assert mailbox(pool) == [(_layout.CLAIMED, 5), (_layout.FINISHED, 5)]


def test_a_waiting_worker_picks_up_a_ticket_appended_later(tmp_path):
    pool = new_pool(tmp_path, idle_s=0.3)
    session = new_session(tmp_path, square, range(3))
    timer = threading.Timer(0.1, post, (pool, 7, session, 0, 0, 3))
    timer.start()
    start = time.monotonic()
    try:
        assert run_worker(pool) == 1
    finally:
        timer.cancel()
    assert time.monotonic() - start >= 0.1
    assert values(result(session, 0).envelopes()) == [0, 1, 4]
    assert claims(pool).claim(7).job_id == "job-1"


@pytest.mark.parametrize("how", ["collected", "withdrawn"])
def test_a_closed_ticket_whose_file_was_removed_is_not_claimed_again(tmp_path, how):
    """Worker A read ticket 0 before the driver closed it; by the time A claims it, the
    ticket was run by B and collected (or withdrawn) and its record file removed: an
    exclusive create would succeed again, but A sees the ticket closed and undoes it."""
    pool = new_pool(tmp_path)
    session = new_session(tmp_path, square, [3, 4])
    post(pool, 0, session, chunk=0, start=0, stop=1)
    a = worker.Worker(str(pool.dir), "job-a")
    a.read_log()
    assert list(a.pending) == [0]
    if how == "collected":
        assert worker.Worker(str(pool.dir), "job-b").take_one()
        pool.close_tickets([0])
        assert session.take_record(0, 0).envelopes() == [(True, 9)]
    else:
        assert session.withdraw(0, 0)
        pool.close_tickets([0])
        session.remove_record(0, 0)
    assert session.record_files() == []
    ticket = a.pending.pop(0)
    assert a.claim_ticket(ticket) is None
    assert session.record_files() == [] and not record_path(session, 0, 0).exists()
    assert mailbox(pool, "job-a") == []
    post(pool, 1, session, chunk=0, start=0, stop=1, attempt=1)  # the chunk posted anew
    assert a.take_one()
    assert session.record_files() == [(0, 1)]
    assert result(session, 0, tries=1).envelopes() == [(True, 9)]
    assert mailbox(pool, "job-a") == [(_layout.CLAIMED, 1), (_layout.FINISHED, 1)]


@pytest.mark.parametrize("cancelled_first", [False, True])
def test_a_worker_skips_a_cancelled_maps_tickets(tmp_path, cancelled_first):
    pool = new_pool(tmp_path)
    cancelled = new_session(tmp_path, square, [1], key="f1")
    live = new_session(tmp_path, square, [2], key="f1")
    if cancelled_first:
        pool.cancel(cancelled.dir)
    post(pool, 0, cancelled, chunk=0, start=0, stop=1)
    post(pool, 1, live, chunk=0, start=0, stop=1)
    if not cancelled_first:
        pool.cancel(cancelled.dir)
    w = worker.Worker(str(pool.dir), "job-1")
    w.read_log()
    assert list(w.pending) == [1]
    assert w.run() == 1
    assert cancelled.record_files() == []  # not claimed, not run
    assert claims(pool).claim(0) is None
    assert result(live, 0).envelopes() == [(True, 4)]


def test_a_ticket_of_a_removed_session_is_skipped(tmp_path):
    pool = new_pool(tmp_path)
    gone = new_session(tmp_path, square, [1])
    live = new_session(tmp_path, square, [3])
    post(pool, 0, gone, chunk=0, start=0, stop=1)
    post(pool, 1, live, chunk=0, start=0, stop=1)
    gone.remove()
    assert run_worker(pool) == 1
    assert not gone.dir.exists()
    assert result(live, 0).envelopes() == [(True, 9)]
    assert mailbox(pool) == [(_layout.CLAIMED, 1), (_layout.FINISHED, 1)]


def test_a_worker_takes_the_tickets_of_its_tier_only(tmp_path):
    pool = new_pool(tmp_path)
    session = new_session(tmp_path, square, [2, 3])
    post(pool, 0, session, chunk=0, start=0, stop=1, tier=0)
    post(pool, 1, session, chunk=1, start=1, stop=2, tier=1)
    big = worker.Worker(str(pool.dir), "job-big", tier=1)
    assert big.run() == 1
    assert session.record_files() == [(1, 0)]
    assert result(session, 1).envelopes() == [(True, 9)]
    assert run_worker(pool) == 1
    assert result(session, 0).envelopes() == [(True, 4)]


def test_a_function_that_cannot_be_unpickled_fails_every_task(tmp_path):
    pool = new_pool(tmp_path)
    missing = b"cno_such_module_of_batchpool_tests\nf\n."  # a GLOBAL of a missing module
    session = new_session(tmp_path, missing, [1, 2, 3])
    post(pool, 0, session, chunk=0, start=0, stop=3)
    assert run_worker(pool) == 1
    envelopes = result(session, 0).envelopes()
    assert len(envelopes) == 3
    for ok, (exc_pickle, type_name, message, _) in envelopes:
        assert not ok and type_name == "ModuleNotFoundError"
        assert "no_such_module_of_batchpool_tests" in message
        assert isinstance(pickle.loads(exc_pickle), ModuleNotFoundError)


def test_an_unpicklable_result_fails_its_task_only(tmp_path):
    pool = new_pool(tmp_path)
    session = new_session(tmp_path, lock_if_odd, [0, 1, 2])
    post(pool, 0, session, chunk=0, start=0, stop=3)
    run_worker(pool)
    envelopes = result(session, 0).envelopes()
    assert envelopes[0] == (True, 0) and envelopes[2] == (True, 2)
    ok, (exc_pickle, type_name, _, _) = envelopes[1]
    assert not ok and type_name == "MaybeEncodingError"
    assert isinstance(pickle.loads(exc_pickle), MaybeEncodingError)


def test_a_worker_keeps_unpickled_functions_by_key(tmp_path):
    pool = new_pool(tmp_path)
    session = new_session(tmp_path, square, [3, 4])
    w = worker.Worker(str(pool.dir), "job-1")

    def claim_and_run(ticket):
        fd = w.claim_ticket(ticket)
        assert fd is not None
        w.run_ticket(ticket, fd)

    claim_and_run(Ticket(0, str(session.dir), 0, 0, 0, 1, "f1"))
    session.write_function(pickle.dumps(str))  # not read again for the same key
    claim_and_run(Ticket(1, str(session.dir), 1, 0, 1, 2, "f1"))
    claim_and_run(Ticket(2, str(session.dir), 2, 0, 1, 2, "f2"))
    assert result(session, 0).envelopes() == [(True, 9)]
    assert result(session, 1).envelopes() == [(True, 16)]
    assert result(session, 2).envelopes() == [(True, "4")]


def test_a_worker_writes_whole_records_only(tmp_path):
    pool = new_pool(tmp_path)
    session = new_session(tmp_path, square, range(50))
    post(pool, 0, session, chunk=9, start=0, stop=50)
    run_worker(pool)
    assert [p.name for p in (session.dir / "results").iterdir()] == ["9.0.rec"]
    assert record_path(session, 9, 0).stat().st_mode & 0o777 == 0o600
    got = result(session, 9)
    assert got.complete and not got.damaged and got.tasks == range(50)
    assert claims(pool).finished == {0}


def test_a_record_file_holds_each_task_as_soon_as_it_ended(tmp_path):
    pool = new_pool(tmp_path)
    session = Session.create(tmp_path / "work", "f1")
    session.write_function(pickle.dumps(record_file_so_far))
    path = str(record_path(session, 0, 0))  # each task looks at its own chunk's file
    session.append_tasks([pickle.dumps(path)] * 3)
    post(pool, 0, session, chunk=0, start=0, stop=3)
    assert run_worker(pool) == 1
    begin, task = _layout.BEGIN, _layout.TASK
    assert result(session, 0).envelopes() == [
        (True, (True, [begin])),
        (True, (True, [begin, task])),
        (True, (True, [begin, task, task])),
    ]


def test_a_directory_that_is_no_pool_is_not_shared(tmp_path):
    # worker.NotShared, or (as src/batchpool/worker.py has it at times) a FileNotFoundError
    # with the same message: what counts is that it names the directory and the cause
    error = getattr(worker, "NotShared", FileNotFoundError)
    with pytest.raises(error, match=re.escape(str(tmp_path))) as raised:
        worker.Worker(str(tmp_path), "job-1")
    message = str(raised.value)
    assert "work_dir must be on a filesystem" in message and "share" in message
    assert "not a batchpool pool" not in message


def test_two_workers_share_the_tickets_and_each_runs_once(tmp_path):
    pool = new_pool(tmp_path, idle_s=0.3)
    session = new_session(tmp_path, square, range(40))
    for n in range(40):
        post(pool, n, session, chunk=n, start=n, stop=n + 1)
    counts = {}

    def run(job_id):
        counts[job_id] = run_worker(pool, job_id)

    threads = [threading.Thread(target=run, args=(f"job-{i}",)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(counts.values()) == 40
    assert [result(session, n).envelopes() for n in range(40)] == [
        [(True, n * n)] for n in range(40)
    ]
    claims(pool, "job-0", "job-1")
    claimed = [pool.claim(n).job_id for n in range(40)]
    assert set(claimed) <= {"job-0", "job-1"}
    assert claimed.count("job-0") == counts["job-0"]
    assert claimed == [session.record_claim(n, 0).job_id for n in range(40)]
    told = [n for job in ("job-0", "job-1") for kind, n in mailbox(pool, job) if kind == b"G"]
    assert sorted(told) == list(range(40))  # each ticket claimed once, by one of them
    assert pool.finished == set(range(40))


def test_without_idling_a_worker_runs_one_chunk_and_exits(tmp_path):
    pool = new_pool(tmp_path, idle_s=0.0)
    session = new_session(tmp_path, square, range(3))
    for n in range(3):
        post(pool, n, session, chunk=n, start=n, stop=n + 1)
    assert run_worker(pool) == 1  # worker_idle_s=0: one chunk per job
    claims(pool)
    assert pool.claim(0) is not None and pool.claim(1) is None
    assert session.record_files() == [(0, 0)]
