import pickle

from batchpool import session as session_module
from batchpool.backend import Job
from batchpool.session import Session, read_records, session_key


def test_key_depends_on_every_part_and_their_boundaries():
    assert session_key([b"ab", b"c"]) != session_key([b"a", b"bc"])
    assert session_key([b"x"]) == session_key([b"x"])


def test_a_session_of_another_layout_has_another_key(monkeypatch):
    key = session_key([b"x"])
    monkeypatch.setattr(session_module, "LAYOUT_VERSION", session_module.LAYOUT_VERSION + 1)
    assert session_key([b"x"]) != key


def test_tasks_file_and_index(tmp_path):
    session = Session.create(tmp_path, "k")
    chunks = [pickle.dumps([1, 2]), pickle.dumps(["three"]), pickle.dumps([])]
    session.write_tasks(chunks)
    index = (session.dir / "tasks.idx").read_bytes()
    data = (session.dir / "tasks.pkl").read_bytes()
    for i, chunk in enumerate(chunks):
        start = int.from_bytes(index[16 * i : 16 * i + 8], "little")
        stop = int.from_bytes(index[16 * i + 8 : 16 * i + 16], "little")
        assert data[start:stop] == chunk


def test_collected_results_are_archived_and_their_files_removed(tmp_path):
    session = Session.create(tmp_path, "k")
    session.result_path(4).write_bytes(b"four")
    (session.results_dir / "5.pkl.123.tmp").write_bytes(b"half")
    assert session.new_result_chunks() == [4]
    assert session.collect_result(4) == b"four"
    assert not session.result_path(4).exists()
    assert session.archived_results() == {4: b"four"}


def test_a_torn_last_record_is_ignored(tmp_path):
    session = Session.create(tmp_path, "k")
    session.result_path(1).write_bytes(b"one")
    session.collect_result(1)
    with open(session.dir / "results.archive", "ab") as f:
        f.write(b"\x50\x00\x00\x00\x00\x00\x00\x00partial")
    assert session.archived_results() == {1: b"one"}
    assert list(read_records(tmp_path / "missing")) == []


def test_logs_are_folded_into_one_archive(tmp_path):
    session = Session.create(tmp_path, "k")
    job = Job(2, "77", session.log_dir / "2.77.out", session.log_dir / "2.77.err")
    job.stdout_path.write_text("hello\n")
    job.stderr_path.write_text("line 1\nline 2\n")
    session.fold_logs([job])
    assert list(session.log_dir.iterdir()) == []
    (record,) = session.logs()
    assert (record.chunk, record.job_id, record.stdout) == (2, "77", "hello\n")
    assert session.stderr_tail(job, num_lines=1) == "line 2"


def test_journal_round_trip(tmp_path):
    session = Session.create(tmp_path, "k")
    jobs = [
        Job(0, "5_0", tmp_path / "o", tmp_path / "e"),
        Job(1, "5_1", tmp_path / "o1", tmp_path / "e1"),
    ]
    session.record_jobs(jobs)
    assert [entry.job() for entry in session.journal()] == jobs


def test_session_directories_are_private_and_unique(tmp_path):
    first, second = Session.create(tmp_path, "k"), Session.create(tmp_path, "k")
    assert first.dir != second.dir
    assert first.dir.stat().st_mode & 0o777 == 0o700
    assert first.job_name.startswith("bp_") and first.job_name[3].isdigit()
