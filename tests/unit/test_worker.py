"""The worker's pure parts: chunk ranges, the environment rule, envelopes."""

import os
import pickle
import subprocess
import sys
from multiprocessing.pool import MaybeEncodingError

import pytest

from batchpool import worker


@pytest.mark.parametrize(
    "chunks, text",
    [([3], "3"), ([0, 1, 2, 5], "0-2,5"), ([1, 3, 5], "1,3,5"), (list(range(100)), "0-99")],
)
def test_chunk_ranges_round_trip(chunks, text):
    assert worker.format_chunks(chunks) == text
    assert worker.parse_chunks(text) == chunks


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


def test_run_tasks_keeps_going_after_a_failure():
    envelopes = worker.run_tasks(lambda x: 10 // x, [1, 0, 2])
    assert envelopes[0] == (True, 10) and envelopes[2] == (True, 5)
    ok, (exc_pickle, type_name, message, traceback_text) = envelopes[1]
    assert not ok and type_name == "ZeroDivisionError"
    assert isinstance(pickle.loads(exc_pickle), ZeroDivisionError)
    assert "Traceback" in traceback_text and "10 // x" in traceback_text


def test_unpicklable_results_become_errors_and_others_survive():
    import threading

    payload = worker._dump_envelopes([(True, 1), (True, threading.Lock()), (True, lambda: 3)])
    envelopes = pickle.loads(payload)
    assert envelopes[0] == (True, 1)
    assert envelopes[1][0] is False
    assert isinstance(pickle.loads(envelopes[1][1][0]), MaybeEncodingError)
    assert envelopes[2][1]() == 3


def test_write_atomically_leaves_no_temporary_file(tmp_path):
    target = tmp_path / "r.pkl"
    worker.write_atomically(str(target), b"payload")
    assert target.read_bytes() == b"payload"
    assert [p.name for p in tmp_path.iterdir()] == ["r.pkl"]
    assert target.stat().st_mode & 0o777 == 0o600


def test_worker_usage_errors_exit_2():
    done = subprocess.run(
        [sys.executable, "-m", "batchpool.worker", "only-one-argument"],
        capture_output=True,
        text=True,
        env={**os.environ},
    )
    assert done.returncode == 2 and "usage" in done.stderr


def test_the_worker_imports_only_what_its_function_needs(work):
    """A job starts fast: a task function pickled by reference (here one of the worker
    itself) needs neither cloudpickle nor the driver's modules."""
    import batchpool.local

    with batchpool.local.Pool(1, work_dir=work, keep_work_dir=True) as pool:
        assert pool.map(worker.parse_chunks, ["1-3"]) == [[1, 2, 3]]
    (session_dir,) = work.iterdir()

    def imports(*args: str) -> set[str]:
        argv = [sys.executable, "-X", "importtime", *args]
        run = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=True)
        return {line.rpartition("|")[2].strip() for line in run.stderr.splitlines()}

    # What the interpreter imports by itself (site, .pth files) is not the worker's.
    imported = imports("-m", "batchpool.worker", str(session_dir), "0") - imports("-c", "pass")
    assert "batchpool.worker" in imported
    assert (session_dir / "results" / "0.pkl").exists()
    heavy = {"cloudpickle", "tqdm", "json_line_logger", "shutil", "traceback"}
    assert not imported & heavy
    assert {m for m in imported if m.startswith("batchpool.")} == {"batchpool.worker"}
