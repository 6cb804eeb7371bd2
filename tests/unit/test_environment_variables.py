"""``BATCHPOOL_*`` variables that set no option: a misspelt one is a ConfigError with
the nearest name, raised when the pool is made (batchpool.config.check_environment)."""

from __future__ import annotations

import warnings

import pytest

import batchpool
import batchpool.local
import batchpool.slurm
from batchpool import cli, config
from batchpool.testing import install_dummies
from helpers.profiles import logging_sbatch


@pytest.mark.parametrize(
    ("variable", "fix"),
    [
        ("BATCHPOOL_PARTITON", "did you mean BATCHPOOL_PARTITION?"),
        ("BATCHPOOL_WORKER_IDLE", "did you mean BATCHPOOL_WORKER_IDLE_S?"),
        ("BATCHPOOL_POLLING_INTERVALL", "did you mean BATCHPOOL_POLLING_INTERVAL?"),
        ("BATCHPOOL_PROFIL", "did you mean BATCHPOOL_PROFILE?"),
        ("BATCHPOOL_PROCESSES", "did you mean BATCHPOOL_NUM_SIMULTANEOUSLY_RUNNING_TASKS?"),
        ("BATCHPOOL_NOTHING_LIKE_IT", "(unset it; `batchpool config` lists the options)"),
    ],
)
def test_a_misspelt_variable_is_an_error_before_anything_is_submitted(
    here, monkeypatch, variable, fix
):
    cluster = install_dummies(here / "dummy")
    sbatch, log = logging_sbatch(here, cluster.sbatch_path)
    monkeypatch.setenv(variable, "3")
    paths = {f"{p}_path": str(getattr(cluster, f"{p}_path")) for p in ("squeue", "scancel")}
    with pytest.raises(config.ConfigError) as info:
        batchpool.slurm.Pool(work_dir=here / "work", sbatch_path=str(sbatch), **paths)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{variable}='3' names no option of the 'slurm' backend")
    assert message.endswith(fix)
    assert not log.exists() and not (here / "work").exists()


def test_the_local_backend_raises_as_well(here, monkeypatch):
    monkeypatch.setenv("BATCHPOOL_WORKER_IDLE", "3")
    with pytest.raises(config.ConfigError, match="did you mean BATCHPOOL_WORKER_IDLE_S"):
        batchpool.local.Pool(work_dir=here / "work")


def test_the_option_of_another_backend_is_a_warning(here, monkeypatch):
    """An environment set up for the cluster still runs the script on this machine."""
    monkeypatch.setenv("BATCHPOOL_PARTITION", "short")
    with pytest.warns(UserWarning, match="BATCHPOOL_PARTITION is no option of the 'local'"):
        pool = batchpool.local.Pool(work_dir=here / "work")
    pool.terminate()


@pytest.mark.parametrize(
    "variable",
    [
        "BATCHPOOL_BACKEND",
        "BATCHPOOL_DUMMY_DIR",
        "BATCHPOOL_JOB_ID",
        "BATCHPOOL_TEST_REAL",
        "BATCHPOOL_SIM_ROOT",
        "BATCHPOOL_PBS_WRAPPERS",
    ],
)
def test_the_package_and_its_tests_own_variables_are_no_error(here, monkeypatch, variable):
    monkeypatch.setenv(variable, "local" if variable == "BATCHPOOL_BACKEND" else "1")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pool = batchpool.local.Pool(work_dir=here / "work")
    pool.terminate()


def test_the_config_command_reports_a_misspelt_variable(here, monkeypatch, capsys):
    monkeypatch.setenv("BATCHPOOL_PARTITON", "gpu")
    assert cli.main(["config", "--backend", "slurm"]) == 1
    assert "did you mean BATCHPOOL_PARTITION?" in capsys.readouterr().err


def test_progress_is_an_option_of_every_pool_and_a_variable(here, monkeypatch):
    for backend in batchpool.BACKENDS:
        assert config.option_kinds(backend)["progress"] == config.OptionKind(bool, False, True)
    with batchpool.local.Pool(1, work_dir=here / "w") as pool:
        assert pool.settings.progress is True
    with batchpool.local.Pool(1, work_dir=here / "w", progress=False) as pool:
        assert pool.settings.progress is False
    monkeypatch.setenv("BATCHPOOL_PROGRESS", "0")
    with batchpool.local.Pool(1, work_dir=here / "w") as pool:
        assert pool.settings.progress is False
    with pytest.raises(TypeError, match="progress='no': must be True or False"):
        batchpool.local.Pool(1, work_dir=here / "w", progress="no")
