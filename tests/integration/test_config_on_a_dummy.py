"""A profile picked up without arguments: its pool runs a map on the dummy Slurm with the
profile's options (``batchpool.config``; the rest of its tests are
``tests/unit/test_config.py``)."""

from __future__ import annotations

import batchpool
from batchpool.testing import DummyConfig, install_dummies
from helpers.profiles import dummy_profile, logging_sbatch, write_config


def square(x):
    return x * x


def test_a_profile_for_slurm_array_is_picked_up_without_arguments(here):
    cluster = install_dummies(here / "dummy", config=DummyConfig(partitions=("local", "debug")))
    try:
        sbatch, log = logging_sbatch(here, cluster.sbatch_path)
        write_config(
            here / "batchpool.toml",
            f"""\
            default_profile = "short"

            [profiles.short]
            backend = "slurm.array"
            partition = "debug"
            time = "0:07:00"
            work_dir = "{here / 'work'}"
            polling_interval = 0.3
            lost_job_grace_period_s = 1.0
            """
            + dummy_profile(here, cluster, sbatch)
            + "\n",
        )
        with batchpool.Pool() as pool:
            assert pool.backend.name == "slurm.array"
            assert pool.work_dir == here / "work"
            assert pool.map(square, range(4)) == [0, 1, 4, 9]
        calls = log.read_text().splitlines()
        assert calls
        assert all("--partition debug" in c and "--time 00:07:00" in c for c in calls), calls
    finally:
        cluster.kill_all()
