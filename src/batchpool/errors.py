"""The errors of batchpool.

::

    Exception
     └── PoolError               something went wrong around the tasks; names the kept session
          ├── JobsLostError      chunks whose jobs failed more often than max_num_resubmissions
          ├── SchedulerError     a scheduler command kept failing (command, exit code, output)
          └── RemoteError        a task raised an exception that cannot be rebuilt here

A task that raises an exception which *can* be rebuilt is re-raised with its own
type, as ``multiprocessing.Pool`` does; its ``__cause__`` is a
:class:`RemoteTraceback` with the remote traceback text.
"""

from __future__ import annotations

import multiprocessing.pool
from collections.abc import Sequence
from pathlib import Path
from typing import Optional


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

    def __reduce__(self):  # keep both arguments when pickled
        return (type(self), (self.message, self.session_dir))


class JobsLostError(PoolError):
    """Chunks whose jobs failed or vanished more than ``max_num_resubmissions`` times."""

    def __init__(
        self, message: str, session_dir: Optional[Path] = None, chunks: Sequence[int] = ()
    ) -> None:
        super().__init__(message, session_dir)
        self.chunks = tuple(chunks)

    def __reduce__(self):
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

    def __reduce__(self):
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

    def __reduce__(self):
        return (type(self), (self.message, self.session_dir, self.type_name, self.traceback_text))


RemoteTraceback = multiprocessing.pool.RemoteTraceback
"""The ``__cause__`` of a re-raised task exception, as ``multiprocessing`` gives it: the
remote traceback as text, in ``.tb``."""
