"""``batchpool report``: what a map's pool did over time, as a picture.

The session's ``log.jsonl`` (one JSON line per event the dispatcher told:
:func:`batchpool.progress.tell`) read back as :class:`LogEvent` and as a
:class:`Timeline` of jobs submitted and ended; and the HTML (an SVG drawn here) or PNG
(matplotlib, the ``report`` extra) that show it with the tasks' time and memory
(:func:`batchpool.results.efficiency`).
"""

from __future__ import annotations

import datetime
import html
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from . import results
from .files import read_json_lines
from .results import PathLike, open_session
from .session import LOG_KEYS


def write(session_dir: Path, output: Path) -> None:
    """The report of the session in ``session_dir`` into ``output`` (``.html`` or ``.png``:
    ImportError without matplotlib)."""
    found = timeline(session_dir)
    if output.suffix == ".html":
        chunks = results.summarize_chunks(session_dir)
        page = render_html(session_dir, found, chunks, render_usage_html(session_dir))
        output.write_text(page, encoding="utf-8")
    else:
        usage = results.task_usage(session_dir)
        write_png(found, output, title=session_dir.name, usage=usage)


SVG_WIDTH, SVG_HEIGHT, SVG_MARGIN = 720, 320, 48


# -- the pool's log ---------------------------------------------------------------------


@dataclass(frozen=True)
class LogEvent:
    """One line of the session's ``log.jsonl``: what the pool did, and when."""

    time: datetime.datetime
    message: str
    """The words before the details: ``session``, ``resumed``, ``submitted``,
    ``resubmitting``, ``deleting``, ``scheduler unreachable``, ``done``, ``stopped``..."""
    fields: dict
    """The message's details, e.g. ``{"jobs": 3, "first_job": "17"}``."""


def log_events(session_dir: PathLike) -> list[LogEvent]:
    """The lines of the session's ``log.jsonl``, oldest first; unreadable lines are skipped."""
    session, _ = open_session(session_dir)
    events = []
    for row in read_json_lines(session.paths.log):
        event = _log_event(row)
        if event is not None:
            events.append(event)
    return events


def _log_event(row: dict) -> Optional[LogEvent]:
    """One line of ``log.jsonl``: its fields are the line's own (``session.LOG_KEYS``
    aside); in the lines of batchpool 0.1, they followed the message as a JSON text."""
    try:
        time = datetime.datetime.fromisoformat(row["t"])
        message = str(row["m"])
    except (KeyError, ValueError):
        return None
    fields = {k: v for k, v in row.items() if k not in LOG_KEYS and k != "c"}
    brace = message.find(" {")
    if not fields and brace >= 0:
        try:
            fields = json.loads(message[brace + 1 :])
        except ValueError:
            return None
        message = message[:brace]
    return LogEvent(time, message, fields if isinstance(fields, dict) else {})


@dataclass(frozen=True)
class TimelinePoint:
    """The number of jobs submitted and ended so far, ``time_s`` seconds into the map."""

    time_s: float
    submitted: int
    ended: int


@dataclass(frozen=True)
class Timeline:
    """The jobs of a map against time, from its ``log.jsonl``.

    ``log.jsonl`` records every submission of jobs (``submitted``, with their number;
    the jobs of a pool serve all its maps, so a map's log counts every job its pool
    asked for while it ran), every job that failed or vanished holding a chunk
    (``resubmitting``), jobs deleted while waiting (``deleting``) and the end of
    the map (``done`` or ``stopped``). Other jobs end when they have idled long
    enough, which is not logged: every job counts as ended at the end of the map.
    """

    start: Optional[datetime.datetime]
    points: tuple[TimelinePoint, ...]
    num_resubmissions: int
    """Chunks posted again after their job was lost."""
    end: str
    """``done``, ``stopped`` or ``""`` (still running, or its driver died)."""
    num_resumes: int = 0
    """How often a later driver took the map over."""


def timeline(session_dir: PathLike) -> Timeline:
    """The :class:`Timeline` of the map kept in ``session_dir``."""
    events = log_events(session_dir)
    start = events[0].time if events else None
    submitted = ended = resubmissions = resumes = 0
    ended_jobs: set[str] = set()
    end = ""
    points = [TimelinePoint(0.0, 0, 0)] if events else []
    for event in events:
        if event.message == "submitted":
            submitted += _count(event.fields.get("jobs", event.fields.get("chunks", 1)))
        elif event.message == "resubmitting":
            resubmissions += 1
            job = str(event.fields.get("job", ""))
            if job not in ended_jobs:  # a job that held several chunks ended once
                ended_jobs.add(job)
                ended += 1
        elif event.message == "deleting":
            if str(event.fields.get("why", "")).startswith("error state"):
                continue  # its chunk, if it held one, is resubmitted: counted there
            ended += _count(event.fields.get("jobs", 1))
        elif event.message in ("done", "stopped"):
            ended, end = submitted, event.message
        elif event.message == "resumed":
            resumes += 1
            end = ""
            continue
        else:
            continue
        assert start is not None  # there are events
        seconds = (event.time - start).total_seconds()
        points.append(TimelinePoint(seconds, submitted, min(ended, submitted)))
    return Timeline(start, tuple(points), resubmissions, end, resumes)


def _count(value: object) -> int:
    try:
        return max(0, int(str(value)))
    except ValueError:
        return 1



# -- pictures ---------------------------------------------------------------------------


def render_usage_html(session_dir: str | os.PathLike[str]) -> str:
    """The section of the HTML report on the time and memory the tasks used."""
    found = results.efficiency(session_dir)
    if found is None:
        return "<h2>Time and memory</h2>\n<p>No task of this session was measured.</p>\n"
    summary = "".join(f"<li>{html.escape(line)}</li>" for line in found.lines())
    jobs = "\n".join(
        f"<tr><td>{html.escape(job)}</td><td>{mb:.0f}</td></tr>"
        for job, mb in found.max_rss_mb_by_job
    )
    return (
        f"<h2>Time and memory</h2>\n<ul>{summary}</ul>\n"
        f"<table>\n<tr><th>job</th><th>peak memory (MiB)</th></tr>\n{jobs}\n</table>\n"
    )


def render_html(
    session_dir: Path,
    timeline: Timeline,
    chunks: Sequence[results.ChunkSummary],
    usage_html: str = "",
) -> str:
    """A self-contained page: the jobs against time (inline SVG), ``usage_html``
    (:func:`render_usage_html`) and a table of the chunks."""
    name = html.escape(session_dir.name)
    rows = "\n".join(
        f"<tr><td>{c.chunk}</td><td>{results.task_span(c.tasks)}</td>"
        f"<td>{html.escape(c.state.value)}</td><td>{c.num_attempts}</td>"
        f"<td>{html.escape(', '.join(c.job_ids))}</td><td>{html.escape(c.first_failure)}</td></tr>"
        for c in chunks
    )
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>batchpool {name}</title>
<style>body{{font-family:sans-serif}} td,th{{padding:2px 8px;text-align:left}}</style>
</head><body>
<h1>batchpool session {name}</h1>
<p>{html.escape(_timeline_summary(timeline))}</p>
{render_svg(timeline)}
<p><small>The jobs of a pool serve all of its maps: this counts every job the pool asked for
while this map ran. A job counts as ended when it failed or vanished holding a chunk (which
was posted again), when it was deleted while waiting, and at the latest when the map
ended (idle jobs exit by themselves).</small></p>
{usage_html}<h2>Chunks</h2>
<table>
<tr><th>chunk</th><th>tasks</th><th>state</th><th>attempts</th><th>claimed by jobs</th>\
<th>first failure</th></tr>
{rows}
</table>
</body></html>
"""


def _timeline_summary(timeline: Timeline) -> str:
    if not timeline.points:
        return "The session's log is empty."
    last = timeline.points[-1]
    end = {"done": "succeeded", "stopped": "stopped"}.get(timeline.end, "has not ended")
    resumed = f"resumed {timeline.num_resumes} time(s); " if timeline.num_resumes else ""
    return (
        f"Started {timeline.start:%Y-%m-%d %H:%M:%S}; {last.submitted} jobs submitted; "
        f"{timeline.num_resubmissions} chunk(s) posted again after their job was lost; "
        f"{resumed}the map {end} after {last.time_s:.1f} s."
    )


def render_svg(timeline: Timeline) -> str:
    """Jobs submitted and ended so far against seconds, as step lines in an ``<svg>``."""
    points = timeline.points or (TimelinePoint(0.0, 0, 0),)
    max_time = max(points[-1].time_s, 1e-3)
    max_jobs = max(max(p.submitted for p in points), 1)

    def xy(time_s: float, jobs: int) -> str:
        plot_w, plot_h = SVG_WIDTH - 2 * SVG_MARGIN, SVG_HEIGHT - 2 * SVG_MARGIN
        x = SVG_MARGIN + plot_w * time_s / max_time
        y = SVG_HEIGHT - SVG_MARGIN - plot_h * jobs / max_jobs
        return f"{x:.1f},{y:.1f}"

    lines = []
    for field, color in (("submitted", "#1f77b4"), ("ended", "#2ca02c")):
        steps = []
        for before, after in zip(points, points[1:]):
            steps += [
                xy(after.time_s, getattr(before, field)),
                xy(after.time_s, getattr(after, field)),
            ]
        path = " ".join([xy(0.0, getattr(points[0], field)), *steps])
        lines.append(
            f'<polyline class="{field}" fill="none" stroke="{color}" stroke-width="2" '
            f'points="{path}"><title>jobs {field}</title></polyline>'
        )
    return _svg_frame("\n".join(lines), max_time, max_jobs)


def _svg_frame(content: str, max_time: float, max_jobs: int) -> str:
    left, bottom = SVG_MARGIN, SVG_HEIGHT - SVG_MARGIN
    right, top = SVG_WIDTH - SVG_MARGIN, SVG_MARGIN
    return f"""<svg xmlns="http://www.w3.org/2000/svg" width="{SVG_WIDTH}" height="{SVG_HEIGHT}" \
role="img" aria-label="jobs submitted and ended against time">
<line x1="{left}" y1="{bottom}" x2="{right}" y2="{bottom}" stroke="black"/>
<line x1="{left}" y1="{bottom}" x2="{left}" y2="{top}" stroke="black"/>
<text x="{left}" y="{bottom + 18}" font-size="12">0</text>
<text x="{right}" y="{bottom + 18}" font-size="12" text-anchor="end">{max_time:.1f} s</text>
<text x="{left - 6}" y="{bottom}" font-size="12" text-anchor="end">0</text>
<text x="{left - 6}" y="{top + 4}" font-size="12" text-anchor="end">{max_jobs}</text>
<text x="{left}" y="{top - 18}" font-size="12">jobs: <tspan fill="#1f77b4">submitted</tspan> \
<tspan fill="#2ca02c">ended</tspan></text>
{content}
</svg>"""


def write_png(
    timeline: Timeline,
    output: Path,
    title: str,
    usage: Sequence[results.TaskUsage] = (),
) -> None:
    """The same picture as :func:`render_svg`, drawn by matplotlib (``batchpool[report]``);
    with ``usage``, two more panels: the time of each task, and the peak memory of each
    job."""
    from matplotlib.figure import Figure

    measured = [u for u in usage if u.cpu_s is not None]
    figure = Figure(figsize=(8, 9) if measured else (8, 4), layout="constrained")
    axes = figure.add_subplot(3, 1, 1) if measured else figure.add_subplot()
    if measured:
        _plot_usage(figure, measured)
    times = [p.time_s for p in timeline.points]
    axes.step(times, [p.submitted for p in timeline.points], where="post", label="submitted")
    axes.step(times, [p.ended for p in timeline.points], where="post", label="ended")
    axes.set_xlabel("seconds since the map started")
    axes.set_ylabel("jobs")
    axes.set_title(title)
    axes.legend()
    figure.savefig(output)


def _plot_usage(figure: Any, measured: Sequence[results.TaskUsage]) -> None:
    """Panels 2 and 3 of :func:`write_png`."""
    times = figure.add_subplot(3, 1, 2)
    num_bins = min(30, max(5, len(measured) // 3))
    longest = max(max(u.wall_s, u.cpu_s or 0.0) for u in measured) or 1.0
    bins = [longest * i / num_bins for i in range(num_bins + 1)]  # the same for both
    times.hist([u.wall_s for u in measured], bins=bins, alpha=0.6, label="wall time")
    times.hist([u.cpu_s for u in measured], bins=bins, alpha=0.6, label="CPU time")
    times.set_xlabel("seconds per task")
    times.set_ylabel("tasks")
    times.legend()
    peaks: dict[str, float] = {}
    for u in measured:
        peaks[u.job_id or "?"] = max(peaks.get(u.job_id or "?", 0.0), u.max_rss_mb or 0.0)
    memory = figure.add_subplot(3, 1, 3)
    jobs = sorted(peaks)
    memory.bar(range(len(jobs)), [peaks[j] for j in jobs])
    memory.set_xticks(range(len(jobs)), jobs, rotation=45, ha="right", fontsize="small")
    memory.set_xlabel("job")
    memory.set_ylabel("peak memory (MiB)")
