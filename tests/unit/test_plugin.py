"""The pytest plugin batchpool ships: its fixtures are there in every test suite (a user's
test file on the dummy cluster is in ``tests/contract/test_plugin_pools.py``)."""

from pathlib import Path

import pytest

from batchpool.testing import plugin

pytest_plugins = ["pytester"]


def test_the_fixtures_are_listed(pytester):
    result = pytester.runpytest_subprocess("--fixtures", timeout=60)
    for line in (  # pytest lists them in no fixed order
        "dummy_cluster -- *batchpool*plugin.py*",
        "dummy_slurm_pool -- *",
        "dummy_slurm_array_pool -- *",
        "dummy_sge_pool -- *",
        "dummy_pbs_pool -- *",
    ):
        result.stdout.fnmatch_lines([line])


def test_the_factories_point_at_the_dummies_and_keep_the_default_polling(dummy_cluster, tmp_path):
    names = {backend: plugin.pool_fixture_name(backend) for backend in plugin.PROGRAM_OPTIONS}
    assert names == {
        "slurm": "dummy_slurm_pool",
        "slurm.array": "dummy_slurm_array_pool",
        "sge": "dummy_sge_pool",
        "pbs": "dummy_pbs_pool",
    }
    for backend in names:
        options = plugin.pool_options(dummy_cluster, backend, tmp_path / "work")
        assert "polling_interval" not in options  # the dummy moves on by itself
        programs = [value for name, value in options.items() if name.endswith("_path")]
        assert programs and all(Path(p).is_relative_to(dummy_cluster.directory) for p in programs)
    with pytest.raises(ValueError, match="no dummy"):
        plugin.pool_fixture_name("local")
