"""What a running map shows: a progress bar on a terminal, state changes when verbose."""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from typing import Optional, TextIO


@dataclass
class JobCounts:
    """The jobs of one map, as last seen."""

    pending: int = 0
    running: int = 0
    failed: int = 0
    """Jobs that ended in an error state or vanished, so far."""
    resubmitted: int = 0
    unreachable_since: str = ""
    """When the scheduler stopped answering (``HH:MM:SS``), while it does not."""
    waiting_for: str = ""
    """Why pending jobs wait, when it is not just their turn (``NodeDown``, a hold...)."""

    def text(self) -> str:
        text = (
            f"pending={self.pending} running={self.running} "
            f"failed={self.failed} resubmitted={self.resubmitted}"
        )
        if self.waiting_for:
            text += f" waiting for: {self.waiting_for}"
        if self.unreachable_since:
            text += f" scheduler unreachable since {self.unreachable_since}"
        return text


def _terminal_size(stream: TextIO) -> tuple[int, int]:
    """The terminal's columns and lines; 80x24 where it says 0 (a new pseudo-terminal
    does, and tqdm then hides its bar)."""
    try:
        size = os.get_terminal_size(stream.fileno())
    except (OSError, ValueError):
        return 80, 24
    return size.columns or 80, size.lines or 24


class Progress:
    """A ``tqdm`` bar of tasks done, with the job counts, when ``stream`` is a terminal
    and ``verbose`` is off; otherwise nothing (``verbose`` prints lines of its own)."""

    def __init__(
        self, total_tasks: int, title: str, verbose: bool, stream: Optional[TextIO] = None
    ) -> None:
        stream = stream if stream is not None else sys.stderr
        self.counts = JobCounts()
        self._bar = None
        if not verbose and stream.isatty():
            from tqdm import tqdm  # only where a bar is shown

            columns, lines = _terminal_size(stream)
            self._bar = tqdm(
                total=total_tasks,
                desc=title,
                unit="task",
                file=stream,
                leave=False,
                ncols=columns,
                nrows=lines,
            )

    def advance(self, num_tasks: int) -> None:
        if self._bar is not None:
            self._bar.update(num_tasks)
            self._bar.set_postfix_str(self.counts.text(), refresh=False)

    def show_jobs(self, pending: int, running: int, waiting_for: str, unreachable: bool) -> None:
        """The jobs as a status query found them (``unreachable``: it failed)."""
        self.counts.pending, self.counts.running = pending, running
        self.counts.waiting_for = waiting_for
        self.counts.unreachable_since = time.strftime("%H:%M:%S") if unreachable else ""
        if self._bar is not None:
            self._bar.set_postfix_str(self.counts.text())

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
