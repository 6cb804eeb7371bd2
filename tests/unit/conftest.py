"""The unit tier's rule, enforced: a unit test that starts a job, a worker process, a
dummy scheduler program or a ``multiprocessing`` pool fails (``tests/README.rst``;
how it is watched: :mod:`helpers.no_jobs`). The watch covers the test's fixtures too,
module-scoped ones included, from their setup to their teardown."""

from __future__ import annotations

import contextlib
import itertools
import tempfile
from pathlib import Path

import pytest

from helpers import no_jobs

_LOGS = tempfile.TemporaryDirectory(prefix="batchpool-no-jobs-")
"""One log a test; removed when the run ends."""
_numbers = itertools.count()
_WATCH = pytest.StashKey[tuple[Path, contextlib.ExitStack]]()
_STARTED = pytest.StashKey[list[str]]()


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_setup(item: pytest.Item):
    log = Path(_LOGS.name) / f"{next(_numbers)}.log"
    watch = contextlib.ExitStack()
    watch.enter_context(no_jobs.watching(log))
    item.stash[_WATCH] = (log, watch)
    yield


@pytest.hookimpl(hookwrapper=True, trylast=True)
def pytest_runtest_teardown(item: pytest.Item):
    yield
    log, watch = item.stash[_WATCH]
    watch.close()
    item.stash[_STARTED] = no_jobs.started(log)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    started = item.stash.get(_STARTED, [])
    if call.when == "teardown" and started:
        report = outcome.get_result()
        report.outcome = "failed"
        report.longrepr = "\n".join(
            [
                f"{item.nodeid} started what no unit test may start (tests/README.rst):",
                *(f"  {line}" for line in started),
                "Its place is tests/integration, or the tier that runs such things.",
            ]
        )
