"""Pools for the contract suite: the same tests run against every kind in POOL_KINDS.

``multiprocessing`` is the reference the others must match; ``local`` is
batchpool's local backend. The dummy and real scheduler kinds are added where
their programs exist (see ``pool_kinds``).
"""

from __future__ import annotations

import multiprocessing
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "contract"))

import batchpool  # noqa: E402
import batchpool.local  # noqa: E402

POOL_KINDS = ["multiprocessing", "local"]


def make_pool(kind: str, tmp_path: Path, processes: int = 2, **options):
    """A pool of ``kind``; multiprocessing gets only the options it knows."""
    if kind == "multiprocessing":
        mp_options = {k: v for k, v in options.items() if k in ("initializer", "initargs")}
        return multiprocessing.Pool(processes, **mp_options)
    options.setdefault("work_dir", tmp_path / "work")
    if kind == "local":
        return batchpool.local.Pool(processes, **options)
    raise ValueError(kind)


@pytest.fixture(params=POOL_KINDS)
def pool_kind(request):
    return request.param


@pytest.fixture
def new_pool(pool_kind, tmp_path):
    """Call as ``new_pool(**options)``; every pool made is terminated after the test."""
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
