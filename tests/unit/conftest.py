"""Fixtures of the dummy-scheduler tests."""

import pytest


@pytest.fixture
def cluster(tmp_path):
    # Imported here, not at the top: a module of this directory that needs no dummy
    # scheduler does not depend on batchpool.testing importing.
    from batchpool.testing import install_dummies

    cluster = install_dummies(tmp_path / "cluster")
    yield cluster
    cluster.kill_all()


@pytest.fixture
def work(tmp_path):
    path = tmp_path / "work"
    path.mkdir()
    return path
