"""Dummy Slurm 22.05: ``sbatch``, ``squeue``, ``scancel``, ``scontrol``, ``sacct``, ``sinfo``.

Each program is a function ``(args, context) -> returncode`` that prints what the
real program prints. Output formats follow the recordings of a real Slurm 22.05.8
(``tests/data/slurm/``). What they take is what batchpool and typical tests use:

- ``sbatch``: a script file, stdin or ``--wrap``; ``#SBATCH`` lines; ``--parsable``,
  ``--array`` (with ``%`` throttle), ``--output``/``--error`` patterns, ``--hold``,
  ``--export``, ``--chdir`` and the resource options a pool passes (accepted, and
  ``--time``, ``--cpus-per-task``, ``--nodes`` and ``--partition`` shown);
- ``squeue``: ``-h``, ``-r``, ``-t``, ``--name``, ``--jobs``, ``-u``/``--me`` and
  ``-o FORMAT`` with every ``%`` field letter (``%all`` too);
- ``scancel``: job ids (``123``, ``123_4``, ``123_[1-3]``), ``--name``, ``-u``/``--me``;
- ``scontrol show config``; ``sacct`` as on a cluster without accounting, or, with
  :attr:`DummyConfig.accounting <batchpool.testing.queue.DummyConfig.accounting>`,
  ``-n -P [-X] -j IDS -o FIELDS`` as recorded in ``tests/data/slurm/sacct_accounting_real.txt``
  (a step's ``MaxRSS`` is ``0``: the dummy measures nothing); ``sinfo`` with nothing to
  report.
"""

from __future__ import annotations

import grp
import os
import re
import shlex
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from .._layout import format_ranges
from .queue import (
    Context,
    DummyConfig,
    JobRecord,
    Launch,
    Phase,
    QueueState,
    Scheduler,
    UsageError,
    cancel_job,
    capture_environment,
    format_time,
    host_name,
    iso_time,
    read_environment,
    user_name,
)

SLURM_VERSION = "22.05.8"
NO_ARRAY_TASK = 4294967294
ARRAY_SPEC_ERROR = "sbatch: error: Batch job submission failed: Invalid job array specification"
DEFAULT_FORMAT = "%.18i %.9P %.8j %.8u %.2t %.10M %.6D %R"
ACTIVE_STATES = ("PENDING", "RUNNING", "SUSPENDED", "COMPLETING", "CONFIGURING")
STATE_CODES = {
    "PENDING": "PD",
    "RUNNING": "R",
    "SUSPENDED": "S",
    "COMPLETING": "CG",
    "COMPLETED": "CD",
    "CONFIGURING": "CF",
    "CANCELLED": "CA",
    "FAILED": "F",
    "TIMEOUT": "TO",
    "PREEMPTED": "PR",
    "NODE_FAIL": "NF",
    "BOOT_FAIL": "BF",
    "DEADLINE": "DL",
    "OUT_OF_MEMORY": "OOM",
    "REQUEUED": "RQ",
    "REQUEUE_HOLD": "RH",
    "REQUEUE_FED": "RF",
    "RESIZING": "RS",
    "REVOKED": "RV",
    "SIGNALING": "SI",
    "SPECIAL_EXIT": "SE",
    "STAGE_OUT": "SO",
    "STOPPED": "ST",
}


@dataclass(frozen=True)
class Option:
    """One GNU-style option: ``--long value``, ``--long=value``, ``-s value``, ``-svalue``."""

    dest: str
    long: str
    short: str = ""
    takes_value: bool = True


def parse_options(
    program: str, argv: Sequence[str], options: Sequence[Option], stop_at_positional: bool
) -> tuple[list[tuple[str, str]], list[str]]:
    """Parse like getopt_long; return ``(dest, value)`` pairs and the positional arguments."""
    by_long = {o.long: o for o in options}
    by_short = {o.short: o for o in options if o.short}
    pairs: list[tuple[str, str]] = []
    positionals: list[str] = []
    args = list(argv)
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg == "--":
            positionals += args[i:]
            break
        if arg.startswith("--"):
            i = _parse_long(program, arg, args, i, by_long, pairs)
        elif arg.startswith("-") and arg != "-":
            i = _parse_short(program, arg, args, i, by_short, pairs)
        elif stop_at_positional:
            positionals += args[i - 1 :]
            break
        else:
            positionals.append(arg)
    return pairs, positionals


def _usage(program: str, message: str) -> UsageError:
    return UsageError([f"{program}: {message}", f'Try "{program} --help" for more information'])


def _parse_long(program, arg, args, i, by_long, pairs) -> int:
    name, eq, value = arg[2:].partition("=")
    option = by_long.get(name)
    if option is None:
        raise _usage(program, f"unrecognized option '{arg}'")
    if not option.takes_value:
        pairs.append((option.dest, ""))
        return i
    if not eq:
        if i >= len(args):
            raise _usage(program, f"option '--{name}' requires an argument")
        value = args[i]
        i += 1
    pairs.append((option.dest, value))
    return i


def _parse_short(program, arg, args, i, by_short, pairs) -> int:
    for k in range(1, len(arg)):
        option = by_short.get(arg[k])
        if option is None:
            raise _usage(program, f"invalid option -- '{arg[k]}'")
        if not option.takes_value:
            pairs.append((option.dest, ""))
            continue
        value = arg[k + 1 :]
        if not value:
            if i >= len(args):
                raise _usage(program, f"option requires an argument -- '{arg[k]}'")
            value = args[i]
            i += 1
        pairs.append((option.dest, value))
        return i
    return i


# sbatch -------------------------------------------------------------------------------------

SBATCH_OPTIONS = (
    Option("parsable", "parsable", takes_value=False),
    Option("job_name", "job-name", "J"),
    Option("output", "output", "o"),
    Option("error", "error", "e"),
    Option("array", "array", "a"),
    Option("wrap", "wrap"),
    Option("partition", "partition", "p"),
    Option("time", "time", "t"),
    Option("mem", "mem"),
    Option("cpus_per_task", "cpus-per-task", "c"),
    Option("account", "account", "A"),
    Option("qos", "qos", "q"),
    Option("chdir", "chdir", "D"),
    Option("hold", "hold", "H", takes_value=False),
    Option("export", "export"),
    Option("nodes", "nodes", "N"),
    Option("ntasks", "ntasks", "n"),
    Option("mem_per_cpu", "mem-per-cpu"),
    Option("gres", "gres"),
    Option("constraint", "constraint", "C"),
    Option("exclusive", "exclusive", takes_value=False),
    Option("requeue", "requeue", takes_value=False),
    Option("no_requeue", "no-requeue", takes_value=False),
    Option("open_mode", "open-mode"),
    Option("comment", "comment"),
    Option("dependency", "dependency", "d"),
    Option("signal", "signal"),
    Option("ntasks_per_node", "ntasks-per-node"),
    Option("quiet", "quiet", "Q", takes_value=False),
    Option("verbose", "verbose", "v", takes_value=False),
)


@dataclass(frozen=True)
class BatchRequest:
    """What one ``sbatch`` call asks for, after command line and ``#SBATCH`` lines."""

    script: str
    script_path: str
    script_args: list[str]
    options: dict[str, str]

    def get(self, dest: str, default: str = "") -> str:
        return self.options.get(dest, default)

    def has(self, dest: str) -> bool:
        return dest in self.options


def sbatch(args: Sequence[str], context: Context) -> int:
    """``sbatch [OPTIONS] [SCRIPT [ARGS...]]``; the script also from ``--wrap`` or stdin."""
    request = _batch_request(args, context.read_stdin)
    partition = request.get("partition", context.config.partitions[0])
    if partition not in context.config.partitions:
        raise UsageError(
            [
                f"sbatch: error: invalid partition specified: {partition}",
                "sbatch: error: Batch job submission failed: Invalid partition name specified",
            ]
        )
    indices, throttle = (
        parse_array_spec(request.get("array"), context.config.max_array_size)
        if request.has("array")
        else (None, None)
    )
    time_limit = format_time_limit(request.get("time")) if request.has("time") else "UNLIMITED"
    job_id = _submit(context, request, partition, indices, throttle, time_limit)
    if request.has("parsable"):
        print(job_id)
    else:
        print(f"Submitted batch job {job_id}")
    return 0


def _batch_request(args: Sequence[str], read_stdin: Callable[[], str]) -> BatchRequest:
    pairs, positionals = parse_options("sbatch", args, SBATCH_OPTIONS, stop_at_positional=True)
    options = dict(pairs)
    if "wrap" in options:
        if positionals:
            raise UsageError(["sbatch: error: Script arguments not permitted with --wrap option"])
        script = f"#!/bin/sh\n# This script was created by sbatch --wrap.\n\n{options['wrap']}\n"
        script_path = "(null)"
    elif positionals:
        script_path = os.path.abspath(positionals[0])
        try:
            script = Path(script_path).read_text()
        except OSError as error:
            raise UsageError([f"sbatch: error: Unable to open file {positionals[0]}"]) from error
    else:
        script, script_path = read_stdin(), "(null)"
    if not script.startswith("#!"):
        raise UsageError(
            [
                "sbatch: error: This does not look like a batch script.  The first",
                "sbatch: error: line must start with #! followed by the path to an interpreter.",
                "sbatch: error: For instance: #!/bin/sh",
            ]
        )
    directives = dict(_directive_options(script))
    return BatchRequest(script, script_path, positionals[1:], {**directives, **options})


def _directive_options(script: str) -> list[tuple[str, str]]:
    """``#SBATCH`` lines before the first command of the script."""
    words: list[str] = []
    for line in script.splitlines()[1:]:
        stripped = line.strip()
        if stripped.startswith("#SBATCH"):
            words += shlex.split(stripped[len("#SBATCH") :], comments=True)
        elif stripped and not stripped.startswith("#"):
            break
    pairs, _ = parse_options("sbatch", words, SBATCH_OPTIONS, stop_at_positional=False)
    return pairs


def parse_array_spec(spec: str, max_array_size: int) -> tuple[list[int], Optional[int]]:
    """``0-15:4%2`` -> ``([0, 4, 8, 12], 2)``; raise UsageError as sbatch does."""
    ranges, _, throttle_text = spec.partition("%")
    indices: list[int] = []
    try:
        throttle = int(throttle_text) if throttle_text else None
        for part in ranges.split(","):
            span, _, step_text = part.partition(":")
            first, _, last = span.partition("-")
            start, stop, step = int(first), int(last or first), int(step_text or 1)
            if start < 0 or stop < start or step < 1:
                raise ValueError(part)
            indices.extend(range(start, stop + 1, step))
    except ValueError as error:
        raise UsageError([ARRAY_SPEC_ERROR]) from error
    if not indices or max(indices) >= max_array_size or (throttle is not None and throttle < 0):
        raise UsageError([ARRAY_SPEC_ERROR])
    return sorted(set(indices)), throttle


def format_time_limit(text: str) -> str:
    """sbatch ``--time`` (``MM``, ``MM:SS``, ``H:MM:SS``, ``D-HH[:MM[:SS]]``) as squeue shows."""
    if text.upper() in ("UNLIMITED", "INFINITE", "-1"):
        return "UNLIMITED"
    try:
        seconds = _time_limit_s(text)
    except ValueError as error:
        raise UsageError(["sbatch: error: Invalid --time specification"]) from error
    return format_time(seconds)


def _time_limit_s(text: str) -> int:
    days_text, dash, rest = text.partition("-")
    if dash:
        parts = [int(p) for p in rest.split(":")] + [0, 0]
        return int(days_text) * 86400 + parts[0] * 3600 + parts[1] * 60 + parts[2]
    parts = [int(p) for p in text.split(":")]
    if len(parts) == 1:
        return parts[0] * 60
    if len(parts) == 2:
        return parts[0] * 60 + parts[1]
    return parts[0] * 3600 + parts[1] * 60 + parts[2]


def _submit(context, request, partition, indices, throttle, time_limit) -> int:
    state, paths = context.state, context.paths
    job_id = state.new_job_id(Scheduler.SLURM)
    record_id = state.new_record_id()
    script_file = paths.jobs_dir / f"slurm-script-{job_id}"
    script_file.write_text(request.script)
    env_file = capture_environment(paths, record_id, _exported_environment(request.get("export")))
    cwd = os.path.abspath(request.get("chdir", os.getcwd()))
    default_output = "slurm-%A_%a.out" if indices is not None else "slurm-%j.out"
    base = dict(
        scheduler=Scheduler.SLURM,
        job_id=job_id,
        name=request.get("job_name", _default_name(request)),
        user=user_name(),
        partition=partition,
        submit_time=time.time(),
        command=[*_script_command(script_file, request.script), *request.script_args],
        cwd=cwd,
        env_file=env_file,
        stdout_template=request.get("output", default_output),
        stderr_template=request.get("error") or None,
        submit_dir=os.getcwd(),
        command_display=request.script_path,
        held=request.has("hold"),
        reason="JobHeldUser" if request.has("hold") else "None",
        time_limit=time_limit,
        cpus=int(request.get("cpus_per_task", "1")),
        nodes=int(request.get("nodes", "1").split("-")[0]),
        extra_env=_export_assignments(request.get("export")),
    )
    if indices is None:
        state.jobs.append(JobRecord(record_id=record_id, submission=state.new_submission(), **base))
        return job_id
    for n, index in enumerate(indices):
        state.jobs.append(
            JobRecord(
                record_id=record_id if n == 0 else state.new_record_id(),
                submission=state.new_submission(),
                array_job_id=job_id,
                array_task_id=index,
                array_throttle=throttle,
                array_spec=request.get("array"),
                **base,
            )
        )
    return job_id


def _default_name(request: BatchRequest) -> str:
    if request.has("wrap"):
        return "wrap"
    if request.script_path == "(null)":
        return "sbatch"
    return os.path.basename(request.script_path)


def _script_command(script_file: Path, script: str) -> list[str]:
    """``/bin/sh SCRIPT`` unless the ``#!`` line names another interpreter."""
    interpreter = shlex.split(script.splitlines()[0][2:] or "/bin/sh")
    if interpreter and os.path.basename(interpreter[0]) == "sh":
        return ["/bin/sh", str(script_file)]
    script_file.chmod(0o700)
    return [str(script_file)]


def _exported_environment(export: str) -> dict[str, str]:
    """The submitter's environment as ``--export`` passes it (default ``ALL``)."""
    names = [n for n in export.split(",") if n] if export else ["ALL"]
    if "ALL" in names:
        return dict(os.environ)
    minimal = ("HOME", "USER", "LOGNAME", "PATH", "SHELL")
    keep = set(minimal) | {n for n in names if "=" not in n and n != "NONE"}
    return {k: v for k, v in os.environ.items() if k in keep}


def _export_assignments(export: str) -> dict[str, str]:
    pairs = [n.partition("=") for n in export.split(",") if "=" in n]
    return {name: value for name, _, value in pairs}


# starting a job -----------------------------------------------------------------------------


def prepare_launch(job: JobRecord, state: QueueState) -> Launch:
    """Give a starting array element its own job id; build its environment and paths."""
    if job.is_array and any(
        j is not job
        and j.scheduler is Scheduler.SLURM
        and j.array_job_id == job.array_job_id
        and j.phase is Phase.PENDING
        for j in state.jobs
    ):
        job.job_id = state.new_job_id(Scheduler.SLURM)
    cwd = job.cwd if os.path.isdir(job.cwd) else "/tmp"
    stdout = _output_path(job.stdout_template, job, cwd)
    stderr = _output_path(job.stderr_template, job, cwd) if job.stderr_template else None
    missing = [p for p in (stdout, stderr) if p and not os.path.isdir(os.path.dirname(p))]
    error = f"cannot open {missing[0]}" if missing else ""
    return Launch(job.command, _job_environment(job), cwd, stdout, stderr, error)


def _job_environment(job: JobRecord) -> dict[str, str]:
    env = read_environment(job)
    host = host_name()
    env.update(
        {
            "SLURM_JOB_ID": str(job.job_id),
            "SLURM_JOBID": str(job.job_id),
            "SLURM_JOB_NAME": job.name,
            "SLURM_SUBMIT_DIR": job.submit_dir,
            "SLURM_SUBMIT_HOST": host,
            "SLURM_CLUSTER_NAME": "dummy",
            "SLURM_JOB_PARTITION": job.partition,
            "SLURM_JOB_NODELIST": host,
            "SLURM_NODELIST": host,
            "SLURMD_NODENAME": host,
            "SLURM_JOB_NUM_NODES": str(job.nodes),
            "SLURM_NNODES": str(job.nodes),
            "SLURM_CPUS_ON_NODE": str(job.cpus),
            "SLURM_JOB_USER": job.user,
            "SLURM_JOB_UID": str(os.getuid()),
            "ENVIRONMENT": "BATCH",
        }
    )
    if job.is_array:
        indices, _ = parse_array_spec(job.array_spec, sys.maxsize)
        env.update(
            {
                "SLURM_ARRAY_JOB_ID": str(job.array_job_id),
                "SLURM_ARRAY_TASK_ID": str(job.array_task_id),
                "SLURM_ARRAY_TASK_COUNT": str(len(indices)),
                "SLURM_ARRAY_TASK_MIN": str(min(indices)),
                "SLURM_ARRAY_TASK_MAX": str(max(indices)),
            }
        )
    return env


_PATTERN = re.compile(r"%(\d*)([jAaxuNnts%])")


def expand_output_pattern(template: str, job: JobRecord) -> str:
    """Substitute Slurm's filename patterns (``%j %A %a %x %u %N %n %t %s %%``)."""

    def replace(match: re.Match) -> str:
        width, letter = match.group(1), match.group(2)
        values = {
            "j": job.job_id,
            "A": job.array_job_id if job.is_array else job.job_id,
            "a": job.array_task_id if job.is_array else NO_ARRAY_TASK,
            "x": job.name,
            "u": job.user,
            "N": host_name(),
            "n": 0,
            "t": 0,
            "s": "batch",
        }
        if letter == "%":
            return "%"
        value = values[letter]
        return str(value).zfill(int(width)) if width and isinstance(value, int) else str(value)

    return _PATTERN.sub(replace, template)


def _output_path(template: str, job: JobRecord, cwd: str) -> str:
    return os.path.join(cwd, expand_output_pattern(template, job))


# squeue -------------------------------------------------------------------------------------

SQUEUE_OPTIONS = (
    Option("noheader", "noheader", "h", takes_value=False),
    Option("array", "array", "r", takes_value=False),
    Option("format", "format", "o"),
    Option("states", "states", "t"),
    Option("name", "name", "n"),
    Option("jobs", "jobs", "j"),
    Option("user", "user", "u"),
    Option("me", "me", takes_value=False),
)


@dataclass(frozen=True)
class Row:
    """One line of squeue: a job, an element, or the pending elements of an array."""

    job: JobRecord
    pending_indices: tuple[int, ...] = ()
    """Several pending elements shown as one line (``7055_[0-3%2]``)."""

    @property
    def state(self) -> str:
        if self.job.phase in (Phase.PENDING, Phase.ERROR):
            return "PENDING"
        if self.job.phase is Phase.RUNNING:
            return "RUNNING"
        return self.job.end_state

    @property
    def task_text(self) -> str:
        if self.pending_indices:
            throttle = self.job.array_throttle
            return format_ranges(list(self.pending_indices)) + (f"%{throttle}" if throttle else "")
        return str(self.job.array_task_id) if self.job.is_array else "N/A"

    @property
    def label(self) -> str:
        if self.pending_indices:
            return f"{self.job.array_job_id}_[{self.task_text}]"
        if self.job.is_array:
            return f"{self.job.array_job_id}_{self.job.array_task_id}"
        return str(self.job.job_id)


def _elapsed(job: JobRecord) -> str:
    if job.start_time is None:
        return "0:00"
    return format_time((job.end_time or time.time()) - job.start_time)


def _priority(job: JobRecord) -> int:
    return 4294901760 - job.record_id


def _node_or_reason(row: Row) -> str:
    if row.state == "PENDING":
        return f"({row.job.reason})"
    return host_name() if row.job.start_time is not None else ""


def _end_time(row: Row) -> str:
    if row.state == "PENDING":
        return "N/A"
    return "NONE" if row.state == "RUNNING" else iso_time(row.job.end_time)


def _ran(row: Row, value: str) -> str:
    return value if row.state != "PENDING" else ""


def _group_name() -> str:
    return grp.getgrgid(os.getgid()).gr_name


FieldFunction = Callable[[Row], str]
FIELDS: dict[str, tuple[str, FieldFunction]] = {
    "a": ("ACCOUNT", lambda r: "(null)"),
    "b": ("TRES_PER_NODE", lambda r: "N/A"),
    "c": ("MIN_CPUS", lambda r: str(r.job.cpus)),
    "d": ("MIN_TMP_DISK", lambda r: "0"),
    "e": ("END_TIME", _end_time),
    "f": ("FEATURES", lambda r: "(null)"),
    "g": ("GROUP", lambda r: _group_name()),
    "h": ("OVER_SUBSCRIBE", lambda r: "OK"),
    "i": ("JOBID", lambda r: r.label),
    "j": ("NAME", lambda r: r.job.name),
    "k": ("COMMENT", lambda r: "(null)"),
    "l": ("TIME_LIMIT", lambda r: r.job.time_limit),
    "m": ("MIN_MEMORY", lambda r: "0"),
    "n": ("REQ_NODES", lambda r: ""),
    "o": ("COMMAND", lambda r: r.job.command_display),
    "p": ("PRIORITY", lambda r: f"{_priority(r.job) / 4294967295:.14f}"),
    "q": ("QOS", lambda r: "(null)"),
    "r": ("REASON", lambda r: r.job.reason),
    "s": ("", lambda r: ""),
    "t": ("ST", lambda r: STATE_CODES.get(r.state, r.state)),
    "u": ("USER", lambda r: r.job.user),
    "v": ("RESERVATION", lambda r: "(null)"),
    "w": ("WCKEY", lambda r: "(null)"),
    "x": ("EXC_NODES", lambda r: ""),
    "y": ("NICE", lambda r: "0"),
    "z": ("S:C:T", lambda r: "*:*:*"),
    "A": ("JOBID", lambda r: str(r.job.job_id)),
    "B": ("EXEC_HOST", lambda r: _ran(r, host_name()) or "n/a"),
    "C": ("CPUS", lambda r: str(r.job.cpus)),
    "D": ("NODES", lambda r: str(r.job.nodes)),
    "E": ("DEPENDENCY", lambda r: "(null)"),
    "F": ("ARRAY_JOB_ID", lambda r: str(r.job.array_job_id or r.job.job_id)),
    "G": ("GROUP", lambda r: str(os.getgid())),
    "H": ("SOCKETS_PER_NODE", lambda r: "*"),
    "I": ("CORES_PER_SOCKET", lambda r: "*"),
    "J": ("THREADS_PER_CORE", lambda r: "*"),
    "K": ("ARRAY_TASK_ID", lambda r: r.task_text),
    "L": ("TIME_LEFT", lambda r: r.job.time_limit),
    "M": ("TIME", lambda r: _elapsed(r.job)),
    "N": ("NODELIST", lambda r: _ran(r, host_name())),
    "O": ("CONTIGUOUS", lambda r: "0"),
    "P": ("PARTITION", lambda r: r.job.partition),
    "Q": ("PRIORITY", lambda r: str(_priority(r.job))),
    "R": ("NODELIST(REASON)", _node_or_reason),
    "S": ("START_TIME", lambda r: iso_time(r.job.start_time)),
    "T": ("STATE", lambda r: r.state),
    "U": ("UID", lambda r: str(os.getuid())),
    "V": ("SUBMIT_TIME", lambda r: iso_time(r.job.submit_time)),
    "W": ("LICENSES", lambda r: "(null)"),
    "X": ("CORE_SPEC", lambda r: "N/A"),
    "Y": ("SCHEDNODES", lambda r: "(null)"),
    "Z": ("WORK_DIR", lambda r: r.job.cwd),
}


@dataclass(frozen=True)
class Column:
    """A field of an output format, or literal text when ``letter`` is empty."""

    letter: str = ""
    text: str = ""
    width: Optional[int] = None
    right: bool = False
    suffix: str = ""

    def render(self, value: str) -> str:
        if not self.letter:
            return self.text
        if self.width:
            value = value[: self.width]
            value = value.rjust(self.width) if self.right else value.ljust(self.width)
        return value + self.suffix


_FORMAT_FIELD = re.compile(r"%(\.)?-?(\d+)?([A-Za-z])|%%")


def parse_format(spec: str) -> list[Column]:
    """``squeue -o`` format: ``%.18i %j``, literal text kept; ``%all`` is every field."""
    if spec == "%all":
        spec = "|".join(f"%{letter}" for letter in FIELDS)
    columns: list[Column] = []
    position = 0
    for match in _FORMAT_FIELD.finditer(spec):
        if match.start() > position:
            columns.append(Column(text=spec[position : match.start()]))
        position = match.end()
        if match.group(0) == "%%":
            columns.append(Column(text="%"))
            continue
        letter = match.group(3)
        if letter not in FIELDS:
            raise UsageError([f"squeue: error: Invalid job format specification: {letter}"])
        width = int(match.group(2)) if match.group(2) else None
        columns.append(Column(letter, width=width, right=bool(match.group(1))))
    if position < len(spec):
        columns.append(Column(text=spec[position:]))
    return columns


def render_line(columns: Sequence[Column], row: Optional[Row]) -> str:
    """One output line; the header line when ``row`` is None."""
    parts = []
    for column in columns:
        if not column.letter:
            parts.append(column.text)
            continue
        header, function = FIELDS[column.letter]
        parts.append(column.render(header if row is None else function(row)))
    return "".join(parts)


@dataclass(frozen=True)
class JobFilter:
    """What ``squeue`` and ``scancel`` select jobs by."""

    states: Optional[frozenset[str]] = None
    names: Optional[frozenset[str]] = None
    users: Optional[frozenset[str]] = None
    job_ids: Optional[tuple[str, ...]] = None

    def matches(self, job: JobRecord, state: str) -> bool:
        return (
            (self.states is None or state in self.states)
            and (self.names is None or job.name in self.names)
            and (self.users is None or job.user in self.users)
            and (self.job_ids is None or any(job_id_matches(i, job) for i in self.job_ids))
        )


def job_id_matches(text: str, job: JobRecord) -> bool:
    """``123`` (a job, or every element of array 123), ``123_4``, ``123_[1-3,5]``."""
    base, underscore, tasks = text.partition("_")
    if not base.isdigit():
        return False
    if not underscore:
        return job.job_id == int(base) or job.array_job_id == int(base)
    if job.array_job_id != int(base):
        return False
    try:
        indices, _ = parse_array_spec(tasks.strip("[]"), sys.maxsize)
    except UsageError:
        return False
    return job.array_task_id in indices


def _split_list(text: str) -> frozenset[str]:
    return frozenset(p for p in text.split(",") if p)


def parse_states(text: str) -> Optional[frozenset[str]]:
    """``-t all``, or long/short names (``PD,R``, ``pending``)."""
    names = {n.upper() for n in _split_list(text)}
    if "ALL" in names:
        return None
    short_to_long = {short: long for long, short in STATE_CODES.items()}
    states = set()
    for name in names:
        if name not in STATE_CODES and name not in short_to_long:
            raise UsageError([f"squeue: error: Invalid job state specified: {name}"])
        states.add(short_to_long.get(name, name))
    return frozenset(states)


def squeue(args: Sequence[str], context: Context) -> int:
    """``squeue`` with the options batchpool and people use; see the module docstring."""
    pairs, _ = parse_options("squeue", args, SQUEUE_OPTIONS, stop_at_positional=False)
    options = dict(pairs)
    job_filter = _squeue_filter(options)
    jobs = context.state.of(Scheduler.SLURM)
    if (
        job_filter.job_ids is not None
        and len(job_filter.job_ids) == 1
        and not any(job_id_matches(job_filter.job_ids[0], j) for j in jobs)
    ):
        raise UsageError(["slurm_load_jobs error: Invalid job id specified"])
    selected = [j for j in jobs if job_filter.matches(j, Row(j).state)]
    rows = _rows(selected, one_per_element="array" in options)
    columns = parse_format(options.get("format", DEFAULT_FORMAT))
    lines = [] if "noheader" in options else [render_line(columns, None)]
    lines += [render_line(columns, row) for row in rows]
    if lines:
        print("\n".join(lines))
    return 0


def _squeue_filter(options: dict[str, str]) -> JobFilter:
    job_ids = tuple(_split_list(options["jobs"])) if "jobs" in options else None
    if "states" in options:
        states = parse_states(options["states"])
    else:
        states = None if job_ids is not None else frozenset(ACTIVE_STATES)
    users = _split_list(options["user"]) if "user" in options else None
    if "me" in options:
        users = frozenset({user_name()})
    return JobFilter(
        states=states,
        names=_split_list(options["name"]) if "name" in options else None,
        users=users,
        job_ids=job_ids,
    )


_STATE_ORDER = {"PENDING": 0, "RUNNING": 1}


def _rows(jobs: Sequence[JobRecord], one_per_element: bool) -> list[Row]:
    """Sorted like squeue's default (partition, state, priority)."""
    rows: list[Row] = []
    pending_arrays: dict[int, list[JobRecord]] = {}
    for job in jobs:
        collapsible = job.is_array and job.phase is Phase.PENDING and not one_per_element
        if collapsible and job.array_job_id is not None:
            pending_arrays.setdefault(job.array_job_id, []).append(job)
        else:
            rows.append(Row(job))
    for elements in pending_arrays.values():
        if len(elements) == 1:
            rows.append(Row(elements[0]))
            continue
        indices = tuple(sorted(e.array_task_id for e in elements if e.array_task_id is not None))
        rows.append(Row(min(elements, key=lambda e: e.array_task_id or 0), indices))
    return sorted(
        rows,
        key=lambda r: (r.job.partition, _STATE_ORDER.get(r.state, 2), r.job.record_id),
    )


# scancel ------------------------------------------------------------------------------------

SCANCEL_OPTIONS = (
    Option("name", "name", "n"),
    Option("user", "user", "u"),
    Option("me", "me", takes_value=False),
)


def scancel(args: Sequence[str], context: Context) -> int:
    """``scancel [IDS...] [-n NAME] [-u USER | --me]``: cancels; rc 0 also if nothing matched."""
    pairs, ids = parse_options("scancel", args, SCANCEL_OPTIONS, stop_at_positional=False)
    options = dict(pairs)
    if not ids and not {"name", "user", "me"} & options.keys():
        raise UsageError(["scancel: error: No job identification provided"])
    users = _split_list(options["user"]) if "user" in options else None
    if "me" in options:
        users = frozenset({user_name()})
    job_filter = JobFilter(
        names=_split_list(options["name"]) if "name" in options else None,
        users=users,
        job_ids=tuple(i for text in ids for i in text.split(",") if i) if ids else None,
    )
    now = time.time()
    for job in context.state.of(Scheduler.SLURM):
        if job.phase is not Phase.ENDED and job_filter.matches(job, Row(job).state):
            cancel_job(job, now)
    return 0


# scontrol -----------------------------------------------------------------------------------


def scontrol(args: Sequence[str], context: Context) -> int:
    """``scontrol show config`` (batchpool reads ``MaxArraySize`` from it)."""
    words = [a for a in args if not a.startswith("-")]
    if words[:2] == ["show", "config"]:
        _show_config(context.config)
        return 0
    raise UsageError([f"invalid entity: {' '.join(words[1:2])} for keyword: {' '.join(words[:1])}"])


SACCT_OPTIONS = (
    Option("noheader", "noheader", "n", takes_value=False),
    Option("parsable2", "parsable2", "P", takes_value=False),
    Option("allocations", "allocations", "X", takes_value=False),
    Option("jobs", "jobs", "j"),
    Option("format", "format", "o"),
)


def sacct(args: Sequence[str], context: Context) -> int:
    """``sacct -n -P [-X] -j IDS -o FIELDS`` with accounting (module docstring); without,
    as on a cluster with ``accounting_storage/none``."""
    if not context.config.accounting:
        sys.stderr.write("sacct: error: Slurm accounting storage is disabled\n")
        return 1
    pairs, _ = parse_options("sacct", args, SACCT_OPTIONS, stop_at_positional=False)
    options = dict(pairs)
    fields = options.get("format", "JobID,State,ExitCode").split(",")
    unknown = [f for f in fields if f not in SACCT_FIELDS]
    if unknown:
        raise UsageError([f'sacct: error: Invalid field requested: "{unknown[0]}"'])
    wanted = _split_list(options.get("jobs", ""))
    if "noheader" not in options:
        print("|".join(fields))
    for job in context.state.of(Scheduler.SLURM):
        label = Row(job).label
        if wanted and not {label, str(job.job_id), str(job.array_job_id)} & wanted:
            continue
        print("|".join(SACCT_FIELDS[f](job, "") for f in fields))
        if "allocations" not in options and job.start_time is not None:
            print("|".join(SACCT_FIELDS[f](job, "batch") for f in fields))
    return 0


def _sacct_state(job: JobRecord) -> str:
    state = Row(job).state
    return f"CANCELLED by {os.getuid()}" if state == "CANCELLED" else state


def _sacct_exit_code(job: JobRecord) -> str:
    """``CODE:SIGNAL``; ``0:125`` for an out-of-memory kill, as Slurm's ``SIG_OOM``."""
    if job.end_state == "OUT_OF_MEMORY":
        return "0:125"
    code = job.exit_code or 0
    return f"0:{code - 128}" if code > 128 else f"{code}:0"


def _sacct_reason(job: JobRecord) -> str:
    """What the job last waited for; ``None`` once it started (the dummy forgets why it
    had waited: the real one keeps ``JobArrayTaskLimit`` and the like)."""
    return "None" if job.start_time is not None else job.reason


def _sacct_elapsed(job: JobRecord) -> str:
    """``HH:MM:SS`` (``D-HH:MM:SS``), always with hours, unlike ``squeue``'s ``%M``."""
    if job.start_time is None:
        return "00:00:00"
    total = int((job.end_time or time.time()) - job.start_time)
    days, rest = divmod(total, 86400)
    clock = f"{rest // 3600:02d}:{rest % 3600 // 60:02d}:{rest % 60:02d}"
    return f"{days}-{clock}" if days else clock


SACCT_FIELDS: dict[str, Callable[[JobRecord, str], str]] = {
    "JobID": lambda job, step: Row(job).label + (f".{step}" if step else ""),
    "State": lambda job, step: _sacct_state(job),
    "ExitCode": lambda job, step: _sacct_exit_code(job),
    "NodeList": lambda job, step: host_name() if job.start_time is not None else "None assigned",
    "Reason": lambda job, step: "" if step else _sacct_reason(job),
    "Elapsed": lambda job, step: _sacct_elapsed(job),
    "MaxRSS": lambda job, step: "0" if step else "",
}
"""The ``sacct -o`` fields the dummy knows: a job (or step) -> its value."""


def sinfo(args: Sequence[str], context: Context) -> int:
    """``sinfo``: the dummy's node never fails, so nothing is printed about it."""
    return 0


def config_lines(config: DummyConfig) -> list[str]:
    """``scontrol show config`` lines: ``Key = value`` with the key padded to 24 columns."""
    values = (
        ("AccountingStorageType", "accounting_storage/none"),
        ("ClusterName", "dummy"),
        ("MaxArraySize", str(config.max_array_size)),
        ("MaxJobCount", "10000"),
        ("MinJobAge", f"{int(config.min_job_age_s)} sec"),
        ("PartitionName", ",".join(config.partitions)),
        ("SchedulerType", "sched/backfill"),
        ("SelectType", "select/cons_tres"),
        ("SlurmctldHost[0]", host_name()),
        ("SLURM_CONF", "/etc/slurm/slurm.conf"),
        ("SLURM_VERSION", SLURM_VERSION),
    )
    return [f"{key:<24}= {value}" for key, value in values]


def _show_config(config: DummyConfig) -> None:
    print(f"Configuration data as of {iso_time(time.time())}")
    print("\n".join(config_lines(config)))
