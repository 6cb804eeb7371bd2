"""Profiles and BATCHPOOL_* variables (batchpool.config), and ``batchpool config``."""

from __future__ import annotations

import pytest

import batchpool
from batchpool import cli, config
from batchpool.testing import install_dummies
from helpers.profiles import dummy_profile, logging_sbatch, write_config


def test_a_typo_in_an_option_fails_before_anything_is_submitted(here):
    cluster = install_dummies(here / "dummy")
    sbatch, log = logging_sbatch(here, cluster.sbatch_path)
    write_config(
        here / "batchpool.toml",
        f"""\
        [profiles.short]
        backend = "slurm.array"
        partiton = "debug"
        work_dir = "{here / 'work'}"
        """
        + dummy_profile(here, cluster, sbatch)
        + "\n",
    )
    with pytest.raises(config.ConfigError) as info:
        batchpool.Pool(profile="short")
    message = str(info.value)
    assert "'partiton'" in message and "profile 'short'" in message
    assert "batchpool.toml" in message
    assert "Valid options:" in message and "partition" in message and "time" in message
    assert not log.exists()
    assert not (here / "work").exists()


def test_a_value_of_the_wrong_type_is_a_clear_error(here):
    write_config(
        here / "batchpool.toml",
        """\
        [profiles.p]
        backend = "local"
        max_num_resubmissions = "three"
        """,
    )
    with pytest.raises(config.ConfigError, match="'max_num_resubmissions'.*must be an integer"):
        batchpool.Pool(profile="p")
    with pytest.raises(config.ConfigError, match="max_num_resubmissions"):
        batchpool.Executor(profile="p")


def test_an_option_no_profile_can_set_is_refused(here):
    write_config(here / "batchpool.toml", '[profiles.p]\nbackend = "local"\nretry_policy = 1\n')
    with pytest.raises(config.ConfigError, match="cannot be set in a profile"):
        config.effective(profile="p")


def test_an_unknown_profile_names_the_known_ones(here):
    write_config(here / "batchpool.toml", '[profiles.a]\nbackend = "local"\n[profiles.b]\n')
    with pytest.raises(config.ConfigError, match="No profile 'c'.*profiles: a, b"):
        config.effective(profile="c")


def test_invalid_toml_and_unknown_top_level_keys_are_errors(here):
    write_config(here / "batchpool.toml", "[profiles.a\n")
    with pytest.raises(config.ConfigError, match="not valid TOML"):
        config.effective()
    write_config(here / "batchpool.toml", '[profile.a]\nbackend = "local"\n')
    with pytest.raises(config.ConfigError, match="unknown top-level key"):
        config.effective()


def test_explicit_arguments_win_over_the_environment_over_the_profile(here, monkeypatch):
    write_config(
        here / "batchpool.toml",
        """\
        default_profile = "p"
        [profiles.p]
        backend = "sge"
        queue_name = "from_profile"
        max_num_resubmissions = 2
        verbose = true
        resources = ["h_vmem=1G"]
        """,
    )
    monkeypatch.setenv("BATCHPOOL_MAX_NUM_RESUBMISSIONS", "5")
    monkeypatch.setenv("BATCHPOOL_VERBOSE", "no")
    found = config.effective(options={"verbose": True})
    settings = {s.name: s for s in found.settings}
    assert found.backend == "sge" and found.profile == "p"
    assert settings["queue_name"].value == "from_profile"
    assert settings["queue_name"].source.startswith("profile 'p'")
    assert settings["max_num_resubmissions"].value == 5
    assert settings["max_num_resubmissions"].source == "environment BATCHPOOL_MAX_NUM_RESUBMISSIONS"
    assert (settings["verbose"].value, settings["verbose"].source) == (True, "argument")
    assert settings["resources"].value == ["h_vmem=1G"]
    assert settings["polling_interval"].source == "default"
    monkeypatch.setenv("BATCHPOOL_BACKEND", "local")
    assert config.effective().backend == "local"  # a default profile of sge: left out


def test_a_bad_environment_value_is_an_error(here, monkeypatch):
    monkeypatch.setenv("BATCHPOOL_POLLING_INTERVAL", "often")
    with pytest.raises(config.ConfigError, match="BATCHPOOL_POLLING_INTERVAL='often'"):
        config.effective(backend="local")


def test_a_list_from_the_environment_is_split_as_a_shell_does(here, monkeypatch):
    monkeypatch.setenv("BATCHPOOL_SBATCH_ARGS", "--gres=gpu:1 --comment 'two words'")
    found = config.effective(backend="slurm")
    value = {s.name: s.value for s in found.settings}["sbatch_args"]
    assert value == ["--gres=gpu:1", "--comment", "two words"]


def test_a_backend_pool_leaves_out_a_default_profile_of_another_backend(here):
    write_config(
        here / "batchpool.toml",
        """\
        default_profile = "slurmy"
        [profiles.slurmy]
        backend = "slurm.array"
        partition = "debug"
        """,
    )
    assert config.configured_options("sge", {}, None) == {}
    with pytest.raises(config.ConfigError, match="is for the 'slurm.array' backend, not 'sge'"):
        config.configured_options("sge", {}, "slurmy")
    assert config.configured_options("slurm.array", {"time": "1:00"}, None) == {
        "partition": "debug",
        "time": "1:00",
    }


def test_the_home_configuration_and_batchpool_config_variable(here, monkeypatch):
    write_config(
        here / "home" / ".config" / "batchpool" / "config.toml",
        '[profiles.h]\nbackend = "local"\nworker_idle_s = 1.5\n',
    )
    found = config.effective(profile="h")
    assert found.config_file == here / "home" / ".config" / "batchpool" / "config.toml"
    assert found.options == {"worker_idle_s": 1.5}
    other = write_config(here / "elsewhere.toml", '[profiles.h]\nbackend = "local"\n')
    monkeypatch.setenv("BATCHPOOL_CONFIG", str(other))
    assert config.effective(profile="h").config_file == other
    monkeypatch.setenv("BATCHPOOL_CONFIG", str(here / "missing.toml"))
    with pytest.raises(config.ConfigError, match="is not a file"):
        config.effective()


def test_no_configuration_at_all_changes_nothing(here, monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    found = config.effective()
    assert found.backend == "local" and found.backend_source == "found on PATH"
    assert found.profile is None and found.options == {}


def test_the_config_command_shows_each_source(here, monkeypatch, capsys):
    write_config(
        here / "batchpool.toml",
        """\
        default_profile = "short"
        [profiles.short]
        backend = "slurm.array"
        partition = "debug"
        time = "0:30:00"
        """,
    )
    monkeypatch.setenv("BATCHPOOL_MEM", "4G")
    assert cli.main(["config"]) == 0
    out = capsys.readouterr().out
    assert f"configuration file: {here / 'batchpool.toml'}" in out
    assert "backend: slurm.array  (profile 'short'" in out
    assert "partition" in out and "'debug'  (profile 'short'" in out
    assert "'4G'  (environment BATCHPOOL_MEM)" in out
    assert "polling_interval" in out and "(default)" in out


def test_the_config_command_reports_a_bad_profile(here, capsys):
    write_config(here / "batchpool.toml", '[profiles.x]\nbackend = "local"\nnope = 1\n')
    assert cli.main(["config", "--profile", "x"]) == 1
    assert "Unknown option 'nope'" in capsys.readouterr().err


def test_make_pool_takes_the_profile_among_the_options_as_attach_gives_it(here):
    write_config(
        here / "batchpool.toml",
        '[profiles.a]\nbackend = "local"\nworker_idle_s = 0.5\n'
        '[profiles.b]\nbackend = "local"\nworker_idle_s = 3.0\n',
    )
    options = {"profile": "b", "work_dir": here / "w"}
    with config.make_pool((2,), options, profile="a") as pool:
        assert pool.settings.worker_idle_s == 3.0
        assert pool.size == 2
    assert options == {"profile": "b", "work_dir": here / "w"}  # not changed
