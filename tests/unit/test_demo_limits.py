"""``batchpool demo``'s limits are options of each backend's pool, with the values the
backend reads as one minute and 256 MB (the demo itself: tests/integration/test_demo.py)."""

from __future__ import annotations

import importlib
import inspect

import pytest

import batchpool
from batchpool import cli, units


@pytest.mark.parametrize("backend", sorted(batchpool.BACKENDS))
def test_the_limits_are_options_of_the_backend(backend):
    module = importlib.import_module(batchpool.BACKENDS[backend])
    parameters = inspect.signature(module.Pool).parameters
    limits = cli.demo_limits(backend)
    assert set(limits) <= set(parameters)
    if backend != "local":
        assert limits["processes"] == cli.DEMO_MAX_JOBS


@pytest.mark.parametrize("backend", ["slurm", "slurm.array", "sge", "pbs"])
def test_a_minute_and_256_mb_in_the_one_vocabulary(backend):
    limits = cli.demo_limits(backend)
    assert units.parse_time_s(limits["time"]) == 60
    assert units.parse_mem_mb(limits["mem"]) == 256


def test_nothing_to_limit_locally():
    assert cli.demo_limits("local") == {}
