"""The one place that runs scheduler programs: timeout, bounded retries, SchedulerError."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Callable, Optional

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


def run_command(
    argv: Sequence[str],
    policy: CommandPolicy = CommandPolicy(),
    accept: Callable[[subprocess.CompletedProcess], bool] = _default_accept,
    stdin_text: Optional[str] = None,
    env: Optional[Mapping[str, str]] = None,
) -> subprocess.CompletedProcess:
    """Run ``argv`` until ``accept`` likes the result, at most ``1 + num_retries`` times.

    ``env`` replaces the environment of the command (default: this process's).

    Raises
    ------
    SchedulerError
        With the command, the last exit code, stdout and stderr, once the tries
        are used up, or at once if the program does not exist.
    """
    argv = [str(a) for a in argv]
    last: Optional[subprocess.CompletedProcess] = None
    timed_out = False
    for attempt in range(1 + policy.num_retries):
        if attempt > 0:
            time.sleep(policy.backoff_s * 2 ** (attempt - 1))
        try:
            last = subprocess.run(
                argv,
                input=stdin_text,
                capture_output=True,
                text=True,
                errors="replace",
                timeout=policy.timeout_s,
                stdin=None if stdin_text is not None else subprocess.DEVNULL,
                env=None if env is None else dict(env),
                umask=0o077,  # Slurm creates the job's output files with the submitter's umask
            )
        except FileNotFoundError as error:
            raise SchedulerError(
                f"The scheduler program {argv[0]!r} does not exist. Is the scheduler installed "
                "and on PATH, or is its *_path option right?",
                command=argv,
                stderr=str(error),
            ) from None
        except subprocess.TimeoutExpired as expired:
            timed_out = True
            last = subprocess.CompletedProcess(
                argv, returncode=-1, stdout=_text(expired.stdout), stderr=_text(expired.stderr)
            )
            continue
        timed_out = False
        if accept(last):
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


def _text(data: object) -> str:
    if isinstance(data, bytes):
        return data.decode(errors="replace")
    return data if isinstance(data, str) else ""
