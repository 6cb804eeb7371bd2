"""The session directory of one map: the one owner of its file layout.

::

    WORK_DIR/SESSION/            mode 0700, files 0600
        function.pkl             (initializer, initargs, function), cloudpickled
        tasks.pkl                the chunks' task lists, pickled one after the other
        tasks.idx                16 bytes a chunk: start and stop offset in tasks.pkl
        environment.pkl          the driver's environment, sys.path and working directory
        session.json             number of tasks, chunksize, backend, function name
        results/CHUNK.pkl        a worker's envelopes, written under a temporary name
        logs/                    the jobs' stdout and stderr while they run
        results.archive          collected results, folded in while the map runs
        logs.archive             collected stdout and stderr of finished jobs
        jobs.jsonl               every submission: chunk, job id, log paths
        log.jsonl                what the pool did
        driver.lock              host, pid and heartbeat of the driver driving it now
        done                     written when the map succeeded

Writes of whole files are atomic (temporary name, then rename); the archives
and journals are appended to, and a torn last record is ignored when read.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import logging
import os
import pickle
import shutil
import socket
import struct
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import json_line_logger

from . import worker
from .backend import Job

_RECORD_HEADER = struct.Struct("<Q")
_CHUNK_HEADER = struct.Struct("<Q")  # a results.archive record: chunk number, then the payload


@dataclass(frozen=True)
class JournalEntry:
    """One line of ``jobs.jsonl``: a job was submitted for a chunk."""

    chunk: int
    job_id: str
    stdout_path: str
    stderr_path: str

    def job(self) -> Job:
        return Job(self.chunk, self.job_id, Path(self.stdout_path), Path(self.stderr_path))


@dataclass(frozen=True)
class Manifest:
    """``session.json``: what the map was, for tools that read a session later."""

    num_tasks: int
    chunksize: int
    num_chunks: int
    backend: str
    function: str
    created: str

    def chunk_tasks(self, chunk: int) -> range:
        """The task indices of ``chunk``."""
        start = chunk * self.chunksize
        return range(start, min(start + self.chunksize, self.num_tasks))


@dataclass(frozen=True)
class LogRecord:
    """The stdout and stderr of one finished job, as kept in ``logs.archive``."""

    chunk: int
    job_id: str
    stdout: str
    stderr: str


STALE_LOCK_S = 120.0
"""A lock of a driver on another host whose heartbeat is older than this is stale."""
HEARTBEAT_S = 10.0
"""How often a live driver renews its lock."""


class SessionBusyError(OSError):
    """Another live driver drives this session."""


@dataclass(frozen=True)
class DriverLock:
    """Who drives a session: the content of ``driver.lock``."""

    host: str
    pid: int
    heartbeat: float

    @classmethod
    def mine(cls) -> DriverLock:
        return cls(socket.gethostname(), os.getpid(), time.time())

    def is_mine(self) -> bool:
        return (self.host, self.pid) == (socket.gethostname(), os.getpid())

    def is_stale(self, now: float) -> bool:
        if self.host == socket.gethostname():
            return not _process_alive(self.pid)
        return now - self.heartbeat > STALE_LOCK_S


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # somebody else's process
    try:  # a zombie is dead, though kill() still finds it
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] not in ("Z", "X")
    except OSError:
        return True


LAYOUT_VERSION = 2
"""Changes with the format of the session's files (2: ``results.archive`` records are the
chunk number and the payload). It is part of the session key, so a session written in
another layout is never resumed, only started anew."""


def session_key(parts: Sequence[bytes]) -> str:
    """A digest of everything that makes two maps "the same map", and of the layout."""
    digest = hashlib.sha256(b"layout %d" % LAYOUT_VERSION)
    for part in parts:
        digest.update(_RECORD_HEADER.pack(len(part)))
        digest.update(part)
    return digest.hexdigest()[:16]


class Session:
    """The files of one map: :meth:`create` a new one, or ``Session(dir)`` an existing one."""

    def __init__(self, directory: Path) -> None:
        self.dir = Path(directory)
        self._logger: logging.Logger | None = None

    @classmethod
    def create(cls, work_dir: Path, key: str) -> Session:
        """Make a new, private session directory inside ``work_dir``."""
        work_dir = Path(work_dir).absolute()
        work_dir.mkdir(parents=True, exist_ok=True)
        stamp = datetime.datetime.now().strftime("%Y%m%dT%H%M%S")
        for n in range(1000):
            name = f"{stamp}_{key}" if n == 0 else f"{stamp}_{key}_{n}"
            try:
                (work_dir / name).mkdir(mode=0o700)
            except FileExistsError:
                continue
            break
        else:
            raise FileExistsError(f"no free session name for {key} in {work_dir}")
        session = cls(work_dir / name)
        os.chmod(session.dir, 0o700)  # mkdir's mode is masked by the umask
        session.acquire()  # before anything else, so that no one re-attaches to it half-made
        for sub in (worker.RESULTS_DIR, "logs"):
            (session.dir / sub).mkdir(mode=0o700)
        return session

    @classmethod
    def find_unfinished(cls, work_dir: Path, key: str) -> Session | None:
        """The newest complete session of ``key`` in ``work_dir`` that has not succeeded.

        Complete: its ``session.json``, written last, exists."""
        work_dir = Path(work_dir).absolute()
        if not work_dir.is_dir():
            return None
        names = [p.name for p in work_dir.iterdir() if p.name.split("_")[1:2] == [key]]
        for name in sorted(names, reverse=True):
            session = cls(work_dir / name)
            if (session.dir / "session.json").exists() and not session.is_done():
                return session
        return None

    # -- the driver lock -------------------------------------------------------------

    @property
    def lock_path(self) -> Path:
        return self.dir / "driver.lock"

    def acquire(self) -> None:
        """Become this session's driver; take over a stale lock.

        Raises
        ------
        SessionBusyError
            If another driver that is alive holds the lock.
        """
        for _ in range(3):  # a lost race against another driver is tried again
            try:
                fd = os.open(self.lock_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                holder = self.lock_holder()
                if holder is not None and not holder.is_stale(time.time()):
                    raise SessionBusyError(
                        f"the session {self.dir} is driven by process {holder.pid} on "
                        f"{holder.host} (heartbeat {time.ctime(holder.heartbeat)})"
                    ) from None
                stale = self.lock_path.with_name(f"driver.lock.stale.{os.getpid()}")
                try:
                    os.rename(self.lock_path, stale)
                except FileNotFoundError:
                    continue
                stale.unlink()
                continue
            with os.fdopen(fd, "w") as f:
                json.dump(asdict(DriverLock.mine()), f)
            return
        raise SessionBusyError(f"could not take the lock of {self.dir}")

    def lock_holder(self) -> DriverLock | None:
        try:
            return DriverLock(**json.loads(self.lock_path.read_text()))
        except (FileNotFoundError, json.JSONDecodeError, TypeError):
            return None  # gone, or half written by a crashed driver

    def heartbeat(self) -> None:
        write_file(self.lock_path, json.dumps(asdict(DriverLock.mine())).encode())

    def release(self) -> None:
        holder = self.lock_holder()
        if holder is not None and holder.pid == os.getpid() and self.lock_path.exists():
            self.lock_path.unlink()

    @property
    def name(self) -> str:
        return self.dir.name

    @property
    def job_name(self) -> str:
        """The scheduler job name of this session's jobs (starts with a letter, as SGE wants)."""
        return "bp_" + self.name

    @property
    def results_dir(self) -> Path:
        return self.dir / worker.RESULTS_DIR

    @property
    def log_dir(self) -> Path:
        return self.dir / "logs"

    # -- what the driver writes before submitting --------------------------------

    def write_function(self, payload: bytes) -> None:
        write_file(self.dir / worker.FUNCTION_FILE, payload)

    def write_tasks(self, chunk_payloads: Sequence[bytes]) -> None:
        """Write every chunk's pickled task list into one file, with an index of offsets."""
        index = bytearray()
        offset = 0
        for payload in chunk_payloads:
            index += offset.to_bytes(8, "little") + (offset + len(payload)).to_bytes(8, "little")
            offset += len(payload)
        write_file(self.dir / worker.TASKS_FILE, b"".join(chunk_payloads))
        write_file(self.dir / worker.TASKS_INDEX_FILE, bytes(index))

    def write_manifest(self, manifest: Manifest) -> None:
        """Written last: a session with a manifest is complete."""
        write_file(self.dir / "session.json", json.dumps(asdict(manifest), indent=1).encode())

    def manifest(self) -> Manifest:
        return Manifest(**json.loads((self.dir / "session.json").read_text()))

    def write_environment(self) -> None:
        snapshot = {"environ": dict(os.environb), "sys_path": list(sys.path), "cwd": os.getcwd()}
        write_file(self.dir / worker.ENVIRONMENT_FILE, pickle.dumps(snapshot))

    # -- results -------------------------------------------------------------------

    def result_path(self, chunk: int) -> Path:
        return self.results_dir / f"{chunk}.pkl"

    def new_result_chunks(self) -> list[int]:
        """Chunks whose result file is complete (temporary files are skipped)."""
        chunks = []
        with os.scandir(self.results_dir) as entries:
            for entry in entries:
                stem, dot, ext = entry.name.partition(".")
                if ext == "pkl" and stem.isdigit():
                    chunks.append(int(stem))
        return chunks

    def collect_result(self, chunk: int) -> bytes:
        """Read a chunk's result, fold it into the archive and remove its file."""
        path = self.result_path(chunk)
        payload = path.read_bytes()
        append_record(self.dir / "results.archive", _CHUNK_HEADER.pack(chunk), payload)
        path.unlink()
        return payload

    def archived_results(self) -> dict[int, bytes]:
        results = {}
        for record in read_records(self.dir / "results.archive"):
            (chunk,) = _CHUNK_HEADER.unpack_from(record)
            results[chunk] = record[_CHUNK_HEADER.size :]
        return results

    # -- jobs and their logs -------------------------------------------------------

    def record_jobs(self, jobs: Sequence[Job]) -> None:
        lines = "".join(
            json.dumps(
                asdict(JournalEntry(j.chunk, j.job_id, str(j.stdout_path), str(j.stderr_path)))
            )
            + "\n"
            for j in jobs
        )
        append_text(self.dir / "jobs.jsonl", lines)

    def journal(self) -> list[JournalEntry]:
        return [JournalEntry(**fields) for fields in read_json_lines(self.dir / "jobs.jsonl")]

    def fold_logs(self, jobs: Sequence[Job]) -> None:
        """Move the stdout and stderr files of finished jobs into ``logs.archive``."""
        for job in jobs:
            record = LogRecord(
                job.chunk, job.job_id, read_text(job.stdout_path), read_text(job.stderr_path)
            )
            append_record(self.dir / "logs.archive", pickle.dumps(record))
            for path in (job.stdout_path, job.stderr_path):
                if path.exists():
                    path.unlink()

    def logs(self) -> list[LogRecord]:
        return [pickle.loads(payload) for payload in read_records(self.dir / "logs.archive")]

    def stderr_tail(self, job: Job, num_lines: int = 10) -> str:
        """The last lines of a job's stderr, from its file or from the archive."""
        text = read_text(job.stderr_path)
        if not text:
            for record in self.logs():
                if record.job_id == job.job_id and record.chunk == job.chunk:
                    text = record.stderr
        return "\n".join(text.rstrip("\n").splitlines()[-num_lines:])

    # -- the pool's own log and the end of a session ---------------------------------

    def log(self, message: str, **fields: object) -> None:
        """Append one line to ``log.jsonl``."""
        if self._logger is None:
            self._logger = _jsonl_logger(self.log_path)
        text = message + ("" if not fields else " " + json.dumps(fields, default=str))
        self._logger.info(json.dumps(text)[1:-1])

    def close_log(self) -> None:
        if self._logger is not None:
            json_line_logger.shutdown(self._logger)
            self._logger = None

    def mark_done(self) -> None:
        write_file(self.dir / "done", b"")

    def remove(self) -> None:
        self.close_log()
        shutil.rmtree(self.dir)

    def result_payloads(self) -> dict[int, bytes]:
        """Every result there is: archived, and result files not yet collected."""
        payloads = self.archived_results()
        for chunk in self.new_result_chunks():
            if chunk not in payloads:
                try:
                    payloads[chunk] = self.result_path(chunk).read_bytes()
                except FileNotFoundError:  # collected by a live driver meanwhile
                    payloads.update(self.archived_results())
        return payloads

    def is_done(self) -> bool:
        """True once the map of this session succeeded."""
        return (self.dir / "done").exists()

    @property
    def log_path(self) -> Path:
        return self.dir / "log.jsonl"


def _jsonl_logger(path: Path) -> logging.Logger:
    # json_line_logger.LoggerFile truncates; a resumed session appends.
    logger = logging.Logger(name=str(path))
    handler = logging.FileHandler(filename=path, mode="a")
    handler.setFormatter(
        logging.Formatter(fmt=json_line_logger.FMT, datefmt=json_line_logger.DATEFMT_ISO8601)
    )
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    os.chmod(path, 0o600)
    return logger


def write_file(path: Path, payload: bytes) -> None:
    """Write a private file atomically."""
    worker.write_atomically(str(path), payload)


def append_record(path: Path, *parts: bytes) -> None:
    """Append one record, the concatenation of ``parts`` (written one by one, not copied)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "ab") as f:
        f.write(_RECORD_HEADER.pack(sum(len(part) for part in parts)))
        for part in parts:
            f.write(part)


def read_records(path: Path) -> Iterator[bytes]:
    """The records of an archive; a torn last record (a crash while appending) ends it."""
    if not path.exists():
        return
    data = path.read_bytes()
    pos = 0
    while pos + _RECORD_HEADER.size <= len(data):
        (size,) = _RECORD_HEADER.unpack_from(data, pos)
        start = pos + _RECORD_HEADER.size
        if start + size > len(data):
            return
        yield data[start : start + size]
        pos = start + size


def append_text(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as f:
        f.write(text)


def read_json_lines(path: Path) -> list[dict]:
    if not path.exists():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            break  # a torn last line
    return rows


def read_text(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return ""
