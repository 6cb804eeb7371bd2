"""batchpool.session: a map's session directory and a pool's queue directory."""

import errno
import json
import os
import pickle
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from batchpool import _layout
from batchpool import session as session_module
from batchpool.errors import SessionBusyError
from batchpool.session import (
    Archive,
    ChunkEvent,
    ChunkResult,
    DriverLock,
    Manifest,
    PoolDirectory,
    Session,
    append_durably,
    read_json_lines,
    session_key,
)
from batchpool.sge import sge_job_name
from helpers.pool_dirs import record_path


def result_file(start: int, stop: int, elapsed_s: float, envelopes: list) -> bytes:
    """A result file as a worker writes it."""
    assert stop - start == len(envelopes)
    return _layout.encode_chunk(start, [pickle.dumps(e) for e in envelopes], elapsed_s)


def write_result(session: Session, chunk: int, data: bytes, tries: int = 0) -> None:
    record_path(session, chunk, tries).write_bytes(data)


@pytest.fixture
def other_process():
    """A live process of this host that is not this one."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    yield process.pid
    process.kill()
    process.wait()


def dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


# -- the session key ---------------------------------------------------------------------


def test_key_depends_on_every_part_and_their_boundaries():
    assert session_key([b"ab", b"c"]) != session_key([b"a", b"bc"])
    assert session_key([b"x"]) == session_key([b"x"])


def test_a_session_of_another_layout_has_another_key(monkeypatch):
    key = session_key([b"x"])
    monkeypatch.setattr(session_module, "LAYOUT_VERSION", session_module.LAYOUT_VERSION + 1)
    assert session_key([b"x"]) != key


# -- tasks -------------------------------------------------------------------------------


def test_tasks_file_and_index(tmp_path):
    session = Session.create(tmp_path, "k")
    tasks = [pickle.dumps([1, 2]), pickle.dumps(["three"]), pickle.dumps([])]
    session.append_tasks(tasks[:2])
    session.append_tasks(tasks[2:])  # an imap's tasks come in several parts
    assert session.num_tasks_written == 3
    index = (session.dir / "tasks.idx").read_bytes()
    data = (session.dir / "tasks.pkl").read_bytes()
    assert len(index) == 3 * 16
    for i, task in enumerate(tasks):
        start = int.from_bytes(index[16 * i : 16 * i + 8], "little")
        stop = int.from_bytes(index[16 * i + 8 : 16 * i + 16], "little")
        assert data[start:stop] == task
    assert _layout.read_tasks(str(session.dir), 0, 3) == tasks


def test_no_tasks_written_yet(tmp_path):
    session = Session.create(tmp_path, "k")
    session.append_tasks([])
    assert session.num_tasks_written == 0
    assert (session.dir / "tasks.pkl").read_bytes() == b""


def test_a_reopened_session_appends_after_the_tasks_it_has(tmp_path):
    first = Session.create(tmp_path, "k")
    first.append_tasks([b"a", b"bb"])
    again = Session(first.dir)
    again.reopen_tasks()
    assert again.num_tasks_written == 2
    again.append_tasks([b"ccc"])
    assert again.num_tasks_written == 3
    assert _layout.read_tasks(str(again.dir), 0, 3) == [b"a", b"bb", b"ccc"]


def test_function_file(tmp_path):
    session = Session.create(tmp_path, "k")
    session.write_function(b"function pickle")
    assert Path(session.paths.function) == session.dir / "function.pkl"
    assert Path(session.paths.function).read_bytes() == b"function pickle"


# -- results -------------------------------------------------------------------------------


def test_a_taken_result_is_parsed_archived_and_its_file_removed(tmp_path):
    session = Session.create(tmp_path, "k")
    write_result(session, 4, result_file(8, 10, 0.25, [(True, "a"), (True, "b")]), tries=1)
    result = session.take_record(4, 1)
    assert isinstance(result, ChunkResult)
    assert (result.chunk, result.tasks, result.elapsed_s) == (4, range(8, 10), 0.25)
    assert result.envelopes() == [(True, "a"), (True, "b")]
    assert not record_path(session, 4, 1).exists()
    assert session.archived_results() == [result]
    assert session.take_record(4, 1) is None
    assert session.take_record(5, 0) is None


def test_a_record_file_being_written_is_taken_only_when_whole_is_not_asked(tmp_path):
    session = Session.create(tmp_path, "k")
    whole = result_file(0, 2, 0.1, [(True, 0), (True, 1)])
    write_result(session, 0, whole[: -_layout.RECORD_HEAD.size])  # no END yet
    assert session.take_record(0, 0, whole_only=True) is None
    assert record_path(session, 0, 0).exists()
    partial = session.take_record(0, 0)
    assert partial is not None and not partial.complete and partial.tasks == range(0, 2)
    assert not record_path(session, 0, 0).exists()


def test_a_withdrawn_ticket_holds_the_drivers_claim_and_no_result(tmp_path):
    session = Session.create(tmp_path, "k")
    assert session.record_claim(3, 0) is None
    assert session.withdraw(3, 0)
    claim = session.record_claim(3, 0)
    assert claim.withdrawn and claim.pid == os.getpid() and claim.here
    assert not session.withdraw(3, 0)
    assert session.take_record(3, 0) is None  # withdrawn: nothing ran
    assert session.all_results() == []
    session.remove_record(3, 0)
    assert session.record_files() == []


def test_a_claimed_ticket_cannot_be_withdrawn(tmp_path):
    session = Session.create(tmp_path, "k")
    mine = _layout.Claim("7055_3", "node7", 4242, "another space")
    begin = _layout.encode_record(_layout.BEGIN, 0, 0.0, mine.encode())
    assert _layout.create_exclusively(str(record_path(session, 5, 2)), begin)
    assert not session.withdraw(5, 2)
    claim = session.record_claim(5, 2)
    assert (claim.job_id, claim.host, claim.pid) == ("7055_3", "node7", 4242)
    assert not claim.withdrawn and not claim.here


def test_a_claim_being_written_is_no_claim_yet(tmp_path):
    session = Session.create(tmp_path, "k")
    record_path(session, 2, 0).write_bytes(b"")  # created, its claim not written yet
    assert session.record_claim(2, 0) is None
    assert not session.withdraw(2, 0)  # but the ticket is taken


def test_record_files_are_listed_by_chunk_and_try(tmp_path):
    session = Session.create(tmp_path, "k")
    for chunk, tries in ((3, 1), (0, 0), (3, 0)):
        write_result(session, chunk, b"", tries)
    (session.dir / "results" / "5.0.rec.damaged").write_bytes(b"")
    assert session.record_files() == [(0, 0), (3, 0), (3, 1)]
    assert Session(tmp_path / "missing").record_files() == []


def test_a_torn_last_record_is_ignored(tmp_path):
    session = Session.create(tmp_path, "k")
    write_result(session, 1, result_file(0, 1, 0.0, [(True, 1)]))
    taken = session.take_record(1, 0)
    with open(session.dir / "results.archive", "ab") as f:
        f.write(b"\x50\x00\x00\x00\x00\x00\x00\x00partial")
    assert session.archived_results() == [taken]
    assert Session(tmp_path / "missing").read_archive() == Archive([], [])


def test_a_damaged_record_in_the_middle_of_the_archive_is_skipped_and_the_rest_kept(tmp_path):
    session = Session.create(tmp_path, "k")
    taken = []
    for chunk in range(3):
        write_result(session, chunk, result_file(chunk, chunk + 1, 0.0, [(True, chunk)]))
        taken.append(session.take_record(chunk, 0))
    data = bytearray((session.dir / "results.archive").read_bytes())
    second = len(data) // 3
    data[second + 40] ^= 0xFF  # a flipped byte in the second record
    torn = bytes(data[: second + 25])  # and a torn copy of the start of it
    (session.dir / "results.archive").write_bytes(torn + bytes(data[second:]))
    archive = session.read_archive()
    assert archive.results == [taken[0], taken[2]]
    # the torn copy and the damaged record are one span, read over up to the third record
    assert [(span.offset, span.length) for span in archive.damaged] == [(second, second + 25)]


def test_a_failed_append_is_cut_off_again(tmp_path, monkeypatch):
    path = tmp_path / "journal"
    append_durably(path, b"whole\n")
    writes = []

    def write_then_fail(fd, data):
        if writes:
            raise OSError(errno.ENOSPC, "No space left on device")
        writes.append(bytes(data[:3]))
        return real_write(fd, data[:3])

    real_write = os.write
    monkeypatch.setattr(os, "write", write_then_fail)
    with pytest.raises(OSError, match="No space"):
        append_durably(path, b"torn\n")
    monkeypatch.undo()
    assert path.read_bytes() == b"whole\n"


def test_a_journal_line_that_is_not_json_is_skipped(tmp_path):
    path = tmp_path / "chunks.jsonl"
    path.write_bytes(b'{"a": 1}\n{"a": 2, "b\n\xff\xfe\n{"a": 3}\n')
    assert read_json_lines(path) == [{"a": 1}, {"a": 3}]


def test_all_results_are_the_archived_and_the_uncollected_in_task_order(tmp_path):
    session = Session.create(tmp_path, "k")
    write_result(session, 0, result_file(0, 2, 0.1, [(True, 0), (True, 1)]))
    session.take_record(0, 0)
    write_result(session, 2, result_file(5, 6, 0.1, [(True, 5)]))
    write_result(session, 1, result_file(2, 5, 0.1, [(True, 2), (True, 3), (True, 4)]))
    write_result(session, 3, result_file(6, 7, 0.1, [(True, 6)])[:-10])  # being written
    results = session.all_results()
    assert [(r.chunk, r.tasks) for r in results] == [
        (0, range(0, 2)),
        (1, range(2, 5)),
        (2, range(5, 6)),
    ]
    assert [v for r in results for _, v in r.envelopes()] == list(range(6))


def test_a_chunk_archived_and_still_on_disk_counts_once(tmp_path):
    # A driver that died between archiving a result and removing its file.
    session = Session.create(tmp_path, "k")
    data = result_file(0, 1, 0.1, [(True, 0)])
    write_result(session, 0, data)
    session.take_record(0, 0)
    write_result(session, 0, data)
    assert [r.chunk for r in session.all_results()] == [0]


# -- chunk events, manifest, cancel, done ----------------------------------------------------


def test_chunk_events_round_trip_and_a_torn_line_ends_them(tmp_path):
    session = Session.create(tmp_path, "k")
    events = [
        ChunkEvent("posted", 0, 0, 5, 0, "/w/pool_x", 12),
        ChunkEvent("posted", 1, 5, 9, 1, "/w/pool_x", 13),
    ]
    session.record_chunks(events)
    session.record_chunks([ChunkEvent("claimed", 0, job_id="7055_3")])
    with open(session.dir / "chunks.jsonl", "a") as f:
        f.write('{"event": "clai')
    assert session.chunk_events() == [*events, ChunkEvent("claimed", 0, job_id="7055_3")]
    assert Session.create(tmp_path, "other").chunk_events() == []


def test_manifest_round_trip(tmp_path):
    session = Session.create(tmp_path, "k")
    manifest = Manifest(10, None, "slurm.array", "mymodule.f", "2026-11-21T05:41:54")
    session.write_manifest(manifest)
    assert session.manifest() == manifest
    assert json.loads((session.dir / "session.json").read_text())["num_tasks"] == 10


def test_find_unfinished_takes_the_newest_complete_session_not_done(tmp_path):
    manifest = Manifest(1, None, "local", "f", "now")
    assert Session.find_unfinished(tmp_path / "none", "k") is None
    done = Session.create(tmp_path, "k")
    done.write_manifest(manifest)
    done.mark_done()
    assert done.is_done()
    assert Session.find_unfinished(tmp_path, "k") is None
    unfinished = Session.create(tmp_path, "k")
    unfinished.write_manifest(manifest)
    Session.create(tmp_path, "k")  # incomplete: no manifest
    Session.create(tmp_path, "other").write_manifest(manifest)
    found = Session.find_unfinished(tmp_path, "k")
    assert found is not None and found.dir == unfinished.dir


def test_cancel_tells_workers_to_skip_the_session(tmp_path):
    pool = PoolDirectory.create(tmp_path)
    session = Session.create(tmp_path, "k")
    pool.cancel(session.dir)
    records = _layout.RecordReader(str(pool.dir / "tickets")).read()
    assert [(kind, payload) for kind, _, _, payload in records] == [
        (_layout.CANCELLED, str(session.dir).encode())
    ]


def test_log_appends_lines(tmp_path):
    session = Session.create(tmp_path, "k")
    session.log("first", chunk=3)
    session.log("second")
    session.close_log()
    session.log("third")  # a closed log is opened again
    session.close_log()
    lines = Path(session.paths.log).read_text().splitlines()
    assert len(lines) == 3
    assert "first" in lines[0] and "chunk" in lines[0] and "third" in lines[2]
    assert Path(session.paths.log).stat().st_mode & 0o777 == 0o600


def test_remove(tmp_path):
    session = Session.create(tmp_path, "k")
    session.log("x")
    session.remove()
    assert not session.dir.exists()


def test_session_directories_are_private_and_unique(tmp_path):
    first, second = Session.create(tmp_path, "k"), Session.create(tmp_path, "k")
    assert first.dir != second.dir
    assert first.dir.stat().st_mode & 0o777 == 0o700
    assert (first.dir / "results").stat().st_mode & 0o777 == 0o700
    assert first.name.split("_")[1] == "k"


def test_whole_files_are_private(tmp_path):
    session = Session.create(tmp_path, "k")
    session.write_function(b"f")
    session.append_tasks([b"t"])
    session.write_manifest(Manifest(1, None, "local", "f", "now"))
    session.record_chunks([ChunkEvent("posted", 0)])
    for path in session.dir.iterdir():
        if path.is_file():
            assert path.stat().st_mode & 0o777 == 0o600, path.name


# -- the driver lock -------------------------------------------------------------------------


def write_lock(session: Session, lock: DriverLock, age_s: float = 0.0) -> None:
    """``lock`` as ``driver.lock``, written ``age_s`` ago."""
    Path(session.paths.lock).write_text(json.dumps(lock.__dict__))
    if age_s:
        then = time.time() - age_s
        os.utime(session.paths.lock, (then, then))


HERE = _layout.process_space()


def test_create_takes_the_lock_and_release_gives_it_back(tmp_path):
    session = Session.create(tmp_path, "k")
    holder = session.lock_holder()
    assert holder is not None and holder.is_mine()
    session.release()
    assert not Path(session.paths.lock).exists()
    assert session.lock_holder() is None
    session.acquire()
    assert session.lock_holder().is_mine()


def test_a_session_driven_by_a_live_driver_is_busy(tmp_path, other_process):
    session = Session.create(tmp_path, "k")
    write_lock(session, DriverLock(socket.gethostname(), other_process, time.time(), HERE))
    with pytest.raises(SessionBusyError, match=str(other_process)):
        Session(session.dir).acquire()
    session.release()  # not ours: left alone
    assert session.lock_holder().pid == other_process


def test_a_session_this_driver_drives_is_busy_for_a_second_acquire(tmp_path):
    session = Session.create(tmp_path, "k")
    with pytest.raises(SessionBusyError):
        Session(session.dir).acquire()


def test_the_lock_of_a_dead_driver_on_this_host_is_taken_over(tmp_path):
    session = Session.create(tmp_path, "k")
    write_lock(session, DriverLock(socket.gethostname(), dead_pid(), time.time(), HERE))
    Session(session.dir).acquire()
    assert session.lock_holder().is_mine()


def test_the_lock_of_a_driver_on_another_host_goes_stale_without_heartbeat(tmp_path):
    session = Session.create(tmp_path, "k")
    # Its clock is a day behind: only the lock file's age by the filesystem's clock counts.
    elsewhere = DriverLock("elsewhere.invalid", 1, time.time() - 86400, "other boot/pid")
    write_lock(session, elsewhere)
    with pytest.raises(SessionBusyError, match="elsewhere.invalid"):
        Session(session.dir).acquire()
    write_lock(session, elsewhere, age_s=session_module.STALE_LOCK_S + 1)
    Session(session.dir).acquire()
    assert session.lock_holder().is_mine()


def test_a_lock_of_the_same_host_name_in_another_process_space_is_timed_not_pid_checked(
    tmp_path,
):
    session = Session.create(tmp_path, "k")
    # a container or simulated node with this host's name: its pid means nothing here
    write_lock(session, DriverLock(socket.gethostname(), dead_pid(), time.time(), "b/p"))
    with pytest.raises(SessionBusyError):
        Session(session.dir).acquire()


def test_file_age_is_read_by_the_filesystems_clock(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"")
    assert 0 <= session_module.file_age_s(path) < 5
    os.utime(path, (1000.0, 1000.0))
    assert session_module.file_age_s(path) > time.time() - 1100
    with pytest.raises(FileNotFoundError):
        session_module.file_age_s(tmp_path / "missing")


def test_a_half_written_lock_is_taken_over(tmp_path):
    session = Session.create(tmp_path, "k")
    Path(session.paths.lock).write_text('{"host": "elsewh')
    assert session.lock_holder() is None
    Session(session.dir).acquire()
    assert session.lock_holder().is_mine()


def test_heartbeat_renews_the_lock_in_place(tmp_path):
    session = Session.create(tmp_path, "k")
    inode = Path(session.paths.lock).stat().st_ino
    write_lock(session, DriverLock(socket.gethostname(), os.getpid(), 1.0, HERE), age_s=500)
    session.heartbeat()
    assert session.lock_holder().heartbeat > time.time() - 60
    assert Path(session.paths.lock).stat().st_ino == inode
    assert session.lock_age_s() < 60


# -- the pool directory ----------------------------------------------------------------------


def test_a_pool_directory_is_private_and_has_its_parts(tmp_path):
    pool = PoolDirectory.create(tmp_path)
    assert pool.dir.parent == tmp_path and pool.name.startswith("pool_")
    assert pool.dir.stat().st_mode & 0o777 == 0o700
    for sub in ("logs", "workers"):
        assert (pool.dir / sub).stat().st_mode & 0o777 == 0o700
    # the log exists before any job is submitted: no worker looks for a missing name
    assert (pool.dir / "tickets").read_bytes() == b""
    assert (pool.dir / "tickets").stat().st_mode & 0o777 == 0o600
    assert pool.log_dir == pool.dir / "logs"
    assert PoolDirectory.create(tmp_path).dir != pool.dir


def test_a_pools_job_name_suits_every_scheduler(tmp_path):
    name = PoolDirectory.create(tmp_path).job_name
    assert name.startswith("bp_")
    assert sge_job_name(name) == name  # SGE takes it as it is
    assert "," not in name  # squeue --name takes a comma-separated list


def test_write_setup_is_what_a_worker_reads(tmp_path, monkeypatch):
    monkeypatch.setenv("BATCHPOOL_TEST_SETUP", "driver value")
    pool = PoolDirectory.create(tmp_path)
    initializer = pickle.dumps((print, ("hi",)))
    pool.write_setup(initializer, 2.5, None)
    snapshot = pickle.loads((pool.dir / "environment.pkl").read_bytes())
    assert snapshot["environ"][b"BATCHPOOL_TEST_SETUP"] == b"driver value"
    assert snapshot["sys_path"] == sys.path and snapshot["cwd"] == os.getcwd()
    assert (pool.dir / "initializer.pkl").read_bytes() == initializer
    assert _layout.parse_config((pool.dir / "config").read_bytes()) == (2.5, None)
    pool.write_setup(initializer, 0.0, 3)
    assert _layout.parse_config((pool.dir / "config").read_bytes()) == (0.0, 3)
    for name in ("environment.pkl", "initializer.pkl", "config"):
        assert (pool.dir / name).stat().st_mode & 0o777 == 0o600


def test_a_posted_ticket_is_read_back_whole(tmp_path):
    pool = PoolDirectory.create(tmp_path)
    ticket = _layout.Ticket(7, "/w/session dir", 3, 1, 10, 20, "abc")
    pool.post([ticket])
    ((kind, number, _, payload),) = _layout.RecordReader(str(pool.dir / "tickets")).read()
    assert (kind, number) == (_layout.POSTED, 7)
    back = _layout.Ticket.decode(7, payload)
    assert (back.session_dir, back.chunk, back.attempt, back.start, back.stop) == (
        "/w/session dir",
        3,
        1,
        10,
        20,
    )
    assert back.function_key == "abc"


def test_the_log_says_closed_tickets_and_stop_in_order(tmp_path):
    pool = PoolDirectory.create(tmp_path)
    reader = _layout.RecordReader(str(pool.dir / "tickets"))
    pool.close_tickets([])  # nothing to say: nothing written
    assert (pool.dir / "tickets").read_bytes() == b""
    pool.close_tickets([4, 2])
    pool.stop_workers()
    assert [(kind, number) for kind, number, _, _ in reader.read()] == [
        (_layout.CLOSED, 4),
        (_layout.CLOSED, 2),
        (_layout.STOP, 0),
    ]
    assert reader.read() == []  # read once


def test_mailboxes_say_claims_finishes_and_how_workers_ended(tmp_path):
    pool = PoolDirectory.create(tmp_path)
    pool.open_mailboxes(["7055_3"])
    mailbox = str(pool.dir / "workers" / "7055_3")
    assert os.path.getsize(mailbox) == 0
    assert not pool.worker_started("7055_3") and pool.claim(0) is None
    claim = _layout.Claim("7055_3", "node7", 4242, "elsewhere")
    _layout.append_record(mailbox, _layout.READY, 0, claim.encode())
    _layout.append_record(mailbox, _layout.CLAIMED, 0)
    pool.read_mailboxes(["7055_3"])
    assert pool.worker_started("7055_3") and pool.worker_claim("7055_3").pid == 4242
    assert pool.claim(0).job_id == "7055_3" and 0 not in pool.finished
    _layout.append_record(mailbox, _layout.FINISHED, 0)
    _layout.append_record(mailbox, _layout.EXITED, 0)
    _layout.append_record(mailbox, _layout.ENDED, 0, b"exit 0")
    pool.read_mailboxes(["7055_3"])
    assert 0 in pool.finished and pool.worker_exited("7055_3")
    assert pool.worker_exit("7055_3") == "exit 0"
    pool.open_mailboxes(["7055_3"])  # opening again keeps what it holds
    pool.forget(0)
    assert pool.claim(0) is None and 0 not in pool.finished
    # requeued: the job runs again, and what its last run said is past
    _layout.append_record(mailbox, _layout.READY, 0, claim.encode())
    pool.read_mailboxes(["7055_3"])
    assert not pool.worker_exited("7055_3") and pool.worker_exit("7055_3") is None


def test_heartbeat_is_rewritten_in_place(tmp_path):
    pool = PoolDirectory.create(tmp_path)
    pool.heartbeat(3)
    path = pool.dir / "driver"
    inode = path.stat().st_ino
    beat = _layout.DriverBeat.decode(path.read_bytes())
    assert (beat.host, beat.pid, beat.counter) == (socket.gethostname(), os.getpid(), 3)
    assert beat.here and beat.space == _layout.process_space()
    pool.heartbeat(4)
    assert path.stat().st_ino == inode  # the same file: no new name for a cache to miss
    assert _layout.DriverBeat.decode(path.read_bytes()).counter == 4


def test_remove_the_pool_directory(tmp_path):
    pool = PoolDirectory.create(tmp_path)
    pool.post([_layout.Ticket(0, "/s", 0, 0, 0, 1, "k")])
    pool.remove()
    assert not pool.dir.exists()


def write_heartbeat(pool: PoolDirectory, host: str, pid: int, space: str = "") -> None:
    beat = _layout.DriverBeat(host, space or _layout.process_space(), pid, 1)
    (pool.dir / _layout.DRIVER_FILE).write_bytes(beat.encode())


def test_a_dead_drivers_pool_that_submitted_and_did_not_end_may_have_left_jobs(tmp_path):
    pool = PoolDirectory.create(tmp_path)
    assert PoolDirectory.dead_ones_with_jobs(tmp_path) == []  # nothing submitted
    pool.journal("submitting", count=1, tier=0)
    write_heartbeat(pool, socket.gethostname(), dead_pid())
    assert [p.dir for p in PoolDirectory.dead_ones_with_jobs(tmp_path)] == [pool.dir]
    pool.journal("swept", deleted=["7"])
    assert PoolDirectory.dead_ones_with_jobs(tmp_path) == []  # not twice


def test_a_pool_whose_driver_lives_ended_or_detached_has_no_jobs_left(tmp_path, other_process):
    alive, ended, detached = (PoolDirectory.create(tmp_path) for _ in range(3))
    for pool in (alive, ended, detached):
        pool.journal("submitting", count=1, tier=0)
    write_heartbeat(alive, socket.gethostname(), other_process)
    write_heartbeat(ended, socket.gethostname(), dead_pid())
    ended.journal("ended")
    write_heartbeat(detached, socket.gethostname(), dead_pid())
    (detached.dir / _layout.DETACHED_FILE).write_bytes(b"{}")
    assert PoolDirectory.dead_ones_with_jobs(tmp_path) == []
    # A driver of another process space: its heartbeat file's age tells.
    write_heartbeat(alive, "elsewhere", 1, "another boot/pid:[1]")
    assert PoolDirectory.dead_ones_with_jobs(tmp_path) == []
    old = time.time() - session_module.STALE_LOCK_S - 1
    os.utime(alive.dir / _layout.DRIVER_FILE, (old, old))
    assert [p.dir for p in PoolDirectory.dead_ones_with_jobs(tmp_path)] == [alive.dir]
