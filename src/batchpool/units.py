"""The one grammar of the times and amounts of memory a user gives batchpool.

Every option that takes a time limit or an amount of memory (``time`` and ``mem`` of
:class:`batchpool.slurm.Pool`, ``walltime`` and ``mem`` of :class:`batchpool.pbs.Pool`,
``max_time`` and ``max_mem`` of :class:`batchpool.RetryPolicy`) reads its value here, so
``"90"`` and ``"1.5G"`` mean the same everywhere. The backend then writes the value in its
scheduler's syntax. (Raw scheduler arguments, ``sbatch_args``, ``qsub_args`` and SGE's
``resources``, are the scheduler's to read and are passed on as they are.)

Times (:func:`parse_time_s`)
----------------------------
======================================  ==============================================
``90``, ``"90"``, ``1.5``               a bare number is **minutes**, as Slurm's
                                        ``--time`` and submitit's ``timeout_min``
``"MM:SS"``, ``"H:MM:SS"``              clock forms as Slurm reads them: ``"90:00"``,
                                        ``"1:30:00"``
``"D-HH"``, ``"D-HH:MM"``,              days and a clock: ``"2-00:00:00"``
``"D-HH:MM:SS"``
``"90s"``, ``"90m"``/``"90min"``,       a number with a unit (seconds, minutes, hours,
``"1.5h"``, ``"2d"``                    days), decimals allowed
======================================  ==============================================

So ``90``, ``"90"``, ``"1:30:00"``, ``"90min"`` and ``"1.5h"`` are all 5400 seconds.
A fraction of a second is rounded up.

Memory (:func:`parse_mem_mb`)
-----------------------------
A bare number is **MB** (as Slurm's ``--mem``); a unit ``K``, ``M``, ``G`` or ``T``, in
either case, optionally followed by ``B``, is 1024-based; decimals are allowed, and a
fraction of a MB is rounded up. So ``1536``, ``"1536M"``, ``"1.5G"`` and ``"1.5gb"`` are
all 1536 MB, and ``"512K"`` is 1 MB.

Negative values, zero and booleans are refused with a :class:`ValueError` that names the
option and shows the forms above.
"""

from __future__ import annotations

import math
import re
from typing import Union

__all__ = ["Duration", "Memory", "parse_mem_mb", "parse_time_s"]

Duration = Union[int, float, str]
"""A time limit as a user writes it (module docstring)."""
Memory = Union[int, float, str]
"""An amount of memory as a user writes it (module docstring)."""

_NUMBER = r"(\d+(?:\.\d*)?|\.\d+)"
_SECONDS_PER_UNIT = {
    "s": 1,
    "sec": 1,
    "m": 60,
    "min": 60,
    "h": 3600,
    "hr": 3600,
    "d": 86400,
    "day": 86400,
}
_CLOCK_FORMS = (
    re.compile(r"(?P<d>\d+)-(?P<h>\d+)(?::(?P<m>\d+)(?::(?P<s>\d+))?)?"),
    re.compile(r"(?P<h>\d+):(?P<m>\d+):(?P<s>\d+)"),
    re.compile(r"(?P<m>\d+):(?P<s>\d+)"),
)
_WITH_UNIT = re.compile(_NUMBER + r"\s*([a-z]*)", re.IGNORECASE)
_MB_PER_UNIT = {"": 1, "k": 1 / 1024, "m": 1, "g": 1024, "t": 1024 * 1024}
_MEMORY = re.compile(_NUMBER + r"\s*([kmgt]?)b?", re.IGNORECASE)

TIME_EXAMPLES = "write minutes (90), '1:30:00', '2-00:00:00' or '90min'"
MEM_EXAMPLES = "write MB (4096), '4G', '1.5G' or '500M'"


def parse_time_s(value: Duration, name: str = "time") -> int:
    """Seconds of a time limit in the module's grammar (``"90"``, ``"1:30:00"`` and
    ``"1.5h"`` are 5400). Anything else, or no time at all, is a ValueError that names
    the option ``name`` and shows good values."""
    return _positive(_time_s(value, name), value, name, "a time limit")


def _time_s(value: Duration, name: str) -> int:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _rounded_up(float(value) * 60, value, name, TIME_EXAMPLES)
    if isinstance(value, str):
        text = value.strip()
        for form in _CLOCK_FORMS:
            match = form.fullmatch(text)
            if match is not None:
                part = {k: int(v) for k, v in match.groupdict(default="0").items()}
                d, h, m, s = (part.get(k, 0) for k in "dhms")
                return d * 86400 + h * 3600 + m * 60 + s
        match = _WITH_UNIT.fullmatch(text)
        if match is not None:
            unit = match.group(2).lower() or "min"
            if unit in _SECONDS_PER_UNIT:
                seconds = float(match.group(1)) * _SECONDS_PER_UNIT[unit]
                return _rounded_up(seconds, value, name, TIME_EXAMPLES)
    raise ValueError(f"{name}={value!r} is not a duration: {TIME_EXAMPLES}")


def parse_mem_mb(value: Memory, name: str = "mem") -> int:
    """MB of an amount of memory in the module's grammar (``1536``, ``"1536M"`` and
    ``"1.5G"`` are 1536). Anything else, or none at all, is a ValueError that names the
    option ``name`` and shows good values."""
    return _positive(_mem_mb(value, name), value, name, "an amount of memory")


def _positive(number: int, value: object, name: str, what: str) -> int:
    if number <= 0:
        raise ValueError(f"{name}={value!r} is not {what}: it must be more than zero")
    return number


def _mem_mb(value: Memory, name: str) -> int:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _rounded_up(float(value), value, name, MEM_EXAMPLES)
    if isinstance(value, str):
        match = _MEMORY.fullmatch(value.strip())
        if match is not None:
            mb = float(match.group(1)) * _MB_PER_UNIT[match.group(2).lower()]
            return _rounded_up(mb, value, name, MEM_EXAMPLES)
    raise ValueError(f"{name}={value!r} is not an amount of memory: {MEM_EXAMPLES}")


def _rounded_up(number: float, value: object, name: str, examples: str) -> int:
    """``number`` rounded up to an int; a negative, infinite or NaN ``number`` is refused."""
    if not math.isfinite(number) or number < 0:
        raise ValueError(f"{name}={value!r} is negative or not finite: {examples}")
    return math.ceil(round(number, 6))  # 1.1h is 3960 s, not 3960.0000000000005
