"""Outside a terminal, a map's progress is a time-stamped line at most every 30 s and
one at the end; every event goes to the ``batchpool`` logger."""

from __future__ import annotations

import io
import logging

from batchpool import progress
from batchpool.progress import Progress, tell


def fake_time(monkeypatch) -> list:
    now = [100.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: now[0])
    monkeypatch.setattr(progress, "_last_line", [-progress.LINE_EVERY_S])
    return now


def test_lines_come_at_most_every_30_s_and_at_the_end(monkeypatch):
    now = fake_time(monkeypatch)
    stream = io.StringIO()
    bar = Progress(10, "map of analysis.fit", verbose=False, stream=stream)
    bar.advance(3)
    now[0] += 29.0
    bar.show_jobs(2, 5, "", unreachable=False)
    assert stream.getvalue() == ""
    now[0] += 1.0
    bar.advance(2)
    now[0] += 10.0
    bar.advance(1)
    bar.close()
    first, last = stream.getvalue().splitlines()
    expected = "batchpool: map of analysis.fit: 5/10 tasks done; jobs: 2 pending, 5 running"
    assert first.endswith(expected)
    assert "6/10 tasks done" in last


def test_many_short_maps_write_one_line_per_30_s(monkeypatch):
    now = fake_time(monkeypatch)
    stream = io.StringIO()
    for step in range(40):  # an MCMC sampler's steps: a map a second
        bar = Progress(4, f"map {step}", verbose=False, stream=stream)
        bar.advance(4)
        now[0] += 1.0
        bar.close()
    lines = stream.getvalue().splitlines()
    assert [line.split(": ")[1] for line in lines] == ["map 0", "map 30"]


def test_show_false_and_verbose_print_no_progress():
    for options in ({"show": False}, {"verbose": True}):
        stream = io.StringIO()
        bar = Progress(4, "map of f", stream=stream, **{"verbose": False, **options})
        bar.advance(4)
        bar.close()
        assert stream.getvalue() == ""


def test_events_reach_the_batchpool_logger_at_their_level(caplog):
    with caplog.at_level(logging.INFO, logger="batchpool"):
        tell(None, False, "submitted", jobs=2)
        tell(None, False, "lost", chunk=3)
    levels = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "batchpool"]
    assert levels == [
        ("INFO", "batchpool: submitted jobs=2"),
        ("WARNING", "batchpool: lost chunk=3"),
    ]
