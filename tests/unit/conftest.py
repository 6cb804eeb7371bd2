"""Fixtures of the dummy-scheduler tests."""

import pytest

from batchpool.testing import install_dummies


@pytest.fixture
def cluster(tmp_path):
    cluster = install_dummies(tmp_path / "cluster")
    yield cluster
    cluster.kill_all()


@pytest.fixture
def work(tmp_path):
    path = tmp_path / "work"
    path.mkdir()
    return path
