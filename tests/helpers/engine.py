"""The engine on the fake backend and a fake clock, for the unit tests of the dispatcher,
its parts and the policy: settings with the tests' defaults, and a dispatcher to step."""

from __future__ import annotations

import sys
from pathlib import Path

from batchpool.dispatcher import Dispatcher
from batchpool.options import PoolSettings
from batchpool.testing.fake_backend import FakeBackend, FakeClock, FakeFaults


def settings(work_dir: Path, **changes) -> PoolSettings:
    """A pool's settings as the engine's unit tests want them, with ``changes``."""
    values = dict(
        work_dir=work_dir,
        python_path=sys.executable,
        polling_interval=5.0,
        max_num_resubmissions=3,
        max_jobs=None,
        keep_work_dir=False,
        verbose=False,
        lost_job_grace_period_s=0.0,
        resume=True,
        worker_idle_s=5.0,
        maxtasksperchild=None,
        scheduler_outage_s=1800.0,
    )
    values.update(changes)
    return PoolSettings(**values)


def make(tmp_path: Path, faults=None, slots=None, **changes):
    """A dispatcher that the test steps, its fake backend and clock."""
    clock = FakeClock()
    backend = FakeBackend(clock, slots=slots, faults=faults or FakeFaults())
    dispatcher = Dispatcher(
        backend, settings(tmp_path / "work", **changes), clock=clock, threaded=False
    )
    return dispatcher, backend, clock
