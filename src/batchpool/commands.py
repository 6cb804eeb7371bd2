"""The one place that runs scheduler programs: timeout, bounded retries, SchedulerError."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Callable, Optional, TypeVar

from .errors import SchedulerError


@dataclass(frozen=True)
class CommandPolicy:
    """How scheduler commands are run. Every backend takes one (``command_policy=``)."""

    timeout_s: float = 60.0
    """Longest a single call may take before it is killed and counts as failed."""
    num_retries: int = 4
    """Further tries after the first failed one."""
    backoff_s: float = 1.0
    """Wait before the first retry; doubles with each retry."""


def _default_accept(result: subprocess.CompletedProcess) -> bool:
    return result.returncode == 0


class Cancelled(Exception):
    """A scheduler command was given up because the pool is being terminated."""


_CANCEL_CHECK_S = 0.1


def run_command(
    argv: Sequence[str],
    policy: CommandPolicy = CommandPolicy(),
    accept: Callable[[subprocess.CompletedProcess], bool] = _default_accept,
    stdin_text: Optional[str] = None,
    env: Optional[Mapping[str, str]] = None,
    cancel: Optional[threading.Event] = None,
) -> subprocess.CompletedProcess:
    """Run ``argv`` until ``accept`` likes the result, at most ``1 + num_retries`` times.

    ``env`` replaces the environment of the command (default: this process's).
    Setting ``cancel`` kills a running try and ends the waits between tries within
    0.1 s: :class:`Cancelled` is raised.

    Raises
    ------
    SchedulerError
        With the command, the last exit code, stdout and stderr, once the tries
        are used up, or at once if the program does not exist.
    Cancelled
        If ``cancel`` was set.
    """
    argv = [str(a) for a in argv]
    cancel = cancel if cancel is not None else threading.Event()
    last: Optional[subprocess.CompletedProcess] = None
    timed_out = False
    for attempt in range(1 + policy.num_retries):
        if attempt > 0 and cancel.wait(policy.backoff_s * 2 ** (attempt - 1)):
            raise Cancelled(" ".join(argv))
        last, timed_out = _run_once(argv, policy.timeout_s, stdin_text, env, cancel)
        if not timed_out and accept(last):
            return last
    assert last is not None
    what = f"timed out after {policy.timeout_s} s" if timed_out else "failed"
    raise SchedulerError(
        f"The scheduler command {what} {1 + policy.num_retries} times.",
        command=argv,
        returncode=last.returncode,
        stdout=last.stdout or "",
        stderr=last.stderr or "",
    )


T = TypeVar("T")


def parsed(parse: Callable[[str], T], result: subprocess.CompletedProcess) -> T:
    """``parse(result.stdout)``: the one way every backend reads a scheduler program's
    output. Output that ``parse`` cannot read (it raises ValueError) is a
    :class:`~batchpool.SchedulerError` with the command, the error (naming the line) and
    the whole output."""
    try:
        return parse(result.stdout)
    except ValueError as error:
        program = os.path.basename(str(result.args[0])) if result.args else "the scheduler"
        raise SchedulerError(
            f"{program} printed output batchpool cannot read: {error}",
            command=[str(a) for a in result.args],
            returncode=result.returncode,
            stdout=result.stdout or "",
            stderr=result.stderr or "",
        ) from None


def _run_once(
    argv: list[str],
    timeout_s: float,
    stdin_text: Optional[str],
    env: Optional[Mapping[str, str]],
    cancel: threading.Event,
) -> tuple[subprocess.CompletedProcess, bool]:
    """One try: the result, and whether it timed out (then killed, with its children)."""
    if cancel.is_set():
        raise Cancelled(" ".join(argv))
    try:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE if stdin_text is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
            env=None if env is None else dict(env),
            umask=0o077,  # Slurm creates the job's output files with the submitter's umask
            start_new_session=True,  # a site's wrapper script is killed with its children
        )
    except FileNotFoundError as error:
        raise SchedulerError(
            f"The scheduler program {argv[0]!r} does not exist. Is the scheduler installed "
            "and on PATH, or is its *_path option right?",
            command=argv,
            stderr=str(error),
        ) from None
    deadline = time.monotonic() + timeout_s
    stdin: Optional[str] = stdin_text
    while True:
        try:
            stdout, stderr = process.communicate(stdin, timeout=_CANCEL_CHECK_S)
            return subprocess.CompletedProcess(argv, process.returncode, stdout, stderr), False
        except subprocess.TimeoutExpired:
            stdin = None  # sent already; communicate() goes on where it was
        if cancel.is_set() or time.monotonic() >= deadline:
            stdout, stderr = _kill(process)
            if cancel.is_set():
                raise Cancelled(" ".join(argv))
            return subprocess.CompletedProcess(argv, -1, stdout, stderr), True


def _kill(process: subprocess.Popen) -> tuple[str, str]:
    """Kill the command and everything it started; what it printed until then."""
    with contextlib.suppress(ProcessLookupError):  # it ended meanwhile
        os.killpg(process.pid, signal.SIGKILL)
    try:
        return process.communicate(timeout=_CANCEL_CHECK_S * 10)
    except subprocess.TimeoutExpired:  # something outside the group holds its output
        process.kill()
        process.wait()
        return "", ""
