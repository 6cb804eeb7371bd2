"""Fixtures shared by every tier, and the time each tier took.

``pool_kind``, ``new_pool`` and ``pool`` make a pool of each kind of
:data:`helpers.pools.POOL_KINDS` (the contract suite runs the same tests against each).
Test helpers are in ``tests/helpers/`` (``from helpers.pools import cluster_pool``);
task modules that jobs import by name stay beside their tests.

The tests that submit to a real scheduler (``tests/real``, the ``real-*`` kinds) run
only when asked: ``--real``, or ``BATCHPOOL_TEST_REAL=1`` (``.ci/run`` sets it); else
they are skipped, saying so, and a run that skipped every test for it exits 5, as
pytest does when it collected nothing (:mod:`helpers.pools`).

The end of the run prints how long each tier (``tests/unit``, ``tests/faults``, ...)
took: in its tests, and from its first test to its last.
"""

from __future__ import annotations

import collections
import os
import sys
import time
from pathlib import Path

import pytest

TESTS = Path(__file__).parent
sys.path[:0] = [str(TESTS), str(TESTS / "contract")]  # helpers; tasks, imported by jobs by name

from batchpool.testing import plugin  # noqa: E402
from helpers import pools  # noqa: E402
from helpers.pools import POOL_KINDS, make_pool  # noqa: E402


def pytest_addoption(parser):
    parser.addoption(
        pools.REAL_OPTION,
        action="store_true",
        help="also run the tests that submit to a real Slurm, SGE or PBS (tests/real, the "
        f"real-* pool kinds); so does {pools.REAL_VARIABLE}=1",
    )


def pytest_configure(config):
    pools.real_is_asked = pools.real_asked(config.getoption(pools.REAL_OPTION), os.environ)


def pytest_collection_modifyitems(config, items):
    if pools.real_is_asked:
        return
    for item in items:
        if pools.is_real(item):
            item.add_marker(pytest.mark.skip(reason=pools.NOT_ASKED))
            NOT_ASKED_IDS.add(item.nodeid)


NOT_ASKED_IDS: set[str] = set()
"""The tests to skip because the real-scheduler tests were not asked for."""
SKIPPED_NOT_ASKED: set[str] = set()
"""Those of them reported skipped (not when only collected)."""
RAN_IDS: set[str] = set()
"""The tests that ran: passed, or failed in any phase."""


@pytest.fixture
def here(tmp_path, monkeypatch):
    """An empty working directory and home, and no BATCHPOOL_* variable: what a profile,
    the environment and ``batchpool config`` see is what the test writes."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for name in [n for n in os.environ if n.startswith("BATCHPOOL_")]:
        monkeypatch.delenv(name)
    return tmp_path


@pytest.fixture(params=POOL_KINDS)
def pool_kind(request):
    return request.param


@pytest.fixture
def new_pool(pool_kind, tmp_path, request):
    """Call as ``new_pool(**options)``; every pool made is terminated after the test."""
    if pool_kind.startswith("dummy-"):
        yield request.getfixturevalue(plugin.pool_fixture_name(pool_kind[len("dummy-") :]))
        return
    pools = []

    def factory(**options):
        pool = make_pool(pool_kind, tmp_path, **options)
        pools.append(pool)
        return pool

    yield factory
    for pool in pools:
        pool.terminate()


@pytest.fixture
def pool(new_pool):
    return new_pool()


@pytest.fixture
def is_batchpool(pool_kind):
    return pool_kind != "multiprocessing"


@pytest.fixture
def cluster(dummy_cluster):
    """The plugin's ``dummy_cluster``, under the name some unit tests still use."""
    return dummy_cluster


@pytest.fixture
def work(tmp_path):
    path = tmp_path / "work"
    path.mkdir()
    return path


TIER_DURATIONS_S: collections.Counter = collections.Counter()
"""Seconds spent in each tier's tests (setup, call and teardown), by tier."""
TIER_SPANS: dict[str, list[float]] = {}
"""Each tier's ``[first start, last finish]`` (``time.monotonic``): its wall-clock time."""


def _tier(nodeid: str) -> str:
    """``tests/unit/test_x.py::test_y`` -> ``tests/unit``."""
    parts = Path(nodeid.split("::")[0]).parts
    return "/".join(parts[:2]) if parts[:1] == ("tests",) and len(parts) > 2 else parts[0]


def pytest_runtest_logstart(nodeid, location):
    now = time.monotonic()
    TIER_SPANS.setdefault(_tier(nodeid), [now, now])


def pytest_runtest_logfinish(nodeid, location):
    TIER_SPANS[_tier(nodeid)][1] = time.monotonic()


def pytest_runtest_logreport(report):
    TIER_DURATIONS_S[_tier(report.nodeid)] += report.duration
    if report.when == "call" and not report.skipped or report.failed:
        RAN_IDS.add(report.nodeid)
    elif report.skipped and report.nodeid in NOT_ASKED_IDS:
        SKIPPED_NOT_ASKED.add(report.nodeid)


def pytest_sessionfinish(session, exitstatus):
    if exitstatus == pytest.ExitCode.OK and SKIPPED_NOT_ASKED and not RAN_IDS:
        session.exitstatus = pytest.ExitCode.NO_TESTS_COLLECTED  # it tested nothing


def pytest_terminal_summary(terminalreporter):
    if SKIPPED_NOT_ASKED:
        terminalreporter.write_line(
            f"{len(SKIPPED_NOT_ASKED)} tests skipped: each {pools.NOT_ASKED}", yellow=True
        )
    if not TIER_DURATIONS_S:
        return
    terminalreporter.section("time per tier")
    for tier, seconds in sorted(TIER_DURATIONS_S.items()):
        first, last = TIER_SPANS.get(tier, (0.0, 0.0))
        terminalreporter.write_line(
            f"{tier}: {seconds:.1f} s in its tests, {last - first:.1f} s from its first to its last"
        )
