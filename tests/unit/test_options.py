"""The pool options, declared once in batchpool.options: every pool's signature, help,
docstring, checks and ``batchpool config`` come from that declaration."""

from __future__ import annotations

import dataclasses
import inspect
import os
import pydoc
import re
import typing
from pathlib import Path

import pytest

import batchpool
import batchpool.executor
import batchpool.local
import batchpool.pbs
import batchpool.proto_pool
import batchpool.sge
import batchpool.slurm
import batchpool.slurm.array
from batchpool import cli, config, options
from batchpool.options import ARGUMENTS, DECLARED, OPTIONS, PoolSettings

POSITIONAL = ["processes", "initializer", "initargs", "maxtasksperchild", "context"]
COMMON = [
    "work_dir",
    "python_path",
    "polling_interval",
    "max_num_resubmissions",
    "num_simultaneously_running_tasks",
    "keep_work_dir",
    "verbose",
    "progress",
    "lost_job_grace_period_s",
    "resume",
    "worker_idle_s",
    "scheduler_outage_s",
    "retry_policy",
]
"""Written out by hand, so that an option dropped from the declaration fails a test."""

BACKEND_POOLS = {
    "local": batchpool.local.Pool,
    "slurm": batchpool.slurm.Pool,
    "slurm.array": batchpool.slurm.array.Pool,
    "sge": batchpool.sge.Pool,
    "pbs": batchpool.pbs.Pool,
}
ALL_POOLS = [batchpool.proto_pool.Pool, *BACKEND_POOLS.values()]
LOCAL_DEFAULTS = {"polling_interval": 0.5, "lost_job_grace_period_s": 0.0}


def keyword_options(callable_: object) -> dict[str, inspect.Parameter]:
    parameters = inspect.signature(callable_).parameters.values()  # type: ignore[arg-type]
    return {p.name: p for p in parameters if p.kind is p.KEYWORD_ONLY}


def documented_names(doc: str) -> set[str]:
    """The names of the entries of a numpydoc ``Parameters`` section."""
    section = doc.split("Parameters\n----------\n", 1)[1]
    names: set[str] = set()
    for line in section.splitlines():
        if line and not line[0].isspace():
            names.update(name.strip() for name in line.split(","))
    return names


# -- the declaration -----------------------------------------------------------------------


def test_the_declaration_holds_every_option_once():
    assert [o.name for o in ARGUMENTS] == POSITIONAL
    assert [o.name for o in OPTIONS] == COMMON
    assert list(typing.get_type_hints(options.PoolArguments)) == POSITIONAL
    assert list(typing.get_type_hints(options.PoolOptions)) == COMMON
    for option in (*ARGUMENTS, *OPTIONS):
        assert option.annotation is not None, option.name
        assert option.doc.strip() and isinstance(option.check, options.Check), option.name


def test_each_options_example_passes_its_check_and_a_foreign_object_does_not():
    namespace = {"RetryPolicy": batchpool.RetryPolicy, "init_worker": print}
    unchecked = set()
    for option in DECLARED.values():
        option.check(option.name, eval(option.check.example, namespace))
        option.check(option.name, option.default)
        try:
            option.check(option.name, object())
        except (TypeError, ValueError) as error:  # ValueError: maxtasksperchild, as in mp
            assert str(error).startswith(f"{option.name}=<object object"), error
        else:
            unchecked.add(option.name)
    assert unchecked == {"context"}  # multiprocessing's: accepted, not used


@pytest.mark.parametrize(
    ("name", "value", "error", "message"),
    [
        ("polling_interval", "fast", TypeError, "polling_interval='fast': must be a number "
         "of seconds > 0, like 5"),
        ("polling_interval", 0, ValueError, "polling_interval=0: must be a number of seconds"),
        ("polling_interval", True, TypeError, "polling_interval=True"),
        ("worker_idle_s", -1, ValueError, "worker_idle_s=-1: must be a number of seconds >= 0"),
        ("scheduler_outage_s", -1.0, ValueError, "scheduler_outage_s=-1.0"),
        ("lost_job_grace_period_s", -0.5, ValueError, "lost_job_grace_period_s=-0.5"),
        ("max_num_resubmissions", -1, ValueError, "max_num_resubmissions=-1: must be an "
         "integer >= 0, like 3"),
        ("max_num_resubmissions", 2.5, TypeError, "max_num_resubmissions=2.5"),
        ("processes", 0, ValueError, "processes=0: must be an integer >= 1 or None, like 4"),
        ("maxtasksperchild", 0, ValueError, "maxtasksperchild=0"),
        ("num_simultaneously_running_tasks", 0, ValueError, "num_simultaneously_running"),
        ("initializer", 3, TypeError, "initializer=3: must be a callable"),
        ("verbose", "yes", TypeError, "verbose='yes': must be True or False"),
        ("work_dir", "", ValueError, "work_dir='': must be a path"),
        ("retry_policy", {}, TypeError, "retry_policy={}: must be a RetryPolicy"),
    ],
)
def test_a_bad_value_is_refused_with_the_option_the_value_and_an_example(
    here, name, value, error, message
):
    with pytest.raises(error, match=re.escape(message)):
        options.check(name, value)
    given = {"work_dir": here / "w", name: value}
    with pytest.raises(error, match=re.escape(message)):
        batchpool.local.Pool(**given)
    assert not (here / "w").exists()  # refused before anything was made


# -- signatures, help and docstrings -------------------------------------------------------


@pytest.mark.parametrize("pool_class", ALL_POOLS, ids=lambda k: k.__module__)
def test_every_pool_signature_has_every_option_typed_with_its_default(pool_class):
    parameters = list(inspect.signature(pool_class).parameters.values())
    assert [p.name for p in parameters[:5]] == POSITIONAL
    assert all(p.kind is p.POSITIONAL_OR_KEYWORD for p in parameters[:5])
    assert all(p.kind is p.KEYWORD_ONLY for p in parameters[5:]), parameters
    keywords = keyword_options(pool_class)
    defaults = LOCAL_DEFAULTS if pool_class is batchpool.local.Pool else {}
    for option in OPTIONS:
        parameter = keywords[option.name]
        assert parameter.annotation == option.annotation, option.name
        assert parameter.default == defaults.get(option.name, option.default), option.name
    for parameter in parameters:
        assert parameter.annotation is not parameter.empty, parameter
        assert not isinstance(parameter.annotation, str), parameter  # evaluated, for help()
    assert set(COMMON) <= set(keywords)
    assert ("profile" in keywords) == (pool_class is not batchpool.proto_pool.Pool)


def test_the_executor_signature_has_the_common_options_and_its_own_names():
    signature = inspect.signature(batchpool.Executor)
    names = list(signature.parameters)
    assert names[:4] == ["max_workers", "initializer", "initargs", "max_tasks_per_child"]
    assert set(COMMON) <= set(keyword_options(batchpool.Executor))
    assert names[-2:] == ["profile", "options"]  # **options: the backend's
    assert inspect.signature(batchpool.Executor.__init__).parameters.keys() - {"self"} == set(
        names
    )


@pytest.mark.parametrize("name", BACKEND_POOLS)
def test_a_pool_takes_its_backends_options_with_the_backends_defaults(name):
    pool_class = BACKEND_POOLS[name]
    keywords = keyword_options(pool_class)
    declared = typing.get_type_hints(pool_class.options_type)
    backend_options = declared.keys() - typing.get_type_hints(options.BackendPoolOptions).keys()
    assert set(pool_class.backend_options) == backend_options
    for klass in pool_class.backend_class.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None or klass is object:
            continue
        for parameter in inspect.signature(init).parameters.values():
            if parameter.kind is parameter.KEYWORD_ONLY:
                assert parameter.name in backend_options, f"{name} lacks {parameter.name}"
                assert keywords[parameter.name].default == parameter.default, parameter.name
                assert keywords[parameter.name].annotation == declared[parameter.name]


def test_the_backend_options_by_hand():
    assert {"partition", "cpus_per_task", "sbatch_args", "command_policy"} <= set(
        batchpool.slurm.Pool.backend_options
    )
    assert "scontrol_path" in batchpool.slurm.array.Pool.backend_options
    assert {"queue_name", "pe_name", "resources", "qsub_args"} <= set(
        batchpool.sge.Pool.backend_options
    )
    assert {"walltime", "ncpus", "dialect"} <= set(batchpool.pbs.Pool.backend_options)
    assert batchpool.local.Pool.backend_options == ()
    resources = {o.name for o in options.RESOURCES}
    for pool_class in BACKEND_POOLS.values():  # the vocabulary of every backend, declared once
        assert resources <= set(keyword_options(pool_class))
        assert not resources & set(pool_class.backend_options)


@pytest.mark.parametrize("pool_class", [*ALL_POOLS, batchpool.Executor], ids=str)
def test_every_parameter_is_documented(pool_class):
    documented = documented_names(pool_class.__doc__)
    parameters = set(inspect.signature(pool_class).parameters) - {"options"}
    assert parameters <= documented
    if pool_class is not batchpool.Executor:
        assert set(POSITIONAL) | set(COMMON) <= documented


def test_the_common_options_are_documented_once():
    sources = Path(batchpool.__file__).parent.rglob("*.py")
    phrase = "Seconds a worker waits for new work before its job exits"
    assert sum(source.read_text().count(phrase) for source in sources) == 1
    assert all(phrase in pool.__doc__ for pool in ALL_POOLS)


@pytest.mark.parametrize("pool_class", [*ALL_POOLS, batchpool.Executor], ids=str)
def test_help_shows_every_option(pool_class):
    text = pydoc.render_doc(pool_class, renderer=pydoc.plaintext)
    for name in (*COMMON, *getattr(pool_class, "backend_options", ())):
        assert re.search(rf"\b{name}: ", text), name


def test_help_of_the_slurm_array_pool_lists_its_options_with_types():
    text = pydoc.render_doc(batchpool.slurm.array.Pool, renderer=pydoc.plaintext)
    for option in ("partition", "account", "qos"):
        assert f"{option}: Optional[str] = None" in text
    for option in ("time", "mem"):  # batchpool.units: "90", 90, "1:30:00", "1.5G"...
        assert f"{option}: Union[int, float, str, NoneType] = None" in text
    assert "cpus_per_task: Optional[int] = None" in text
    assert "polling_interval: float = 5.0" in text
    assert "max_num_resubmissions: int = 10" in text
    assert "worker_idle_s: float = 5.0" in text
    assert re.search(r"\n \|  partition, cpus_per_task\n", text)
    assert "time: Union[int, float, str, NoneType] = None" in text
    assert "**options" not in text


# -- unknown keywords ----------------------------------------------------------------------


@pytest.mark.parametrize("name", BACKEND_POOLS)
def test_an_unknown_keyword_names_the_pool_and_the_nearest_option(here, name):
    pool_class = BACKEND_POOLS[name]
    with pytest.raises(TypeError, match="unexpected keyword argument 'worker_idle'") as info:
        pool_class(worker_idle=1.0, work_dir=here / "work")
    assert str(info.value).startswith(f"batchpool.{name}.Pool() got")
    assert "did you mean 'worker_idle_s'" in str(info.value)
    with pytest.raises(TypeError, match="positional argument"):
        pool_class(1, None, (), None, None, "debug")
    assert not (here / "work").exists()


def test_a_misspelt_backend_option_is_suggested(here):
    with pytest.raises(TypeError, match="'partiton'; did you mean 'partition'\\?"):
        batchpool.slurm.array.Pool(partiton="debug", work_dir=here / "work")


def test_the_base_pool_refuses_an_unknown_keyword(here):
    backend = batchpool.local.LocalBackend()
    with pytest.raises(TypeError, match="unexpected keyword argument 'partition'"):
        batchpool.proto_pool.Pool(backend=backend, partition="debug")


def test_pool_and_executor_name_themselves_for_an_unknown_keyword(here):
    with pytest.raises(TypeError, match=r"^batchpool\.Pool\(\) got an unexpected keyword"):
        batchpool.Pool(partiton="debug", work_dir=here / "work")
    with pytest.raises(TypeError, match=r"^batchpool\.Executor\(\) got .* 'bogus'"):
        batchpool.Executor(bogus=1)
    with pytest.raises(TypeError, match=r"^batchpool\.Executor\(\) got .*'partiton'"):
        batchpool.Executor(backend="slurm", partiton="debug", work_dir=here / "work")
    with pytest.raises(TypeError, match=r"did you mean 'polling_interval'"):
        batchpool.Executor(backend=batchpool.local.LocalBackend(), polling_intervall=1)
    assert not (here / "work").exists()


# -- profiles, variables and batchpool config ----------------------------------------------


@pytest.mark.parametrize("name", BACKEND_POOLS)
def test_config_lists_every_option_of_the_pool(here, name, capsys):
    kinds = config.option_kinds(name)
    assert list(kinds) == [n for n in keyword_options(BACKEND_POOLS[name]) if n != "profile"]
    assert set(COMMON) <= set(kinds)
    assert cli.main(["config", "--backend", name]) == 0
    listed = {line.split(" = ")[0].strip() for line in capsys.readouterr().out.splitlines()}
    assert set(kinds) <= listed


def test_profile_option_kinds_come_from_the_annotations():
    kinds = config.option_kinds("slurm.array")
    assert (kinds["partition"].type, kinds["partition"].optional) == (str, True)
    assert (kinds["cpus_per_task"].type, kinds["cpus_per_task"].optional) == (int, True)
    assert (kinds["sbatch_args"].type, kinds["sbatch_args"].default) == (list, [])
    assert (kinds["polling_interval"].type, kinds["polling_interval"].default) == (float, 5.0)
    assert (kinds["verbose"].type, kinds["verbose"].optional) == (bool, False)
    assert kinds["num_simultaneously_running_tasks"].type is int
    assert kinds["work_dir"].type is str
    assert kinds["retry_policy"].type is object
    assert kinds["command_policy"].type is object
    assert config.option_kinds("pbs")["walltime"].type is str
    assert config.option_kinds("local")["polling_interval"].default == 0.5


def test_a_profile_value_goes_through_the_options_check(here):
    (here / "batchpool.toml").write_text(
        '[profiles.p]\nbackend = "local"\npolling_interval = -2\n'
    )
    with pytest.raises(config.ConfigError, match=r"polling_interval=-2: .*profile 'p'"):
        batchpool.local.Pool(profile="p", work_dir=here / "w")
    assert not (here / "w").exists()


def test_an_environment_value_goes_through_the_options_check(here, monkeypatch):
    monkeypatch.setenv("BATCHPOOL_NUM_SIMULTANEOUSLY_RUNNING_TASKS", "0")
    with pytest.raises(config.ConfigError, match="num_simultaneously_running_tasks=0: .*"
                       "BATCHPOOL_NUM_SIMULTANEOUSLY_RUNNING_TASKS"):
        config.effective(backend="sge")


def test_the_profile_fills_only_the_options_not_given(here):
    (here / "batchpool.toml").write_text(
        '[profiles.p]\nbackend = "slurm.array"\npartition = "debug"\ntime = "1:00:00"\n'
        'verbose = true\n'
    )
    pool = batchpool.slurm.array.Pool(profile="p", time="0:10:00", work_dir=here / "w")
    try:
        assert pool.backend.options["partition"] == "debug"
        assert pool.backend.options["time"] == "00:10:00"  # as sbatch gets it
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


def test_pool_passes_its_positional_arguments_and_the_profile_on(here):
    (here / "batchpool.toml").write_text(
        'default_profile = "p"\n[profiles.p]\nbackend = "local"\nworker_idle_s = 2.5\n'
    )
    with batchpool.Pool(3, work_dir=here / "w") as pool:
        assert isinstance(pool, batchpool.local.Pool)
        assert (pool.size, pool.settings.worker_idle_s) == (3, 2.5)
    with batchpool.local.Pool(2, work_dir=here / "w", worker_idle_s=1.0) as pool:
        assert (pool.size, pool.settings.worker_idle_s) == (2, 1.0)


# -- what the engine is given --------------------------------------------------------------


def test_the_settings_are_the_declared_options_and_one_job_cap():
    fields = [f.name for f in dataclasses.fields(PoolSettings)]
    assert set(fields) - set(DECLARED) == {"max_jobs"}
    assert set(DECLARED) - set(fields) == {
        "processes",
        "num_simultaneously_running_tasks",  # both set max_jobs
        "initializer",
        "initargs",
        "context",
        "profile",
        *(o.name for o in options.RESOURCES),  # the backend's (JobResources)
    }


def test_one_job_cap_by_every_public_name(here):
    backend = batchpool.local.LocalBackend()
    with batchpool.proto_pool.Pool(backend=backend, work_dir=here / "w") as pool:
        assert pool.settings.max_jobs is None
    with batchpool.proto_pool.Pool(3, backend=backend, work_dir=here / "w") as pool:
        assert pool.settings.max_jobs == 3
    with batchpool.proto_pool.Pool(
        3, backend=backend, work_dir=here / "w", num_simultaneously_running_tasks=2
    ) as pool:
        assert pool.settings.max_jobs == 2
    with batchpool.local.Pool(work_dir=here / "w") as pool:
        assert pool.settings.max_jobs == (os.cpu_count() or 1)
    executor = batchpool.Executor(4, backend=backend, work_dir=here / "w")
    try:
        assert executor.pool.settings.max_jobs == 4
    finally:
        executor.terminate()


def test_the_settings_hold_the_checked_values_with_their_defaults(here):
    with batchpool.local.Pool(2, work_dir=here / "w", worker_idle_s=1) as pool:
        settings = pool.settings
    assert settings.work_dir == here / "w" and settings.work_dir.is_absolute()
    assert os.path.isabs(settings.python_path)
    assert (settings.polling_interval, settings.lost_job_grace_period_s) == (0.5, 0.0)
    assert settings.worker_idle_s == 1.0 and isinstance(settings.worker_idle_s, float)
    assert settings.retry_policy == batchpool.RetryPolicy()
