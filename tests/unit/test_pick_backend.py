import pytest

import batchpool


@pytest.fixture
def path_with(tmp_path, monkeypatch):
    """Make PATH hold only the named programs (as empty executables)."""

    def make(*programs):
        for name in programs:
            program = tmp_path / name
            program.write_text("#!/bin/sh\n")
            program.chmod(0o755)
        monkeypatch.setenv("PATH", str(tmp_path))
        monkeypatch.delenv("BATCHPOOL_BACKEND", raising=False)

    return make


@pytest.mark.parametrize(
    "programs, backend",
    [(("sbatch", "qsub"), "slurm.array"), (("qsub",), "sge"), ((), "local")],
)
def test_the_backend_follows_what_is_on_path(path_with, programs, backend):
    path_with(*programs)
    assert batchpool.pick_backend() == backend


def test_the_environment_overrides(path_with, monkeypatch):
    path_with("sbatch")
    monkeypatch.setenv("BATCHPOOL_BACKEND", "local")
    pool = batchpool.Pool(1)
    assert isinstance(pool, batchpool.local.Pool)
    pool.terminate()


def test_an_unknown_backend_name_is_an_error(path_with, monkeypatch):
    path_with()
    monkeypatch.setenv("BATCHPOOL_BACKEND", "lsf")
    with pytest.raises(batchpool.ConfigError, match="BATCHPOOL_BACKEND='lsf' is not one of"):
        batchpool.Pool()


def test_slurm_options_reach_the_picked_slurm_pool(path_with):
    path_with("sbatch")
    pool = batchpool.Pool(partition="short", polling_interval=1.0)
    assert isinstance(pool, batchpool.slurm.array.Pool)
    assert "short" in pool.backend.resource_args and pool.settings.polling_interval == 1.0
    pool.terminate()


def test_sge_options_reach_the_picked_sge_pool(path_with):
    path_with("qsub")
    pool = batchpool.Pool(2, queue_name="all.q", resources=["h_vmem=1G"])
    assert isinstance(pool, batchpool.sge.Pool)
    assert (pool.backend.queue_name, pool.backend.resources) == ("all.q", ["h_vmem=1G"])
    pool.terminate()
