"""The worker and the records it shares with the driver (batchpool.worker, batchpool._layout).

The ticket loop runs in this process on hand-built pool and session directories
(:class:`batchpool.worker.Worker`), and as ``python -m batchpool.worker`` for what only a
whole process does (the driver's environment, the initializer, ``workers/JOB_ID``, what
it imports).
"""

from __future__ import annotations

import functools
import operator
import os
import pickle
import subprocess
import sys
import threading
import time
from multiprocessing.pool import MaybeEncodingError
from pathlib import Path

import pytest

from batchpool import _layout, worker
from batchpool._layout import Claim, Ticket
from batchpool.session import ChunkResult, PoolDirectory, Session

NODE = os.uname().nodename

# -- task functions (by reference: this module is imported wherever they are unpickled) --


def square(x):
    return x * x


def lock_if_odd(x):
    return threading.Lock() if x % 2 else x


def fail_on_three(x):
    if x == 3:
        raise ValueError("three is bad")
    return x


def environment_at_start(name):
    """The variable ``name`` as this process's image started with it (not as changed since)."""
    with open("/proc/self/environ", "rb") as f:
        variables = dict(v.split(b"=", 1) for v in f.read().split(b"\0") if b"=" in v)
    value = variables.get(name.encode())
    return None if value is None else value.decode()


class _Unloadable:
    """Pickles fine, fails to unpickle: a task whose class is missing on the node."""

    def __reduce__(self):
        return (_refuse, ())


def _refuse():
    raise ModuleNotFoundError("No module named 'only_on_the_driver'")


# -- helpers -------------------------------------------------------------------------------


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


def post(pool, number, session, chunk, start, stop, key="f1", attempt=0) -> Ticket:
    ticket = Ticket(number, str(session.dir), chunk, attempt, start, stop, key)
    pool.post(ticket)
    return ticket


def run_worker(pool, job_id="job-1") -> int:
    return worker.Worker(str(pool.dir), job_id).run()


def result(session: Session, chunk: int) -> ChunkResult:
    data = session.result_path(chunk).read_bytes()
    return ChunkResult.parse(chunk, data)


def values(envelopes: list) -> list:
    return [value if ok else ("error", value[1]) for ok, value in envelopes]


# -- _layout: tickets and claims -----------------------------------------------------------


def test_a_ticket_round_trips():
    ticket = Ticket(12, "/work/2026_abc def", 3, 2, 100, 140, "0123456789abcdef")
    back = Ticket.decode(12, ticket.encode())
    assert [getattr(back, f) for f in Ticket.__slots__] == [
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
    back = Claim.decode(Claim("7055_3", "node7", 4242).encode())
    assert (back.job_id, back.host, back.pid, back.withdrawn) == ("7055_3", "node7", 4242, False)
    withdrawn = Claim.decode(Claim(_layout.WITHDRAWN, "login1", 99).encode())
    assert withdrawn.withdrawn


def test_a_torn_claim_is_being_written():
    data = Claim("7055_3", "node7", 4242).encode()
    for cut in range(len(data)):
        assert Claim.decode(data[:cut]) is None, data[:cut]
    assert Claim.decode(b"\xff\xfe\n\x80\n12\n").pid == 12  # not text: still read


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


# -- the ticket loop, in this process --------------------------------------------------------


def test_a_worker_runs_ticket_n_into_the_chunks_result_file(tmp_path):
    pool = new_pool(tmp_path)
    session = new_session(tmp_path, square, range(6))
    post(pool, 0, session, chunk=4, start=2, stop=5)
    assert run_worker(pool, "7055_3") == 1
    got = result(session, 4)
    assert got.tasks == range(2, 5) and 0 <= got.elapsed_s < 1
    assert got.envelopes() == [(True, 4), (True, 9), (True, 16)]
    records, whole = _layout.decode_records(session.result_path(4).read_bytes())
    assert whole and [(kind, number) for kind, number, _, _ in records] == [
        (_layout.BEGIN, 2),
        (_layout.TASK, 2),
        (_layout.TASK, 3),
        (_layout.TASK, 4),
        (_layout.END, 5),
    ]
    claim = pool.claim(0)
    assert (claim.job_id, claim.host, claim.pid) == ("7055_3", NODE, os.getpid())
    assert sorted(p.name for p in (session.dir / "results").iterdir()) == ["4.pkl"]


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
    assert all(pool.claim(n).job_id == "job-1" for n in range(3))


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
    other = Claim("other_job", "node9", 1).encode()
    assert _layout.create_exclusively(str(pool.dir / "claims" / "0"), other)
    assert pool.withdraw(1)
    assert run_worker(pool) == 1
    assert not session.result_path(0).exists() and not session.result_path(1).exists()
    assert result(session, 2).envelopes() == [(True, 4)]
    assert pool.claim(0).job_id == "other_job" and pool.claim(1).withdrawn
    assert pool.claim(2).job_id == "job-1"


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
    assert pool.claim(0) is None


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
    assert pool.claim(2) is None and not session.result_path(2).exists()


def test_a_worker_whose_driver_died_on_this_host_exits(tmp_path):
    pool = new_pool(tmp_path, idle_s=30)
    process = subprocess.Popen(["true"])
    process.wait()
    (pool.dir / "driver").write_bytes(f"{NODE}\n{process.pid}\n0\n".encode())
    start = time.monotonic()
    assert run_worker(pool) == 0
    assert time.monotonic() - start < 1


def test_a_worker_whose_driver_lives_waits_for_work(tmp_path):
    pool = new_pool(tmp_path, idle_s=0.1)
    pool.heartbeat(1)
    session = new_session(tmp_path, square, [5])
    post(pool, 0, session, chunk=0, start=0, stop=1)
    assert run_worker(pool) == 1


def test_a_worker_starts_at_the_hint(tmp_path):
    pool = new_pool(tmp_path, idle_s=0.1)
    session = new_session(tmp_path, square, range(10))
    post(pool, 5, session, chunk=0, start=0, stop=1)  # tickets 0-4 are gone
    assert run_worker(pool) == 0  # no hint: ticket 0 never comes
    pool.set_hint(5)
    assert run_worker(pool) == 1
    assert result(session, 0).envelopes() == [(True, 0)]


def test_a_waiting_worker_follows_the_hint(tmp_path, monkeypatch):
    monkeypatch.setattr(worker, "CHECK_S", 0.05)
    pool = new_pool(tmp_path, idle_s=0.3)
    session = new_session(tmp_path, square, range(3))

    def later():
        post(pool, 7, session, chunk=0, start=0, stop=3)
        pool.set_hint(7)

    timer = threading.Timer(0.1, later)
    timer.start()
    try:
        assert run_worker(pool) == 1
    finally:
        timer.cancel()
    assert values(result(session, 0).envelopes()) == [0, 1, 4]


def test_a_worker_skips_a_cancelled_maps_tickets(tmp_path):
    pool = new_pool(tmp_path)
    cancelled = new_session(tmp_path, square, [1], key="f1")
    live = new_session(tmp_path, square, [2], key="f1")
    cancelled.cancel()
    post(pool, 0, cancelled, chunk=0, start=0, stop=1)
    post(pool, 1, live, chunk=0, start=0, stop=1)
    run_worker(pool)
    assert pool.claim(0).job_id == "job-1"  # taken, so that no one else runs it
    assert not cancelled.result_path(0).exists()
    assert result(live, 0).envelopes() == [(True, 4)]


def test_a_ticket_of_a_removed_session_is_skipped(tmp_path):
    pool = new_pool(tmp_path)
    gone = new_session(tmp_path, square, [1])
    live = new_session(tmp_path, square, [3])
    post(pool, 0, gone, chunk=0, start=0, stop=1)
    post(pool, 1, live, chunk=0, start=0, stop=1)
    gone.remove()
    run_worker(pool)
    assert not gone.dir.exists()
    assert result(live, 0).envelopes() == [(True, 9)]


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
    w.run_ticket(Ticket(0, str(session.dir), 0, 0, 0, 1, "f1"))
    session.write_function(pickle.dumps(str))  # not read again for the same key
    w.run_ticket(Ticket(1, str(session.dir), 1, 0, 1, 2, "f1"))
    w.run_ticket(Ticket(2, str(session.dir), 2, 0, 1, 2, "f2"))
    assert result(session, 0).envelopes() == [(True, 9)]
    assert result(session, 1).envelopes() == [(True, 16)]
    assert result(session, 2).envelopes() == [(True, "4")]


def test_a_worker_writes_whole_result_files_only(tmp_path):
    pool = new_pool(tmp_path)
    session = new_session(tmp_path, square, range(50))
    post(pool, 0, session, chunk=9, start=0, stop=50)
    run_worker(pool)
    assert [p.name for p in (session.dir / "results").iterdir()] == ["9.pkl"]
    assert session.result_path(9).stat().st_mode & 0o777 == 0o600


def test_a_directory_that_is_no_pool_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a batchpool pool"):
        worker.Worker(str(tmp_path), "job-1")


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
    claims = [pool.claim(n).job_id for n in range(40)]
    assert set(claims) <= {"job-0", "job-1"}
    assert claims.count("job-0") == counts["job-0"]


# -- the worker as a process ---------------------------------------------------------------


def worker_process(pool, template, env=None, *python_options, timeout=30):
    argv = [sys.executable, *python_options, "-m", "batchpool.worker"]
    argv += [str(pool.dir), "--job-id", template]
    return subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=dict(os.environ) if env is None else env,
    )


@pytest.mark.parametrize(
    "args", [["only-one-argument"], ["pool", "--job", "x"], ["pool", "--job-id"], []]
)
def test_worker_usage_errors_exit_2(args):
    done = subprocess.run(
        [sys.executable, "-m", "batchpool.worker", *args], capture_output=True, text=True
    )
    assert done.returncode == 2 and "usage" in done.stderr


def test_the_worker_process_runs_in_the_drivers_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("BATCHPOOL_TEST_DRIVER", "from the driver")
    monkeypatch.setenv("SLURM_JOB_ID", "1")  # the driver's own job: not the worker's
    marker = tmp_path / "initialized"
    pool = new_pool(tmp_path, idle_s=0.2, initializer=(os.mkdir, (str(marker),)))
    session = new_session(tmp_path, os.getenv, ["BATCHPOOL_TEST_DRIVER", "SLURM_JOB_ID"])
    post(pool, 0, session, chunk=0, start=0, stop=2)
    job_env = {k: v for k, v in os.environ.items() if k != "BATCHPOOL_TEST_DRIVER"}
    job_env["SLURM_JOB_ID"] = "42"
    done = worker_process(pool, "{SLURM_JOB_ID}", job_env)
    assert done.returncode == 0, done.stderr
    assert marker.is_dir()  # the initializer ran
    assert result(session, 0).envelopes() == [(True, "from the driver"), (True, "42")]
    started = Claim.decode((pool.dir / "workers" / "42").read_bytes())
    assert (started.job_id, started.host) == ("42", NODE)
    assert pool.worker_started("42")
    assert pool.claim(0).job_id == "42" and pool.claim(0).pid == started.pid


def test_the_worker_process_takes_its_job_id_from_the_array_variables(tmp_path):
    pool = new_pool(tmp_path, idle_s=0.1)
    env = {**os.environ, "SLURM_ARRAY_JOB_ID": "7055", "SLURM_ARRAY_TASK_ID": "3"}
    done = worker_process(pool, "{SLURM_ARRAY_JOB_ID}_{SLURM_ARRAY_TASK_ID}", env)
    assert done.returncode == 0, done.stderr
    assert pool.worker_started("7055_3")


def test_the_worker_imports_only_what_its_function_needs(tmp_path):
    """A job starts fast: a task function pickled by reference (here one of the worker's
    own records) needs neither cloudpickle nor the driver's modules."""
    pool = new_pool(tmp_path, idle_s=0.0)
    session = new_session(tmp_path, _layout.parse_ranges, ["1-3"])
    post(pool, 0, session, chunk=0, start=0, stop=1)

    def imports(*args: str) -> set[str]:
        argv = [sys.executable, "-X", "importtime", *args]
        run = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=True)
        return {line.rpartition("|")[2].strip() for line in run.stderr.splitlines()}

    # What the interpreter imports by itself (site, .pth files) is not the worker's.
    # The worker itself runs as __main__; batchpool.worker is imported only if something
    # unpickled needs it.
    argv = ["-m", "batchpool.worker", str(pool.dir), "--job-id", "job-1"]
    imported = imports(*argv) - imports("-c", "pass")
    assert {"batchpool", "batchpool._layout", "pickle"} <= imported
    assert result(session, 0).envelopes() == [(True, [1, 2, 3])]
    assert pool.worker_started("job-1")
    heavy = {"cloudpickle", "tqdm", "shutil", "traceback"}
    assert not imported & heavy
    assert {m for m in imported if m.startswith("batchpool.")} <= {
        "batchpool.worker",
        "batchpool._layout",
    }


def test_a_starmap_function_runs_in_the_worker_process(tmp_path):
    pool = new_pool(tmp_path, idle_s=0.1)
    function = functools.partial(worker.starcall, operator.truediv)
    session = new_session(tmp_path, function, [(1, 2), (1, 0), (9, 3)])
    post(pool, 0, session, chunk=0, start=0, stop=3)
    done = worker_process(pool, "job-1")
    assert done.returncode == 0, done.stderr
    assert values(result(session, 0).envelopes()) == [0.5, ("error", "ZeroDivisionError"), 3.0]


def test_the_worker_process_restarts_once_for_a_start_up_variable(tmp_path, monkeypatch):
    # LD_LIBRARY_PATH only takes effect when a process starts: the worker re-executes
    # itself with the driver's value rather than run the tasks without it.
    monkeypatch.setenv("LD_LIBRARY_PATH", str(tmp_path / "driver-lib"))
    pool = new_pool(tmp_path, idle_s=0.1)
    session = new_session(tmp_path, environment_at_start, ["LD_LIBRARY_PATH"])
    post(pool, 0, session, chunk=0, start=0, stop=1)
    job_env = {k: v for k, v in os.environ.items() if k != "LD_LIBRARY_PATH"}
    done = worker_process(pool, "job-1", job_env)
    assert done.returncode == 0, done.stderr
    assert result(session, 0).envelopes() == [(True, str(tmp_path / "driver-lib"))]


def test_without_idling_a_worker_runs_one_chunk_and_exits(tmp_path):
    pool = new_pool(tmp_path, idle_s=0.0)
    session = new_session(tmp_path, square, range(3))
    for n in range(3):
        post(pool, n, session, chunk=n, start=n, stop=n + 1)
    assert run_worker(pool) == 1  # worker_idle_s=0: one chunk per job
    assert pool.claim(0) is not None and pool.claim(1) is None
