"""Every public Pool spells out its options in its signature, typed, and documents them."""

from __future__ import annotations

import inspect
import os
import pydoc
import re

import pytest

import batchpool
import batchpool.local
import batchpool.pbs
import batchpool.proto_pool
import batchpool.sge
import batchpool.slurm
import batchpool.slurm.array
from batchpool import config

POSITIONAL = ["processes", "initializer", "initargs", "maxtasksperchild", "context"]

BACKEND_POOLS = {
    "local": (batchpool.local.Pool, ()),
    "slurm": (batchpool.slurm.Pool, (batchpool.slurm.SlurmBackend,)),
    "slurm.array": (
        batchpool.slurm.array.Pool,
        (batchpool.slurm.SlurmBackend, batchpool.slurm.array.SlurmArrayBackend),
    ),
    "sge": (batchpool.sge.Pool, (batchpool.sge.SgeBackend,)),
    "pbs": (batchpool.pbs.Pool, (batchpool.pbs.PbsBackend,)),
}
ALL_POOLS = [batchpool.proto_pool.Pool] + [pool for pool, _ in BACKEND_POOLS.values()]


@pytest.fixture
def here(tmp_path, monkeypatch):
    """An empty working directory and home, and no BATCHPOOL_* variable."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for name in list(os.environ):
        if name.startswith("BATCHPOOL_"):
            monkeypatch.delenv(name)
    return tmp_path


def keyword_options(pool_class: type) -> dict[str, inspect.Parameter]:
    parameters = inspect.signature(pool_class).parameters.values()
    return {p.name: p for p in parameters if p.kind is p.KEYWORD_ONLY}


def common_options() -> dict[str, inspect.Parameter]:
    options = keyword_options(batchpool.proto_pool.Pool)
    del options["backend"]
    return options


def documented_names(doc: str) -> set[str]:
    """The names of the entries of a numpydoc ``Parameters`` section."""
    section = doc.split("Parameters\n----------\n", 1)[1]
    names: set[str] = set()
    for line in section.splitlines():
        if line and not line[0].isspace():
            names.update(name.strip() for name in line.split(","))
    return names


@pytest.mark.parametrize("pool_class", ALL_POOLS, ids=lambda k: k.__module__)
def test_the_signature_is_explicit_typed_and_positional_as_multiprocessing(pool_class):
    parameters = list(inspect.signature(pool_class).parameters.values())
    assert [p.name for p in parameters[:5]] == POSITIONAL
    assert all(p.kind is p.POSITIONAL_OR_KEYWORD for p in parameters[:5])
    assert all(p.kind is p.KEYWORD_ONLY for p in parameters[5:]), parameters
    for parameter in parameters:
        assert parameter.annotation is not parameter.empty, parameter
        assert not isinstance(parameter.annotation, str), parameter  # evaluated, for help()


@pytest.mark.parametrize("name", BACKEND_POOLS)
def test_each_pool_takes_the_common_options_with_the_same_types(name):
    pool_class, _ = BACKEND_POOLS[name]
    options = keyword_options(pool_class)
    for option, parameter in common_options().items():
        assert option in options, f"{name} lacks {option}"
        assert options[option].annotation == parameter.annotation, option
    assert options["profile"].default is None


@pytest.mark.parametrize("name", BACKEND_POOLS)
def test_each_pool_takes_its_backends_options_with_their_defaults(name):
    pool_class, backend_classes = BACKEND_POOLS[name]
    options = keyword_options(pool_class)
    for backend_class in backend_classes:
        backend_parameters = inspect.signature(backend_class).parameters.values()
        for parameter in backend_parameters:
            if parameter.kind is parameter.KEYWORD_ONLY:
                assert parameter.name in options, f"{name} lacks {parameter.name}"
                assert options[parameter.name].default == parameter.default, parameter.name


def test_a_cluster_pool_defaults_differ_from_the_local_pool_where_documented():
    local = keyword_options(batchpool.local.Pool)
    assert local["polling_interval"].default == 0.5
    assert local["lost_job_grace_period_s"].default == 0.0
    slurm = keyword_options(batchpool.slurm.array.Pool)
    assert slurm["polling_interval"].default == 5.0
    assert slurm["lost_job_grace_period_s"].default == 10.0


@pytest.mark.parametrize("pool_class", ALL_POOLS, ids=lambda k: k.__module__)
def test_every_parameter_is_documented(pool_class):
    documented = documented_names(pool_class.__doc__)
    assert set(inspect.signature(pool_class).parameters) <= documented


def test_the_common_options_are_documented_once():
    sources = [inspect.getsource(inspect.getmodule(pool)) for pool in ALL_POOLS]
    phrase = "Seconds a worker waits for new work before its job exits"
    assert sum(source.count(phrase) for source in sources) == 1
    assert all(phrase in pool.__doc__ for pool in ALL_POOLS)


def test_help_of_the_slurm_array_pool_lists_its_options_with_types():
    text = pydoc.render_doc(batchpool.slurm.array.Pool, renderer=pydoc.plaintext)
    for option in ("partition", "time", "mem", "account", "qos"):
        assert f"{option}: Optional[str] = None" in text
    assert "cpus_per_task: Optional[int] = None" in text
    assert "polling_interval: float = 5.0" in text
    assert "max_num_resubmissions: int = 10" in text
    assert re.search(r"\n \|  partition, time, mem, cpus_per_task, account, qos\n", text)
    assert "**options" not in text


@pytest.mark.parametrize("name", BACKEND_POOLS)
def test_an_unknown_keyword_is_a_type_error_before_anything_is_made(here, name):
    pool_class, _ = BACKEND_POOLS[name]
    with pytest.raises(TypeError, match="unexpected keyword argument 'partiton'"):
        pool_class(partiton="debug", work_dir=here / "work")
    with pytest.raises(TypeError, match="positional argument"):
        pool_class(1, None, (), None, None, "debug")
    assert not (here / "work").exists()


def test_the_base_pool_refuses_an_unknown_keyword(here):
    backend = batchpool.local.LocalBackend()
    with pytest.raises(TypeError, match="unexpected keyword argument 'partition'"):
        batchpool.proto_pool.Pool(backend=backend, partition="debug")


def test_the_profile_fills_only_the_options_not_given(here):
    (here / "batchpool.toml").write_text(
        '[profiles.p]\nbackend = "slurm.array"\npartition = "debug"\ntime = "1:00:00"\n'
        'verbose = true\n'
    )
    pool = batchpool.slurm.array.Pool(profile="p", time="0:10:00", work_dir=here / "w")
    try:
        assert pool.backend.options["partition"] == "debug"
        assert pool.backend.time_s == 600
        assert pool.settings.verbose is True
    finally:
        pool.terminate()


def test_an_explicit_argument_wins_even_when_it_is_the_default(here, monkeypatch):
    monkeypatch.setenv("BATCHPOOL_VERBOSE", "yes")
    monkeypatch.setenv("BATCHPOOL_MAX_NUM_RESUBMISSIONS", "3")
    with batchpool.local.Pool(1, verbose=False, work_dir=here / "w") as pool:
        assert pool.settings.verbose is False
        assert pool.settings.max_num_resubmissions == 3
    with batchpool.local.Pool(1, work_dir=here / "w") as pool:
        assert pool.settings.verbose is True


@pytest.mark.parametrize("name", BACKEND_POOLS)
def test_profile_options_are_the_keyword_options_of_the_signature(name):
    pool_class, _ = BACKEND_POOLS[name]
    kinds = config.option_kinds(name)
    assert list(kinds) == [n for n in keyword_options(pool_class) if n != "profile"]


def test_profile_option_kinds_come_from_the_annotations():
    kinds = config.option_kinds("slurm.array")
    assert (kinds["partition"].type, kinds["partition"].optional) == (str, True)
    assert (kinds["cpus_per_task"].type, kinds["cpus_per_task"].optional) == (int, True)
    assert (kinds["sbatch_args"].type, kinds["sbatch_args"].default) == (list, [])
    assert (kinds["polling_interval"].type, kinds["polling_interval"].default) == (float, 5.0)
    assert (kinds["verbose"].type, kinds["verbose"].optional) == (bool, False)
    assert kinds["work_dir"].type is str
    assert kinds["retry_policy"].type is object
    assert kinds["command_policy"].type is object
    assert config.option_kinds("pbs")["walltime"].type is str
    assert config.option_kinds("local")["polling_interval"].default == 0.5


def test_pool_and_executor_pass_an_unknown_keyword_on_to_the_pools_type_error(here):
    with pytest.raises(TypeError, match="unexpected keyword argument 'partiton'"):
        batchpool.Pool(partiton="debug", work_dir=here / "work")
    with pytest.raises(TypeError, match="unexpected keyword argument 'partiton'"):
        batchpool.Executor(backend="local", partiton="debug", work_dir=here / "work")
    with pytest.raises(TypeError, match="unexpected keyword argument 'partiton'"):
        batchpool.Executor(backend=batchpool.local.LocalBackend(), partiton="debug")
    assert not (here / "work").exists()


def test_pool_passes_its_positional_arguments_and_the_profile_on(here):
    (here / "batchpool.toml").write_text(
        'default_profile = "p"\n[profiles.p]\nbackend = "local"\nworker_idle_s = 2.5\n'
    )
    with batchpool.Pool(3, work_dir=here / "w") as pool:
        assert isinstance(pool, batchpool.local.Pool)
        assert (pool.size, pool.settings.worker_idle_s) == (3, 2.5)
    with batchpool.local.Pool(2, work_dir=here / "w", worker_idle_s=1.0) as pool:
        assert (pool.size, pool.settings.worker_idle_s) == (2, 1.0)
