"""Dummy Torque 6 / PBS Pro: ``qsub``, ``qstat`` and ``qdel`` in PBS syntax.

:func:`batchpool.testing.install_dummies` puts them in ``DIRECTORY/pbs/bin`` (as
``qsub qstat qdel``: SGE's dummies of the same names are in ``DIRECTORY/bin``). They speak
Torque 6.1 by default; :meth:`batchpool.testing.DummyCluster.set_pbs_dialect` (the file
``DIRECTORY/pbs.json``) makes them speak PBS Pro / OpenPBS instead.

What they do, by dialect:

- ``qsub [-N NAME] [-o PATH] [-e PATH] [-j oe] [-q QUEUE] [-A ACCOUNT] [-l LIST]... [-h]
  [-V] [-v LIST] [-t RANGE | -J RANGE] [SCRIPT]`` (the script also on stdin) prints
  ``ID.HOST`` (an array: ``ID[].HOST``). Torque takes ``-t 0-3``, ``-t 0-9%2``, ``-t 1,3``;
  PBS Pro ``-J 0-3``, ``-J 0-9:2%2``, and refuses an array of fewer than two subjobs. ``-l``
  takes ``walltime``, ``mem``, ``vmem``, ``ncpus``, ``nodes``, ``select``, ``place``; a
  malformed one, an invalid ``-N`` name and an unknown queue are refused as the real ones
  refuse them. A job without ``-V`` gets a login-like environment (``HOME USER LOGNAME
  SHELL PATH``) plus the ``PBS_*`` variables of its dialect (``PBS_JOBID``, ``PBS_ARRAYID``
  or ``PBS_ARRAY_INDEX``, ``PBS_O_WORKDIR`` ...); it starts in ``$HOME`` (Torque: ``-d``).
- ``qstat [-f] [-x] [-t] [-F json] [-u USER] [--version] [ID...]``. Torque: ``-x`` is XML
  (``<Data><Job>``), ended jobs show ``C`` until they expire (``min_job_age_s``), arrays
  show as one ``ID[]`` summary unless ``-t``. PBS Pro: ``-F json`` with ``-f``, ended jobs
  (``F``, subjobs ``X``) only with ``-x``, ``-t`` adds the subjobs to their parent
  ``ID[]`` (state ``Q``, ``B`` once a subjob began, ``F``). An unknown id: ``qstat: Unknown
  Job Id ID`` on stderr, rc 153.
- ``qdel ID...``: a running job is killed and shows ``E`` in the next ``qstat``, then
  ended; ``ID[]`` deletes a whole array. A job that does not exist: ``qdel: Unknown Job Id
  ID`` (rc 153); one that has ended: PBS Pro ``qdel: Job has finished ID`` (rc 35), Torque
  ``qdel: Request invalid for state of job MSG=invalid state for job - COMPLETE ID``
  (rc 170).

Exit statuses: the job's own exit code; a job whose process group was killed (a ``crash``
fault) ``265`` (256 + SIGKILL), one deleted while it ran ``271`` (256 + SIGTERM, as
``qdel`` sends), one deleted while pending none. Faults (:class:`~batchpool.testing.Fault`):
``error_state`` with ``state="PENDING"`` puts the job in a system hold (``H``,
``Hold_Types = s``, its ``reason`` as ``comment``); with ``state="TIMEOUT"`` or
``"OUT_OF_MEMORY"`` it ends with the dialect's walltime or memory ``JOB_EXEC`` code
(Torque ``-11``/``-10``, PBS Pro ``-29``/``-27``), with any other state with ``-1``.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import os
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from .queue import (
    ClusterPaths,
    Context,
    JobRecord,
    Launch,
    Phase,
    QueueState,
    Scheduler,
    UsageError,
    capture_environment,
    end_job,
    host_name,
    kill_job,
    read_environment,
    user_name,
    write_atomically,
    xml_escape,
)

TORQUE_VERSION = "6.1.3"
PBSPRO_VERSION = "22.05.11"
DEFAULT_QUEUES = ("batch", "workq")
KILLED_BY_QDEL = 256 + 15
KILLED = 256 + 9
LIMIT_CODES = {
    "torque": {"TIMEOUT": -11, "OUT_OF_MEMORY": -10},
    "pbspro": {"TIMEOUT": -29, "OUT_OF_MEMORY": -27},
}
JOB_EXEC_FAIL1 = -1


class DummyDialect(str, enum.Enum):
    TORQUE = "torque"
    PBSPRO = "pbspro"


def dialect_file(paths: ClusterPaths) -> Path:
    return paths.directory / "pbs.json"


def load_dialect(paths: ClusterPaths) -> DummyDialect:
    """The dialect the dummies speak (``pbs.json``; Torque if there is none)."""
    try:
        return DummyDialect(json.loads(dialect_file(paths).read_text())["dialect"])
    except FileNotFoundError:
        return DummyDialect.TORQUE


def save_dialect(paths: ClusterPaths, dialect: str) -> None:
    write_atomically(dialect_file(paths), json.dumps({"dialect": DummyDialect(dialect).value}))


# qsub ---------------------------------------------------------------------------------------

QSUB_FLAGS = frozenset({"-h", "-V", "-I", "-f", "-z"})
QSUB_VALUES = frozenset(
    {"-N", "-o", "-e", "-j", "-q", "-A", "-l", "-t", "-J", "-v", "-d", "-D", "-W", "-S"}
    | {"-m", "-M", "-r", "-p", "-a", "-c", "-k", "-u", "-P", "-w"}
)


@dataclass
class QsubRequest:
    values: dict[str, str] = field(default_factory=dict)
    resources: list[str] = field(default_factory=list)
    flags: set[str] = field(default_factory=set)
    positionals: list[str] = field(default_factory=list)

    def get(self, option: str, default: str = "") -> str:
        return self.values.get(option, default)


def _parse_options(args: Sequence[str], request: QsubRequest) -> None:
    """Options up to the first positional argument (the script)."""
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in QSUB_FLAGS:
            request.flags.add(arg)
        elif arg in QSUB_VALUES:
            if i + 1 >= len(args):
                raise UsageError([f"qsub: option requires an argument -- '{arg[1:]}'"], 2)
            i += 1
            if arg == "-l":
                request.resources += [r for r in args[i].split(",") if r]
            else:
                request.values[arg] = args[i]
        elif arg.startswith("-") and arg != "-":
            raise UsageError([f"qsub: invalid option -- '{arg.lstrip('-')}'"], 2)
        else:
            request.positionals = list(args[i:])
            return
        i += 1


def _directive_words(script: str) -> list[str]:
    words: list[str] = []
    for line in script.splitlines():
        if line.startswith("#PBS"):
            words += line[4:].split()
    return words


@dataclass(frozen=True)
class ArrayRange:
    indices: list[int]
    throttle: Optional[int]
    spec: str


def parse_array_range(text: str, dialect: DummyDialect) -> ArrayRange:
    """Torque ``-t 0-3``, ``0-9%2``, ``1,3,5``; PBS Pro ``-J 0-3``, ``0-9:2%2``."""
    spec, _, throttle_text = text.partition("%")
    indices: list[int] = []
    try:
        throttle = int(throttle_text) if throttle_text else None
        if dialect is DummyDialect.PBSPRO:
            span, _, step = spec.partition(":")
            first, dash, last = span.partition("-")
            indices = list(range(int(first), int(last) + 1, int(step or 1))) if dash else []
        else:
            for part in spec.split(","):
                first, dash, last = part.partition("-")
                indices += list(range(int(first), int(last or first) + 1))
    except ValueError as error:
        raise _illegal("-J" if dialect is DummyDialect.PBSPRO else "-t") from error
    if not indices or min(indices) < 0 or (throttle is not None and throttle < 1):
        raise _illegal("-J" if dialect is DummyDialect.PBSPRO else "-t")
    if dialect is DummyDialect.PBSPRO and len(indices) < 2:
        raise _illegal("-J")
    return ArrayRange(sorted(set(indices)), throttle, text)


def _illegal(option: str) -> UsageError:
    return UsageError([f"qsub: illegal {option} value", _usage()], 2)


def _usage() -> str:
    return "usage: qsub [-a date_time] [-A account_string] [-e path] [-h] [-J X-Y[:Z]] ..."


_SIZE = re.compile(r"\d+([kmgtp]?[bw])?", re.IGNORECASE)
_WALLTIME = re.compile(r"\d+(:\d+){0,2}")


def check_resources(resources: Sequence[str]) -> dict[str, str]:
    """The ``-l`` requests by name; a malformed one is refused (``qsub: illegal -l value``)."""
    values: dict[str, str] = {}
    for item in resources:
        name, eq, value = item.partition("=")
        ok = bool(eq) and bool(value)
        if name in ("walltime", "cput"):
            ok = ok and _WALLTIME.fullmatch(value) is not None
        elif name in ("mem", "vmem", "pmem"):
            ok = ok and _SIZE.fullmatch(value) is not None
        elif name in ("ncpus", "nodect"):
            ok = ok and value.isdigit() and int(value) > 0
        elif name == "select":
            ok = ok and re.fullmatch(r"\d+(:[a-z_]+=[\w.]+)*", value) is not None
        elif name == "nodes":
            ok = ok and re.fullmatch(r"\d+(:ppn=\d+)?(:[\w.=]+)*", value) is not None
        elif name not in ("place", "host", "arch", "software", "naccelerators"):
            ok = False
        if not ok:
            raise UsageError(["qsub: illegal -l value", _usage()], 2)
        values[name] = value
    return values


def _check_name(name: str) -> None:
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_.+-]{0,235}", name):
        raise UsageError(["qsub: illegal -N value", _usage()], 2)


def qsub(args: Sequence[str], context: Context) -> int:
    """``qsub [OPTIONS] [SCRIPT]``: submit a job or an array (module docstring)."""
    dialect = load_dialect(context.paths)
    request = QsubRequest()
    _parse_options(args, request)
    if request.positionals:
        try:
            script = Path(request.positionals[0]).read_text()
        except OSError as error:
            raise UsageError(
                [f"qsub: script file:: No such file or directory {request.positionals[0]}"], 1
            ) from error
        script_path = os.path.abspath(request.positionals[0])
    else:
        script, script_path = context.read_stdin(), ""
    command_line = QsubRequest(request.values, request.resources, request.flags)
    directives = QsubRequest()
    _parse_options(_directive_words(script), directives)
    request = QsubRequest(
        {**directives.values, **command_line.values},
        [*directives.resources, *command_line.resources],
        directives.flags | command_line.flags,
        request.positionals,
    )
    name = request.get("-N") or (os.path.basename(script_path) if script_path else "STDIN")
    _check_name(name)
    queue = request.get("-q", DEFAULT_QUEUES[0]).split("@")[0]
    if queue not in (*DEFAULT_QUEUES, *context.config.partitions):
        raise UsageError(["qsub: submit error (Unknown queue MSG=requested queue not found)"], 168)
    limits = check_resources(request.resources)
    array_option = "-J" if dialect is DummyDialect.PBSPRO else "-t"
    other = "-t" if dialect is DummyDialect.PBSPRO else "-J"
    if request.get(other):
        raise UsageError([f"qsub: invalid option -- '{other[1:]}'", _usage()], 2)
    array = (
        parse_array_range(request.get(array_option), dialect) if request.get(array_option) else None
    )
    job_id = _submit(context, request, name, queue, script, limits, array)
    suffix = "[]" if array is not None else ""
    print(f"{job_id}{suffix}.{host_name()}")
    return 0


def _submit(
    context: Context,
    request: QsubRequest,
    name: str,
    queue: str,
    script: str,
    limits: dict[str, str],
    array: Optional[ArrayRange],
) -> int:
    state, paths = context.state, context.paths
    job_id = state.new_job_id(Scheduler.PBS)
    record_id = state.new_record_id()
    script_file = paths.jobs_dir / f"pbs-script-{job_id}"
    script_file.write_text(script)
    environment = dict(os.environ) if "-V" in request.flags else _login_environment()
    ncpus = limits.get("ncpus") or _ppn(limits.get("nodes", "")) or _select_ncpus(limits)
    base = JobRecord(
        record_id=record_id,
        scheduler=Scheduler.PBS,
        job_id=job_id,
        name=name,
        user=user_name(),
        partition=queue,
        submit_time=time.time(),
        command=[request.get("-S", "/bin/sh"), str(script_file)],
        cwd=os.path.abspath(request.get("-d")) if request.get("-d") else os.path.expanduser("~"),
        env_file=capture_environment(paths, record_id, environment),
        stdout_template=_host_path(request.get("-o")),
        stderr_template=None if request.get("-j") == "oe" else _host_path(request.get("-e")),
        submit_dir=os.getcwd(),
        command_display=str(script_file),
        held="-h" in request.flags,
        time_limit=limits.get("walltime", ""),
        cpus=int(ncpus or 1),
        extra_env=_assignments(request.get("-v")),
    )
    if array is None:
        base.submission = state.new_submission()
        state.jobs.append(base)
        return job_id
    for n, index in enumerate(array.indices):
        state.jobs.append(
            dataclasses.replace(
                base,
                record_id=record_id if n == 0 else state.new_record_id(),
                submission=state.new_submission(),
                array_job_id=job_id,
                array_task_id=index,
                array_throttle=array.throttle,
                array_spec=array.spec,
                extra_env=dict(base.extra_env),
            )
        )
    return job_id


def _ppn(nodes: str) -> str:
    match = re.search(r"ppn=(\d+)", nodes)
    return match.group(1) if match else ""


def _select_ncpus(limits: dict[str, str]) -> str:
    match = re.search(r"ncpus=(\d+)", limits.get("select", ""))
    return match.group(1) if match else ""


def _host_path(path: str) -> str:
    """``host:/path`` -> ``/path`` (the dummy's jobs run on this host)."""
    host, colon, rest = path.partition(":")
    return rest if colon and "/" not in host else path


def _login_environment() -> dict[str, str]:
    env = {name: os.environ[name] for name in ("HOME", "USER", "LOGNAME") if name in os.environ}
    return {**env, "SHELL": "/bin/sh", "PATH": "/usr/local/bin:/bin:/usr/bin"}


def _assignments(text: str) -> dict[str, str]:
    result = {}
    for item in filter(None, text.split(",")):
        name, eq, value = item.partition("=")
        result[name] = value if eq else os.environ.get(name, "")
    return result


# starting a job -----------------------------------------------------------------------------


def full_id(job: JobRecord) -> str:
    """``123.host``, an array element ``123[4].host``."""
    index = f"[{job.array_task_id}]" if job.is_array else ""
    return f"{job.job_id}{index}.{host_name()}"


def prepare_launch(job: JobRecord, state: QueueState) -> Launch:
    """Environment, working directory and output files of a starting job (``state`` is
    the queue's, unused: a PBS job keeps its id when it starts)."""
    dialect = load_dialect(ClusterPaths.from_environment())
    cwd = job.cwd if os.path.isdir(job.cwd) else os.path.expanduser("~")
    stdout = _output_path(job, job.stdout_template, "o", dialect)
    stderr = (
        None
        if job.stderr_template is None
        else _output_path(job, job.stderr_template, "e", dialect)
    )
    missing = [p for p in (stdout, stderr) if p and not os.path.isdir(os.path.dirname(p) or "/")]
    error = f"cannot open {missing[0]}" if missing else ""
    return Launch(job.command, _job_environment(job, dialect), cwd, stdout, stderr, error)


def _output_path(job: JobRecord, template: str, letter: str, dialect: DummyDialect) -> str:
    if template:
        if dialect is DummyDialect.PBSPRO and job.is_array:
            template = template.replace("^array_index^", str(job.array_task_id))
        return os.path.join(job.submit_dir, template)
    index = ""
    if job.is_array:
        index = (
            f".{job.array_task_id}" if dialect is DummyDialect.PBSPRO else f"-{job.array_task_id}"
        )
    return os.path.join(job.submit_dir, f"{job.name}.{letter}{job.job_id}{index}")


def _job_environment(job: JobRecord, dialect: DummyDialect) -> dict[str, str]:
    captured = read_environment(job)
    env = dict(captured)
    env.update(
        {
            "PBS_JOBID": full_id(job),
            "PBS_JOBNAME": job.name,
            "PBS_QUEUE": job.partition,
            "PBS_ENVIRONMENT": "PBS_BATCH",
            "PBS_O_WORKDIR": job.submit_dir,
            "PBS_O_HOME": captured.get("HOME", ""),
            "PBS_O_PATH": captured.get("PATH", ""),
            "PBS_O_SHELL": captured.get("SHELL", ""),
            "PBS_O_LOGNAME": job.user,
            "PBS_O_HOST": host_name(),
            "PBS_O_QUEUE": job.partition,
            "PBS_JOBDIR": captured.get("HOME", ""),
            "PBS_NCPUS" if dialect is DummyDialect.PBSPRO else "PBS_NUM_PPN": str(job.cpus),
        }
    )
    if job.is_array:
        name = "PBS_ARRAY_INDEX" if dialect is DummyDialect.PBSPRO else "PBS_ARRAYID"
        env[name] = str(job.array_task_id)
        if dialect is DummyDialect.PBSPRO:
            env["PBS_ARRAY_ID"] = f"{job.job_id}[].{host_name()}"
    return env


# qstat --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class QstatOptions:
    full: bool = False
    xml: bool = False
    json: bool = False
    expand: bool = False
    history: bool = False
    users: Optional[frozenset[str]] = None
    ids: tuple[str, ...] = ()


def _qstat_options(args: Sequence[str], dialect: DummyDialect) -> QstatOptions:
    flags: set[str] = set()
    users: Optional[frozenset[str]] = None
    ids: list[str] = []
    fmt = ""
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in ("-u", "-F") and i + 1 < len(args):
            i += 1
            if arg == "-u":
                users = frozenset(args[i].split(","))
            else:
                fmt = args[i]
        elif re.fullmatch(r"-[fxtanr1]+", arg):
            flags.update(arg[1:])
        elif arg.startswith("-"):
            raise UsageError(
                [f"qstat: invalid option -- '{arg.lstrip('-')}'", "usage: qstat ..."], 2
            )
        else:
            ids.append(arg)
        i += 1
    if fmt and (dialect is not DummyDialect.PBSPRO or fmt not in ("json", "dsv")):
        raise UsageError(["qstat: invalid option -- 'F'"], 2)
    if fmt and "f" not in flags:
        raise UsageError(["qstat: -F requires -f"], 2)
    xml = dialect is DummyDialect.TORQUE and "x" in flags
    history = dialect is DummyDialect.PBSPRO and "x" in flags
    return QstatOptions(
        full="f" in flags or xml,
        xml=xml,
        json=fmt == "json",
        expand="t" in flags,
        history=history,
        users=users,
        ids=tuple(ids),
    )


@dataclass(frozen=True)
class Entry:
    """One job as ``qstat`` shows it: a job, an array element, or an array's summary."""

    job_id: str
    job: JobRecord
    state: str
    hold_types: str = "n"
    exit_status: Optional[int] = None
    comment: str = ""
    array_request: str = ""
    array_index: Optional[int] = None


def qstat(args: Sequence[str], context: Context) -> int:
    """``qstat [-f] [-x] [-t] [-F json] [-u USER] [--version] [ID...]``."""
    dialect = load_dialect(context.paths)
    if list(args) == ["--version"]:
        if dialect is DummyDialect.PBSPRO:
            print(f"pbs_version = {PBSPRO_VERSION}")
        else:
            print(f"Version: {TORQUE_VERSION}\nCommit: 0000000000000000000000000000000000000000")
        return 0
    options = _qstat_options(args, dialect)
    jobs = context.state.of(Scheduler.PBS)
    _finish_deleted(jobs)
    entries = _entries(jobs, dialect, options)
    entries, unknown = _select(entries, jobs, dialect, options)
    if options.users is not None:
        entries = [e for e in entries if e.job.user in options.users]
    if options.json:
        print(_json(entries, dialect))
    elif options.xml:
        if entries:
            print(_xml(entries, dialect))
    elif options.full:
        print(_text(entries, dialect), end="")
    else:
        print(_table(entries), end="")
    for job_id in unknown:
        print(f"qstat: Unknown Job Id {job_id}", file=sys.stderr)
    _mark_shown(jobs)
    return 153 if unknown else 0


def _finish_deleted(jobs: Sequence[JobRecord]) -> None:
    """A job deleted while running shows ``E`` in one ``qstat``, then it has ended."""
    now = time.time()
    for job in jobs:
        if job.deleting and job.reason == "shown":
            end_job(job, "CANCELLED", None, now)


def _mark_shown(jobs: Sequence[JobRecord]) -> None:
    for job in jobs:
        if job.deleting:
            job.reason = "shown"


def _entry(job: JobRecord, dialect: DummyDialect) -> Entry:
    index = job.array_task_id if job.is_array else None
    if job.phase is Phase.ERROR:
        return Entry(full_id(job), job, "H", "s", comment=job.reason, array_index=index)
    if job.phase is Phase.PENDING:
        return Entry(
            full_id(job), job, "H" if job.held else "Q", "u" if job.held else "n", array_index=index
        )
    if job.phase is Phase.RUNNING:
        return Entry(full_id(job), job, "E" if job.deleting else "R", array_index=index)
    ended = "C" if dialect is DummyDialect.TORQUE else ("X" if job.is_array else "F")
    return Entry(full_id(job), job, ended, exit_status=exit_status(job, dialect), array_index=index)


def exit_status(job: JobRecord, dialect: DummyDialect) -> Optional[int]:
    """The ``exit_status`` of an ended job (module docstring)."""
    started = job.pid is not None
    if job.end_state == "CANCELLED":
        return KILLED_BY_QDEL if started else None
    if job.end_state in ("COMPLETED", "FAILED"):
        if job.exit_code is None:
            return None
        return KILLED if job.exit_code == 128 + 9 and started else job.exit_code
    return LIMIT_CODES[dialect.value].get(job.end_state, JOB_EXEC_FAIL1)


def _entries(
    jobs: Sequence[JobRecord], dialect: DummyDialect, options: QstatOptions
) -> list[Entry]:
    entries: list[Entry] = []
    arrays: dict[int, list[JobRecord]] = {}
    for job in sorted(jobs, key=lambda j: j.record_id):
        if job.is_array:
            arrays.setdefault(job.job_id, []).append(job)
            if options.expand:
                entries.append(_entry(job, dialect))
        else:
            entries.append(_entry(job, dialect))
    for job_id, elements in arrays.items():
        summary = _summary(job_id, elements, dialect)
        if dialect is DummyDialect.PBSPRO or not options.expand:
            entries.append(summary)
    if dialect is DummyDialect.PBSPRO and not options.history:
        entries = [e for e in entries if e.state not in ("F", "X")]
    return entries


def _summary(job_id: int, elements: Sequence[JobRecord], dialect: DummyDialect) -> Entry:
    phases = {e.phase for e in elements}
    first = elements[0]
    if phases == {Phase.ENDED}:
        state = "C" if dialect is DummyDialect.TORQUE else "F"
    elif Phase.RUNNING in phases or (Phase.ENDED in phases and dialect is DummyDialect.PBSPRO):
        state = "B" if dialect is DummyDialect.PBSPRO else "R"
    else:
        state = "Q"
    return Entry(f"{job_id}[].{host_name()}", first, state, array_request=first.array_spec)


def _key(text: str) -> str:
    match = re.match(r"\d+(\[\d*\])?", text)
    return match.group(0) if match else text


def _select(
    entries: list[Entry], jobs: Sequence[JobRecord], dialect: DummyDialect, options: QstatOptions
) -> tuple[list[Entry], list[str]]:
    """The entries ``options.ids`` ask for (all without ids), and the ids nothing matches."""
    if not options.ids:
        return entries, []
    chosen: list[Entry] = []
    unknown: list[str] = []
    for job_id in options.ids:
        key = _key(job_id)
        found = [e for e in entries if _key(e.job_id) == key]
        if not found and key.endswith("]") and not key.endswith("[]"):
            found = [
                _entry(j, dialect) for j in jobs if _key(full_id(j)) == key
            ]  # an element asked for by its id, without -t
        if not found:
            unknown.append(job_id)
        chosen += found
    return chosen, unknown


def _attributes(entry: Entry, dialect: DummyDialect) -> list[tuple[str, object]]:
    job = entry.job
    host = host_name()
    name = job.name
    if dialect is DummyDialect.TORQUE and entry.array_index is not None:
        name = f"{job.name}-{entry.array_index}"
    attributes: list[tuple[str, object]] = [
        ("Job_Name", name),
        ("Job_Owner", f"{job.user}@{host}"),
        ("job_state", entry.state),
        ("queue", job.partition),
        ("server", host),
        ("ctime", _ctime(job.submit_time)),
        ("Error_Path", f"{host}:{_shown_path(job, entry, 'e', dialect)}"),
    ]
    if (
        job.start_time is not None
        and job.pid is not None
        and not entry.job_id.endswith("[]." + host)
    ):
        attributes.append(("exec_host", f"{host}/0"))
    attributes += [
        ("Hold_Types", entry.hold_types),
        ("Join_Path", "n" if job.stderr_template is not None else "oe"),
        ("Output_Path", f"{host}:{_shown_path(job, entry, 'o', dialect)}"),
        ("qtime", _ctime(job.submit_time)),
        ("Resource_List.walltime", job.time_limit or "01:00:00"),
        ("Resource_List.ncpus", job.cpus),
    ]
    if entry.comment:
        attributes.append(("comment", entry.comment))
    if entry.exit_status is not None:
        key = "exit_status" if dialect is DummyDialect.TORQUE else "Exit_status"
        attributes.append((key, entry.exit_status))
    if entry.array_request:
        key = "job_array_request" if dialect is DummyDialect.TORQUE else "array_indices_submitted"
        attributes += [("array", "True")] if dialect is DummyDialect.PBSPRO else []
        attributes.append((key, entry.array_request))
    if entry.array_index is not None:
        key = "job_array_id" if dialect is DummyDialect.TORQUE else "array_index"
        attributes.append((key, entry.array_index))
    return attributes


def _shown_path(job: JobRecord, entry: Entry, letter: str, dialect: DummyDialect) -> str:
    """The output path ``qstat`` shows: the ``-o``/``-e`` one, else the default name."""
    template = job.stdout_template if letter == "o" else job.stderr_template
    if letter == "e" and template is None:
        template = job.stdout_template
    if entry.array_index is None and job.is_array:
        return os.path.join(job.submit_dir, template or f"{job.name}.{letter}{job.job_id}")
    return _output_path(job, template or "", letter, dialect)


def _ctime(timestamp: float) -> str:
    return time.strftime("%a %b %d %H:%M:%S %Y", time.localtime(timestamp))


def _text(entries: Sequence[Entry], dialect: DummyDialect) -> str:
    lines = []
    for entry in entries:
        lines.append(f"Job Id: {entry.job_id}")
        lines += [f"    {key} = {value}" for key, value in _attributes(entry, dialect)]
        lines.append("")
    return "\n".join(lines) + ("\n" if lines else "")


def _xml(entries: Sequence[Entry], dialect: DummyDialect) -> str:
    jobs = []
    for entry in entries:
        parts = [f"<Job_Id>{xml_escape(entry.job_id)}</Job_Id>"]
        resources = []
        for key, value in _attributes(entry, dialect):
            if key.startswith("Resource_List."):
                tag = key.split(".", 1)[1]
                resources.append(f"<{tag}>{xml_escape(str(value))}</{tag}>")
            else:
                parts.append(f"<{key}>{xml_escape(str(value))}</{key}>")
        parts.append(f"<Resource_List>{''.join(resources)}</Resource_List>")
        jobs.append(f"<Job>{''.join(parts)}</Job>")
    return '<?xml version="1.0"?>\n<Data>' + "".join(jobs) + "</Data>"


def _json(entries: Sequence[Entry], dialect: DummyDialect) -> str:
    data: dict[str, object] = {
        "timestamp": int(time.time()),
        "pbs_version": PBSPRO_VERSION,
        "pbs_server": host_name(),
    }
    jobs: dict[str, object] = {}
    for entry in entries:
        fields: dict[str, object] = {}
        resources: dict[str, object] = {}
        for key, value in _attributes(entry, dialect):
            if key.startswith("Resource_List."):
                resources[key.split(".", 1)[1]] = value
            else:
                fields[key] = value
        fields["Resource_List"] = resources
        jobs[entry.job_id] = fields
    if jobs:
        data["Jobs"] = jobs
    return json.dumps(data, indent=4)


def _table(entries: Sequence[Entry]) -> str:
    if not entries:
        return ""
    lines = [
        "Job ID                    Name             User            Time Use S Queue",
        "------------------------- ---------------- --------------- -------- - -----",
    ]
    for entry in entries:
        job = entry.job
        lines.append(
            f"{entry.job_id[:25]:<25} {job.name[:16]:<16} {job.user[:15]:<15} "
            f"{'00:00:00':>8} {entry.state} {job.partition}"
        )
    return "\n".join(lines) + "\n"


# qdel ---------------------------------------------------------------------------------------


def qdel(args: Sequence[str], context: Context) -> int:
    """``qdel ID...``: delete jobs, array elements, or whole arrays (``ID[]``)."""
    dialect = load_dialect(context.paths)
    ids = [a for a in args if not a.startswith("-")]
    if not ids:
        raise UsageError(
            ["usage: qdel [-W delay|force|suppress_email=X] [-x] job_identifier..."], 2
        )
    jobs = context.state.of(Scheduler.PBS)
    returncode = 0
    now = time.time()
    for job_id in ids:
        key = _key(job_id)
        targets = [j for j in jobs if _matches(key, j)]
        if not targets:
            print(f"qdel: Unknown Job Id {job_id}", file=sys.stderr)
            returncode = 153
            continue
        live = [j for j in targets if j.phase is not Phase.ENDED]
        if not live:
            returncode = _finished(job_id, dialect)
        for job in live:
            _delete(job, now)
    return returncode


def _matches(key: str, job: JobRecord) -> bool:
    if key.endswith("[]"):
        return job.is_array and f"{job.job_id}[]" == key
    return _key(full_id(job)) == key


def _finished(job_id: str, dialect: DummyDialect) -> int:
    if dialect is DummyDialect.PBSPRO:
        print(f"qdel: Job has finished {job_id}", file=sys.stderr)
        return 35
    print(
        f"qdel: Request invalid for state of job MSG=invalid state for job - COMPLETE {job_id}",
        file=sys.stderr,
    )
    return 170


def _delete(job: JobRecord, now: float) -> None:
    if job.phase is Phase.RUNNING:
        kill_job(job)
        job.deleting = True
        job.end_time = now
        return
    end_job(job, "CANCELLED", None, now)
