"""The dummy cluster's queue: configuration, faults, the JSON state and running jobs.

Everything here is shared by the dummy Slurm (:mod:`batchpool.testing.slurm`), Grid
Engine (:mod:`batchpool.testing.sge`) and PBS (:mod:`batchpool.testing.pbs`). A dummy
cluster lives in one directory::

    DIRECTORY/config.json     DummyConfig (written by tests, read by every program)
    DIRECTORY/state.json      QueueState (jobs, id counters, faults fired)
    DIRECTORY/state.lock      fcntl lock guarding state.json
    DIRECTORY/calls.jsonl     one line per program invocation
    DIRECTORY/jobs/           job scripts, captured environments, exit-code files
    DIRECTORY/supervisor.pid  the running supervisor: ``PID START_TICKS``

The state advances with the wall clock: every invocation of a dummy program and, while
jobs wait or run, a supervisor process (:func:`supervise`, started by the program that
finds it missing, see :func:`ensure_supervisor`) take the lock and move the queue on:
ended jobs are collected, pending jobs are started (or hit by faults).
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import fcntl
import html
import importlib
import json
import os
import pwd
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

DIRECTORY_VARIABLE = "BATCHPOOL_DUMMY_DIR"
"""Environment variable naming the dummy cluster's directory."""
SAVED_PYTHONPATH_VARIABLE = "_BATCHPOOL_DUMMY_PYTHONPATH"
"""Set by the wrappers: the submitter's own ``PYTHONPATH`` (``set:VALUE`` or ``unset``)."""

_EXIT_WRAPPER = 'f="$1"; shift; "$@"; rc=$?; echo "$rc" > "$f.tmp"; mv "$f.tmp" "$f"'
_KILLING_EXIT_WRAPPER = (
    'f="$1"; d="$2"; shift 2; '
    "( sleep \"$d\" & s=$!; trap 'kill $s; exit 0' TERM; wait $s && kill -9 0 ) & w=$!; "
    '"$@"; rc=$?; kill $w 2>/dev/null; echo "$rc" > "$f.tmp"; mv "$f.tmp" "$f"'
)
"""The exit wrapper of a job hit by a delayed ``crash``: a watchdog in the job's process
group sleeps ``d`` seconds, then SIGKILLs the whole group (the job, its children, the
wrapper and itself); a job that ends first stops the watchdog."""


class Scheduler(str, enum.Enum):
    SLURM = "slurm"
    SGE = "sge"
    PBS = "pbs"


class Phase(str, enum.Enum):
    """Where a job is in its life, independent of the scheduler's words for it."""

    PENDING = "pending"
    RUNNING = "running"
    ENDED = "ended"
    ERROR = "error"
    """Stuck in an error state until deleted (SGE ``Eqw``, Slurm held with a reason)."""


class FaultKind(str, enum.Enum):
    ERROR_STATE = "error_state"
    """The job goes into ``state`` instead of running."""
    VANISH = "vanish"
    """The job disappears from the queue instead of running."""
    CRASH = "crash"
    """The job starts; its whole process group is killed with SIGKILL ``seconds`` after
    it started running (default 0: at once)."""
    COMMAND_FAILS = "command_fails"
    """``program`` prints ``stderr`` and exits with ``returncode`` before doing anything."""
    COMMAND_HANGS = "command_hangs"
    """``program`` sleeps ``seconds`` (default 30) before doing its work."""


JOB_FAULT_KINDS = frozenset((FaultKind.ERROR_STATE, FaultKind.VANISH, FaultKind.CRASH))
"""Faults that hit jobs (keyed by ``job``); the others hit program invocations."""
DEFAULT_HANG_S = 30.0
SUPERVISOR_TICK_S = 0.1
"""How often the supervisor moves the queue on."""
SUPERVISOR_IDLE_S = 2.0
"""The supervisor exits once no job has waited or run for this long."""
SUPERVISOR_LIFETIME_S = 6 * 3600.0
"""The supervisor exits after this long in any case (the next program call starts
another if jobs are still waiting or running)."""


@dataclass(frozen=True)
class Fault:
    """One fault, declared as data.

    A *job fault* (``error_state``, ``vanish``, ``crash``) hits the jobs whose
    submission index is ``job, job + 1, ..., job + times - 1``: every job submitted to
    the dummy cluster gets the next index, from 0, in order of submission, Slurm and
    SGE together, each element of an array counting as one job (in index order). The
    fault acts when the job would start; a job deleted while pending is never hit.

    A *command fault* (``command_fails``, ``command_hangs``) hits the next ``times``
    invocations of ``program``.

    Parameters
    ----------
    kind
        What happens, see :class:`FaultKind`.
    times
        How many jobs (from ``job`` on), or how many invocations, it hits.
    job
        Job faults: the submission index of the first job hit (0 is the cluster's
        first job).
    state
        For ``error_state``: a Slurm state (``NODE_FAIL``, ``OUT_OF_MEMORY``, ...) or
        ``PENDING`` (held pending with ``reason``). SGE always shows ``Eqw``.
    reason
        Slurm reason shown with the state.
    program
        For command faults: ``sbatch``, ``squeue``, ``qstat``, ...
    returncode, stderr, stdout
        What a failing command returns and prints.
    seconds
        For ``command_hangs``: how long the command sleeps (default 30). For ``crash``:
        how long after the job started running its process group is killed
        (default 0: right away).
    """

    kind: FaultKind
    times: int = 1
    job: int = 0
    state: str = "NODE_FAIL"
    reason: str = ""
    program: str = ""
    returncode: int = 1
    stderr: str = ""
    stdout: str = ""
    seconds: Optional[float] = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", FaultKind(self.kind))
        if self.times < 0 or self.job < 0:
            raise ValueError(f"times and job must not be negative: {self!r}")
        if self.seconds is not None and self.seconds < 0:
            raise ValueError(f"seconds must not be negative: {self!r}")

    @property
    def hits_jobs(self) -> bool:
        return self.kind in JOB_FAULT_KINDS

    def hits_job(self, submission: int) -> bool:
        """True for a job fault that hits the job with this submission index."""
        return self.hits_jobs and self.job <= submission < self.job + self.times

    @property
    def delay_s(self) -> float:
        """``seconds`` with the default of the kind (30 for a hang, 0 for a crash)."""
        if self.seconds is not None:
            return self.seconds
        return DEFAULT_HANG_S if self.kind is FaultKind.COMMAND_HANGS else 0.0

    def key(self) -> str:
        """Identity of this fault in the state's count of fired faults."""
        return json.dumps(self.to_json(), sort_keys=True)

    def to_json(self) -> dict:
        return {**dataclasses.asdict(self), "kind": self.kind.value}

    @classmethod
    def from_json(cls, data: Mapping) -> Fault:
        unknown = set(data) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown fault keys {sorted(unknown)} in {dict(data)}")
        return cls(**{**data, "kind": FaultKind(data["kind"])})


@dataclass(frozen=True)
class DummyConfig:
    """The dummy cluster's configuration, stored as ``config.json``.

    Parameters
    ----------
    slots
        Jobs running at once across the dummy cluster (Slurm and SGE together).
    pending_s
        A job stays pending at least this long after submission.
    min_job_age_s
        How long ended Slurm jobs stay visible with ``squeue -t all``.
    max_array_size
        Slurm's ``MaxArraySize``: array indices must be below it.
    partitions
        Slurm partitions (the first is the default) and SGE queues accepted.
    faults
        Faults to inject, see :class:`Fault`.
    accounting
        Whether Slurm keeps accounts: ``sacct`` answers as with slurmdbd (the CI Slurm);
        False: ``Slurm accounting storage is disabled``, as without.
    """

    slots: int = 8
    pending_s: float = 0.0
    min_job_age_s: float = 300.0
    max_array_size: int = 1001
    partitions: tuple[str, ...] = ("local",)
    faults: tuple[Fault, ...] = ()
    accounting: bool = False

    def to_json(self) -> dict:
        data = dataclasses.asdict(self)
        data["partitions"] = list(self.partitions)
        data["faults"] = [f.to_json() for f in self.faults]
        return data

    @classmethod
    def from_json(cls, data: Mapping) -> DummyConfig:
        data = dict(data)
        data["partitions"] = tuple(data.get("partitions", cls.partitions))
        data["faults"] = tuple(
            f if isinstance(f, Fault) else Fault.from_json(f) for f in data.get("faults", ())
        )
        return cls(**data)


def current_umask() -> int:
    """This process's umask (the dummy programs are single-threaded)."""
    mask = os.umask(0o077)
    os.umask(mask)
    return mask


@dataclass
class JobRecord:
    """One job, or one element of an array, in the dummy queue."""

    record_id: int
    """Internal, unique; names the job's files in ``jobs/``."""
    scheduler: Scheduler
    job_id: int
    """The id the scheduler shows; a Slurm array element gets its own when it starts."""
    name: str
    user: str
    partition: str
    """Slurm partition or SGE queue."""
    submit_time: float
    command: list[str]
    """What the job runs (without the exit-code wrapper)."""
    cwd: str
    env_file: str
    stdout_template: str
    stderr_template: Optional[str]
    """``None``: stderr goes where stdout goes."""
    submit_dir: str
    command_display: str = "(null)"
    phase: Phase = Phase.PENDING
    held: bool = False
    reason: str = "None"
    end_state: str = ""
    exit_code: Optional[int] = None
    start_time: Optional[float] = None
    end_time: Optional[float] = None
    pid: Optional[int] = None
    pid_start: str = ""
    submission: int = -1
    """The job's submission index (see :class:`Fault`); an array element has its own."""
    array_job_id: Optional[int] = None
    array_task_id: Optional[int] = None
    array_throttle: Optional[int] = None
    array_spec: str = ""
    time_limit: str = "UNLIMITED"
    cpus: int = 1
    nodes: int = 1
    deleting: bool = False
    started_in_call: bool = False
    extra_env: dict[str, str] = field(default_factory=dict)
    """Variables set on top of the captured environment (``-v``, ``--export=VAR=val``)."""
    umask: int = field(default_factory=lambda: current_umask())
    """The submitter's umask: the job runs with it and its output files are made with it,
    as Slurm does (``SLURM_UMASK``)."""

    @property
    def is_array(self) -> bool:
        return self.array_task_id is not None

    def to_json(self) -> dict:
        data = dataclasses.asdict(self)
        data["scheduler"] = self.scheduler.value
        data["phase"] = self.phase.value
        return data

    @classmethod
    def from_json(cls, data: Mapping) -> JobRecord:
        return cls(
            **{**data, "scheduler": Scheduler(data["scheduler"]), "phase": Phase(data["phase"])}
        )


@dataclass
class QueueState:
    """Everything the dummy programs share, stored as ``state.json``."""

    next_job_id: dict[str, int] = field(default_factory=lambda: {s.value: 1 for s in Scheduler})
    next_record_id: int = 1
    next_submission: int = 0
    jobs: list[JobRecord] = field(default_factory=list)
    faults_fired: dict[str, int] = field(default_factory=dict)
    """How often each fault (by :meth:`Fault.key`) has hit a job or an invocation."""

    def to_json(self) -> dict:
        return {
            "next_job_id": self.next_job_id,
            "next_record_id": self.next_record_id,
            "next_submission": self.next_submission,
            "jobs": [j.to_json() for j in self.jobs],
            "faults_fired": self.faults_fired,
        }

    @classmethod
    def from_json(cls, data: Mapping) -> QueueState:
        return cls(
            next_job_id=dict(data["next_job_id"]),
            next_record_id=data["next_record_id"],
            next_submission=data.get("next_submission", 0),
            jobs=[JobRecord.from_json(j) for j in data["jobs"]],
            faults_fired=dict(data["faults_fired"]),
        )

    def new_job_id(self, scheduler: Scheduler) -> int:
        job_id = self.next_job_id.get(scheduler.value, 1)
        self.next_job_id[scheduler.value] = job_id + 1
        return job_id

    def new_record_id(self) -> int:
        self.next_record_id += 1
        return self.next_record_id - 1

    def new_submission(self) -> int:
        """The next job's submission index (job faults are keyed by it)."""
        self.next_submission += 1
        return self.next_submission - 1

    def of(self, scheduler: Scheduler) -> list[JobRecord]:
        return [j for j in self.jobs if j.scheduler is scheduler]


@dataclass(frozen=True)
class ClusterPaths:
    """Names every file of a dummy cluster directory."""

    directory: Path

    @property
    def config(self) -> Path:
        return self.directory / "config.json"

    @property
    def state(self) -> Path:
        return self.directory / "state.json"

    @property
    def lock(self) -> Path:
        return self.directory / "state.lock"

    @property
    def calls(self) -> Path:
        return self.directory / "calls.jsonl"

    @property
    def jobs_dir(self) -> Path:
        return self.directory / "jobs"

    @property
    def supervisor_pid(self) -> Path:
        return self.directory / "supervisor.pid"

    @property
    def supervisor_log(self) -> Path:
        return self.directory / "supervisor.log"

    def exit_file(self, record_id: int) -> Path:
        return self.jobs_dir / f"{record_id}.exit"

    @classmethod
    def from_environment(cls) -> ClusterPaths:
        directory = os.environ.get(DIRECTORY_VARIABLE)
        if not directory:
            raise RuntimeError(f"{DIRECTORY_VARIABLE} is not set: where is the dummy cluster?")
        return cls(Path(directory))


@dataclass(frozen=True)
class Launch:
    """How to start a job: computed by the scheduler module when the job starts."""

    argv: list[str]
    env: dict[str, str]
    cwd: str
    stdout: str
    stderr: Optional[str]
    error: str = ""
    """Non-empty: the job cannot start (SGE ``Eqw``, Slurm ``FAILED``)."""


@dataclass
class Context:
    """What a program gets from ``__main__``: the locked state and the configuration."""

    paths: ClusterPaths
    config: DummyConfig
    state: QueueState
    stdin_reader: Callable[[], str] = str
    """Reads the program's stdin: called only by programs that take a script from it."""

    def read_stdin(self) -> str:
        return self.stdin_reader()


def prepare_launch(job: JobRecord, state: QueueState) -> Launch:
    """How to start ``job``: asks the module of its scheduler (imported only then)."""
    module = importlib.import_module(f"{__package__}.{job.scheduler.value}")
    return module.prepare_launch(job, state)


class UsageError(Exception):
    """A program was called wrongly: print ``lines`` to stderr and exit with ``returncode``."""

    def __init__(self, lines: Sequence[str], returncode: int = 1) -> None:
        super().__init__("\n".join(lines))
        self.lines = list(lines)
        self.returncode = returncode


def xml_escape(text: str) -> str:
    """XML character data: ``&``, ``<`` and ``>`` escaped (for ``qstat -xml``, ``-x``)."""
    return html.escape(text, quote=False)


def write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def load_config(paths: ClusterPaths) -> DummyConfig:
    if not paths.config.exists():
        return DummyConfig()
    return DummyConfig.from_json(json.loads(paths.config.read_text()))


def save_config(paths: ClusterPaths, config: DummyConfig) -> None:
    paths.directory.mkdir(parents=True, exist_ok=True)
    write_atomically(paths.config, json.dumps(config.to_json(), indent=1))


def load_state(paths: ClusterPaths) -> QueueState:
    if not paths.state.exists():
        return QueueState()
    return QueueState.from_json(json.loads(paths.state.read_text()))


@contextlib.contextmanager
def locked_state(paths: ClusterPaths) -> Iterator[QueueState]:
    """Hold the lock, yield the state, write it back atomically (also after an error)."""
    paths.directory.mkdir(parents=True, exist_ok=True)
    paths.jobs_dir.mkdir(exist_ok=True)
    with open(paths.lock, "a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            state = load_state(paths)
            before = json.dumps(state.to_json())
            try:
                yield state
            finally:
                after = json.dumps(state.to_json())
                if after != before or not paths.state.exists():
                    write_atomically(paths.state, after)
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


def log_call(paths: ClusterPaths, program: str, argv: Sequence[str]) -> None:
    """Append one line to ``calls.jsonl``."""
    paths.directory.mkdir(parents=True, exist_ok=True)
    line = json.dumps(
        {
            "program": program,
            "argv": list(argv),
            "time": time.time(),
            "cwd": os.getcwd(),
            "pid": os.getpid(),
        }
    )
    fd = os.open(paths.calls, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


def take_fault(
    state: QueueState, config: DummyConfig, matches: Callable[[Fault], bool]
) -> Optional[Fault]:
    """The first fault that ``matches`` and has not fired ``times`` times yet; count it."""
    for fault in config.faults:
        if not matches(fault):
            continue
        fired = state.faults_fired.get(fault.key(), 0)
        if fired < fault.times:
            state.faults_fired[fault.key()] = fired + 1
            return fault
    return None


def take_job_fault(state: QueueState, config: DummyConfig, job: JobRecord) -> Optional[Fault]:
    """The first job fault that hits ``job`` (by its submission index); counted as fired."""
    for fault in config.faults:
        if fault.hits_job(job.submission):
            state.faults_fired[fault.key()] = state.faults_fired.get(fault.key(), 0) + 1
            return fault
    return None


def user_name() -> str:
    return pwd.getpwuid(os.getuid()).pw_name


def host_name() -> str:
    return socket.gethostname().split(".")[0]


def capture_environment(paths: ClusterPaths, record_id: int, env: Mapping[str, str]) -> str:
    """Store the submitter's environment (minus the wrappers' own changes); return the file."""
    env = dict(env)
    saved = env.pop(SAVED_PYTHONPATH_VARIABLE, None)
    if saved is not None:
        if saved.startswith("set:"):
            env["PYTHONPATH"] = saved[len("set:") :]
        else:
            env.pop("PYTHONPATH", None)
    path = paths.jobs_dir / f"{record_id}.env.json"
    write_atomically(path, json.dumps(env))
    return str(path)


def read_environment(job: JobRecord) -> dict[str, str]:
    env = json.loads(Path(job.env_file).read_text())
    env.update(job.extra_env)
    return env


def advance(
    state: QueueState,
    config: DummyConfig,
    paths: ClusterPaths,
) -> None:
    """Move the queue on: collect ended jobs, forget old ones, start pending ones."""
    now = time.time()
    for job in state.jobs:
        job.started_in_call = False
        if job.phase is Phase.RUNNING:
            _collect_ending(job, paths, now)
    state.jobs = [j for j in state.jobs if not _expired(j, config, now)]
    _start_pending(state, config, paths, now)


def supervise(
    paths: ClusterPaths,
    tick_s: float = SUPERVISOR_TICK_S,
    idle_s: float = SUPERVISOR_IDLE_S,
    lifetime_s: float = SUPERVISOR_LIFETIME_S,
) -> None:
    """Move the queue on every ``tick_s`` seconds, as a scheduler's daemon would.

    Returns once no job has waited or run for ``idle_s``, when the cluster directory is
    gone, or after ``lifetime_s``; it then removes ``supervisor.pid`` (under the lock, so
    a program never counts on a supervisor that is leaving).
    """
    idle_since: Optional[float] = None
    for _ in range(max(1, int(lifetime_s / tick_s))):
        if not paths.config.exists():
            return
        with locked_state(paths) as state:
            advance(state, load_config(paths), paths)
            now = time.time()
            idle_since = None if _has_active_jobs(state) else (idle_since or now)
            if idle_since is not None and now - idle_since >= idle_s:
                _forget_supervisor(paths)
                return
        _reap_children()
        time.sleep(tick_s)
    with locked_state(paths):
        _forget_supervisor(paths)


def ensure_supervisor(paths: ClusterPaths, state: QueueState) -> None:
    """Start the cluster's supervisor if jobs wait or run and none is alive (call with
    the lock held). It gets this process's environment and logs to ``supervisor.log``."""
    if not _has_active_jobs(state) or _supervisor_alive(paths):
        return
    with open(paths.supervisor_log, "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", __package__, "supervise"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            cwd=paths.directory,
            start_new_session=True,
        )
    info = _proc_start(process.pid)
    write_atomically(paths.supervisor_pid, f"{process.pid} {info[1] if info else ''}\n")
    process.returncode = 0  # never waited for here: keeps Popen.__del__ quiet


def _has_active_jobs(state: QueueState) -> bool:
    return any(
        j.phase is Phase.RUNNING or (j.phase is Phase.PENDING and not j.held) for j in state.jobs
    )


def _supervisor_alive(paths: ClusterPaths) -> bool:
    try:
        pid_text, _, start = paths.supervisor_pid.read_text().strip().partition(" ")
    except FileNotFoundError:
        return False
    info = _proc_start(int(pid_text))
    return info is not None and info[0] != "Z" and info[1] == start


def _forget_supervisor(paths: ClusterPaths) -> None:
    """Remove ``supervisor.pid`` if it names this process."""
    try:
        pid_text = paths.supervisor_pid.read_text().split()[0]
    except (FileNotFoundError, IndexError):
        return
    if int(pid_text) == os.getpid():
        paths.supervisor_pid.unlink()


def _reap_children(limit: int = 1000) -> None:
    """Wait for the jobs this process started that have ended (they are not waited for
    elsewhere: their exit code comes from the exit file)."""
    for _ in range(limit):
        try:
            pid, _status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _collect_ending(job: JobRecord, paths: ClusterPaths, now: float) -> None:
    if job.deleting:
        if job.end_time is not None and now - job.end_time > 10.0:
            end_job(job, "CANCELLED", None, now)
        return
    exit_code = _read_exit_code(paths.exit_file(job.record_id))
    if exit_code is None and not _process_alive(job):
        exit_code = _read_exit_code(paths.exit_file(job.record_id))
        if exit_code is None:
            exit_code = 128 + signal.SIGKILL
    if exit_code is not None:
        end_job(job, "COMPLETED" if exit_code == 0 else "FAILED", exit_code, now)


def end_job(job: JobRecord, end_state: str, exit_code: Optional[int], now: float) -> None:
    job.phase = Phase.ENDED
    job.end_state = end_state
    job.exit_code = exit_code
    job.end_time = now
    job.deleting = False
    job.reason = "NonZeroExitCode" if end_state == "FAILED" and exit_code else "None"


def _read_exit_code(path: Path) -> Optional[int]:
    try:
        return int(path.read_text().strip())
    except FileNotFoundError:
        return None
    except ValueError:
        return None


def _proc_start(pid: int) -> Optional[tuple[str, str]]:
    """(state letter, start time in ticks) of a process, or None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return fields[0], fields[19]


def _process_alive(job: JobRecord) -> bool:
    if job.pid is None:
        return False
    info = _proc_start(job.pid)
    return info is not None and info[0] != "Z" and info[1] == job.pid_start


def _expired(job: JobRecord, config: DummyConfig, now: float) -> bool:
    return (
        job.phase is Phase.ENDED
        and job.end_time is not None
        and now - job.end_time > config.min_job_age_s
    )


def _start_pending(
    state: QueueState,
    config: DummyConfig,
    paths: ClusterPaths,
    now: float,
) -> None:
    running = sum(1 for j in state.jobs if j.phase is Phase.RUNNING)
    first_blocked: Optional[tuple] = None
    """The job (or array) that waits for a free slot first: its reason is ``Resources``."""
    for job in sorted(state.jobs, key=lambda j: j.record_id):
        if job.phase is not Phase.PENDING or job.held:
            continue
        if now - job.submit_time < config.pending_s:
            continue
        if _throttled(state, job):
            job.reason = "JobArrayTaskLimit"
            continue
        if running >= config.slots:
            key = (job.scheduler, job.array_job_id or -job.record_id)
            first_blocked = first_blocked or key
            job.reason = "Resources" if key == first_blocked else "Priority"
            continue
        if _start_job(state, config, paths, job, now):
            running += 1


def _throttled(state: QueueState, job: JobRecord) -> bool:
    if job.array_throttle is None:
        return False
    running = sum(
        1
        for j in state.jobs
        if j.phase is Phase.RUNNING
        and j.scheduler is job.scheduler
        and j.array_job_id == job.array_job_id
    )
    return running >= job.array_throttle


def _start_job(
    state: QueueState,
    config: DummyConfig,
    paths: ClusterPaths,
    job: JobRecord,
    now: float,
) -> bool:
    """Start ``job`` unless a fault hits it; True if it runs now."""
    fault = take_job_fault(state, config, job)
    if fault is not None and fault.kind is FaultKind.VANISH:
        state.jobs.remove(job)
        return False
    if fault is not None and fault.kind is FaultKind.ERROR_STATE:
        _enter_error_state(job, fault, now)
        return False
    launch = prepare_launch(job, state)
    job.start_time = now
    job.started_in_call = True
    if launch.error:
        _fail_to_start(job, launch.error, now)
        return False
    job.phase = Phase.RUNNING
    job.reason = "None"
    crash_after_s = fault.delay_s if fault is not None and fault.kind is FaultKind.CRASH else None
    _spawn(job, launch, paths, crash_after_s or None)
    if crash_after_s == 0:
        kill_job(job)
        end_job(job, "FAILED", 128 + signal.SIGKILL, now)
        return False
    return True


def _enter_error_state(job: JobRecord, fault: Fault, now: float) -> None:
    if job.scheduler is Scheduler.SGE or fault.state == "PENDING":
        job.phase = Phase.ERROR
        job.reason = fault.reason or "launch failed requeued held"
        return
    end_job(job, fault.state, None, now)
    job.reason = fault.reason or "None"


def _fail_to_start(job: JobRecord, message: str, now: float) -> None:
    if job.scheduler is Scheduler.SGE:
        job.phase = Phase.ERROR
        job.reason = message
    else:
        end_job(job, "FAILED", 1, now)


def _spawn(
    job: JobRecord, launch: Launch, paths: ClusterPaths, kill_after_s: Optional[float] = None
) -> None:
    """Start the job in a new session (its process group), under the exit-code wrapper;
    with ``kill_after_s``, a watchdog SIGKILLs the group that long after the start."""
    exit_file = paths.exit_file(job.record_id)
    if kill_after_s is None:
        wrapper = [_EXIT_WRAPPER, "batchpool-dummy-job", str(exit_file)]
    else:
        wrapper = [
            _KILLING_EXIT_WRAPPER,
            "batchpool-dummy-job",
            str(exit_file),
            f"{kill_after_s:f}",
        ]
    argv = ["/bin/sh", "-c", *wrapper, *launch.argv]
    mode = 0o666 & ~job.umask
    with contextlib.ExitStack() as stack:
        stdout = stack.enter_context(_open_output(launch.stdout, mode))
        stderr = (
            subprocess.STDOUT
            if launch.stderr is None or launch.stderr == launch.stdout
            else stack.enter_context(_open_output(launch.stderr, mode))
        )
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            cwd=launch.cwd,
            env=launch.env,
            start_new_session=True,
            umask=job.umask,
        )
    job.pid = process.pid
    info = _proc_start(process.pid)
    job.pid_start = info[1] if info is not None else ""
    process.returncode = 0  # never waited for here: keeps Popen.__del__ quiet


def _open_output(path: str, mode: int):
    """Open a job's output file for appending; a new one gets ``mode``."""
    return os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, mode), "ab")


def kill_job(job: JobRecord) -> None:
    """SIGKILL the process group of a running job (it is its session's leader)."""
    if job.pid is None or not _process_alive(job):
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(job.pid, signal.SIGKILL)


def cancel_job(job: JobRecord, now: float) -> None:
    """Cancel a job in any phase: kill it if running, end it as ``CANCELLED``."""
    if job.phase is Phase.RUNNING:
        kill_job(job)
    end_job(job, "CANCELLED", None, now)


def format_time(seconds: float) -> str:
    """Slurm's ``M:SS``, ``H:MM:SS`` or ``D-HH:MM:SS``."""
    total = max(0, int(seconds))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}-{hours:02d}:{minutes:02d}:{secs:02d}"
    if hours:
        return f"{hours}:{minutes:02d}:{secs:02d}"
    return f"{minutes}:{secs:02d}"


def iso_time(timestamp: Optional[float]) -> str:
    if timestamp is None:
        return "N/A"
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(timestamp))
