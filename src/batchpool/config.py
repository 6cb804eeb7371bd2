"""Profiles: cluster settings kept out of the analysis script.

A profile is a named set of a backend and pool options, in a TOML file: the first of
``./batchpool.toml`` and ``~/.config/batchpool/config.toml`` that exists
(``$BATCHPOOL_CONFIG`` names another one)::

    default_profile = "short"        # used when no profile is asked for

    [profiles.short]
    backend = "slurm.array"
    partition = "short"
    time = "0:30:00"
    mem = "2G"
    work_dir = "/scratch/me/pools"

    [profiles.big]
    backend = "slurm.array"
    partition = "long"
    time = "12:00:00"
    mem = "64G"

Which profile: the ``profile`` argument of :func:`batchpool.Pool`,
:class:`batchpool.Executor` or a backend's ``Pool``; else ``$BATCHPOOL_PROFILE``;
else ``default_profile``; else none. Each option can also come from an environment
variable ``BATCHPOOL_<NAME>`` (``BATCHPOOL_PARTITION=gpu``,
``BATCHPOOL_MAX_NUM_RESUBMISSIONS=3``; lists are split as a shell does). Explicit
arguments win over the environment, which wins over the profile; the backend is
``$BATCHPOOL_BACKEND``, else the profile's, else the one found on ``PATH``.

A ``BATCHPOOL_*`` variable that is no option of the backend and none of the package's
own (``OWN_VARIABLES``, ``PROJECT_PREFIXES``) is a :class:`~batchpool.ConfigError` with the
nearest names (``BATCHPOOL_PARTITON=gpu``: "did you mean BATCHPOOL_PARTITION?"), so that
a misspelt one is not ignored without a word. The option of another backend is only a
warning: an environment set up for the cluster (``BATCHPOOL_PARTITION=short``) still
runs the same script on this machine (``BATCHPOOL_BACKEND=local``).

A profile applies to pools of its own backend: ``batchpool.sge.Pool()`` leaves out a
default profile made for Slurm (and raises if that profile was asked for by name).
An option that the backend does not have, or a value of the wrong type, raises
:class:`~batchpool.errors.ConfigError` when the pool is made, before anything is
submitted, naming the file, the profile and the valid options. ``batchpool config``
shows the effective options and where each came from.
"""

from __future__ import annotations

import collections
import collections.abc
import dataclasses
import difflib
import importlib
import inspect
import os
import shlex
import sys
import types
import typing
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Union

from .errors import ConfigError
from .options import ARGUMENTS, bind_given, check

if TYPE_CHECKING:
    from . import proto_pool

CONFIG_FILE_NAMES = ("batchpool.toml", "~/.config/batchpool/config.toml")
"""Where the configuration is looked for, in this order (the first that exists)."""
ENV_PREFIX = "BATCHPOOL_"
POSITIONAL = tuple(o.name for o in ARGUMENTS)
"""The positional parameters of every ``Pool``, as ``multiprocessing.Pool``'s."""
NOT_OPTIONS = frozenset((*POSITIONAL, "backend", "profile"))
"""Parameters of a pool that no profile or variable sets (``num_simultaneously_running_tasks``
caps the jobs of a cluster pool, as ``processes`` does)."""
OWN_VARIABLES = frozenset(
    ENV_PREFIX + name
    for name in ("BACKEND", "CONFIG", "PROFILE", "DUMMY_DIR", "JOB_ID", "WORKER_REEXEC")
)
"""The package's variables that are no option: the backend, the configuration file and
the profile (this module), the dummy cluster's directory (:mod:`batchpool.testing`), a
variable a job keeps from its own environment (:mod:`batchpool._layout`) and the
worker's mark of its re-execution (:mod:`batchpool.worker`)."""
PROJECT_PREFIXES = tuple(ENV_PREFIX + p for p in ("TEST_", "TESTS_", "SIM_", "PBS_WRAPPERS"))
"""Variables of batchpool's own tests and CI (``BATCHPOOL_TEST_REAL``, which runs the
real-scheduler tests; ``BATCHPOOL_SIM_ROOT`` of the cluster simulator...)."""


@dataclasses.dataclass(frozen=True)
class Setting:
    """One effective option: its value and where it came from."""

    name: str
    value: Any
    source: str
    """``argument``, ``environment BATCHPOOL_X``, ``profile NAME (FILE)`` or ``default``."""


@dataclasses.dataclass(frozen=True)
class Effective:
    """What a pool is made with: the backend, its options, and the source of each."""

    backend: str
    backend_source: str
    profile: Optional[str]
    config_file: Optional[Path]
    settings: tuple[Setting, ...]
    """Every option the backend has, set or defaulted."""

    @property
    def options(self) -> dict[str, Any]:
        """The options that were set (by argument, variable or profile)."""
        return {s.name: s.value for s in self.settings if s.source != "default"}


# -- the configuration file ----------------------------------------------------------------


def config_path() -> Optional[Path]:
    """The configuration file in use, or None (module docstring)."""
    named = os.environ.get(ENV_PREFIX + "CONFIG", "").strip()
    if named:
        path = Path(named).expanduser()
        if not path.is_file():
            raise ConfigError(f"BATCHPOOL_CONFIG={named!r} is not a file")
        return path
    for name in CONFIG_FILE_NAMES:
        path = Path(name).expanduser()
        if path.is_file():
            return path.absolute()
    return None


def read_config(path: Path) -> dict[str, Any]:
    """The parsed TOML of ``path``; a :class:`ConfigError` names what is wrong."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # the same parser, as a package (a dependency on 3.9 and 3.10)
        import tomli as tomllib
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path} is not valid TOML: {error}") from None
    unknown = set(data) - {"default_profile", "profiles"}
    if unknown:
        raise ConfigError(
            f"{path}: unknown top-level key(s) {', '.join(sorted(unknown))}; "
            "expected 'default_profile' and [profiles.NAME] tables"
        )
    profiles = data.get("profiles", {})
    if not isinstance(profiles, dict) or not all(isinstance(p, dict) for p in profiles.values()):
        raise ConfigError(f"{path}: 'profiles' must hold tables, as [profiles.NAME]")
    return data


def profile_name(data: Mapping[str, Any], asked: Optional[str]) -> tuple[Optional[str], bool]:
    """The profile to use, and whether it was asked for by name (argument or variable)."""
    if asked:
        return asked, True
    from_env = os.environ.get(ENV_PREFIX + "PROFILE", "").strip()
    if from_env:
        return from_env, True
    default = data.get("default_profile")
    if default is not None and not isinstance(default, str):
        raise ConfigError(f"default_profile must be a string, not {default!r}")
    return default, False


# -- resolving -----------------------------------------------------------------------------


def effective(
    backend: Optional[str] = None,
    options: Optional[Mapping[str, Any]] = None,
    profile: Optional[str] = None,
    *,
    backend_fixed: bool = False,
) -> Effective:
    """The backend and options a pool gets from ``options`` (explicit arguments), the
    ``BATCHPOOL_*`` variables and the profile (module docstring).

    ``backend``: given explicitly (``backend_fixed``: by the ``Pool`` class itself, so
    that a profile of another backend is left out unless asked for by name).
    """
    from . import BACKENDS

    explicit = dict(options or {})
    path = config_path()
    data = read_config(path) if path is not None else {}
    name, asked = profile_name(data, profile)
    values: dict[str, Any] = {}
    if name is not None:
        profiles = data.get("profiles", {})
        if name not in profiles:
            where = f"in {path}" if path is not None else "(no configuration file found)"
            known = ", ".join(sorted(profiles)) or "none"
            raise ConfigError(f"No profile {name!r} {where}; profiles: {known}")
        values = dict(profiles[name])
    chosen, backend_source = _backend(backend, backend_fixed, values, name, path)
    profile_backend = values.pop("backend", None)
    if profile_backend is not None and profile_backend != chosen:
        if asked:
            raise ConfigError(
                f"Profile {name!r} of {path} is for the {profile_backend!r} backend, "
                f"not {chosen!r}"
            )
        name, values = None, {}  # a default profile made for another backend
    if chosen not in BACKENDS:
        raise ConfigError(f"backend {chosen!r} is not one of {', '.join(BACKENDS)}")
    kinds = option_kinds(chosen)
    check_environment(chosen, kinds)
    where = f"profile {name!r} ({path})"
    for key, value in values.items():
        _check(key, value, kinds, chosen, where)
        _check_value(key, value, where)
    settings = []
    for key, kind in kinds.items():
        if key in explicit:
            settings.append(Setting(key, explicit[key], "argument"))
        elif ENV_PREFIX + key.upper() in os.environ:
            variable = ENV_PREFIX + key.upper()
            value = _from_text(os.environ[variable], kind, variable)
            _check_value(key, value, f"environment {variable}")
            settings.append(Setting(key, value, f"environment {variable}"))
        elif key in values:
            settings.append(Setting(key, values[key], where))
        else:
            settings.append(Setting(key, kind.default, "default"))
    return Effective(chosen, backend_source, name, path, tuple(settings))


def _backend(
    backend: Optional[str],
    fixed: bool,
    profile_values: Mapping[str, Any],
    profile: Optional[str],
    path: Optional[Path],
) -> tuple[str, str]:
    if backend is not None:
        return backend, "the pool's class" if fixed else "argument"
    from . import pick_backend

    if os.environ.get(ENV_PREFIX + "BACKEND", "").strip():
        return pick_backend(), "environment BATCHPOOL_BACKEND"  # it checks the name
    if "backend" in profile_values:
        value = profile_values["backend"]
        if not isinstance(value, str):
            raise ConfigError(f"backend of profile {profile!r} ({path}) must be a string")
        return value, f"profile {profile!r} ({path})"
    return pick_backend(), "found on PATH"


def check_environment(backend: str, kinds: Mapping[str, OptionKind]) -> None:
    """Raise a :class:`ConfigError` for a ``BATCHPOOL_*`` variable that names no option
    of ``backend`` (whose options are ``kinds``) and none of the package's own; warn of
    one that names an option of another backend (module docstring)."""
    known = {ENV_PREFIX + key.upper() for key in kinds} | OWN_VARIABLES
    unknown = [
        variable
        for variable in sorted(os.environ)
        if variable.startswith(ENV_PREFIX)
        and variable not in known
        and not variable.startswith(PROJECT_PREFIXES)
    ]
    if not unknown:
        return
    others = _options_of_every_backend()
    for variable in unknown:
        if variable in others:
            warnings.warn(
                f"{variable} is no option of the {backend!r} backend (it is one of "
                f"{', '.join(others[variable])}): ignored",
                stacklevel=1,  # where does not matter: shown once
            )
            continue
        raise ConfigError(
            f"{variable}={os.environ[variable]!r} names no option of the {backend!r} backend "
            f"(unset it; `batchpool config` lists the options)"
            f"{_nearest(variable, known | set(others))}"
        )


def _nearest(variable: str, known: Iterable[str]) -> str:
    """``; did you mean BATCHPOOL_X?``, or what to do instead of a positional option."""
    name = variable[len(ENV_PREFIX) :].lower()
    if name in POSITIONAL:
        instead = ENV_PREFIX + "NUM_SIMULTANEOUSLY_RUNNING_TASKS"
        hint = f"; did you mean {instead}?" if name == "processes" else ""
        return f"; {name} is given to the pool, not by a variable{hint}"
    names = {k[len(ENV_PREFIX) :]: k for k in known}  # the common prefix would match
    near = difflib.get_close_matches(variable[len(ENV_PREFIX) :], sorted(names), n=1)
    return f"; did you mean {names[near[0]]}?" if near else ""


def _options_of_every_backend() -> dict[str, list[str]]:
    """The ``BATCHPOOL_*`` variable of each option of any backend, and their backends."""
    from . import BACKENDS

    backends: dict[str, list[str]] = collections.defaultdict(list)
    for backend in BACKENDS:
        for key in option_kinds(backend):
            backends[ENV_PREFIX + key.upper()].append(backend)
    return dict(backends)


@dataclasses.dataclass(frozen=True)
class OptionKind:
    """What values an option takes, read from its annotation."""

    type: type
    """``bool``, ``int``, ``float``, ``str`` or ``list`` (of strings); ``object``: an
    option no profile can set (a policy object, a callable)."""
    optional: bool
    default: Any
    numbers: bool = False
    """A ``str`` option that takes numbers too (a time or memory, :mod:`batchpool.units`)."""


def option_kinds(backend: str) -> dict[str, OptionKind]:
    """Every option a pool of ``backend`` takes, by name, in signature order: the
    keyword-only parameters of its ``Pool`` but ``profile`` (the signature is composed
    from :mod:`batchpool.options`, its annotations are types)."""
    from . import BACKENDS

    pool_class = importlib.import_module(BACKENDS[backend]).Pool
    kinds: dict[str, OptionKind] = {}
    for parameter in inspect.signature(pool_class).parameters.values():
        if parameter.kind is parameter.KEYWORD_ONLY and parameter.name not in NOT_OPTIONS:
            annotation = Any if parameter.annotation is parameter.empty else parameter.annotation
            kinds[parameter.name] = _kind(annotation, parameter.default)
    return kinds


_UNION_TYPES = (Union, getattr(types, "UnionType", Union))
"""``Optional[X]`` and ``Union[...]``, and ``X | None`` from Python 3.10 on."""
_SEQUENCES = (list, tuple, collections.abc.Sequence)


def _kind(annotation: Any, default: Any) -> OptionKind:
    """The kind of an option annotated ``annotation`` (evaluated) with ``default``."""
    members = typing.get_args(annotation) if typing.get_origin(annotation) in _UNION_TYPES else ()
    optional = type(None) in members
    first = next((m for m in members if m is not type(None)), annotation)
    default = None if default is inspect.Parameter.empty else default
    if typing.get_origin(first) in _SEQUENCES and typing.get_args(first)[:1] == (str,):
        return OptionKind(list, optional, list(default) if default is not None else None)
    if str in members and set(members) <= {str, int, float, type(None)}:
        return OptionKind(str, optional, default, numbers=True)  # a time or memory
    if first in (bool, int, float, str):
        return OptionKind(first, optional, default)
    return OptionKind(object, optional, default)


def _check(key: str, value: Any, kinds: Mapping[str, OptionKind], backend: str, where: str) -> None:
    if key not in kinds:
        settable = ", ".join(k for k, v in kinds.items() if v.type is not object)
        raise ConfigError(
            f"Unknown option {key!r} in {where} for the {backend!r} backend. "
            f"Valid options: {settable}"
        )
    kind = kinds[key]
    if kind.type is object:
        raise ConfigError(f"Option {key!r} in {where} cannot be set in a profile")
    if not _fits(value, kind):
        raise ConfigError(
            f"Option {key!r} in {where} must be {_type_name(kind)}, "
            f"not {type(value).__name__} {value!r}"
        )


def _check_value(key: str, value: Any, where: str) -> None:
    """The check of the option ``key`` (:func:`batchpool.options.check`), as a
    :class:`ConfigError` that says where ``value`` came from."""
    try:
        check(key, value)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{error} (in {where})") from None


def _fits(value: Any, kind: OptionKind) -> bool:
    if kind.type is list:
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    if kind.type is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind.type is int or (kind.numbers and not isinstance(value, str)):
        return isinstance(value, (int, float) if kind.numbers else int) and not isinstance(
            value, bool
        )
    return isinstance(value, kind.type)


def _type_name(kind: OptionKind) -> str:
    names = {
        list: "a list of strings",
        bool: "true or false",
        float: "a number",
        int: "an integer",
        str: "a string",
    }
    return names.get(kind.type, f"a {kind.type.__name__}")


def _from_text(text: str, kind: OptionKind, variable: str) -> Any:
    """The value of a ``BATCHPOOL_*`` variable, as its option's type."""
    try:
        if kind.type is bool:
            word = text.strip().lower()
            if word not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                raise ValueError(text)
            return word in ("1", "true", "yes", "on")
        if kind.type in (int, float):
            return kind.type(text)
        if kind.type is list:
            return shlex.split(text)
    except ValueError:
        raise ConfigError(f"{variable}={text!r} must be {_type_name(kind)}") from None
    if kind.type is object:
        raise ConfigError(f"{variable}: this option cannot be set from the environment")
    return text


# -- making pools --------------------------------------------------------------------------


def make_pool(
    args: tuple,
    options: Mapping[str, Any],
    *,
    backend: Optional[str] = None,
    profile: Optional[str] = None,
    caller: str = "batchpool.Pool",
) -> proto_pool.Pool:
    """A pool of ``backend`` (else the configured one), with the configured options
    under the explicit ``options``: what :func:`batchpool.Pool` returns. ``args`` are
    ``Pool``'s positional arguments (``processes, initializer, initargs, ...``); an
    unknown keyword is a ``TypeError`` that names ``caller``, what the user called."""
    from . import BACKENDS

    options = dict(options)
    profile = options.pop("profile", None) or profile  # attach() passes it among them
    found = effective(backend, options, profile)
    pool_class = importlib.import_module(BACKENDS[found.backend]).Pool
    bind_given(inspect.signature(pool_class), caller, args, options)
    # The pool resolves the same profile again, for the options not given (its backend
    # is the profile's, so the profile is not left out).
    pool: proto_pool.Pool = pool_class(*args, profile=found.profile, **options)
    return pool


def configured_options(
    backend: str, options: Mapping[str, Any], profile: Optional[str]
) -> dict[str, Any]:
    """The options of a pool whose class fixes ``backend``: the explicit ``options`` (also
    those that are no option of the backend: the pool's own call raises the
    ``TypeError``) over the configured ones (:class:`batchpool.proto_pool.BackendPool`)."""
    found = effective(backend, options, profile, backend_fixed=True)
    return _with_explicit(dict(options), found)


def _with_explicit(explicit: dict[str, Any], found: Effective) -> dict[str, Any]:
    """The configured options, and the explicit ones that are no option of the backend
    (the pool raises its own TypeError for an unknown one)."""
    return {**explicit, **found.options}


def describe(found: Effective) -> str:
    """The text ``batchpool config`` prints."""
    lines = [
        f"configuration file: {found.config_file or 'none'}",
        f"profile: {found.profile or 'none'}",
        f"backend: {found.backend}  ({found.backend_source})",
    ]
    width = max(len(s.name) for s in found.settings)
    for setting in found.settings:
        lines.append(f"{setting.name:<{width}} = {setting.value!r}  ({setting.source})")
    return "\n".join(lines)


__all__ = [
    "CONFIG_FILE_NAMES",
    "ConfigError",
    "Effective",
    "Setting",
    "config_path",
    "describe",
    "effective",
    "make_pool",
    "option_kinds",
]
