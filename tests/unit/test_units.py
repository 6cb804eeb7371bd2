"""The one grammar of times and memory (:mod:`batchpool.units`), and that every option
that takes one means the same by ``"90"`` and ``"1.5G"``."""

from __future__ import annotations

from pathlib import Path

import pytest

from batchpool.backend import JobRequest, Resources
from batchpool.pbs import Dialect, PbsBackend
from batchpool.policy import RetryPolicy
from batchpool.slurm import SlurmBackend
from batchpool.slurm.array import SlurmArrayBackend
from batchpool.units import parse_mem_mb, parse_time_s


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (90, 5400),  # a bare number is minutes
        ("90", 5400),
        (" 90 ", 5400),
        (1.5, 90),
        ("1.5", 90),
        ("90:00", 5400),  # MM:SS
        ("1:30", 90),
        ("1:30:00", 5400),  # H:MM:SS
        ("36:00:00", 129600),
        ("2-0", 172800),  # D-HH
        ("1-12", 129600),
        ("1-2:30", 95400),  # D-HH:MM
        ("2-00:00:00", 172800),  # D-HH:MM:SS
        ("0-1:30:00", 5400),
        ("90s", 90),
        ("90sec", 90),
        ("90m", 5400),
        ("90min", 5400),
        ("90 min", 5400),
        ("1.5h", 5400),
        ("1.5H", 5400),
        ("1.1h", 3960),  # no float noise rounded up
        ("2d", 172800),
        ("0.5s", 1),  # a fraction of a second is rounded up
    ],
)
def test_times(value, seconds):
    assert parse_time_s(value) == seconds


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("fast", "time='fast' is not a duration: write minutes (90), '1:30:00'"),
        ("", "is not a duration"),
        ("1:2:3:4", "is not a duration"),
        ("1-", "is not a duration"),
        ("90x", "is not a duration"),
        ("UNLIMITED", "is not a duration"),
        ("-5", "is not a duration"),
        (-5, "time=-5 is negative"),
        (float("inf"), "not finite"),
        (float("nan"), "not finite"),
        (True, "time=True is not a duration"),
        (None, "time=None is not a duration"),
        (0, "time=0 is not a time limit: it must be more than zero"),
        ("0:00", "must be more than zero"),
    ],
)
def test_what_is_not_a_time(value, words):
    with pytest.raises(ValueError, match=words.replace("(", r"\(").replace(")", r"\)")):
        parse_time_s(value)


def test_a_time_error_names_the_option():
    with pytest.raises(ValueError, match="^max_time='soon' is not a duration"):
        parse_time_s("soon", "max_time")


@pytest.mark.parametrize(
    ("value", "mb"),
    [
        (1536, 1536),  # a bare number is MB
        ("1536", 1536),
        ("1536M", 1536),
        ("1536MB", 1536),
        ("1.5G", 1536),
        ("1.5g", 1536),
        ("1.5GB", 1536),
        ("1.5 gb", 1536),
        ("4G", 4096),
        ("1T", 1024 * 1024),
        ("2048K", 2),
        ("512K", 1),  # K rounds up
        ("1025K", 2),
        (0.5, 1),
        ("2.5M", 3),
    ],
)
def test_memory(value, mb):
    assert parse_mem_mb(value) == mb


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("lots", "mem='lots' is not an amount of memory: write MB (4096), '4G'"),
        ("", "is not an amount of memory"),
        ("4 GiB", "is not an amount of memory"),
        ("4X", "is not an amount of memory"),
        ("4GBB", "is not an amount of memory"),
        ("1kw", "is not an amount of memory"),
        ("-1G", "is not an amount of memory"),
        (-1, "mem=-1 is negative"),
        (False, "mem=False is not an amount of memory"),
        (0, "mem=0 is not an amount of memory: it must be more than zero"),
        ("0G", "must be more than zero"),
    ],
)
def test_what_is_not_memory(value, words):
    with pytest.raises(ValueError, match=words.replace("(", r"\(").replace(")", r"\)")):
        parse_mem_mb(value)


def request() -> JobRequest:
    return JobRequest(Path("/work/pool_x"), "bp_x", 1, "/venv/bin/python", Path("/work/logs"))


THE_SAME = Resources(mem_mb=1536, time_s=5400)


@pytest.mark.parametrize(("time", "mem"), [("90", "1.5G"), (90, 1536), ("1:30:00", "1536M")])
def test_90_and_1_5G_mean_the_same_in_every_backend_and_in_the_retry_policy(time, mem):
    slurm = SlurmBackend(time=time, mem=mem)
    array = SlurmArrayBackend(time=time, mem=mem)
    pbs = PbsBackend(walltime=time, mem=mem, dialect="torque")
    for backend in (slurm, array, pbs):
        assert backend.base_resources() == THE_SAME, backend.name
    for argv in (slurm.sbatch_argv(request()), array.sbatch_argv(request())):
        assert argv[argv.index("--time") + 1] == "01:30:00"
        assert argv[argv.index("--mem") + 1] == "1536M"
    assert pbs.resource_argv(Dialect.TORQUE, Resources()) == ["-l", "walltime=01:30:00,mem=1536mb"]
    policy = RetryPolicy(max_time=time, max_mem=mem)
    assert (policy.max_mem_mb, policy.max_time_s) == (THE_SAME.mem_mb, THE_SAME.time_s)


@pytest.mark.parametrize(
    "make",
    [
        lambda: SlurmBackend(time="soon"),
        lambda: SlurmArrayBackend(mem="lots"),
        lambda: PbsBackend(walltime="soon"),
        lambda: PbsBackend(mem="lots"),
        lambda: RetryPolicy(max_time="soon"),
        lambda: RetryPolicy(max_mem="lots"),
    ],
)
def test_every_option_refuses_what_the_grammar_refuses(make):
    with pytest.raises(ValueError, match="is not a duration|is not an amount of memory"):
        make()
