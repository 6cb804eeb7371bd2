"""Dummy Grid Engine 8.1.9: ``qsub``, ``qstat`` and ``qdel``.

Choices where the real program could not be checked:

- Without ``-V`` a job gets only a login-like environment (``HOME``, ``USER``,
  ``LOGNAME``, ``SHELL`` and SGE's minimal ``PATH``) plus SGE's own variables, as
  the real one; ``-V`` exports the submitter's whole environment.
- An invalid ``-N`` name is refused with
  ``Unable to run job: denied: "1abc" is not a valid object name (cannot start with a digit)``
  (or ``(character "/" not allowed)``), then ``Exiting.``, rc 1.
- ``qdel`` prints all its messages, the ``denied:`` ones too, on stdout.
- A job shows ``t`` in the ``qstat`` call in which it started, ``r`` afterwards.
- ``qstat -j`` prints a few lines per job (``job_number``, ``owner``, ``job_name``,
  ``cwd``, the ``error reason`` of an ``Eqw`` job), in the real layout.
- :func:`qacct` (``qacct -j ID|NAME``) knows the ended jobs the dummy still keeps
  (``min_job_age_s``), not every job ever: ``failed 0`` with the exit code, ``failed
  100`` and ``exit_status`` 128+N for a job killed by signal N (a crash fault, a
  ``qdel`` of a running job), ``failed 28``/``26`` for a job whose launch failed
  (``Eqw``), no record for a job deleted while pending. It enforces no limit, so never
  ``failed 37``; its ``category`` is ``NONE``.
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from .queue import (
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
    xml_escape,
)

XML_HEADER = (
    "<?xml version='1.0'?>\n"
    '<job_info  xmlns:xsd="http://arc.liv.ac.uk/repos/darcs/sge/source/dist/util/resources/'
    'schemas/qstat/qstat.xsd">'
)
DEFAULT_QUEUE = "all.q"
BAD_NAME_CHARACTERS = "/:@\\*?"

QSUB_FLAGS = frozenset({"-cwd", "-V", "-terse", "-h", "-notify", "-sync"})
QSUB_VALUES = frozenset(
    {
        "-N",
        "-o",
        "-e",
        "-j",
        "-b",
        "-S",
        "-wd",
        "-v",
        "-q",
        "-l",
        "-now",
        "-r",
        "-shell",
        "-p",
        "-t",
        "-tc",
        "-P",
        "-A",
        "-M",
        "-m",
        "-hold_jid",
        "-a",
        "-js",
        "-@",
        "-C",
        "-R",
        "-ac",
        "-ckpt",
        "-c",
        "-i",
        "-dl",
        "-masterq",
        "-binding",
        "-jc",
        "-soft",
        "-hard",
    }
)


@dataclass(frozen=True)
class QsubRequest:
    """One ``qsub`` call: options (from ``#$`` lines and the command line) and its command."""

    values: dict[str, str]
    """Last value of each option taking one value (``-l`` and ``-v`` joined by commas)."""
    flags: frozenset[str]
    positionals: list[str]

    def get(self, option: str, default: str = "") -> str:
        return self.values.get(option, default)

    def yes(self, option: str) -> bool:
        return self.values.get(option, "n").lower() in ("y", "yes", "true")


def parse_qsub_options(
    args: Sequence[str], values: Optional[dict[str, str]] = None
) -> tuple[dict[str, str], set[str], list[str]]:
    """Options up to the first positional argument (the script or, with ``-b y``, command)."""
    values = dict(values or {})
    flags: set[str] = set()
    for i, arg in enumerate(args):
        if arg in QSUB_FLAGS:
            flags.add(arg)
        elif arg == "-pe":
            continue
        elif args[i - 1 : i] == ["-pe"] or (i >= 2 and args[i - 2] == "-pe"):
            values["-pe"] = (values.get("-pe", "") + " " + arg).strip()
        elif arg in QSUB_VALUES:
            continue
        elif i > 0 and args[i - 1] in QSUB_VALUES:
            option = args[i - 1]
            joined = option in ("-l", "-v") and option in values
            values[option] = f"{values[option]},{arg}" if joined else arg
        elif arg.startswith("-"):
            raise UsageError([f"Unknown option {arg}"])
        else:
            return values, flags, list(args[i:])
    if args and args[-1] in QSUB_VALUES:
        raise UsageError([f"ERROR! {args[-1]} option must have argument"])
    return values, flags, []


def qsub(args: Sequence[str], context: Context) -> int:
    """``qsub [OPTIONS] [SCRIPT [ARGS...]]``, the script also from stdin."""
    request, script, script_path = _qsub_request(args, context.read_stdin)
    name = request.get("-N") or _default_name(request, script_path)
    _check_name(name)
    queue = request.get("-q", DEFAULT_QUEUE).split("@")[0]
    if queue not in (DEFAULT_QUEUE, *context.config.partitions):
        _reject(f'Job was rejected because job requests unknown queue "{queue}".')
    tasks = parse_task_range(request.get("-t")) if request.get("-t") else None
    job_id = _submit(context, request, name, queue, script, script_path, tasks)
    print(_submitted_message(job_id, name, tasks, "-terse" in request.flags))
    return 0


def _qsub_request(
    args: Sequence[str], read_stdin: Callable[[], str]
) -> tuple[QsubRequest, str, str]:
    values, flags, positionals = parse_qsub_options(args)
    binary = values.get("-b", "n").lower() in ("y", "yes")
    if binary:
        if not positionals:
            raise UsageError(["qsub: command required for a binary job"])
        return QsubRequest(values, frozenset(flags), positionals), "", positionals[0]
    if positionals:
        try:
            script = Path(positionals[0]).read_text()
        except OSError as error:
            _reject(
                f"Unable to read script file because of error: error opening "
                f"{positionals[0]}: No such file or directory",
                error,
            )
        script_path = os.path.abspath(positionals[0])
    else:
        script, script_path = read_stdin(), ""
    directive_values, directive_flags, _ = parse_qsub_options(_directive_words(script))
    values = {**directive_values, **values}
    flags |= directive_flags
    return QsubRequest(values, frozenset(flags), positionals), script, script_path


def _directive_words(script: str) -> list[str]:
    words: list[str] = []
    for line in script.splitlines():
        if line.startswith("#$"):
            words += line[2:].split()
    return words


def _reject(message: str, cause: Optional[BaseException] = None) -> None:
    raise UsageError([f"Unable to run job: {message}", "Exiting."]) from cause


def _default_name(request: QsubRequest, script_path: str) -> str:
    return os.path.basename(script_path) if script_path else "STDIN"


def _check_name(name: str) -> None:
    if name[:1].isdigit():
        _reject(f'denied: "{name}" is not a valid object name (cannot start with a digit)')
    bad = [c for c in name if c in BAD_NAME_CHARACTERS]
    if bad:
        _reject(f'denied: "{name}" is not a valid object name (character "{bad[0]}" not allowed)')


@dataclass(frozen=True)
class TaskRange:
    first: int
    last: int
    step: int

    @property
    def indices(self) -> list[int]:
        return list(range(self.first, self.last + 1, self.step))

    def __str__(self) -> str:
        return f"{self.first}-{self.last}:{self.step}"


def parse_task_range(text: str) -> TaskRange:
    """``-t 1-10:2``, ``-t 5``."""
    span, _, step = text.partition(":")
    first, _, last = span.partition("-")
    try:
        task_range = TaskRange(int(first), int(last or first), int(step or 1))
    except ValueError as error:
        raise UsageError([f'ERROR! -t option argument "{text}" is invalid']) from error
    if task_range.first < 1 or task_range.last < task_range.first or task_range.step < 1:
        raise UsageError([f'ERROR! -t option argument "{text}" is invalid'])
    return task_range


def _submitted_message(job_id: int, name: str, tasks: Optional[TaskRange], terse: bool) -> str:
    if tasks is None:
        return str(job_id) if terse else f'Your job {job_id} ("{name}") has been submitted'
    if terse:
        return f"{job_id}.{tasks}"
    return f'Your job-array {job_id}.{tasks} ("{name}") has been submitted'


def _submit(context, request, name, queue, script, script_path, tasks) -> int:
    state, paths = context.state, context.paths
    job_id = state.new_job_id(Scheduler.SGE)
    record_id = state.new_record_id()
    command = _command(request, script, paths.jobs_dir / f"sge-script-{job_id}")
    base = dict(
        scheduler=Scheduler.SGE,
        job_id=job_id,
        name=name,
        user=user_name(),
        partition=queue,
        submit_time=time.time(),
        command=command,
        cwd=_working_dir(request),
        env_file=capture_environment(
            paths, record_id, os.environ if "-V" in request.flags else _login_environment()
        ),
        stdout_template=request.get("-o"),
        stderr_template=None if request.yes("-j") else request.get("-e"),
        submit_dir=os.getcwd(),
        command_display=script_path,
        held="-h" in request.flags,
        extra_env=_assignments(request.get("-v")),
    )
    if tasks is None:
        state.jobs.append(JobRecord(record_id=record_id, submission=state.new_submission(), **base))
        return job_id
    for n, index in enumerate(tasks.indices):
        state.jobs.append(
            JobRecord(
                record_id=record_id if n == 0 else state.new_record_id(),
                submission=state.new_submission(),
                array_job_id=job_id,
                array_task_id=index,
                array_throttle=int(request.get("-tc")) if request.get("-tc") else None,
                array_spec=str(tasks),
                **base,
            )
        )
    return job_id


def _command(request: QsubRequest, script: str, script_file: Path) -> list[str]:
    """What the job runs: the command itself (``-b y``) or the shell with the script."""
    if request.yes("-b"):
        return list(request.positionals)
    script_file.write_text(script)
    shell = request.get("-S", "/bin/sh")
    return [shell, str(script_file), *request.positionals[1:]]


def _working_dir(request: QsubRequest) -> str:
    if request.get("-wd"):
        return os.path.abspath(request.get("-wd"))
    if "-cwd" in request.flags:
        return os.getcwd()
    return os.path.expanduser("~")


def _login_environment() -> dict[str, str]:
    """What a job without ``-V`` starts with (real SGE: the shepherd's minimal set)."""
    env = {name: os.environ[name] for name in ("HOME", "USER", "LOGNAME") if name in os.environ}
    return {**env, "SHELL": "/bin/sh", "PATH": "/usr/local/bin:/bin:/usr/bin"}


def _assignments(text: str) -> dict[str, str]:
    result = {}
    for item in filter(None, text.split(",")):
        name, eq, value = item.partition("=")
        result[name] = value if eq else os.environ.get(name, "")
    return result


# starting a job -----------------------------------------------------------------------------


def prepare_launch(job: JobRecord, state: QueueState) -> Launch:
    """Environment and paths of a starting job; an error (``Eqw``) for missing directories."""
    task = str(job.array_task_id) if job.is_array else "undefined"
    stdout = _output_path(job.stdout_template, job, "o", task)
    stderr = (
        None if job.stderr_template is None else _output_path(job.stderr_template, job, "e", task)
    )
    error = ""
    if not os.path.isdir(job.cwd):
        error = f"error: can't chdir to {job.cwd}: No such file or directory"
    for path in (stdout, stderr):
        if path and not os.path.isdir(os.path.dirname(path)):
            error = f'can\'t open output file "{path}": No such file or directory'
    env = _job_environment(job, task, stdout, stderr or stdout)
    return Launch(job.command, env, job.cwd, stdout, stderr, error)


def _output_path(template: str, job: JobRecord, letter: str, task: str) -> str:
    default = f"{job.name}.{letter}{job.job_id}" + (f".{task}" if job.is_array else "")
    if not template:
        return os.path.join(job.cwd, default)
    path = os.path.join(job.cwd, _expand(template, job, task))
    return os.path.join(path, default) if os.path.isdir(path) else path


def _expand(template: str, job: JobRecord, task: str) -> str:
    values = {
        "$JOB_ID": str(job.job_id),
        "$JOB_NAME": job.name,
        "$TASK_ID": task,
        "$HOME": os.path.expanduser("~"),
        "$USER": job.user,
        "$HOSTNAME": host_name(),
    }
    for name in sorted(values, key=len, reverse=True):
        template = template.replace(name, values[name])
    return template


def _job_environment(job: JobRecord, task: str, stdout: str, stderr: str) -> dict[str, str]:
    captured = read_environment(job)
    tmpdir = Path(job.env_file).parent / f"tmp-{job.record_id}"
    tmpdir.mkdir(exist_ok=True)
    first, last, step = ("undefined",) * 3
    if job.is_array:
        span, _, step = job.array_spec.partition(":")
        first, _, last = span.partition("-")
    env = dict(captured)
    env.update(
        {
            "JOB_ID": str(job.job_id),
            "JOB_NAME": job.name,
            "JOB_SCRIPT": job.command[1] if len(job.command) > 1 else job.command[0],
            "SGE_TASK_ID": task,
            "SGE_TASK_FIRST": first,
            "SGE_TASK_LAST": last,
            "SGE_TASK_STEPSIZE": step,
            "SGE_O_WORKDIR": job.submit_dir,
            "SGE_O_HOME": captured.get("HOME", ""),
            "SGE_O_PATH": captured.get("PATH", ""),
            "SGE_O_SHELL": captured.get("SHELL", ""),
            "SGE_O_LOGNAME": job.user,
            "SGE_O_HOST": host_name(),
            "SGE_CELL": "default",
            "SGE_STDOUT_PATH": stdout,
            "SGE_STDERR_PATH": stderr,
            "TMPDIR": str(tmpdir),
            "TMP": str(tmpdir),
            "NSLOTS": "1",
            "NHOSTS": "1",
            "NQUEUES": "1",
            "QUEUE": job.partition,
            "HOSTNAME": host_name(),
            "ENVIRONMENT": "BATCH",
            "REQUEST": job.name,
            "RESTARTED": "0",
        }
    )
    return env


# qstat --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Listing:
    """One ``job_list`` entry: a job, a task, or the pending tasks of an array."""

    job: JobRecord
    tasks: str = ""

    @property
    def state(self) -> str:
        job = self.job
        if job.phase is Phase.ERROR:
            return "Eqw"
        if job.phase is Phase.PENDING:
            return "hqw" if job.held else "qw"
        if job.deleting:
            return "dr"
        return "t" if job.started_in_call else "r"

    @property
    def running(self) -> bool:
        return self.job.phase is Phase.RUNNING


def qstat(args: Sequence[str], context: Context) -> int:
    """``qstat [-xml] [-u USER|"*"] [-j ID]``."""
    users, xml, job_ids = _qstat_options(args)
    jobs = [j for j in context.state.of(Scheduler.SGE) if j.phase is not Phase.ENDED]
    if job_ids is not None:
        return _qstat_jobs(job_ids, jobs)
    jobs = [j for j in jobs if users is None or j.user in users]
    listings = _listings(jobs)
    print(_xml(listings) if xml else _table(listings), end="")
    now = time.time()
    for job in jobs:
        if job.deleting:
            end_job(job, "CANCELLED", None, now)
    return 0


def _qstat_options(args: Sequence[str]) -> tuple[Optional[set[str]], bool, Optional[list[str]]]:
    users: Optional[set[str]] = {user_name()}
    xml = False
    job_ids = None
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "-xml":
            xml = True
        elif arg in ("-u", "-j", "-s", "-q", "-l") and i + 1 < len(args):
            i += 1
            if arg == "-u":
                names = set(args[i].split(","))
                users = None if "*" in names else names
            elif arg == "-j":
                job_ids = args[i].split(",")
        elif arg not in ("-f", "-r", "-t", "-ext", "-g", "-pri", "-urg"):
            raise UsageError([f'error: ERROR! invalid option argument "{arg}"'])
        i += 1
    return users, xml, job_ids


def _listings(jobs: Sequence[JobRecord]) -> list[Listing]:
    listings: list[Listing] = []
    pending: dict[tuple[int, str], list[JobRecord]] = {}
    for job in sorted(jobs, key=lambda j: j.record_id):
        if job.is_array and job.phase is not Phase.RUNNING:
            pending.setdefault((job.job_id, Listing(job).state), []).append(job)
        else:
            tasks = str(job.array_task_id) if job.is_array else ""
            listings.append(Listing(job, tasks))
    for elements in pending.values():
        indices = [e.array_task_id for e in elements if e.array_task_id is not None]
        listings.append(Listing(elements[0], _task_ranges(indices)))
    return listings


def _task_ranges(indices: list[int]) -> str:
    """``[1, 2, 3, 7]`` -> ``1-3:1,7``."""
    parts, start = [], 0
    for k in range(1, len(indices) + 1):
        if k == len(indices) or indices[k] != indices[k - 1] + 1:
            first, last = indices[start], indices[k - 1]
            parts.append(str(first) if first == last else f"{first}-{last}:1")
            start = k
    return ",".join(parts)


def _xml(listings: Sequence[Listing]) -> str:
    running = [x for x in listings if x.running]
    waiting = sorted((x for x in listings if not x.running), key=lambda x: x.job.record_id)
    lines = [XML_HEADER, "  <queue_info>"]
    lines += [line for x in running for line in _xml_entry(x)]
    lines += ["  </queue_info>", "  <job_info>"]
    lines += [line for x in waiting for line in _xml_entry(x)]
    lines += ["  </job_info>", "</job_info>"]
    return "\n".join(lines) + "\n"


def _xml_entry(listing: Listing) -> list[str]:
    job = listing.job
    prio = "0.00000" if job.held else "0.25000"
    if listing.running:
        when = f"      <JAT_start_time>{_iso(job.start_time)}</JAT_start_time>"
        queue = f"{job.partition}@{host_name()}"
    else:
        when = f"      <JB_submission_time>{_iso(job.submit_time)}</JB_submission_time>"
        queue = ""
    lines = [
        f'    <job_list state="{"running" if listing.running else "pending"}">',
        f"      <JB_job_number>{job.job_id}</JB_job_number>",
        f"      <JAT_prio>{prio}</JAT_prio>",
        f"      <JB_name>{xml_escape(job.name)}</JB_name>",
        f"      <JB_owner>{xml_escape(job.user)}</JB_owner>",
        f"      <state>{listing.state}</state>",
        when,
        f"      <queue_name>{queue}</queue_name>",
        "      <slots>1</slots>",
    ]
    if listing.tasks:
        lines.append(f"      <tasks>{listing.tasks}</tasks>")
    return [*lines, "    </job_list>"]


def _iso(timestamp: Optional[float]) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(timestamp or 0))


def _table(listings: Sequence[Listing]) -> str:
    if not listings:
        return ""
    header = (
        "job-ID  prior   name       user         state submit/start at     "
        "queue                          slots ja-task-ID "
    )
    lines = [header, "-" * 113]
    for x in sorted(listings, key=lambda x: (not x.running, x.job.record_id)):
        job = x.job
        when = job.start_time if x.running else job.submit_time
        queue = f"{job.partition}@{host_name()}" if x.running else ""
        stamp = time.strftime("%m/%d/%Y %H:%M:%S", time.localtime(when or 0))
        prio = "0.00000" if job.held else "0.25000"
        lines.append(
            f"{job.job_id:>7} {prio} {job.name[:10]:<10} {job.user[:12]:<12} {x.state:<5} "
            f"{stamp} {queue:<30} {1:>5} {x.tasks}"
        )
    return "\n".join(lines) + "\n"


def _qstat_jobs(job_ids: Sequence[str], jobs: Sequence[JobRecord]) -> int:
    """``qstat -j ID[,ID...]``: jobs not in the queue are left out; if none is, rc 1."""
    found = [j for j in jobs if str(j.job_id) in job_ids]
    if not found:
        print("Following jobs do not exist: ", file=sys.stderr)
        print(", ".join(job_ids), file=sys.stderr)
        return 1
    for job in found:
        print("=" * 62)
        print(f"job_number:                 {job.job_id}")
        print(f"owner:                      {job.user}")
        print(f"cwd:                        {job.cwd}")
        print(f"job_name:                   {job.name}")
        if job.phase is Phase.ERROR:
            task = job.array_task_id or 1
            print(f"error reason    {task:>6}:      {job.reason}")
            print("scheduling info:            Job is in error state")
    return 0


# qacct --------------------------------------------------------------------------------------

QACCT_SEPARATOR = "=" * 62
FAILED_TEXT = {
    0: "0    ",
    26: "26  : opening input/output file",
    28: "28  : changing into working directory",
    100: "100 : assumedly after job",
}


def qacct(args: Sequence[str], context: Context) -> int:
    """``qacct -j ID|NAME``: the accounting records of the jobs the dummy remembers
    (module docstring); a name is an ``fnmatch`` pattern with ``\\`` escapes."""
    if len(args) != 2 or args[0] != "-j":
        raise UsageError(["usage: qacct -j job_id|job_name"])
    wanted = args[1]
    by_id = wanted.isdigit()
    pattern = _fnmatch_regex(wanted)
    records = [
        record
        for job in sorted(context.state.of(Scheduler.SGE), key=lambda j: j.record_id)
        if (str(job.job_id) == wanted if by_id else pattern.fullmatch(job.name) is not None)
        and (record := _acct_record(job)) is not None
    ]
    if not records:
        print(f"error: job {'id' if by_id else 'name'} {wanted} not found", file=sys.stderr)
        return 1
    print("\n".join(records))
    return 0


def _acct_record(job: JobRecord) -> Optional[str]:
    """A job's ``qacct -j`` record, None if the real qacct would not know it."""
    if job.start_time is None:
        return None  # never dispatched: deleted while pending, or still pending
    started = job.pid is not None
    if job.phase is Phase.ERROR or (job.phase is Phase.ENDED and not started):
        failed, exit_status = (28 if "chdir" in job.reason else 26), 0
    elif job.phase is Phase.ENDED and job.end_state == "CANCELLED":
        failed, exit_status = 100, 137
    elif job.phase is Phase.ENDED:
        exit_status = job.exit_code or 0
        failed = 100 if exit_status > 128 else 0
    else:
        return None  # running: no record yet
    end = job.end_time if job.end_time is not None else job.start_time
    wallclock = int(end - job.start_time) if started else 0
    fields = [
        ("qname", job.partition),
        ("hostname", host_name()),
        ("group", job.user),
        ("owner", job.user),
        ("project", "NONE"),
        ("department", "defaultdepartment"),
        ("jobname", job.name),
        ("jobnumber", str(job.job_id)),
        ("taskid", str(job.array_task_id) if job.is_array else "undefined"),
        ("account", "sge"),
        ("priority", "0"),
        ("qsub_time", _ctime(job.submit_time)),
        ("start_time", _ctime(job.start_time) if started else "-/-"),
        ("end_time", _ctime(end) if started else "-/-"),
        ("granted_pe", "NONE"),
        ("slots", "1"),
        ("failed", FAILED_TEXT[failed]),
        ("exit_status", str(exit_status)),
        ("ru_wallclock", f"{wallclock}s"),
        ("cpu", "0.000s"),
        ("maxvmem", "0.000B"),
        ("arid", "undefined"),
        ("category", "NONE"),
    ]
    lines = [QACCT_SEPARATOR] + [f"{key:<13}{value:<20}" for key, value in fields]
    return "\n".join(lines)


def _ctime(timestamp: float) -> str:
    return time.strftime("%a %b %d %H:%M:%S %Y", time.localtime(timestamp))


def _fnmatch_regex(pattern: str) -> re.Pattern[str]:
    """glibc ``fnmatch`` without flags: ``*``, ``?``, ``[...]`` and ``\\`` escapes."""
    parts = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        end = pattern.find("]", i + 2) if char == "[" else -1
        if char == "\\" and i + 1 < len(pattern):
            parts.append(re.escape(pattern[i + 1]))
            i += 1
        elif char == "*":
            parts.append(".*")
        elif char == "?":
            parts.append(".")
        elif end != -1:
            body = pattern[i + 1 : end]
            negate = body[:1] in ("!", "^")
            members = body[1:] if negate else body
            parts.append(("[^" if negate else "[") + members.replace("\\", "\\\\") + "]")
            i = end
        else:
            parts.append(re.escape(char))
        i += 1
    return re.compile("".join(parts), re.DOTALL)


# qdel ---------------------------------------------------------------------------------------


def qdel(args: Sequence[str], context: Context) -> int:
    """``qdel ID[,ID...] [ID...]`` or ``qdel -u USER``; rc 1 if a job does not exist."""
    users, ids = _qdel_options(args)
    jobs = [j for j in context.state.of(Scheduler.SGE) if j.phase is not Phase.ENDED]
    returncode = 0
    now = time.time()
    me = user_name()
    for job_id in ids:
        targets = [j for j in jobs if _matches(job_id, j)]
        if not targets:
            print(f'denied: job "{job_id}" does not exist')
            returncode = 1
        for job in targets:
            print(_delete(job, me, now))
    for job in jobs:
        if users is not None and job.user in users:
            print(_delete(job, me, now))
    return returncode


def _qdel_options(args: Sequence[str]) -> tuple[Optional[set[str]], list[str]]:
    users: Optional[set[str]] = None
    ids: list[str] = []
    i = 0
    while i < len(args):
        if args[i] == "-u" and i + 1 < len(args):
            i += 1
            users = set(args[i].split(","))
        elif args[i] == "-f":
            pass
        elif args[i].startswith("-"):
            raise UsageError([f'error: ERROR! invalid option argument "{args[i]}"'])
        else:
            ids += [p for p in args[i].split(",") if p]
        i += 1
    if not ids and users is None:
        raise UsageError(["usage: qdel [options] job_task_list | -u user_list"])
    return users, ids


def _matches(text: str, job: JobRecord) -> bool:
    base, dot, task = text.partition(".")
    if str(job.job_id) != base:
        return False
    return not dot or (job.is_array and str(job.array_task_id) == task)


def _delete(job: JobRecord, me: str, now: float) -> str:
    what = f"job-array task {job.job_id}.{job.array_task_id}" if job.is_array else "job"
    label = what if job.is_array else f"job {job.job_id}"
    if job.phase is Phase.RUNNING:
        kill_job(job)
        job.deleting = True
        job.end_time = now
        return f"{me} has registered the {label} for deletion"
    end_job(job, "CANCELLED", None, now)
    return f"{me} has deleted {label}"
