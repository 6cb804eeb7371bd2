"""The options of a pool, declared once.

Every pool takes ``multiprocessing.Pool``'s five arguments (:data:`ARGUMENTS`), the
options common to every backend (:data:`OPTIONS`), the resources of its jobs in the one
vocabulary of every backend (:data:`RESOURCES`), the options of its backend and a
``profile`` (:data:`PROFILE`). Each common one is declared here once: its type in a
``TypedDict`` (:class:`PoolArguments`, :class:`PoolOptions`), for type checkers, and its
default, documentation and check in an :class:`Option` of the table. From them come

- the signature of every pool and of the Executor (:func:`compose_signature`), which
  ``help()``, ``inspect.signature`` and :mod:`batchpool.config` read;
- the ``Parameters`` of the pools' docstrings (:func:`parameters_doc`);
- the :class:`~batchpool.backend.JobResources` each backend is given and writes in its
  scheduler's syntax (``queue`` is Slurm's ``--partition``, SGE's and PBS's ``-q``);
- the checks made when a pool is made, before any thread or job starts, and on what a
  profile or a ``BATCHPOOL_*`` variable gives (:func:`check`), and the error for an
  unknown keyword (:func:`bind_given`);
- :class:`PoolSettings`, what the engine is given (:meth:`PoolSettings.of`).

A backend's pool declares only the options of its backend, in a ``TypedDict`` that
extends :class:`BackendPoolOptions`; their defaults are those of the backend class.

The cap on a pool's jobs at once has one name inside the package, ``max_jobs``
(:attr:`PoolSettings.max_jobs`). Users spell it ``processes``, as ``multiprocessing``
does, or ``max_workers`` for the Executor, as ``concurrent.futures`` does;
``num_simultaneously_running_tasks`` is the documented option that sets it apart from
``processes`` (for a profile, which cannot set ``processes``).
"""

from __future__ import annotations

import collections.abc
import dataclasses
import difflib
import inspect
import os
import sys
import textwrap
import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional, TypedDict, Union

from .policy import RetryPolicy
from .units import Duration, Memory, parse_mem_mb, parse_time_s

if TYPE_CHECKING:  # the pools import it from here: ``**options: Unpack[PoolKeywords]``
    if sys.version_info >= (3, 11):
        from typing import Unpack as Unpack
    else:
        from typing_extensions import Unpack as Unpack

__all__ = [
    "ARGUMENTS",
    "OPTIONS",
    "PROFILE",
    "RESOURCES",
    "BackendPoolOptions",
    "Check",
    "Option",
    "PoolArguments",
    "PoolKeywords",
    "PoolOptions",
    "PoolSettings",
    "ResourceOptions",
    "bind_given",
    "check",
    "compose_signature",
    "parameters_doc",
    "typed_signature",
    "with_self",
]

DEFAULT_WORK_DIR = ".batchpool"
DEFAULT_POLLING_INTERVAL = 5.0
"""Seconds between two status queries of a cluster pool (``polling_interval``)."""
DEFAULT_MAX_NUM_RESUBMISSIONS = 10
DEFAULT_GRACE_PERIOD_S = 10.0
"""How long a cluster job may be gone without its result (``lost_job_grace_period_s``)."""
DEFAULT_WORKER_IDLE_S = 5.0
"""A worker with nothing to do for this long exits (module docstring of the pool)."""
DEFAULT_SCHEDULER_OUTAGE_S = 1800.0


# -- the types, for type checkers and signatures -------------------------------------------


class PoolArguments(TypedDict, total=False):
    """``multiprocessing.Pool``'s arguments, positional or by keyword (:data:`ARGUMENTS`)."""

    processes: Optional[int]
    initializer: Optional[Callable[..., object]]
    initargs: Iterable[Any]
    maxtasksperchild: Optional[int]
    context: object


class PoolOptions(TypedDict, total=False):
    """The keyword options every pool takes (:data:`OPTIONS`)."""

    work_dir: Union[str, os.PathLike[str]]
    python_path: Optional[Union[str, os.PathLike[str]]]
    polling_interval: float
    max_num_resubmissions: int
    num_simultaneously_running_tasks: Optional[int]
    keep_work_dir: bool
    verbose: bool
    progress: bool
    lost_job_grace_period_s: float
    resume: bool
    worker_idle_s: float
    scheduler_outage_s: float
    retry_policy: Optional[RetryPolicy]


class PoolKeywords(PoolArguments, PoolOptions, total=False):
    """Every keyword of :class:`batchpool.proto_pool.Pool` but ``backend``."""


class ResourceOptions(TypedDict, total=False):
    """What every job of a pool asks for, the same on every backend (:data:`RESOURCES`)."""

    queue: Optional[str]
    time: Optional[Duration]
    mem: Optional[Memory]
    cpus: Optional[int]
    gpus: Optional[int]
    account: Optional[str]
    setup: Sequence[str]


class BackendPoolOptions(PoolKeywords, ResourceOptions, total=False):
    """Every keyword of a backend's pool but its backend's options, which the pool's own
    ``TypedDict`` adds (``class SlurmPoolOptions(BackendPoolOptions)``)."""

    profile: Optional[str]


# -- checks --------------------------------------------------------------------------------


def _anything(value: object) -> bool:
    return True


@dataclass(frozen=True)
class Check:
    """What values an option takes. A value of another type is a ``TypeError``, one of the
    right type out of range a ``ValueError`` (as ``multiprocessing`` does); the message
    names the option, the value, what it must be and an example (:meth:`message`)."""

    has_type: Callable[[Any], bool]
    want: str
    """What a good value is, after "must be": ``"a number of seconds > 0"``."""
    example: str
    """A good value, as it is written in Python: ``"5"``."""
    in_range: Callable[[Any], bool] = _anything
    optional: bool = False
    """None is a good value too."""
    wrong_type: type[Exception] = TypeError
    """What a value of another type raises (``maxtasksperchild``: ValueError, as in
    ``multiprocessing``)."""

    def __call__(self, name: str, value: object) -> None:
        if value is None and self.optional:
            return
        if not self.has_type(value):
            raise self.wrong_type(self.message(name, value))
        if not self.in_range(value):
            raise ValueError(self.message(name, value))

    def message(self, name: str, value: object) -> str:
        none = " or None" if self.optional else ""
        return f"{name}={value!r}: must be {self.want}{none}, like {self.example}"


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def seconds(*, positive: bool, example: str, optional: bool = False) -> Check:
    """A duration in seconds: > 0 if ``positive``, else >= 0."""
    if positive:
        return Check(_is_number, "a number of seconds > 0", example, lambda v: v > 0, optional)
    return Check(_is_number, "a number of seconds >= 0", example, lambda v: v >= 0, optional)


def count(
    minimum: int, example: str, *, optional: bool = False, wrong_type: type[Exception] = TypeError
) -> Check:
    """An integer, at least ``minimum``."""
    at_least = f"an integer >= {minimum}"
    return Check(_is_int, at_least, example, lambda v: v >= minimum, optional, wrong_type)


def flag() -> Check:
    return Check(lambda v: isinstance(v, bool), "True or False", "True")


def path(example: str, *, optional: bool = False) -> Check:
    """A file system path, as a string or ``os.PathLike``."""
    return Check(
        lambda v: isinstance(v, (str, os.PathLike)),
        "a path",
        example,
        lambda v: bool(os.fspath(v)),
        optional,
    )


def identifier(want: str, example: str) -> Check:
    """A name (of a queue, an account), or None."""
    return Check(lambda v: isinstance(v, str), want, example, lambda v: bool(v), optional=True)


def _parses(parse: Callable[[Any], int]) -> Callable[[Any], bool]:
    def parses(value: Any) -> bool:
        try:
            parse(value)
        except ValueError:
            return False
        return True

    return parses


def _is_amount(value: object) -> bool:
    return isinstance(value, str) or _is_number(value)


def time_limit() -> Check:
    """A time limit in the grammar of :mod:`batchpool.units`."""
    want = "a time limit: minutes (90), 'H:MM:SS', 'D-HH:MM:SS' or '90min'"
    return Check(_is_amount, want, "'1:30:00'", _parses(parse_time_s), optional=True)


def memory() -> Check:
    """An amount of memory in the grammar of :mod:`batchpool.units`."""
    want = "an amount of memory: MB (4096), '4G', '1.5G' or '500M'"
    return Check(_is_amount, want, "'4G'", _parses(parse_mem_mb), optional=True)


def shell_lines() -> Check:
    """Shell lines: one string, or a sequence of strings."""
    return Check(
        lambda v: isinstance(v, str)
        or (isinstance(v, Sequence) and all(isinstance(line, str) for line in v)),
        "shell lines: a string or a list of strings",
        "['module load python/3.11', 'source venv/bin/activate']",
    )


def instance(kind: type, example: str) -> Check:
    return Check(lambda v: isinstance(v, kind), f"a {kind.__name__}", example, optional=True)


def function() -> Check:
    return Check(callable, "a callable", "init_worker", optional=True)


def iterable() -> Check:
    return Check(
        lambda v: isinstance(v, collections.abc.Iterable), "an iterable of arguments", "(1, 2)"
    )


def anything() -> Check:
    return Check(_anything, "anything", "None")


# -- the table -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Option:
    """One option of every pool: its name, default, documentation and check; its type is
    that of its key in :class:`PoolArguments` or :class:`PoolOptions` (``annotation``)."""

    name: str
    default: Any
    doc: str
    """The option's entry in a numpydoc ``Parameters`` section, without its name: the
    first line says what it is, the rest is indented as the first."""
    check: Check
    annotation: Any = None

    def parameter(self, kind: inspect._ParameterKind, default: Any) -> inspect.Parameter:
        """The option as a parameter of a signature, with ``default`` (a pool's own)."""
        return inspect.Parameter(self.name, kind, default=default, annotation=self.annotation)


def _typed(options: Sequence[Option], declared: type) -> tuple[Option, ...]:
    """``options`` with their annotations from ``declared``; they must be its keys."""
    hints = typing.get_type_hints(declared)
    names = [o.name for o in options]
    if names != list(hints):
        raise AssertionError(f"{declared.__name__} declares {list(hints)}, the table {names}")
    return tuple(dataclasses.replace(o, annotation=hints[o.name]) for o in options)


ARGUMENTS = _typed(
    (
        Option(
            "processes",
            None,
            """As in ``multiprocessing.Pool``: for the local backend the number of worker
            processes; for a cluster backend a cap on this pool's jobs at once (unless
            ``num_simultaneously_running_tasks`` is given).""",
            count(1, "4", optional=True),
        ),
        Option(
            "initializer",
            None,
            "Called as ``initializer(*initargs)`` once in every worker, before its tasks.",
            function(),
        ),
        Option("initargs", (), "The arguments of ``initializer``.", iterable()),
        Option(
            "maxtasksperchild",
            None,
            """A worker exits after this many chunks (a chunk is what ``multiprocessing``
            counts as a task), and a new one takes its place if work remains.""",
            count(1, "100", optional=True, wrong_type=ValueError),
        ),
        Option(
            "context",
            None,
            "Accepted for compatibility with ``multiprocessing.Pool``; not used.",
            anything(),
        ),
    ),
    PoolArguments,
)
"""The positional parameters of every pool, as ``multiprocessing.Pool``'s."""

OPTIONS = _typed(
    (
        Option(
            "work_dir",
            DEFAULT_WORK_DIR,
            """Where the pool's queue and each map's session directory are made; must be
            reachable from the compute nodes. Default ``./.batchpool``.""",
            path("'/scratch/me/pools'"),
        ),
        Option(
            "python_path",
            None,
            "The interpreter that runs the jobs. Default: this one, by absolute path.",
            path("'/usr/bin/python3'", optional=True),
        ),
        Option(
            "polling_interval",
            DEFAULT_POLLING_INTERVAL,
            """Seconds: the longest wait between two status queries to the scheduler (one
            query for all of the pool's jobs). Claims and results are looked for often.""",
            seconds(positive=True, example="5"),
        ),
        Option(
            "max_num_resubmissions",
            DEFAULT_MAX_NUM_RESUBMISSIONS,
            """How often the tasks of one chunk may be put back in the queue after their job
            failed or vanished while holding them. Tasks a dying job had finished are kept;
            what is retried, and how, depends on why the job died (``retry_policy``).""",
            count(0, "3"),
        ),
        Option(
            "num_simultaneously_running_tasks",
            None,
            """Cap on this pool's jobs in the scheduler at once (fair share): the cap that
            ``processes`` sets, settable in a profile; it wins over ``processes``.""",
            count(1, "50", optional=True),
        ),
        Option(
            "keep_work_dir",
            False,
            """Keep the whole session directory after a successful map, results included
            (it is always kept when something went wrong; without this flag a successful
            map leaves a small summary, for ``batchpool status`` and ``report``).""",
            flag(),
        ),
        Option("verbose", False, "Print one line to stderr for every state change.", flag()),
        Option(
            "progress",
            True,
            """Show a map's progress on stderr: a bar on a terminal, a time-stamped line
            at most every 30 s elsewhere (:mod:`batchpool.progress`). ``False`` shows
            neither; the ``batchpool`` logger and ``verbose`` are not affected.""",
            flag(),
        ),
        Option(
            "lost_job_grace_period_s",
            DEFAULT_GRACE_PERIOD_S,
            """How long a job may be out of the queue without the result of the chunk it
            held before that chunk counts as lost (shared filesystems show files late).
            Not waited when the job's watcher wrote how its worker died and the scheduler
            how the job ended: then all the worker wrote is there.""",
            seconds(positive=False, example="10"),
        ),
        Option(
            "resume",
            True,
            """Re-attach to the unfinished session of the same map (same function, tasks,
            chunksize and backend in the same ``work_dir``), keeping its results and the
            chunks that live workers hold. ``False`` always starts a new session.""",
            flag(),
        ),
        Option(
            "worker_idle_s",
            DEFAULT_WORKER_IDLE_S,
            """Seconds a worker waits for new work before its job exits, and a job still
            queued when the work ran out before it is deleted. The default, 5 s,
            bridges the pauses between consecutive maps of a script (an MCMC step, a
            loop's own bookkeeping) while giving an idle job's slot back to the
            cluster soon. 0 gives one chunk per job.""",
            seconds(positive=False, example="5"),
        ),
        Option(
            "scheduler_outage_s",
            DEFAULT_SCHEDULER_OUTAGE_S,
            """How long a scheduler that cannot be asked is waited out before
            :class:`~batchpool.SchedulerError` (default 30 minutes). Results that arrive
            meanwhile are collected, and no job is deleted for it.""",
            seconds(positive=False, example="1800"),
        ),
        Option(
            "retry_policy",
            None,
            """How lost jobs are retried by their cause (time limit, memory limit, a task
            that crashes its worker, ...): a :class:`~batchpool.RetryPolicy`, e.g.
            ``RetryPolicy(max_mem="16G", max_time="4:00:00")`` to let a task killed by a
            limit retry with more. The table is in :mod:`batchpool.policy`.""",
            instance(RetryPolicy, "RetryPolicy(max_mem='16G')"),
        ),
    ),
    PoolOptions,
)
"""The keyword options common to every pool."""

RESOURCES = _typed(
    (
        Option(
            "queue",
            None,
            """Where the jobs go: Slurm's partition (``--partition``), SGE's and PBS's queue
            (``-q``); ignored by the local backend. None: the scheduler's default.""",
            identifier("the name of a queue or partition", "'short'"),
        ),
        Option(
            "time",
            None,
            """Time limit per job: a bare number is minutes (``90``), or ``"1:30:00"``,
            ``"2-00:00:00"``, ``"90min"``, ``"1.5h"`` (:mod:`batchpool.units`); ignored by
            the local backend. None: the scheduler's default.""",
            time_limit(),
        ),
        Option(
            "mem",
            None,
            """Memory per job: a bare number is MB (``4096``), or ``"4G"``, ``"1.5G"``,
            ``"500M"`` (1024-based, :mod:`batchpool.units`); ignored by the local backend.
            None: the scheduler's default.""",
            memory(),
        ),
        Option(
            "cpus",
            None,
            """CPUs per job (Slurm ``--cpus-per-task``, PBS ``ncpus``/``ppn``, SGE the slots
            of the parallel environment ``pe_name``). None: the scheduler's default.""",
            count(1, "4", optional=True),
        ),
        Option(
            "gpus",
            None,
            """GPUs per job (Slurm ``--gres=gpu:N``, SGE the complex ``gpu_resource``, PBS
            ``ngpus``/``gpus``); locally each worker gets that many of the devices in
            ``CUDA_VISIBLE_DEVICES``. None or 0: none.""",
            count(0, "1", optional=True),
        ),
        Option(
            "account",
            None,
            """The account the jobs are charged to (Slurm ``--account``, SGE and PBS
            ``-A``); ignored by the local backend.""",
            identifier("the name of an account", "'myproject'"),
        ),
        Option(
            "setup",
            (),
            """Shell lines run in each job before its worker starts, in order and in the
            job's shell (``["module load python/3.11", "source venv/bin/activate",
            "export OMP_NUM_THREADS=1"]``; one string is split into lines). A line that
            fails ends the job before its worker starts, and the map with a
            :class:`~batchpool.BrokenEnvironmentError` that quotes it.""",
            shell_lines(),
        ),
    ),
    ResourceOptions,
)
"""The resources of every job, one vocabulary for every backend (``help(batchpool.Pool)``);
a backend's pool takes them beside its own options and hands its backend a
:class:`~batchpool.backend.JobResources`."""

PROFILE = Option(
    "profile",
    None,
    """The profile of the configuration file whose options this pool takes where they
    are not given here (:mod:`batchpool.config`); also the ``BATCHPOOL_*`` variables.
    None: ``$BATCHPOOL_PROFILE``, else the file's default profile if it is one of this
    backend.""",
    Check(lambda v: isinstance(v, str), "the name of a profile", "'short'", optional=True),
    annotation=Optional[str],
)

DECLARED = {o.name: o for o in (*ARGUMENTS, *OPTIONS, *RESOURCES, PROFILE)}
"""Every option declared here, by name."""


def check(name: str, value: object) -> None:
    """Raise the ``TypeError`` or ``ValueError`` of ``value`` for the declared option
    ``name`` (module docstring); an option of a backend is its backend's to check."""
    if name in DECLARED:
        DECLARED[name].check(name, value)


# -- signatures and docstrings -------------------------------------------------------------

_POSITIONAL = inspect.Parameter.POSITIONAL_OR_KEYWORD
_KEYWORD = inspect.Parameter.KEYWORD_ONLY


def compose_signature(
    backend: Sequence[inspect.Parameter] = (),
    *,
    leading: Optional[Sequence[inspect.Parameter]] = None,
    defaults: Mapping[str, Any] = {},  # noqa: B006 (read only)
    profile: bool = True,
    more: bool = False,
    resources: bool = False,
    returns: Any = None,
) -> inspect.Signature:
    """A pool's signature: ``leading`` (default: :data:`ARGUMENTS`), then as keywords only
    :data:`RESOURCES` if ``resources``, ``backend`` (its backend, or its backend's
    options), :data:`OPTIONS` with their
    ``defaults`` where a pool has its own, the ``profile`` and, if ``more``, ``**options``
    (the options of a backend chosen later: the Executor's)."""
    if leading is None:
        leading = [o.parameter(_POSITIONAL, defaults.get(o.name, o.default)) for o in ARGUMENTS]
    parameters = list(leading)
    if resources:
        parameters += [o.parameter(_KEYWORD, o.default) for o in RESOURCES]
    parameters += backend
    parameters += [o.parameter(_KEYWORD, defaults.get(o.name, o.default)) for o in OPTIONS]
    if profile:
        parameters.append(PROFILE.parameter(_KEYWORD, PROFILE.default))
    if more:
        parameters.append(inspect.Parameter("options", inspect.Parameter.VAR_KEYWORD))
    return inspect.Signature(parameters, return_annotation=returns)


def typed_signature(function: Callable[..., Any]) -> inspect.Signature:
    """``function``'s signature with its annotations evaluated: under ``from __future__
    import annotations`` they are strings, which ``help()`` would show in quotes."""
    hints = typing.get_type_hints(function)
    signature = inspect.signature(function)
    parameters = [
        p.replace(annotation=hints.get(p.name, p.annotation))
        for p in signature.parameters.values()
    ]
    returns = hints.get("return", signature.empty)
    return signature.replace(
        parameters=parameters, return_annotation=None if returns is type(None) else returns
    )


def with_self(signature: inspect.Signature) -> inspect.Signature:
    """``signature`` as that of an ``__init__``."""
    self = inspect.Parameter("self", _POSITIONAL)
    return signature.replace(parameters=[self, *signature.parameters.values()])


def parameters_doc(options: Iterable[Option]) -> str:
    """The entries of a numpydoc ``Parameters`` section for ``options``."""
    entries = []
    for option in options:
        first, _, rest = option.doc.partition("\n")
        text = first.strip() + ("\n" + textwrap.dedent(rest) if rest else "")
        entries.append(f"{option.name}\n{textwrap.indent(text, '    ')}\n")
    return "".join(entries)


def bind_given(
    signature: inspect.Signature, caller: str, args: Sequence[Any], kwargs: Mapping[str, Any]
) -> dict[str, Any]:
    """The arguments given, by name (defaults are not filled in), as ``caller`` takes them.

    An unknown keyword is a ``TypeError`` that names ``caller`` (what the user called)
    and the options nearest to it; so are too many positional arguments."""
    names = [
        p.name for p in signature.parameters.values() if p.kind in (_POSITIONAL, _KEYWORD)
    ]
    takes_more = any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in signature.parameters.values()
    )
    for name in kwargs:
        if name not in names and not takes_more:
            near = difflib.get_close_matches(name, names, n=3)
            hint = f"; did you mean {' or '.join(map(repr, near))}?" if near else ""
            raise TypeError(f"{caller}() got an unexpected keyword argument {name!r}{hint}")
    try:
        return dict(signature.bind_partial(*args, **kwargs).arguments)
    except TypeError as error:
        raise TypeError(f"{caller}(): {error}") from None


def keyword_options(signature: inspect.Signature) -> dict[str, inspect.Parameter]:
    """The keyword-only parameters of ``signature``, by name."""
    return {p.name: p for p in signature.parameters.values() if p.kind is _KEYWORD}


# -- what the engine is given --------------------------------------------------------------


@dataclass(frozen=True)
class PoolSettings:
    """The options of a pool that the engine acts on (see :class:`~batchpool.Pool`),
    checked, with their defaults: made by :meth:`of`."""

    work_dir: Path
    python_path: str
    """The absolute path of an executable."""
    polling_interval: float
    max_num_resubmissions: int
    max_jobs: Optional[int]
    """The cap on the pool's jobs at once (``num_simultaneously_running_tasks``, else
    ``processes``); None: no cap."""
    keep_work_dir: bool
    verbose: bool
    lost_job_grace_period_s: float
    resume: bool
    worker_idle_s: float
    maxtasksperchild: Optional[int]
    scheduler_outage_s: float
    retry_policy: RetryPolicy = RetryPolicy()
    progress: bool = True
    """Show a map's progress bar or lines (:class:`batchpool.progress.Progress`)."""

    @classmethod
    def of(cls, values: Mapping[str, Any]) -> PoolSettings:
        """The settings of a pool given ``values``: a value for every name of
        :data:`ARGUMENTS` and :data:`OPTIONS`, checked (:func:`check`)."""
        retry_policy = values["retry_policy"]
        return cls(
            work_dir=Path(values["work_dir"]).absolute(),
            python_path=_python_path(values["python_path"]),
            polling_interval=float(values["polling_interval"]),
            max_num_resubmissions=values["max_num_resubmissions"],
            max_jobs=values["num_simultaneously_running_tasks"] or values["processes"],
            keep_work_dir=values["keep_work_dir"],
            verbose=values["verbose"],
            lost_job_grace_period_s=float(values["lost_job_grace_period_s"]),
            resume=values["resume"],
            worker_idle_s=float(values["worker_idle_s"]),
            maxtasksperchild=values["maxtasksperchild"],
            scheduler_outage_s=float(values["scheduler_outage_s"]),
            retry_policy=retry_policy if retry_policy is not None else RetryPolicy(),
            progress=values["progress"],
        )


def _python_path(python_path: Optional[Union[str, os.PathLike[str]]]) -> str:
    path = Path(python_path) if python_path is not None else Path(sys.executable)
    if not str(path) or not path.is_file() or not os.access(path, os.X_OK):
        raise ValueError(
            f"python_path {str(path)!r} is not an executable file; give the absolute path "
            "of a Python interpreter (with batchpool installed) that the compute nodes can run."
        )
    return str(path.absolute())
