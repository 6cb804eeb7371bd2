"""The worker as a process, ``python -m batchpool.worker``, on hand-built pool and
session directories (:mod:`helpers.pool_dirs`): what only a whole process does (the
driver's environment, the initializer, what its watcher writes into its mailbox
``workers/JOB_ID``, what it imports). Its ticket loop in the test's own process is
``tests/unit/test_worker.py``.
"""

from __future__ import annotations

import functools
import operator
import os
import signal
import subprocess
import sys
import time

import pytest

from batchpool import _layout, worker
from batchpool.session import PoolDirectory
from helpers.pool_dirs import (
    NODE,
    claims,
    mailbox,
    new_pool,
    new_session,
    post,
    result,
    values,
)

# -- task functions (by reference: this module is imported wherever they are unpickled) --


def environment_at_start(name):
    """The variable ``name`` as this process's image started with it (not as changed since)."""
    with open("/proc/self/environ", "rb") as f:
        variables = dict(v.split(b"=", 1) for v in f.read().split(b"\0") if b"=" in v)
    value = variables.get(name.encode())
    return None if value is None else value.decode()


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


def test_a_worker_process_that_does_not_see_the_pool_says_so(tmp_path):
    """The job runs where the work_dir is another (node-local) directory: no config."""
    pool = PoolDirectory(tmp_path / "pool_not_here")
    done = worker_process(pool, "job-1")
    assert done.returncode == worker.NOT_SHARED_EXIT == 78
    assert str(pool.dir) in done.stderr
    assert "work_dir must be on a filesystem" in done.stderr and "share" in done.stderr
    assert "Traceback" not in done.stderr
    assert not pool.dir.exists()  # nothing written where the driver would never look


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
    pool.read_mailboxes(["42"])
    assert pool.worker_started("42")
    started = pool.worker_claim("42")
    assert (started.job_id, started.host) == ("42", NODE) and started.here
    assert started.pid not in (0, os.getpid(), done.returncode)
    assert pool.claim(0).job_id == "42" and pool.claim(0).pid == started.pid
    assert session.record_claim(0, 0).pid == started.pid
    assert pool.finished == {0}
    assert pool.worker_exited("42") and pool.worker_exit("42") == "exit 0"
    assert mailbox(pool, "42") == [
        (_layout.READY, 0),
        (_layout.CLAIMED, 0),
        (_layout.FINISHED, 0),
        (_layout.EXITED, 0),
        (_layout.ENDED, 0),
    ]


@pytest.mark.parametrize(
    ("function", "task", "code", "how"),
    [(os._exit, 3, 3, "exit 3"), (signal.raise_signal, signal.SIGKILL, 137, "signal 9")],
)
def test_the_mailbox_tells_how_a_task_ended_its_worker(tmp_path, function, task, code, how):
    pool = new_pool(tmp_path, idle_s=0.2)
    session = new_session(tmp_path, function, [task, task])
    post(pool, 0, session, chunk=0, start=0, stop=2)
    done = worker_process(pool, "job-1")
    assert done.returncode == code, done.stderr
    claims(pool)
    assert pool.worker_started("job-1") and not pool.worker_exited("job-1")
    assert pool.worker_exit("job-1") == how
    assert pool.claim(0).job_id == "job-1" and pool.finished == set()
    got = result(session, 0)
    assert got.began and not got.complete and got.tasks == range(0, 0)  # task 0 was running
    assert mailbox(pool)[-1] == (_layout.ENDED, code)


def test_the_mailbox_tells_a_signal_the_scheduler_sent_first(tmp_path):
    pool = new_pool(tmp_path, idle_s=0.2)
    session = new_session(tmp_path, time.sleep, [30])
    post(pool, 0, session, chunk=0, start=0, stop=1)
    argv = [sys.executable, "-m", "batchpool.worker", str(pool.dir), "--job-id", "job-1"]
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while (_layout.CLAIMED, 0) not in mailbox(pool) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert (_layout.CLAIMED, 0) in mailbox(pool)
        process.send_signal(signal.SIGTERM)  # the job's process: its watcher
        _, stderr = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 128 + signal.SIGTERM, stderr
    claims(pool)
    assert pool.worker_exit("job-1") == f"signal {signal.SIGTERM} after signal {signal.SIGTERM}"
    assert not pool.worker_exited("job-1") and pool.finished == set()


def test_the_worker_process_takes_its_job_id_from_the_array_variables(tmp_path):
    pool = new_pool(tmp_path, idle_s=0.1)
    env = {**os.environ, "SLURM_ARRAY_JOB_ID": "7055", "SLURM_ARRAY_TASK_ID": "3"}
    done = worker_process(pool, "{SLURM_ARRAY_JOB_ID}_{SLURM_ARRAY_TASK_ID}", env)
    assert done.returncode == 0, done.stderr
    assert claims(pool, "7055_3").worker_started("7055_3")
    assert pool.worker_claim("7055_3").job_id == "7055_3"
    assert pool.worker_exited("7055_3") and pool.worker_exit("7055_3") == "exit 0"


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
    assert claims(pool).worker_started("job-1")
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
