"""The errors of batchpool.

::

    Exception
     └── PoolError               something went wrong around the tasks; names the kept session
          ├── JobsLostError      chunks whose jobs failed more often than max_num_resubmissions
          ├── SchedulerError     a scheduler command kept failing, or printed what cannot be
          │                      read (command, exit code, output)
          ├── RemoteError        a task raised an exception that cannot be rebuilt here
          ├── BrokenEnvironmentError  jobs fail before their first task, with the same stderr
          ├── SessionBusyError   another live driver drives the session of this map
          ├── ResultsError       a session's stored results cannot be read here
          ├── NotASessionError   a path that is not a session directory (also a ValueError)
          ├── ConfigError        a profile, config file or BATCHPOOL_* variable that cannot be
          │                      used (also a ValueError); raised before anything is submitted
          └── TaskKilledError    a task's worker was killed while it ran that task
               ├── WorkerCrashedError  the task crashed its worker (exit code, signal) twice
               ├── TaskTimeoutError    the task alone exceeds the jobs' time limit
               └── TaskMemoryError     the task alone exceeds the jobs' memory limit

A :class:`TaskKilledError` is that task's result: it is raised by ``map``, ``imap``
and ``AsyncResult.get`` like an exception the task raised; the other tasks run on.

A task that raises an exception which *can* be rebuilt is re-raised with its own
type, as ``multiprocessing.Pool`` does; its ``__cause__`` is a
:class:`RemoteTraceback` with the remote traceback text.
"""

from __future__ import annotations

import multiprocessing.pool
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional


class PoolError(Exception):
    """Base of batchpool's own errors. ``session_dir`` is where the session is kept."""

    def __init__(self, message: str, session_dir: Optional[Path] = None) -> None:
        self.message = message
        self.session_dir = session_dir
        super().__init__(message)

    def __str__(self) -> str:
        if self.session_dir is None:
            return self.message
        return f"{self.message}\nThe session directory is kept at {self.session_dir}"

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:  # keep both arguments when pickled
        return (type(self), (self.message, self.session_dir))


class JobsLostError(PoolError):
    """Chunks whose jobs failed or vanished more than ``max_num_resubmissions`` times."""

    def __init__(
        self, message: str, session_dir: Optional[Path] = None, chunks: Sequence[int] = ()
    ) -> None:
        super().__init__(message, session_dir)
        self.chunks = tuple(chunks)

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return (type(self), (self.message, self.session_dir, self.chunks))


class SchedulerError(PoolError):
    """A scheduler command failed after its retries."""

    def __init__(
        self,
        message: str,
        session_dir: Optional[Path] = None,
        command: Sequence[str] = (),
        returncode: Optional[int] = None,
        stdout: str = "",
        stderr: str = "",
    ) -> None:
        super().__init__(message, session_dir)
        self.command = list(command)
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr

    def __str__(self) -> str:
        details = (
            f"{self.message}\n  command: {' '.join(self.command)}\n"
            f"  exit code: {self.returncode}\n"
            f"  stdout: {self.stdout.strip()[-2000:]}\n  stderr: {self.stderr.strip()[-2000:]}"
        )
        if self.session_dir is None:
            return details
        return f"{details}\nThe session directory is kept at {self.session_dir}"

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return (
            type(self),
            (
                self.message,
                self.session_dir,
                self.command,
                self.returncode,
                self.stdout,
                self.stderr,
            ),
        )


class RemoteError(PoolError):
    """A task raised an exception that could not be rebuilt in the driver."""

    def __init__(
        self,
        message: str,
        session_dir: Optional[Path] = None,
        type_name: str = "",
        traceback_text: str = "",
    ) -> None:
        super().__init__(message, session_dir)
        self.type_name = type_name
        self.traceback_text = traceback_text

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return (type(self), (self.message, self.session_dir, self.type_name, self.traceback_text))


RemoteTraceback = multiprocessing.pool.RemoteTraceback  # type: ignore[attr-defined]
"""The ``__cause__`` of a re-raised task exception, as ``multiprocessing`` gives it: the
remote traceback as text, in ``.tb``."""


class BrokenEnvironmentError(PoolError):
    """Jobs ended before their worker took any task, and two of them said the same on
    stderr: retrying cannot help (``python_path``, modules or ``work_dir`` on the nodes)."""

    def __init__(self, message: str, session_dir: Optional[Path] = None, stderr: str = "") -> None:
        super().__init__(message, session_dir)
        self.stderr = stderr

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return (type(self), (self.message, self.session_dir, self.stderr))


class SessionBusyError(PoolError):
    """Another live driver drives this session (host, pid and heartbeat in the message)."""


class ResultsError(PoolError):
    """A session whose stored results cannot be read here."""


class NotASessionError(PoolError, ValueError):
    """A path that is not a batchpool session directory (``session_dir`` is that path)."""


class ConfigError(PoolError, ValueError):
    """A configuration file, profile or ``BATCHPOOL_*`` variable that cannot be used
    (:mod:`batchpool.config`); raised when the pool is made, before any submission."""


class TaskKilledError(PoolError):
    """The worker running task ``index`` was killed while it ran it (subclasses say why).

    It stands for that task's result; the other tasks of the map are not affected.
    ``argument`` is a short ``repr`` of the task's argument, ``attempts`` what happened
    to each job that ran it (job id, node, how it ended).
    """

    def __init__(
        self,
        message: str,
        session_dir: Optional[Path] = None,
        index: int = -1,
        argument: str = "",
        attempts: Sequence[str] = (),
    ) -> None:
        super().__init__(message, session_dir)
        self.index = index
        self.argument = argument
        self.attempts = tuple(attempts)

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return (
            type(self),
            (self.message, self.session_dir, self.index, self.argument, self.attempts),
        )


class WorkerCrashedError(TaskKilledError):
    """The task ended its worker process (``os._exit``, a segfault in C code, a signal)
    each time it ran: its exit code or signal and the end of its stderr are in the message."""


class TaskTimeoutError(TaskKilledError):
    """The task alone runs longer than the jobs' time limit (``time``), even
    in a chunk of its own (and with ``max_time``, where given)."""


class TaskMemoryError(TaskKilledError):
    """The task alone needs more memory than the jobs may have (``mem``, up to ``max_mem``)."""
