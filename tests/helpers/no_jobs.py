"""The unit tier's guard: no job, no worker and no scheduler program runs in
``tests/unit`` (``tests/README.rst``).

``tests/unit/conftest.py`` watches each unit test, from the setup of its fixtures to
their teardown, with :func:`watching`: every ``subprocess.Popen`` of the test's process
is judged by :func:`job_start`, a ``multiprocessing`` pool counts as a job too, and
:data:`SITE_DIR` goes on ``PYTHONPATH`` so that every Python started below the test (a
driver script's pool, a dummy scheduler and the jobs it starts) judges its own command
line as it starts (``sitecustomize``; it shadows any other ``sitecustomize`` in those
processes, and changes nothing else in them). Whatever is found is appended to the
test's log file (:data:`LOG_VARIABLE` names it), and the test fails.

Kept to the standard library: the processes below a test load this module by its path.
"""

from __future__ import annotations

import contextlib
import multiprocessing.pool
import os
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Optional, Union

LOG_VARIABLE = "BATCHPOOL_TESTS_NO_JOBS_LOG"
"""Names the file that the watched processes append what they started to."""
SITE_DIR = Path(__file__).resolve().parent / "no_jobs_site"
"""Holds the ``sitecustomize`` that makes a Python started below a test judge itself."""
JOB_MODULES = {
    "batchpool.worker": "a batchpool worker (a job's program)",
    "batchpool.testing": "a dummy scheduler program",
}
"""The modules that a Python may not run as ``-m MODULE`` in a unit test."""
_OPTIONS_WITH_A_VALUE = ("-W", "-X", "-Q")


def job_start(argv: Sequence[Union[str, bytes, os.PathLike]]) -> Optional[str]:
    """What ``argv`` starts if it is a Python running one of :data:`JOB_MODULES`, else
    ``None``. Only the interpreter's own ``-m`` counts: ``sbatch --wrap 'python -m
    batchpool.worker ...'``, which a unit test gives to a fake ``sbatch``, starts nothing."""
    args = [os.fsdecode(arg) for arg in argv]
    if not args or not os.path.basename(args[0]).startswith("python"):
        return None
    i = 1
    while i < len(args):
        arg = args[i]
        if arg == "-m" and i + 1 < len(args):
            module = args[i + 1]
        elif arg.startswith("-m") and len(arg) > 2:
            module = arg[2:]
        elif arg in _OPTIONS_WITH_A_VALUE:
            i += 2
            continue
        elif arg.startswith("-") and arg not in ("-", "-c"):
            i += 1
            continue
        else:
            return None  # a script, -c or stdin: the program is not a module
        what = JOB_MODULES.get(module)
        return None if what is None else f"{what}: {' '.join(args)}"
    return None


def record(log: Union[str, os.PathLike], what: str) -> None:
    """Append ``what`` to ``log``, one line (``O_APPEND``: many processes may write)."""
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, (" ".join(what.splitlines()) + "\n").encode())
    finally:
        os.close(fd)


def started(log: Path) -> list[str]:
    """What the watched processes recorded in ``log``."""
    return log.read_text().splitlines() if log.exists() else []


@contextlib.contextmanager
def watching(log: Path) -> Iterator[None]:
    """While inside, what the test's process and the Pythons below it start is judged,
    and a job is recorded in ``log`` (:func:`started` reads it)."""
    saved = {name: os.environ.get(name) for name in (LOG_VARIABLE, "PYTHONPATH")}
    os.environ[LOG_VARIABLE] = str(log)
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SITE_DIR), saved["PYTHONPATH"]]))
    popen_init = subprocess.Popen.__init__
    pool_init = multiprocessing.pool.Pool.__init__

    def checked_popen(self: subprocess.Popen, args: Any, *more: Any, **options: Any) -> None:
        what = job_start(args) if isinstance(args, (list, tuple)) else None
        if what is not None:
            record(log, what)
        popen_init(self, args, *more, **options)

    def checked_pool(self: multiprocessing.pool.Pool, *args: Any, **options: Any) -> None:
        record(log, "a multiprocessing pool")
        pool_init(self, *args, **options)

    subprocess.Popen.__init__ = checked_popen  # type: ignore[method-assign]
    multiprocessing.pool.Pool.__init__ = checked_pool  # type: ignore[method-assign]
    try:
        yield
    finally:
        subprocess.Popen.__init__ = popen_init  # type: ignore[method-assign]
        multiprocessing.pool.Pool.__init__ = pool_init  # type: ignore[method-assign]
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
