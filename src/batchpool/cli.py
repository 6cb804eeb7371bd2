"""The ``batchpool`` command (also ``python -m batchpool``)."""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import pickle
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Callable, Optional, TextIO

import batchpool
from batchpool import results
from batchpool._layout import PoolPaths, SessionPaths
from batchpool.session import PoolDirectory, Session, SessionState
from batchpool.slurm.squeue import parse_usage, usage_argv


def demo_task(x: int) -> tuple[int, str]:
    """The demo's task: a little arithmetic, and where it ran."""
    return sum(math.isqrt(i) for i in range(x * 1000)), os.uname().nodename


DEMO_MAX_JOBS = 2
"""On a cluster, the demo's jobs at once (and each is retried at most once)."""
DEMO_TIME = "0:01:00"
DEMO_MEM = "256M"
QUEUE_OPTIONS = ("queue", "partition", "queue_name")
"""The options that name where a pool's jobs go (Slurm's partition, SGE's or PBS's queue)."""


def demo_limits(backend: str) -> dict[str, Any]:
    """The demo's small limits, in the options of ``backend``: a minute and
    :data:`DEMO_MEM` a job, :data:`DEMO_MAX_JOBS` jobs at once; none locally."""
    if backend == "local":
        return {}
    return {
        "processes": DEMO_MAX_JOBS,
        "max_num_resubmissions": 1,
        "time": DEMO_TIME,
        "mem": DEMO_MEM,
    }


def demo(args: argparse.Namespace) -> int:
    """A small map on the local backend, or with ``--backend`` a few small jobs there,
    after saying where (:func:`demo_limits`)."""
    backend = args.backend or "local"
    options = {
        "work_dir": args.work_dir,
        "polling_interval": args.polling_interval,
        **demo_limits(backend),
    }
    pool_class = importlib.import_module(batchpool.BACKENDS[backend]).Pool
    version = batchpool.__version__
    print(f"batchpool {version}: a map of {args.tasks} tasks on the {backend!r} backend")
    if backend == "local":
        print("(on this machine; --backend slurm, sge, pbs... submits a few small jobs instead)")
    else:
        print(_demo_where(backend, options))
    start = time.monotonic()
    with pool_class(**options) as pool:
        values = pool.map(demo_task, range(args.tasks))
        pool_dir = pool.statistics().pool_dir
    seconds = time.monotonic() - start
    hosts = sorted({host for _, host in values})
    print(f"results: {[value for value, _ in values]}")
    print(f"{len(values)} results in {seconds:.1f} s, computed on {', '.join(hosts)}")
    session = _newest_demo_session(pool_dir.parent) if pool_dir is not None else None
    if session is not None:
        shown = session.relative_to(Path.cwd()) if session.is_relative_to(Path.cwd()) else session
        print(f"what the pool did: batchpool status {shown}")
        print(f"                   batchpool report {shown} -o report.html")
    return 0


def _newest_demo_session(work_dir: Path) -> Optional[Path]:
    """The session the demo's map just left in ``work_dir`` (its summary)."""
    name = f"{demo_task.__module__}.{demo_task.__qualname__}"
    found = results.find_sessions(work_dir)
    ours = [d for d in found if results.open_session(d)[1].function == name]
    return max(ours, key=lambda d: d.name, default=None)


def _demo_where(backend: str, options: dict[str, Any]) -> str:
    """Where the demo's jobs go (the queue of the profile or a variable, else the
    scheduler's default), and their limits."""
    from batchpool import config

    found = config.effective(backend, options, backend_fixed=True)
    settings = {setting.name: setting for setting in found.settings}
    queue = next((settings[n] for n in QUEUE_OPTIONS if n in settings), None)
    where = "the scheduler's default queue"
    if queue is not None and queue.value:
        where = f"{queue.name} {queue.value!r} ({queue.source})"
    return (
        f"jobs go to {where}; at most {DEMO_MAX_JOBS} at once, "
        f"each at most {DEMO_TIME} and {DEMO_MEM}"
    )


# -- status -----------------------------------------------------------------------------


def status(args: argparse.Namespace) -> int:
    path = Path(args.path)
    if (
        results.is_session(path)
        or os.path.exists(SessionPaths(path).manifest)
        or results.is_pool_dir(path)
        or not path.is_dir()
    ):
        print(session_status(path))
    else:
        print(work_dir_status(path))
    return 0


def session_status(session_dir: Path) -> str:
    """The table of a session's chunks, a summary line, and where its jobs' logs are."""
    summary = results.summarize_session(session_dir)
    rows = [
        (
            str(c.chunk),
            results.task_span(c.tasks),
            c.state.value,
            str(c.num_attempts),
            ",".join(c.job_ids) or "-",
            c.first_failure,
        )
        for c in summary.chunks
    ]
    header = ("CHUNK", "TASKS", "STATE", "ATTEMPTS", "JOB IDS", "FIRST FAILURE")
    lines = [format_table(header, rows), _session_summary_line(summary)]
    lost = [(c.chunk, loss) for c in summary.chunks for loss in c.losses]
    if lost:
        lines.append("jobs lost holding a chunk:")
        lines.extend(f"  chunk {chunk}: {loss}" for chunk, loss in lost)
    damaged = results.damaged_results(summary.directory)
    if damaged:
        lines.append("kept aside, failed its checks:")
        lines.extend(f"  {line}" for line in damaged)
    found = results.efficiency(summary.directory)
    lines.extend(found.lines() if found is not None else [])
    lines.extend(accounting_lines(summary, found))
    work_dir = summary.directory.parent
    for name in results.pools_of_session(summary.directory):
        logs = PoolPaths(work_dir / name).logs
        if os.path.isdir(logs):
            lines.append(f"logs of its jobs: {logs}")
    return "\n".join(lines)


def accounting_lines(
    summary: results.SessionSummary, found: Optional[results.Efficiency]
) -> list[str]:
    """Slurm's own accounting of the session's jobs (``sacct``: elapsed, MaxRSS) beside
    what their workers measured (the tasks' time, the peak RSS); nothing where the
    session ran elsewhere or ``sacct`` does not answer."""
    if found is None or not summary.manifest.backend.startswith("slurm"):
        return []
    jobs = sorted(job for job, _ in found.max_rss_mb_by_job if job != "?")
    if not jobs or shutil.which("sacct") is None:
        return []
    try:
        answer = subprocess.run(
            usage_argv("sacct", jobs), capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired):
        return []
    told = parse_usage(answer.stdout) if answer.returncode == 0 else {}
    if not told:
        return []
    peaks = dict(found.max_rss_mb_by_job)
    task_s: dict[str, float] = {}
    for usage in results.task_usage(summary.directory):
        task_s[usage.job_id] = task_s.get(usage.job_id, 0.0) + usage.wall_s
    lines = ["Slurm's accounting (sacct) of each job beside its worker's own figures:"]
    for job in jobs:
        said = told.get(job)
        if said is None:
            continue
        elapsed = "?" if said.elapsed_s is None else f"{said.elapsed_s} s"
        rss = "?" if said.max_rss_kb is None else f"{said.max_rss_kb / 1024:.0f} MiB"
        lines.append(
            f"  job {job}: sacct elapsed {elapsed}, MaxRSS {rss}; worker: tasks "
            f"{task_s.get(job, 0.0):.1f} s, peak RSS {peaks[job]:.0f} MiB"
        )
    return lines


def _session_summary_line(summary: results.SessionSummary) -> str:
    session = Session(summary.directory)
    counts = {state: 0 for state in results.ChunkState}
    for chunk in summary.chunks:
        counts[chunk.state] += 1
    replaced = counts[results.ChunkState.REPLACED]
    driver = results.live_driver(session)
    driving = f"; driven now by process {driver.pid} on {driver.host}" if driver else ""
    failed = f", {summary.num_failed_tasks} failed" if summary.num_failed_tasks else ""
    # A session driven now reads "not finished; driven now by ...".
    ended = (SessionState.FINISHED, SessionState.FAILED)
    state = summary.state if summary.state in ended else SessionState.NOT_FINISHED
    return (
        f"{session.name}: {len(summary.chunks)} chunks: "
        f"{counts[results.ChunkState.DONE]} done, {counts[results.ChunkState.FAILED]} failed, "
        f"{counts[results.ChunkState.NO_RESULT]} without result (waiting, running or lost)"
        f"{f', {replaced} replaced' if replaced else ''}; "
        f"{summary.num_done_tasks}/{_num_tasks(summary)} tasks done{failed}; "
        f"{sum(c.num_resubmissions for c in summary.chunks)} resubmissions; "
        f"{state.value}{driving}"
    )


def _num_tasks(summary: results.SessionSummary) -> str:
    """The number of tasks; ``N+`` for an imap whose input was still being read."""
    return f"{summary.num_tasks}{'+' if summary.manifest.num_tasks is None else ''}"


def work_dir_status(work_dir: Path) -> str:
    """One line per session inside ``work_dir`` (its pool directories are left out)."""
    found = results.scan_sessions(work_dir)
    sessions = [results.summarize_session(d) for d in found.readable]
    unreadable = "".join(f"\ncannot read: {e.message}" for e in found.unreadable)
    if not sessions:
        return f"no batchpool sessions in {work_dir}{unreadable}"
    rows = [
        (
            s.directory.name,
            s.manifest.created,
            s.manifest.backend,
            s.manifest.function,
            f"{s.num_done_tasks}/{_num_tasks(s)}",
            str(s.num_failed_tasks),
            s.state.value,
        )
        for s in sessions
    ]
    header = ("SESSION", "CREATED", "BACKEND", "FUNCTION", "DONE", "FAILED", "STATE")
    return format_table(header, rows) + unreadable


def format_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns, two spaces apart; trailing spaces removed."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in [header, *rows]
    ]
    return "\n".join(lines)


# -- results ----------------------------------------------------------------------------

OutcomeWriter = Callable[[list, Path, Optional[list]], None]
"""Writes outcomes (and the tasks' inputs, if given) to a file."""
OUTCOME_WRITERS: dict[str, OutcomeWriter] = {}
TO_STDOUT = "-"


def export_results(args: argparse.Namespace) -> int:
    """``batchpool results SESSION``: JSON lines on stdout, or a file by its suffix."""
    if args.output in (None, TO_STDOUT):
        outcomes = results.load(args.session, strict=False)
        inputs = results.load_inputs(args.session, strict=False) if args.inputs else None
        write_json_lines(outcomes, sys.stdout, inputs)
        return 0
    output = Path(args.output)
    writer = OUTCOME_WRITERS.get(output.suffix)
    if writer is None:
        return _usage_error(f"--output must end in {' or '.join(OUTCOME_WRITERS)}: {output}")
    strict = output.suffix == ".pkl"
    outcomes = results.load(args.session, strict=strict)
    inputs = results.load_inputs(args.session, strict=strict) if args.inputs else None
    writer(outcomes, output, inputs)
    counts = {s: sum(o.status is s for o in outcomes) for s in results.TaskStatus}
    print(
        f"wrote {len(outcomes)} tasks to {output}: "
        + ", ".join(f"{n} {s.value}" for s, n in counts.items())
    )
    return 0


def outcome_dict(outcome: results.TaskOutcome) -> dict[str, Any]:
    """A task outcome as a plain dict (``status`` as its string value)."""
    return {
        "index": outcome.index,
        "status": outcome.status.value,
        "value": outcome.value,
        "exception": outcome.exception,
        "traceback": outcome.traceback,
    }


def outcome_line(outcome: results.TaskOutcome) -> dict[str, Any]:
    """A task outcome as one line of ``batchpool results``'s JSON lines: ``value`` is the
    ``repr`` of a value that JSON cannot hold (``value_is_repr`` says so), ``error`` the
    exception's ``Type: message``, ``traceback_last_line`` the last line of its remote
    traceback (None where there is none)."""
    value, value_is_repr = _json_or_repr(outcome.value)
    tail = outcome.traceback.rstrip().rpartition("\n")[2]
    return {
        "index": outcome.index,
        "status": outcome.status.value,
        "value": value,
        "value_is_repr": value_is_repr,
        "error": outcome.failure_line() or None,
        "traceback_last_line": tail or None,
    }


def write_json_lines(outcomes: list, stream: TextIO, inputs: Optional[list] = None) -> None:
    """One :func:`outcome_line` per task; with ``inputs``, each task's ``input`` (and
    ``input_is_repr``) too."""
    for i, outcome in enumerate(outcomes):
        row = outcome_line(outcome)
        if inputs is not None:
            row["input"], row["input_is_repr"] = _json_or_repr(inputs[i])
        stream.write(json.dumps(row, allow_nan=False) + "\n")


def write_jsonl(outcomes: list, output: Path, inputs: Optional[list]) -> None:
    """The lines of ``batchpool results`` on stdout (:func:`write_json_lines`), to a file."""
    with output.open("w", encoding="utf-8") as stream:
        write_json_lines(outcomes, stream, inputs)


def write_pickle(outcomes: list, output: Path, inputs: Optional[list] = None) -> None:
    """A pickle of a list of :func:`outcome_dict` (the exceptions as objects); with
    ``inputs``, each dict has the task's ``input`` too."""
    rows = [outcome_dict(o) for o in outcomes]
    for row, task_input in zip(rows, inputs or ()):
        row["input"] = task_input
    output.write_bytes(pickle.dumps(rows))


def write_json(outcomes: list, output: Path, inputs: Optional[list] = None) -> None:
    """JSON: values JSON cannot hold become their ``repr``; exceptions ``Type: message``;
    with ``inputs``, each task's ``input`` as its value is written."""
    rows = []
    for i, outcome in enumerate(outcomes):
        row = outcome_dict(outcome)
        row["value"] = _jsonable(outcome.value)
        row["exception"] = outcome.failure_line() or None
        if inputs is not None:
            row["input"] = _jsonable(inputs[i])
        rows.append(row)
    output.write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")


def _jsonable(value: Any) -> Any:
    return _json_or_repr(value)[0]


def _json_or_repr(value: Any) -> tuple[Any, bool]:
    """``(value, False)`` if JSON holds ``value``, else ``(repr(value), True)``."""
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return repr(value), True
    return value, False


OUTCOME_WRITERS.update({".pkl": write_pickle, ".json": write_json, ".jsonl": write_jsonl})


# -- clean ------------------------------------------------------------------------------


def clean(args: argparse.Namespace) -> int:
    work_dir = Path(args.work_dir)
    if not work_dir.is_dir():
        return _usage_error(f"{work_dir} is not a directory")
    if results.is_session(work_dir):
        return _usage_error(f"{work_dir} is a session; give the work_dir that holds it")
    if results.is_pool_dir(work_dir):
        return _usage_error(f"{work_dir} is a pool directory; give the work_dir that holds it")
    doomed = sessions_to_clean(work_dir, include_unfinished=args.all)
    doomed_pools = pools_to_clean(work_dir, [directory for directory, _ in doomed])
    if not doomed and not doomed_pools:
        print(f"nothing to remove in {work_dir}")
        return 0
    for directory, state in doomed:
        print(f"  {directory.name}  {CLEAN_LABELS.get(state, 'NOT finished')}")
    for directory in doomed_pools:
        print(f"  {directory.name}  pool directory, its driver is gone")
    what = _what(doomed, doomed_pools)
    if not args.yes and not _confirm(f"Remove these {what}? [y/N] "):
        print("nothing removed")
        return 1
    for directory, _ in doomed:
        Session(directory).remove()
    for directory in doomed_pools:
        PoolDirectory(directory).remove()
    print(f"removed {what} from {work_dir}")
    return 0


def _what(sessions: Sequence[object], pools: Sequence[object]) -> str:
    parts = [f"{len(sessions)} session(s)"] if sessions else []
    if pools:
        parts.append(f"{len(pools)} pool director{'y' if len(pools) == 1 else 'ies'}")
    return " and ".join(parts)


CLEAN_LABELS = {SessionState.FINISHED: "finished", SessionState.FAILED: "FAILED"}
"""How ``clean`` lists a session it would remove; any other: ``NOT finished``."""


def sessions_to_clean(work_dir: Path, include_unfinished: bool) -> list[tuple[Path, SessionState]]:
    """``(session directory, state)`` of the sessions ``clean`` removes: the finished
    ones, and with ``include_unfinished`` the failed and not finished ones too.

    A session that a live driver drives is never removed (it is named on stderr).
    """
    doomed = []
    for directory in results.find_sessions(work_dir):
        session = Session(directory)
        finished = results.is_finished(session)
        if not (finished or include_unfinished):
            continue
        driver = results.live_driver(session)
        if driver is not None:
            sys.stderr.write(
                f"batchpool: keeping {directory.name}: driven by process {driver.pid} "
                f"on {driver.host}\n"
            )
            continue
        doomed.append((directory, session.state()))
    return doomed


def pools_to_clean(work_dir: Path, doomed_sessions: Sequence[Path] = ()) -> list[Path]:
    """The pool directories ``clean`` removes: those whose driver is gone and to which no
    unfinished session that stays (not in ``doomed_sessions``) posted chunks.

    A driver is gone when its process is not alive (same host), or when its heartbeat,
    the ``driver`` file it rewrites every few seconds, has not changed for
    ``STALE_LOCK_S`` (another host). A kept pool is named on stderr.
    """
    doomed_names = {Path(d).name for d in doomed_sessions}
    wanted: dict[str, str] = {}  # pool name: an unfinished session that stays and used it
    for directory in results.find_sessions(work_dir):
        if directory.name in doomed_names or results.is_finished(Session(directory)):
            continue
        for name in results.pools_of_session(directory):
            wanted.setdefault(name, directory.name)
    doomed = []
    for directory in results.find_pool_dirs(work_dir):
        driver = results.pool_driver(directory)
        if driver.alive:
            who = f"process {driver.pid} on {driver.host}" if driver.host else "starting"
            sys.stderr.write(f"batchpool: keeping {directory.name}: its driver is alive ({who})\n")
        elif directory.name in wanted:
            sys.stderr.write(
                f"batchpool: keeping {directory.name}: the unfinished session "
                f"{wanted[directory.name]} used it (the logs of its jobs are there)\n"
            )
        else:
            doomed.append(directory)
    return doomed


def _confirm(question: str) -> bool:
    sys.stdout.write(question)
    sys.stdout.flush()
    answer = sys.stdin.readline()
    return answer.strip().lower() in ("y", "yes")


# -- report -----------------------------------------------------------------------------


def report(args: argparse.Namespace) -> int:
    output = Path(args.output)
    if output.suffix not in (".png", ".html"):
        return _usage_error(f"--output must end in .png or .html: {output}")
    from . import report as pictures

    try:
        pictures.write(Path(args.session), output)
    except ImportError:
        return _error("a PNG report needs matplotlib: pip install 'batchpool[report]'", 1)
    print(f"wrote {output}")
    return 0


# -- wait -------------------------------------------------------------------------------


def wait(args: argparse.Namespace) -> int:
    """``batchpool wait SESSION``: drive a detached map to its end; its session is kept."""
    import multiprocessing

    attached = batchpool.attach(
        args.session, retry_failed=args.retry_failed, keep_work_dir=True, verbose=args.verbose
    )
    try:
        values = attached.get(args.timeout)
    except multiprocessing.TimeoutError:
        return _error(f"the map is not done after {args.timeout} s; wait again later", 3)
    except batchpool.PoolError as error:
        return _error(f"the map failed: {error}", 1)
    except Exception as error:  # a task's own exception: the others are in the session
        return _error(f"a task raised {type(error).__name__}: {error}", 1)
    print(f"{len(values)} results in {attached.session_dir}")
    print(f"read them with batchpool.load({str(attached.session_dir)!r})")
    return 0


def _add_wait(commands: argparse._SubParsersAction) -> None:
    wait_parser = commands.add_parser(
        "wait", help="collect a detached map (batchpool.submit): resubmit what was lost"
    )
    wait_parser.add_argument("session", metavar="SESSION")
    wait_parser.add_argument("--timeout", type=float, help="seconds; default: no limit")
    wait_parser.add_argument("--verbose", "-v", action="store_true", help="every state change")
    wait_parser.add_argument(
        "--retry-failed",
        action="store_true",
        help="run the tasks that raised again (default: report their errors as recorded)",
    )
    wait_parser.set_defaults(run=wait)


# -- config -----------------------------------------------------------------------------


def show_config(args: argparse.Namespace) -> int:
    """``batchpool config``: the options a pool made here would get, and their sources."""
    from batchpool import config

    try:
        found = config.effective(args.backend, {}, args.profile)
    except config.ConfigError as error:
        return _error(str(error), 1)
    print(config.describe(found))
    return 0


def _add_config(commands: argparse._SubParsersAction) -> None:
    config_parser = commands.add_parser(
        "config", help="the backend and options a pool made here gets, and where each came from"
    )
    config_parser.add_argument("--profile", metavar="NAME", help="default: as batchpool.Pool()")
    config_parser.add_argument(
        "--backend", choices=sorted(batchpool.BACKENDS), help="default: as batchpool.Pool()"
    )
    config_parser.set_defaults(run=show_config)


# -- the command ------------------------------------------------------------------------


def _error(message: str, code: int) -> int:
    sys.stderr.write(f"batchpool: error: {message}\n")
    return code


def _usage_error(message: str) -> int:
    return _error(message, 2)


def parser() -> argparse.ArgumentParser:
    main_parser = argparse.ArgumentParser(
        prog="batchpool", description="multiprocessing.Pool's API on Slurm, SGE or this machine."
    )
    main_parser.add_argument("--version", action="version", version=batchpool.__version__)
    commands = main_parser.add_subparsers(dest="command", required=True)
    _add_demo(commands)
    _add_session_commands(commands)
    _add_config(commands)
    _add_wait(commands)
    return main_parser


def _add_demo(commands: argparse._SubParsersAction) -> None:
    demo_parser = commands.add_parser(
        "demo", help="run a small map on this machine, or a few small jobs with --backend"
    )
    demo_parser.add_argument("--tasks", type=int, default=8, help="number of tasks (8)")
    demo_parser.add_argument(
        "--backend",
        choices=sorted(batchpool.BACKENDS),
        help=f"default: local; a cluster gets at most {DEMO_MAX_JOBS} jobs at once, "
        f"each at most {DEMO_TIME} and {DEMO_MEM}",
    )
    demo_parser.add_argument("--work-dir", default=".batchpool", help="default: ./.batchpool")
    demo_parser.add_argument(
        "--polling-interval", type=float, default=1.0, help="seconds between status queries (1)"
    )
    demo_parser.set_defaults(run=demo)


def _add_session_commands(commands: argparse._SubParsersAction) -> None:
    status_parser = commands.add_parser(
        "status", help="the chunks of a session, or the sessions of a work_dir"
    )
    status_parser.add_argument("path", metavar="SESSION_OR_WORK_DIR")
    status_parser.set_defaults(run=status)

    results_parser = commands.add_parser(
        "results",
        help="every task's result, exception or absence: JSON lines on stdout, or a file",
    )
    results_parser.add_argument("session", metavar="SESSION")
    results_parser.add_argument(
        "--output",
        "-o",
        metavar="FILE",
        help="FILE.jsonl, FILE.json or FILE.pkl; default or -: JSON lines on stdout",
    )
    results_parser.add_argument(
        "--inputs", action="store_true", help="add each task's argument (its input)"
    )
    results_parser.set_defaults(run=export_results)

    clean_parser = commands.add_parser(
        "clean", help="remove the finished sessions of a work_dir, and pools whose driver is gone"
    )
    clean_parser.add_argument("work_dir", metavar="WORK_DIR")
    clean_parser.add_argument("--yes", "-y", action="store_true", help="do not ask")
    clean_parser.add_argument(
        "--all", action="store_true", help="remove failed and unfinished sessions too"
    )
    clean_parser.set_defaults(run=clean)

    report_parser = commands.add_parser("report", help="a picture of a map's jobs over time")
    report_parser.add_argument("session", metavar="SESSION")
    report_parser.add_argument(
        "--output", "-o", required=True, metavar="FILE", help="FILE.html, or FILE.png (matplotlib)"
    )
    report_parser.set_defaults(run=report)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.run(args))
    except results.NotASessionError as error:
        return _usage_error(error.message)
    except results.ResultsError as error:
        return _error(str(error), 1)


if __name__ == "__main__":
    sys.exit(main())
