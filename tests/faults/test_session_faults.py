"""The session survives its own faults: result files damaged while a map runs, a
damaged archive, and a work_dir that fills up (a real tmpfs; needs root to mount it)."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import batchpool
from batchpool.session import Session


def sessions(work: Path) -> list[Path]:
    """The session directories in ``work``: not the pools' queues, nor the summaries
    that successful maps keep."""
    return sorted(
        p
        for p in work.iterdir()
        if p.is_dir() and not p.name.startswith("pool_") and not Session(p).is_summary()
    )


def log_rows(session: Path) -> list[dict]:
    return [json.loads(line) for line in (session / "log.jsonl").read_text().splitlines()]


def damage_own_record_file(args):
    """Task 1 of the chunk damages the record file its worker is writing (once): after
    task 0's record, the file is cut in the middle of it, or overwritten with garbage."""
    how, flag, x = args
    if x == 1 and not os.path.exists(flag):
        open(flag, "w").close()
        (part,) = Path(os.environ["BP_TEST_WORK"]).glob("*/results/*.rec")
        if how == "truncated":
            os.truncate(part, part.stat().st_size // 2)
        else:
            part.write_bytes(os.urandom(part.stat().st_size))
    return x * 10


@pytest.mark.parametrize("how", ["truncated", "garbage"])
def test_a_damaged_result_file_is_quarantined_and_its_chunk_run_again(tmp_path, how, monkeypatch):
    work = tmp_path / "work"
    monkeypatch.setenv("BP_TEST_WORK", str(work))
    flag = tmp_path / "damaged-once"
    with batchpool.local.Pool(1, work_dir=work, keep_work_dir=True) as pool:
        args = [(how, str(flag), x) for x in range(3)]
        assert pool.map(damage_own_record_file, args, chunksize=3) == [0, 10, 20]
    assert flag.exists()  # the damage was done
    (session,) = sessions(work)
    (kept,) = (session / "results").glob("*.damaged")  # kept for inspection
    assert kept.name.startswith("0.0.rec")
    damaged = [row for row in log_rows(session) if row["m"] == "result damaged"]
    assert len(damaged) == 1 and damaged[0]["kept_as"] == kept.name
    lost = [json.loads(line) for line in (session / "chunks.jsonl").read_text().splitlines()]
    assert [row["cause"] for row in lost if row["event"] == "lost"] == ["result damaged"]


def test_status_and_load_call_a_damaged_archive_record_a_damaged_result(tmp_path):
    work = tmp_path / "work"
    with batchpool.local.Pool(1, work_dir=work, keep_work_dir=True) as pool:
        assert pool.map(abs, [-1, -2, -3], chunksize=1) == [1, 2, 3]
    (session,) = sessions(work)
    archive = session / "results.archive"
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0xFF  # the second of three records
    archive.write_bytes(bytes(data))
    (session / "done").unlink()  # as if the map had not finished

    outcomes = batchpool.load(session)
    assert [o.status.value for o in outcomes] == ["done", "missing", "done"]
    status = subprocess.run(
        [sys.executable, "-m", "batchpool", "status", str(session)],
        capture_output=True,
        text=True,
    )
    assert status.returncode == 0, status.stderr
    assert "result damaged, will rerun" in status.stdout
    assert "import" not in status.stdout + status.stderr

    with batchpool.local.Pool(1, work_dir=work, keep_work_dir=True) as pool:
        assert pool.map(abs, [-1, -2, -3], chunksize=1) == [1, 2, 3]  # resumed
    resumed = [row for row in log_rows(session) if row["m"] == "resumed"]
    assert resumed and resumed[-1]["results"] == 2
    assert any(row["m"].startswith("archive damaged") for row in log_rows(session))


# -- a work_dir that fills up ------------------------------------------------------------

FILLING_DRIVER = textwrap.dedent(
    """
    import os, sys
    import batchpool.local

    def task(args):
        markers, x = args
        open(os.path.join(markers, f"{x}.{os.getpid()}"), "w").close()
        return bytes([x]) * 100_000

    if __name__ == "__main__":
        work, markers = sys.argv[1], sys.argv[2]
        with batchpool.local.Pool(2, work_dir=work, worker_idle_s=1) as pool:
            results = pool.map(task, [(markers, x) for x in range(40)], chunksize=1)
        assert results == [bytes([x]) * 100_000 for x in range(40)]
        print("complete")
    """
)


@pytest.fixture
def small_tmpfs(tmp_path):
    """A 2 MB tmpfs at ``tmp_path / "fs"``; call it with a size to resize it."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    mount_point = tmp_path / "fs"
    mount_point.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount_point)], check=True)

    def resize(size: str) -> None:
        subprocess.run(["mount", "-o", f"remount,size={size}", str(mount_point)], check=True)

    yield mount_point, resize
    subprocess.run(["umount", "-l", str(mount_point)], check=True)


def test_a_full_work_dir_is_a_pool_error_and_the_map_resumes_once_there_is_room(
    tmp_path, small_tmpfs
):
    mount_point, resize = small_tmpfs
    script, work, markers = tmp_path / "driver.py", mount_point / "work", tmp_path / "markers"
    script.write_text(FILLING_DRIVER)
    markers.mkdir()
    argv = [sys.executable, str(script), str(work), str(markers)]
    full = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert full.returncode != 0
    assert "PoolError: The map stopped" in full.stderr, full.stderr
    assert "tmpfs mounted at" in full.stderr and "run the same script again" in full.stderr
    (session,) = sessions(work)
    assert f"The session directory is kept at {session}" in full.stderr
    # Still full: the rerun stops again (where depends on what the workers wrote), saying so.
    still = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert still.returncode != 0
    assert "PoolError" in still.stderr and "tmpfs mounted at" in still.stderr, still.stderr
    assert "run the same script again" in still.stderr
    assert sessions(work) == [session]
    resize("64m")
    again = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == "complete"
    assert sessions(work) == []  # the resumed map succeeded
    ran = {int(marker.name.split(".")[0]) for marker in markers.iterdir()}
    assert ran == set(range(40))


def test_a_half_made_session_on_a_full_disk_is_removed(tmp_path, small_tmpfs):
    mount_point, _ = small_tmpfs
    work = mount_point / "work"
    with batchpool.local.Pool(1, work_dir=work) as pool:
        with pytest.raises(batchpool.PoolError, match="Nothing was submitted") as raised:
            pool.map(len, [b"x" * 1_000_000] * 3)  # 3 MB of tasks do not fit
    assert "tmpfs mounted at" in str(raised.value)
    assert sessions(work) == []
    assert not list(work.glob("pool_*/staging.*"))


def crash_on_one(x):
    if x == 1:
        os._exit(3)
    return x


def test_a_failed_local_maps_files_are_private_with_one_log_pair_per_job(tmp_path):
    work = tmp_path / "work"
    with batchpool.local.Pool(2, work_dir=work, worker_idle_s=0.5) as pool:
        with pytest.raises(batchpool.WorkerCrashedError):
            pool.map(crash_on_one, range(4), chunksize=1)
    (session,) = sessions(work)  # kept, with the pool's queue: something failed
    (pool_dir,) = work.glob("pool_*")
    modes = {
        path.relative_to(work): stat.S_IMODE(path.stat().st_mode)
        for path in work.rglob("*")
    }
    assert {p: m for p, m in modes.items() if (work / p).is_file() and m != 0o600} == {}
    assert {p: m for p, m in modes.items() if (work / p).is_dir() and m != 0o700} == {}
    journal = [json.loads(line) for line in (pool_dir / "jobs.jsonl").read_text().splitlines()]
    jobs = [job for row in journal if row["event"] == "submitted" for job in row["jobs"]]
    assert len(jobs) >= 2  # the crashed worker's task ran again in a job of its own
    logs = sorted(p.name for p in (pool_dir / "logs").iterdir())
    assert logs == sorted(f"{job}{suffix}" for job in jobs for suffix in (".out", ".err"))
