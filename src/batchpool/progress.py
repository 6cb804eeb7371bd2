"""What a running map shows, and the ``batchpool`` logger.

- On a terminal: a progress bar named after the map's function, that fits the width
  (80 columns included) with the job counts beside it.
- Elsewhere (a batch job's log, Jupyter, a pipe): a time-stamped line at most every
  ``LINE_EVERY_S`` (30) seconds and one when the map ends::

      03:40:12 batchpool: map of analysis.fit: 120/1000 tasks done; jobs: 3 pending, 5 running

- ``progress=False`` shows neither; ``verbose=True`` prints one line per event instead.

Every event (a session opened, jobs submitted, a chunk collected or lost...) also goes
to the standard ``logging`` logger ``batchpool`` (``tell``): at INFO, and at
WARNING for losses, retries, failed starts, waits and outages. The session's own
``log.jsonl`` records the same events for ``batchpool status`` and ``report``.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional, TextIO

if TYPE_CHECKING:
    from .session import Session

logger = logging.getLogger("batchpool")
logger.addHandler(logging.NullHandler())  # silent unless the application configures logging
LINE_EVERY_S = 30.0
"""Outside a terminal, the shortest time between two progress lines, of all maps: a
script of many short maps (an MCMC sampler's steps) writes one line per 30 s too."""
_last_line = [-LINE_EVERY_S]
"""When the last progress line of any map was written (time.monotonic)."""
WARNINGS = frozenset(
    ("lost", "job failed before its first task", "scheduler unreachable", "stopped", "jobs wait")
)
"""Events logged at WARNING; the others at INFO."""


def tell(session: Optional[Session], verbose: bool, message: str, **fields: object) -> None:
    """Record an event: in the session's ``log.jsonl``, to the ``batchpool`` logger, and
    on stderr when ``verbose``."""
    if session is not None:
        session.log(message, **fields)
    name = f" {session.name}" if session is not None else ""
    extra = " ".join(f"{k}={v}" for k, v in fields.items())
    level = logging.WARNING if message in WARNINGS else logging.INFO
    logger.log(level, "batchpool%s: %s %s", name, message, extra)
    if verbose:
        sys.stderr.write(f"batchpool{name}: {message} {extra}\n")


@dataclass
class JobCounts:
    """The jobs of one map, as last seen."""

    pending: int = 0
    running: int = 0
    resubmitted: int = 0
    """Chunks lost with their jobs so far (and run again, or failed)."""
    unreachable_since: str = ""
    """When the scheduler stopped answering (``HH:MM:SS``), while it does not."""
    waiting_for: str = ""
    """Why pending jobs wait, when it is not just their turn (``NodeDown``, a hold...)."""

    def text(self) -> str:
        text = f"jobs: {self.pending} pending, {self.running} running"
        if self.resubmitted:
            text += f", {self.resubmitted} lost"
        if self.waiting_for:
            text += f"; waiting for {self.waiting_for}"
        if self.unreachable_since:
            text += f"; scheduler unreachable since {self.unreachable_since}"
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
    """A map's progress (module docstring): a ``tqdm`` bar on a terminal, time-stamped
    lines elsewhere, nothing with ``show`` off or ``verbose`` on. ``title``: what the map
    runs (``map of module.function``)."""

    def __init__(
        self,
        total_tasks: int,
        title: str,
        verbose: bool,
        stream: Optional[TextIO] = None,
        show: bool = True,
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.counts = JobCounts()
        self.title = title
        self.total = total_tasks
        self.done = 0
        self._bar = None
        self._lines = show and not verbose and not self.stream.isatty()
        self._started = time.monotonic()
        self._said = False
        if show and not verbose and self.stream.isatty():
            from tqdm import tqdm  # only where a bar is shown

            columns, lines = _terminal_size(self.stream)
            name = title.rsplit(".", 1)[-1]
            self._bar = tqdm(
                total=total_tasks,
                desc=name if len(name) <= 20 else name[:19] + "…",
                unit="task",
                file=self.stream,
                leave=False,
                ncols=columns,
                nrows=lines,
            )

    def advance(self, num_tasks: int) -> None:
        self.done += num_tasks
        if self._bar is not None:
            self._bar.update(num_tasks)
            self._bar.set_postfix_str(self.counts.text(), refresh=False)
        self._line_if_due()

    def show_jobs(self, pending: int, running: int, waiting_for: str, unreachable: bool) -> None:
        """The jobs as a status query found them (``unreachable``: it failed)."""
        self.counts.pending, self.counts.running = pending, running
        self.counts.waiting_for = waiting_for
        self.counts.unreachable_since = time.strftime("%H:%M:%S") if unreachable else ""
        if self._bar is not None:
            self._bar.set_postfix_str(self.counts.text())
        self._line_if_due()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        if self._lines and (self._said or self._due()):
            self._line()  # the end of a map that showed progress, or the first in 30 s
        self._lines = False

    def _due(self) -> bool:
        return time.monotonic() - _last_line[0] >= LINE_EVERY_S

    def _line_if_due(self) -> None:
        if self._lines and self._due() and time.monotonic() - self._started >= LINE_EVERY_S:
            self._line()

    def _line(self) -> None:
        _last_line[0] = time.monotonic()
        self._said = True
        stamp = time.strftime("%H:%M:%S")
        done = f"{self.done}/{self.total} tasks done"
        self.stream.write(f"{stamp} batchpool: {self.title}: {done}; {self.counts.text()}\n")
        self.stream.flush()
