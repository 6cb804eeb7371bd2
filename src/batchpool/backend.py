"""What a backend is: :class:`Job`, :class:`JobState` and the :class:`Backend` protocol.

A backend only speaks its scheduler's syntax. It builds a command line, runs
it through :func:`batchpool.commands.run_command` and parses the output. It
never sleeps, retries on its own, or decides where session files live: the
proto-pool owns all of that.
"""

from __future__ import annotations

import enum
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Protocol, runtime_checkable

from .worker import format_chunks


class JobState(enum.Enum):
    """A job's state as far as the pool cares."""

    PENDING = "pending"
    """Waiting in the queue (held jobs too)."""
    RUNNING = "running"
    """Running, or finishing (Slurm ``COMPLETING``)."""
    FAILED = "failed"
    """An error state: the job will not finish by itself. The pool deletes and resubmits it."""
    ENDED = "ended"
    """The scheduler says the job ended; its result should be on disk (or it is lost)."""


@dataclass(frozen=True)
class JobStatus:
    state: JobState
    reason: str = ""
    """The scheduler's own words (Slurm state and reason, SGE state letters)."""


@dataclass(frozen=True)
class Job:
    """One submitted job (or one array element) that runs one chunk."""

    chunk: int
    job_id: str
    stdout_path: Path
    stderr_path: Path


@dataclass(frozen=True)
class Submission:
    """What the proto-pool asks a backend to submit: one job per chunk.

    A backend that submits arrays turns the chunks into one array whose element
    ``i`` runs ``chunks[i]``; see :meth:`worker_argv`.
    """

    session_dir: Path
    job_name: str
    chunks: tuple[int, ...]
    python_path: str
    log_dir: Path
    max_running: Optional[int] = None
    """Cap on running jobs of this submission, for backends with ``throttles = True``."""

    def worker_argv(self, chunks: Sequence[int], index_var: Optional[str] = None) -> list[str]:
        """The worker's command line.

        Without ``index_var`` it runs the single chunk in ``chunks``; with it,
        it runs ``chunks[int($index_var)]`` (an array element's own index).
        """
        argv = [
            self.python_path,
            "-m",
            "batchpool.worker",
            str(self.session_dir),
            format_chunks(chunks),
        ]
        if index_var is not None:
            argv += ["--index-var", index_var]
        elif len(chunks) != 1:
            raise ValueError("a worker without index_var runs exactly one chunk")
        return argv

    def worker_command(self, chunks: Sequence[int], index_var: Optional[str] = None) -> str:
        """:meth:`worker_argv` as one shell-quoted line, for ``--wrap`` and job scripts."""
        return shlex.join(self.worker_argv(chunks, index_var))


@runtime_checkable
class Backend(Protocol):
    """The three things a scheduler must do for the proto-pool."""

    name: str
    """Short name used in the session (``local``, ``slurm``, ``slurm.array``, ``sge``)."""

    throttles: bool
    """True if :meth:`submit` honours ``Submission.max_running`` itself."""

    def max_chunks_per_submit(self) -> int:
        """How many chunks one :meth:`submit` call may carry (1 for one job per call)."""
        ...

    def submit(self, submission: Submission) -> list[Job]:
        """Submit one job per chunk of ``submission``; return them in the order of its chunks."""
        ...

    def status(self, job_name: str, jobs: Sequence[Job]) -> dict[str, JobStatus]:
        """One query for all ``jobs``. Jobs missing from the answer are no longer in the queue."""
        ...

    def delete(self, jobs: Sequence[Job]) -> None:
        """Delete ``jobs``; a job that is already gone is not an error."""
        ...


def filtered_stderr(backend: Backend, text: str) -> str:
    """``text`` through the backend's optional ``filter_stderr`` (the scheduler's own noise
    lines removed before a job's stderr is shown to the user)."""
    noise_filter = getattr(backend, "filter_stderr", None)
    return text if noise_filter is None else noise_filter(text)
