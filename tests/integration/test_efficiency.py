"""Time and memory of each task, measured by its worker: the record, batchpool.load,
``batchpool status`` and ``batchpool report``."""

from __future__ import annotations

import pickle
import re
import time

import pytest

import batchpool
import batchpool.local
from batchpool import _layout, cli, results
from batchpool.results import Spread, TaskStatus

ALLOCATED_MB = 200


def sleep_and_allocate(x):
    """Sleeps 0.3 s holding 200 MiB written byte by byte (so that it is resident)."""
    data = b"x" * (ALLOCATED_MB * 2**20)
    time.sleep(0.3)
    return x + len(data) // 2**30


def busy(x):
    deadline = time.process_time() + 0.3
    while time.process_time() < deadline:
        pass
    return x


def square(x):
    return x * x


def kept_session(work_dir):
    (session,) = [p.parent for p in work_dir.glob("*/session.json")]
    return session


@pytest.fixture
def measured_session(tmp_path):
    work = tmp_path / "work"
    with batchpool.local.Pool(2, work_dir=work, keep_work_dir=True) as pool:
        assert pool.map(sleep_and_allocate, range(4), chunksize=2) == [0, 1, 2, 3]
    return kept_session(work)


def test_each_task_records_its_time_cpu_and_the_peak_memory_of_its_job(measured_session):
    """A task that sleeps 0.3 s and holds 200 MiB: generous bounds, this is a sanity check."""
    outcomes = batchpool.load(measured_session)
    assert [o.status for o in outcomes] == [TaskStatus.DONE] * 4
    for outcome in outcomes:
        assert 0.3 <= outcome.wall_s < 10.0
        assert 0.0 <= outcome.cpu_s < outcome.wall_s
        assert ALLOCATED_MB <= outcome.max_rss_mb < 4 * ALLOCATED_MB
        assert outcome.job_id
    assert len({o.job_id for o in outcomes}) <= 2


def test_cpu_time_tells_a_busy_task_from_a_sleeping_one(tmp_path):
    work = tmp_path / "work"
    with batchpool.local.Pool(1, work_dir=work, keep_work_dir=True) as pool:
        pool.map(busy, range(2))
    for outcome in batchpool.load(kept_session(work)):
        assert outcome.cpu_s >= 0.2


def test_efficiency_summarizes_the_tasks_and_suggests_time_and_memory(measured_session):
    found = results.efficiency(measured_session)
    assert found is not None and found.num_tasks == 4
    assert 0.3 <= found.wall_s.median <= found.wall_s.p95 <= found.wall_s.max
    assert found.cpu_fraction < 1.0
    assert 1 <= len(found.max_rss_mb_by_job) <= 2
    assert found.job_rss_mb.max >= ALLOCATED_MB
    assert found.longest_chunk_s >= 0.6  # two tasks of 0.3 s
    assert found.suggested_time_s == 120  # 1.5 x the longest chunk + a minute, in minutes
    assert found.suggested_mem_mb >= 1.25 * ALLOCATED_MB
    assert found.suggested_mem_mb % results.MEM_STEP_MB == 0
    assert found.suggestion() == f"time=0:02:00 mem={found.suggested_mem_mb}M"


def test_status_shows_the_distribution_and_the_suggestion(measured_session, capsys):
    assert cli.main(["status", str(measured_session)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"time per task \(4 measured\): median \d+\.\d\d s, p95 ", out), out
    assert "p95" in out and "CPU median" in out
    assert "peak memory per job" in out and "MiB" in out
    assert "suggested for the next run: time=0:02:00 mem=" in out


def test_the_html_report_has_the_time_and_memory_section(measured_session, tmp_path, capsys):
    output = tmp_path / "report.html"
    assert cli.main(["report", str(measured_session), "-o", str(output)]) == 0
    page = output.read_text()
    assert "<h2>Time and memory</h2>" in page and "peak memory (MiB)" in page
    assert page.index("Time and memory") < page.index("<h2>Chunks</h2>")
    assert "suggested for the next run: time=0:02:00" in page
    assert capsys.readouterr().out.strip() == f"wrote {output}"


def test_the_png_report_draws_time_and_memory_panels(measured_session, tmp_path):
    pytest.importorskip("matplotlib")
    output = tmp_path / "report.png"
    assert cli.main(["report", str(measured_session), "-o", str(output)]) == 0
    from matplotlib.image import imread

    image = imread(output)
    height, width = image.shape[:2]
    assert height > width  # three panels; the picture of the jobs alone is wider than tall
    assert output.read_bytes().startswith(b"\x89PNG")


def test_a_record_of_an_older_worker_reads_without_usage(tmp_path):
    """Results without the usage trailer (batchpool 0.1 workers) load as before."""
    work = tmp_path / "work"
    with batchpool.local.Pool(1, work_dir=work, keep_work_dir=True) as pool:
        pool.map(square, range(3))
    session = kept_session(work)
    # The results as a worker of batchpool 0.1 recorded them: the envelopes alone.
    envelopes = [pickle.dumps((True, x * x)) for x in range(3)]
    (session / "results.archive").unlink()
    result_file = session / "results" / "0.0.rec"
    result_file.parent.mkdir(exist_ok=True)
    result_file.write_bytes(_layout.encode_chunk(0, envelopes, 0.3))
    outcomes = batchpool.load(session)
    assert [o.value for o in outcomes] == [0, 1, 4]
    assert all(o.cpu_s is None and o.max_rss_mb is None for o in outcomes)
    assert results.efficiency(session) is None


def test_the_usage_trailer_leaves_the_envelope_readable_by_pickle():
    envelope = pickle.dumps((True, {"a": [1, 2, 3]}), protocol=pickle.HIGHEST_PROTOCOL)
    payload = envelope + _layout.encode_usage(1.25, 204800)
    assert pickle.loads(payload) == (True, {"a": [1, 2, 3]})
    assert _layout.decode_usage(payload) == (1.25, 204800)
    assert _layout.decode_usage(envelope) is None
    record = _layout.encode_record(_layout.TASK, 7, 0.5, payload)
    records, whole = _layout.decode_records(record)
    assert whole and records == [(_layout.TASK, 7, 0.5, payload)]


def test_spread_uses_the_nearest_rank_percentile():
    spread = Spread.of([float(v) for v in range(1, 101)])
    assert (spread.median, spread.p95, spread.max) == (50.5, 95.0, 100.0)
    assert Spread.of([2.0]) == Spread(2.0, 2.0, 2.0)
    with pytest.raises(ValueError):
        Spread.of([])
