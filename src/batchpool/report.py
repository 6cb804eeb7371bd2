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
import reprlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from . import results
from .files import read_json_lines
from .results import PathLike, open_session
from .session import LOG_KEYS, Session


def write(session_dir: Path, output: Path) -> None:
    """The report of the session in ``session_dir`` into ``output`` (``.html`` or ``.png``:
    ImportError without matplotlib)."""
    if output.suffix == ".html":
        chunks = results.summarize_chunks(session_dir)
        usage_html = render_usage_html(session_dir)
        page = render_html(session_dir, timeline(session_dir), chunks, usage_html)
        output.write_text(page, encoding="utf-8")
    else:
        title = open_session(session_dir)[1].function
        usage = results.task_usage(session_dir)
        failed, _ = failed_tasks(session_dir)
        write_png(output, title, job_rows(session_dir), usage, failed)


SVG_WIDTH, SVG_MARGIN = 720, 48


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
        elif event.message in ("resubmitting", "lost"):
            resubmissions += 1
            job = str(event.fields.get("job", event.fields.get("loss", "")))
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



# -- the jobs, one by one ---------------------------------------------------------------


@dataclass(frozen=True)
class ChunkRun:
    """A chunk a job ran, in seconds since the map started: it ended when the driver
    collected it (or its job was lost); it began its tasks' measured time before that
    (a lost chunk: when its job last finished one, or started)."""

    chunk: int
    start_s: float
    end_s: float
    lost: bool = False


AT_THE_END = "at the end of the map"
"""How a job not seen exiting ends in the report (:attr:`JobRow.end`)."""


@dataclass(frozen=True)
class JobRow:
    """One job of the map's pool, as the session tells: a row of the report's timeline."""

    job_id: str
    submitted_s: Optional[float]
    """None for a job this map's log did not see submitted (adopted, or an older log)."""
    runs: tuple[ChunkRun, ...]
    end_s: float
    end: str
    """How it ended: ``exited`` (idle, by itself), ``lost: CAUSE``, or ``at the end of
    the map`` (it left when the pool stopped its workers, or had no more to do)."""
    peak_mb: Optional[float] = None
    """Its worker's peak memory, as its tasks measured it."""

    @property
    def busy_s(self) -> float:
        return sum(run.end_s - run.start_s for run in self.runs)

    @property
    def started_s(self) -> Optional[float]:
        """When its first chunk began (None: it ran none)."""
        return min((run.start_s for run in self.runs), default=None)

    @property
    def queued(self) -> Optional[tuple[float, float]]:
        """From its submission to its first chunk (or its end); None if not seen queued."""
        start = self.submitted_s if self.submitted_s is not None else self.started_s
        first = self.started_s if self.started_s is not None else self.end_s
        return (start, first) if start is not None and first > start else None


def job_rows(session_dir: PathLike) -> list[JobRow]:
    """Every job of the map, in the order they were submitted (then by id): from the
    ``submitted``, ``collected``, ``lost`` and ``exited`` lines of ``log.jsonl``, the
    claims of ``chunks.jsonl`` and the tasks' measured times."""
    events = log_events(session_dir)
    if not events:
        return []
    session, _ = open_session(session_dir)
    origin = events[0].time

    def seconds(event: LogEvent) -> float:
        return (event.time - origin).total_seconds()

    usage = results.task_usage(session_dir)
    chunk_s: dict[int, float] = {}
    peak: dict[str, float] = {}
    for u in usage:
        chunk_s[u.chunk] = chunk_s.get(u.chunk, 0.0) + u.wall_s
        if u.job_id and u.max_rss_mb is not None:
            peak[u.job_id] = max(peak.get(u.job_id, 0.0), u.max_rss_mb)
    holders, lost_jobs = _chunk_holders(session)
    submitted: dict[str, float] = {}
    runs: dict[str, list[ChunkRun]] = {}
    ends: dict[str, tuple[float, str]] = {}
    losses_seen: dict[int, int] = {}
    map_end = seconds(events[-1])
    for event in events:
        t = seconds(event)
        if event.message == "submitted":
            for job in event.fields.get("job_ids") or [event.fields.get("first_job", "")]:
                if job:
                    submitted.setdefault(str(job), t)
        elif event.message in ("collected", "lost"):
            chunk = _count(event.fields.get("chunk", -1))
            lost = event.message == "lost"
            if lost:
                n = losses_seen.get(chunk, 0)
                losses_seen[chunk] = n + 1
                known = lost_jobs.get(chunk, [])
                job, cause = known[n] if n < len(known) else ("", "")
                job = job or f"? (chunk {chunk})"
                ends.setdefault(job, (t, f"lost: {cause or 'unknown'}"))
            else:
                job = holders.get(chunk, "") or f"? (chunk {chunk})"
            before = [r.end_s for r in runs.get(job, [])] + [submitted.get(job, 0.0)]
            begun = t - chunk_s.get(chunk, 0.0) if not lost else max(before)
            runs.setdefault(job, []).append(ChunkRun(chunk, max(begun, max(before)), t, lost))
        elif event.message == "exited":
            ends.setdefault(str(event.fields.get("job", "")), (t, "exited"))
        elif event.message in ("done", "stopped"):
            map_end = t
    ids = list(submitted) + sorted(set(runs).union(ends).difference(submitted))
    rows = []
    for job in ids:
        end_s, end = ends.get(job, (map_end, AT_THE_END))
        rows.append(
            JobRow(job, submitted.get(job), tuple(runs.get(job, ())), end_s, end, peak.get(job))
        )
    return rows


def _chunk_holders(
    session: Session,
) -> tuple[dict[int, str], dict[int, list[tuple[str, str]]]]:
    """The job that holds each chunk at the end, and the jobs lost holding each chunk
    (with the loss's cause), in order: from ``chunks.jsonl``."""
    holders: dict[int, str] = {}
    lost: dict[int, list[tuple[str, str]]] = {}
    for event in session.chunk_events():
        if event.event == "claimed" and event.job_id:
            holders[event.chunk] = event.job_id
        elif event.event == "lost":
            lost.setdefault(event.chunk, []).append((event.job_id, event.cause))
    return holders, lost


def tasks_done(session_dir: PathLike) -> list[tuple[float, int]]:
    """``(seconds since the map started, tasks collected so far)`` at each ``collected``."""
    events = log_events(session_dir)
    done, points = 0, [(0.0, 0)] if events else []
    for event in events:
        if event.message == "collected":
            done += _count(event.fields.get("tasks", 0))
            points.append(((event.time - events[0].time).total_seconds(), done))
    return points


@dataclass(frozen=True)
class FailedTask:
    """A task that raised: its index, input (short), error and where it raised."""

    index: int
    input: str
    error: str
    where: str


def failed_tasks(session_dir: PathLike, most: int = 20) -> tuple[list[FailedTask], str]:
    """The first ``most`` failed tasks, and a note: why none can be shown (the results
    were not kept, or cannot be read here), or how many more there are."""
    session, _ = open_session(session_dir)
    if session.is_summary():
        return [], "No task raised: the map succeeded (its results went to its caller)."
    try:
        outcomes = results.load(session_dir, strict=False)
        inputs = results.load_inputs(session_dir, strict=False)
    except results.ResultsError as error:
        return [], str(error)
    failed = [o for o in outcomes if o.status is results.TaskStatus.FAILED]
    shown = []
    for outcome in failed[:most]:
        frames = [line.strip() for line in outcome.traceback.splitlines() if line.strip()]
        where = next((line for line in reversed(frames) if line.startswith("File ")), "")
        value = inputs[outcome.index] if outcome.index < len(inputs) else "?"
        shown.append(FailedTask(outcome.index, _short.repr(value), outcome.failure_line(), where))
    more = f"and {len(failed) - most} more" if len(failed) > most else ""
    return shown, more


_short = reprlib.Repr()
_short.maxstring, _short.maxother, _short.maxlist = 60, 60, 6


# -- pictures ---------------------------------------------------------------------------


COLORS = {"queued": "#c7c7c7", "running": "#1f77b4", "idle": "#ffe08a", "lost": "#d62728"}


def render_usage_html(session_dir: str | os.PathLike[str]) -> str:
    """The section of the HTML report on the time and memory the tasks used: what to ask
    for next time, the histogram of task times."""
    found = results.efficiency(session_dir)
    if found is None:
        return "<h2>Time and memory</h2>\n<p>No task of this session was measured.</p>\n"
    summary = "".join(f"<li>{html.escape(line)}</li>" for line in found.lines())
    usage = results.task_usage(session_dir)
    return (
        f'<h2>Time and memory</h2>\n<p class="suggestion">Ask for '
        f"<code>{html.escape(found.suggestion())}</code> next time.</p>\n<ul>{summary}</ul>\n"
        f"{_histogram_svg([u.wall_s for u in usage])}\n"
    )


def render_html(
    session_dir: Path,
    timeline: Timeline,
    chunks: Sequence[results.ChunkSummary],
    usage_html: str = "",
) -> str:
    """A self-contained page (no script): what the map was and how it ended, each job
    against time (inline SVG), the tasks done over time, the failed tasks, ``usage_html``
    (:func:`render_usage_html`) and a table of the chunks."""
    _, manifest = open_session(session_dir)
    function = html.escape(manifest.function)
    jobs = job_rows(session_dir)
    failed, failed_note = failed_tasks(session_dir)
    rows = "\n".join(
        f"<tr><td>{c.chunk}</td><td>{results.task_span(c.tasks)}</td>"
        f"<td>{html.escape(c.state.value)}</td><td>{c.num_attempts}</td>"
        f"<td>{html.escape(', '.join(c.job_ids))}</td><td>{html.escape(c.first_failure)}</td></tr>"
        for c in chunks
    )
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>batchpool report: {function}</title>
<style>body{{font-family:sans-serif;max-width:1000px;margin:1em auto;padding:0 1em}}
td,th{{padding:2px 8px;text-align:left;vertical-align:top}} svg{{max-width:100%;height:auto}}
table{{display:block;overflow-x:auto}}
.suggestion{{font-size:1.2em}} .failed td{{font-family:monospace}} small{{color:#555}}</style>
</head><body>
<h1>{function}</h1>
<p><small>session {html.escape(session_dir.name)}</small></p>
<p>{html.escape(_timeline_summary(timeline, jobs, manifest.num_tasks))}</p>
<h2>Jobs</h2>
{render_jobs_svg(jobs)}
<p><small>One row per job: queued (or starting) from its submission to its first chunk,
running a chunk, idle between chunks; a red mark is a job lost holding a chunk, with its
cause. A job not seen exiting ends with the map. The start of a chunk is its end less the
measured time of its tasks.</small></p>
{_jobs_table(jobs)}
<h2>Tasks done</h2>
{render_done_svg(tasks_done(session_dir))}
{_failed_html(failed, failed_note)}
{usage_html}<h2>Chunks</h2>
<table>
<tr><th>chunk</th><th>tasks</th><th>state</th><th>attempts</th><th>claimed by jobs</th>\
<th>first failure</th></tr>
{rows}
</table>
</body></html>
"""


def busy_fraction(jobs: Sequence[JobRow]) -> Optional[float]:
    """The time the jobs ran chunks over the time they held a node (from their first
    chunk to their end); None if no job ran one."""
    held = sum(j.end_s - j.started_s for j in jobs if j.started_s is not None)
    return sum(j.busy_s for j in jobs) / held if held > 0 else None


def _timeline_summary(
    timeline: Timeline, jobs: Sequence[JobRow] = (), num_tasks: Optional[int] = None
) -> str:
    if not timeline.points:
        return "The session's log is empty."
    last = timeline.points[-1]
    end = {"done": "succeeded", "stopped": "stopped"}.get(timeline.end, "has not ended")
    resumed = f"resumed {timeline.num_resumes} time(s); " if timeline.num_resumes else ""
    busy = busy_fraction(jobs)
    busy_text = f"; the jobs were busy {busy:.0%} of the time they ran" if busy is not None else ""
    lost = sum(j.end.startswith("lost") for j in jobs)
    tasks = f"{num_tasks} tasks; " if num_tasks is not None else ""
    return (
        f"Started {timeline.start:%Y-%m-%d %H:%M:%S}; {tasks}{max(last.submitted, len(jobs))} "
        f"jobs ({lost} lost); {timeline.num_resubmissions} chunk(s) posted again after "
        f"their job was lost; {resumed}the map {end} after {last.time_s:.1f} s{busy_text}."
    )


def _jobs_table(jobs: Sequence[JobRow]) -> str:
    rows = "\n".join(
        f"<tr><td>{html.escape(j.job_id)}</td><td>{len(j.runs)}</td><td>{j.busy_s:.1f}</td>"
        f"<td>{'-' if j.peak_mb is None else f'{j.peak_mb:.0f}'}</td>"
        f"<td>{html.escape(j.end)}</td></tr>"
        for j in jobs
    )
    return (
        "<table>\n<tr><th>job</th><th>chunks</th><th>busy (s)</th><th>peak memory (MiB)</th>"
        f"<th>ended</th></tr>\n{rows}\n</table>"
    )


def _failed_html(failed: Sequence[FailedTask], note: str) -> str:
    if not failed:
        text = html.escape(note) if note else "No task raised."
        return f"<h2>Failed tasks</h2>\n<p>{text}</p>"
    rows = "\n".join(
        f"<tr><td>{f.index}</td><td>{html.escape(f.input)}</td><td>{html.escape(f.error)}</td>"
        f"<td>{html.escape(f.where)}</td></tr>"
        for f in failed
    )
    more = f"<p>{html.escape(note)}</p>" if note else ""
    return (
        f'<h2>Failed tasks</h2>\n<table class="failed">\n<tr><th>task</th><th>input</th>'
        f"<th>error</th><th>where it raised</th></tr>\n{rows}\n</table>{more}"
    )


ROW_H, LABEL_W = 22, 110


def render_jobs_svg(jobs: Sequence[JobRow]) -> str:
    """One row per job against seconds: queued, running a chunk, idle, lost."""
    if not jobs:
        return "<p>No job is known to this session.</p>"
    width = SVG_WIDTH + LABEL_W
    height = ROW_H * len(jobs) + 60
    max_s = max(max(j.end_s for j in jobs), 1e-3)
    plot_w = width - LABEL_W - 20

    def x(t: float) -> float:
        return LABEL_W + plot_w * t / max_s

    parts = []
    for i, job in enumerate(jobs):
        y = 30 + i * ROW_H
        parts.append(
            f'<text x="{LABEL_W - 6}" y="{y + 14}" font-size="12" text-anchor="end">'
            f"{html.escape(job.job_id)}</text>"
        )
        if job.queued is not None:
            start, first = job.queued
            parts.append(_bar(x(start), x(first), y, "queued", f"{job.job_id}: queued"))
        if job.started_s is not None:
            parts.append(_bar(x(job.started_s), x(job.end_s), y, "idle", f"{job.job_id}: idle"))
        for run in job.runs:
            kind = "lost" if run.lost else "running"
            what = f"{job.job_id}: chunk {run.chunk} {run.start_s:.1f}-{run.end_s:.1f} s"
            parts.append(_bar(x(run.start_s), x(run.end_s), y, kind, what))
        if job.end.startswith("lost"):
            parts.append(
                f'<text x="{x(job.end_s) + 4}" y="{y + 14}" font-size="12" fill="#d62728">'
                f"\u2716 {html.escape(job.end)}</text>"
            )
        elif job.end == "exited":
            parts.append(
                f'<text x="{x(job.end_s) + 4}" y="{y + 14}" font-size="11" fill="#555">'
                "exited</text>"
            )
    labels_end = [x(j.end_s) + 12 + 6.5 * len(j.end) for j in jobs if j.end != AT_THE_END]
    width = max([width, *map(int, labels_end)])  # room for the words after the last bar
    axis = height - 24
    legend = " ".join(
        f'<tspan fill="{color}">\u25a0</tspan> {kind}' for kind, color in COLORS.items()
    )
    return f"""{_svg_tag(width, height, "each job against time")}
<text x="{LABEL_W}" y="16" font-size="12">{legend}</text>
<line x1="{LABEL_W}" y1="{axis}" x2="{LABEL_W + plot_w}" y2="{axis}" stroke="black"/>
<text x="{LABEL_W}" y="{axis + 16}" font-size="12">0</text>
<text x="{LABEL_W + plot_w}" y="{axis + 16}" font-size="12" text-anchor="end">\
{max_s:.1f} s since the map started</text>
{chr(10).join(parts)}
</svg>"""


def _svg_tag(width: float, height: float, label: str) -> str:
    """An ``<svg>`` that scales down to a narrow window (its ``viewBox``)."""
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" role="img" aria-label="{label}">'
    )


def _bar(x0: float, x1: float, y: float, kind: str, title: str) -> str:
    height = ROW_H - 6 if kind in ("running", "lost") else ROW_H - 12
    top = y + (ROW_H - 4 - height) / 2
    return (
        f'<rect class="{kind}" x="{x0:.1f}" y="{top:.1f}" width="{max(x1 - x0, 1.0):.1f}" '
        f'height="{height}" fill="{COLORS[kind]}"><title>{html.escape(title)}</title></rect>'
    )


def render_done_svg(points: Sequence[tuple[float, int]]) -> str:
    """Tasks collected so far against seconds, a step line."""
    if len(points) < 2:
        return "<p>No result was collected.</p>"
    max_s = max(points[-1][0], 1e-3)
    most = max(points[-1][1], 1)
    plot_w, plot_h = SVG_WIDTH - 2 * SVG_MARGIN, 160

    def xy(t: float, n: int) -> str:
        return f"{SVG_MARGIN + plot_w * t / max_s:.1f},{20 + plot_h - plot_h * n / most:.1f}"

    steps = [xy(0.0, 0)]
    for (_, before), (t, after) in zip(points, points[1:]):
        steps += [xy(t, before), xy(t, after)]
    bottom = 20 + plot_h
    return f"""{_svg_tag(SVG_WIDTH, bottom + 30, "tasks done against time")}
<line x1="{SVG_MARGIN}" y1="{bottom}" x2="{SVG_MARGIN + plot_w}" y2="{bottom}" stroke="black"/>
<line x1="{SVG_MARGIN}" y1="{bottom}" x2="{SVG_MARGIN}" y2="20" stroke="black"/>
<text x="{SVG_MARGIN - 6}" y="24" font-size="12" text-anchor="end">{most}</text>
<text x="{SVG_MARGIN - 6}" y="{bottom}" font-size="12" text-anchor="end">0</text>
<text x="{SVG_MARGIN + plot_w}" y="{bottom + 16}" font-size="12" text-anchor="end">\
{max_s:.1f} s</text>
<polyline class="done" fill="none" stroke="#2ca02c" stroke-width="2" points="{" ".join(steps)}">\
<title>tasks done</title></polyline>
</svg>"""


def _histogram_svg(values: Sequence[float], num_bins: int = 20) -> str:
    """The histogram of task times (seconds), as an ``<svg>``."""
    if not values:
        return ""
    longest = max(max(values), 1e-6)
    counts = [0] * num_bins
    for value in values:
        counts[min(num_bins - 1, int(num_bins * value / longest))] += 1
    most = max(counts)
    plot_w, plot_h = SVG_WIDTH - 2 * SVG_MARGIN, 140
    bar_w = plot_w / num_bins
    bars = "\n".join(
        f'<rect x="{SVG_MARGIN + i * bar_w:.1f}" y="{20 + plot_h - plot_h * n / most:.1f}" '
        f'width="{bar_w - 1:.1f}" height="{plot_h * n / most:.1f}" fill="#1f77b4">'
        f"<title>{n} task(s) of {longest * i / num_bins:.2f}-{longest * (i + 1) / num_bins:.2f} s"
        "</title></rect>"
        for i, n in enumerate(counts)
    )
    bottom = 20 + plot_h
    return f"""{_svg_tag(SVG_WIDTH, bottom + 30, "histogram of task times")}
<text x="{SVG_MARGIN}" y="12" font-size="12">tasks by wall time</text>
{bars}
<line x1="{SVG_MARGIN}" y1="{bottom}" x2="{SVG_MARGIN + plot_w}" y2="{bottom}" stroke="black"/>
<text x="{SVG_MARGIN - 6}" y="24" font-size="12" text-anchor="end">{most}</text>
<text x="{SVG_MARGIN}" y="{bottom + 16}" font-size="12">0</text>
<text x="{SVG_MARGIN + plot_w}" y="{bottom + 16}" font-size="12" text-anchor="end">\
{longest:.2f} s</text>
</svg>"""


def write_png(
    output: Path,
    title: str,
    jobs: Sequence[JobRow],
    usage: Sequence[results.TaskUsage] = (),
    failed: Sequence[FailedTask] = (),
) -> None:
    """One row per job, as :func:`render_jobs_svg`, drawn by matplotlib (the ``report``
    extra); with ``usage``, two more panels: the time of each task, and the peak memory
    of each job; under them, the first ``failed`` tasks."""
    from matplotlib.figure import Figure

    measured = [u for u in usage if u.cpu_s is not None]
    figure = Figure(figsize=(8, 9) if measured else (8, 4), layout="constrained")
    axes = figure.add_subplot(3, 1, 1) if measured else figure.add_subplot()
    if measured:
        _plot_usage(figure, measured)
    _plot_jobs(axes, jobs)
    axes.set_title(title)
    if failed:
        lines = [f"task {f.index} ({f.input}): {f.error}  [{f.where}]" for f in failed[:5]]
        more = [f"and {len(failed) - 5} more"] if len(failed) > 5 else []
        text = "\n".join(["failed tasks:", *lines, *more])
        figure.supxlabel(text, x=0.01, ha="left", fontsize="small", color=COLORS["lost"])
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


def _plot_jobs(axes: Any, jobs: Sequence[JobRow]) -> None:
    """Panel 1 of :func:`write_png`: one row per job, as :func:`render_jobs_svg`."""
    if not jobs:
        axes.text(0.5, 0.5, "No job is known to this session.", ha="center")
        return
    for row, job in enumerate(reversed(jobs)):
        if job.queued is not None:
            start, first = job.queued
            axes.broken_barh([(start, first - start)], (row - 0.15, 0.3), color=COLORS["queued"])
        if job.started_s is not None:
            span = (job.started_s, job.end_s - job.started_s)
            axes.broken_barh([span], (row - 0.15, 0.3), color=COLORS["idle"])
        for run in job.runs:
            color = COLORS["lost" if run.lost else "running"]
            span = (run.start_s, run.end_s - run.start_s)
            axes.broken_barh([span], (row - 0.35, 0.7), color=color)
        if job.end != AT_THE_END:
            color = COLORS["lost"] if job.end.startswith("lost") else "#555555"
            axes.text(job.end_s, row, f" {job.end}", va="center", fontsize="small", color=color)
    axes.set_yticks(range(len(jobs)), [job.job_id for job in reversed(jobs)], fontsize="small")
    axes.set_xlabel("seconds since the map started")
    axes.set_ylabel("job")
