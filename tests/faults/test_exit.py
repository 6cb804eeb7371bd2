"""At interpreter exit an unclosed pool's workers go, as multiprocessing's finalizer does;
a SIGKILLed driver leaves them to finish what they hold, for a resume."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from batchpool.session import PoolDirectory, process_alive

DRIVER = textwrap.dedent(
    """
    import sys, time
    import batchpool.local

    pool = batchpool.local.Pool(2, work_dir=sys.argv[1])
    pool.map_async(time.sleep, [60, 60], chunksize=1)
    print("submitted", flush=True)
    time.sleep(float(sys.argv[2]))  # then leave without close() or terminate()
    """
)


def worker_pids(work_dir: Path, count: int, deadline_s: float = 30.0) -> list[int]:
    """The pids of the workers that started in ``work_dir``'s pool."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        claims = []
        for mailbox in work_dir.glob("pool_*/workers/*"):
            pool = PoolDirectory(mailbox.parent.parent)
            pool.read_mailboxes([mailbox.name])
            claims.append(pool.worker_claim(mailbox.name))
        started = [claim.pid for claim in claims if claim is not None]
        if len(started) >= count:
            return started
        time.sleep(0.05)
    raise AssertionError(f"fewer than {count} workers started in {work_dir}")


def wait_until_gone(pids: list[int], deadline_s: float = 10.0) -> list[int]:
    deadline = time.monotonic() + deadline_s
    alive = pids
    while alive and time.monotonic() < deadline:
        time.sleep(0.05)
        alive = [pid for pid in pids if process_alive(pid)]
    return alive


@pytest.mark.parametrize("how", ["exit", "sigkill"])
def test_exit_kills_workers_but_sigkill_leaves_them(tmp_path, how):
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    wait_s = "2" if how == "exit" else "60"
    driver = subprocess.Popen([sys.executable, str(script), str(tmp_path / "work"), wait_s])
    try:
        pids = worker_pids(tmp_path / "work", 2)
        if how == "sigkill":
            driver.kill()
        driver.wait(timeout=60)
    finally:
        driver.kill()
    if how == "exit":
        assert wait_until_gone(pids, deadline_s=5.0) == []
    else:
        time.sleep(2.0)  # the workers hold a 60 s task: they are still at it
        assert [pid for pid in pids if process_alive(pid)] == pids
        for pid in pids:
            subprocess.run(["kill", "-9", str(pid)], check=False)
