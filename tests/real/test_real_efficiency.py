"""Time and memory of each task on the real Slurm, as ``batchpool status`` and
``batchpool report`` show them: the numbers come from the workers, not from ``sacct``."""

from __future__ import annotations

import re

import executor_tasks
import pytest

import batchpool
from batchpool import cli, results
from batchpool.commands import CommandPolicy

try:
    from helpers.pools import require_real
except ImportError:  # run with --noconftest
    import shutil

    def require_real(backend: str) -> None:
        if shutil.which("sbatch") is None:
            pytest.skip("sbatch is not installed: no real Slurm here")


@pytest.mark.slurm
def test_report_of_a_real_map_shows_time_and_memory_per_task(tmp_path, monkeypatch, capsys):
    require_real("slurm.array")
    monkeypatch.chdir(tmp_path)
    work = tmp_path / "work"
    pool = batchpool.slurm.array.Pool(
        processes=2,
        work_dir=work,
        keep_work_dir=True,
        polling_interval=0.5,
        lost_job_grace_period_s=2.0,
        command_policy=CommandPolicy(timeout_s=30.0, num_retries=3, backoff_s=0.2),
    )
    with pool:
        assert pool.map(executor_tasks.sleep_and_allocate, range(6), chunksize=2) == list(range(6))
    (session,) = [p.parent for p in work.glob("*/session.json")]
    outcomes = batchpool.load(session)
    assert all(re.fullmatch(r"\d+_\d+", o.job_id) for o in outcomes), outcomes
    for outcome in outcomes:  # generous bounds: a sanity check of what the workers measured
        assert 0.3 <= outcome.wall_s < 30.0
        assert 0.0 <= outcome.cpu_s < outcome.wall_s
        assert 200 <= outcome.max_rss_mb < 800
    found = results.efficiency(session)
    assert found is not None and found.num_tasks == 6
    assert {job for job, _ in found.max_rss_mb_by_job} == {o.job_id for o in outcomes}

    assert cli.main(["status", str(session)]) == 0
    status = capsys.readouterr().out
    assert "time per task (6 measured): median " in status
    assert re.search(r"peak memory per job \(\d jobs?\): median \d+ MiB", status)
    assert f"suggested for the next run: {found.suggestion()}" in status
    page = tmp_path / "report.html"
    assert cli.main(["report", str(session), "-o", str(page)]) == 0
    html = page.read_text()
    assert "<h2>Time and memory</h2>" in html
    assert all(o.job_id in html for o in outcomes)
    pytest.importorskip("matplotlib")
    picture = tmp_path / "report.png"
    assert cli.main(["report", str(session), "-o", str(picture)]) == 0
    assert picture.read_bytes().startswith(b"\x89PNG")
