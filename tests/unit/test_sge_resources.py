"""Unit tests of the resources of batchpool.sge: the pool's memory and time
(``base_resources``), and a retry's changes on the ``qsub`` command line.

The host-exclusion syntax was checked on the real SGE 8.1.9 of ci/sge/start.sh:
``-l 'h=!node1&!node2.example.com'`` and ``-l 'h=(v*)&!node1&!node2'`` run on host
``vm``; ``-l 'h=!vm'`` and ``-l 'h=(v*)&!vm'`` stay ``qw`` (``(-l hostname=!vm) cannot
run in queue "all.q@vm"``); of ``-l h=v* -l 'h=!vm'`` only the last is kept.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from batchpool.backend import JobRequest, Resources
from batchpool.commands import CommandPolicy
from batchpool.sge import (
    SgeBackend,
    base_resources_of,
    host_exclusion,
    job_resource_lists,
    parse_sge_memory,
    parse_sge_time,
    resource_requests,
)
from helpers.fake_programs import FakeProgram

FAST = CommandPolicy(timeout_s=20.0, num_retries=0, backoff_s=0.0)
LOGS = ("/work/pool_x/logs/sge.x.out", "/work/pool_x/logs/sge.x.err")
OWN = Resources()


def request(resources: Resources = OWN, log_dir: Path = Path("/work/pool_x/logs")):
    return JobRequest(
        pool_dir=Path("/work/pool_x"),
        job_name="mymap",
        count=1,
        python_path="/venv/bin/python",
        log_dir=log_dir,
        resources=resources,
        tier=1 if resources != Resources() else 0,
    )


def l_options(argv: list[str]) -> list[str]:
    return [argv[i + 1] for i, arg in enumerate(argv) if arg == "-l"]


# -- SGE's values -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("4G", 4 * 1024**3),
        ("4g", 4 * 1000**3),
        ("500M", 500 * 1024**2),
        ("1500m", 1.5e9),
        ("2048K", 2 * 1024**2),
        ("2048k", 2.048e6),
        ("1T", 1024**4),
        ("1t", 1e12),
        ("1073741824", 1024**3),
        ("1.5G", 1.5 * 1024**3),
        ("0x10M", 16 * 1024**2),
        (" 4G ", 4 * 1024**3),
        ("INFINITY", None),
        ("infinity", None),
        ("4GB", None),
        ("", None),
        ("-1G", None),
    ],
)
def test_parse_sge_memory(text, expected):
    assert parse_sge_memory(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30", 30),
        ("0:0:30", 30),
        ("1:00:00", 3600),
        ("01:30:05", 5405),
        ("1::1", 3601),
        ("::", 0),
        ("48:00:00", 172800),
        ("0x10", 16),
        ("2.5", 3),
        ("INFINITY", None),
        ("1-00:00:00", None),
        ("", None),
    ],
)
def test_parse_sge_time(text, expected):
    assert parse_sge_time(text) == expected


def test_resource_requests_split_comma_joined_lists_in_order():
    assert resource_requests(["h_rt=30,h_vmem=2G", "exclusive", " h = !a&!b "]) == [
        ("h_rt", "30"),
        ("h_vmem", "2G"),
        ("exclusive", ""),
        ("h", "!a&!b"),
    ]


# -- base_resources ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("resources", "expected"),
    [
        ([], Resources()),
        (["h_vmem=4G"], Resources(mem_mb=4096)),
        (["h_rt=30"], Resources(time_s=30)),
        (["h_rt=1:00:00", "h_vmem=4G"], Resources(mem_mb=4096, time_s=3600)),
        (["h_rt=30,h_vmem=2G"], Resources(mem_mb=2048, time_s=30)),
        (["h_vmem=500M"], Resources(mem_mb=500)),
        (["h_vmem=4g"], Resources(mem_mb=3815)),  # 4e9 bytes, rounded up
        (["h_vmem=1073741824"], Resources(mem_mb=1024)),
        (["h_vmem=1.5G"], Resources(mem_mb=1536)),
        (["h_vmem=2G", "h_vmem=3G"], Resources(mem_mb=3072)),  # SGE keeps the last
        (["h_rt=INFINITY", "h_vmem=INFINITY"], Resources()),
        (["s_rt=30", "s_vmem=1G", "mem_free=2G"], Resources()),
        (["h=node1", "exclusive"], Resources()),
    ],
)
def test_base_resources(resources, expected):
    assert base_resources_of(resources) == expected
    assert SgeBackend(resources=resources).base_resources() == expected


# -- a retry's resources on the qsub command line -----------------------------------------


def test_no_changes_keep_the_pools_lists_as_they_are():
    lists = ["h_rt=30,h_vmem=2G", "exclusive"]
    assert job_resource_lists(lists, Resources()) == lists


def test_more_memory_replaces_the_pools_h_vmem():
    lists = ["h_vmem=2G", "h_rt=30"]
    assert job_resource_lists(lists, Resources(mem_mb=4096)) == ["h_rt=30", "h_vmem=4096M"]


def test_more_time_replaces_the_pools_h_rt():
    lists = ["h_vmem=2G", "h_rt=1:00:00"]
    assert job_resource_lists(lists, Resources(time_s=7200)) == ["h_vmem=2G", "h_rt=7200"]


def test_changes_reach_into_comma_joined_lists():
    changes = Resources(mem_mb=4096, time_s=60)
    assert job_resource_lists(["h_rt=30,h_vmem=2G,exclusive"], changes) == [
        "exclusive",
        "h_rt=60",
        "h_vmem=4096M",
    ]
    assert job_resource_lists(["h_rt=30,h_vmem=2G"], changes) == ["h_rt=60", "h_vmem=4096M"]


def test_changes_without_a_pool_setting_add_one():
    changes = Resources(mem_mb=1000, time_s=90)
    assert job_resource_lists([], changes) == ["h_rt=90", "h_vmem=1000M"]


def test_excluded_nodes():
    changes = Resources(exclude_nodes=("node3", "node7.example.org"))
    assert job_resource_lists(["h_vmem=2G"], changes) == [
        "h_vmem=2G",
        "h=!node3&!node7.example.org",
    ]


def test_excluded_nodes_are_and_ed_with_the_pools_host_request():
    changes = Resources(exclude_nodes=("node3",))
    assert job_resource_lists(["hostname=node*", "h_rt=30"], changes) == [
        "h_rt=30",
        "h=(node*)&!node3",
    ]
    assert host_exclusion(["h=a*|b*,h_rt=5"], ["a1", "b2"]) == "(a*|b*)&!a1&!b2"
    assert host_exclusion([], ["a1"]) == "!a1"


def test_qsub_argv_with_a_retrys_resources():
    backend = SgeBackend(queue_name="all.q", resources=["h_rt=30,h_vmem=2G"], qsub_args=["-p", "0"])
    changes = Resources(mem_mb=4096, time_s=60, exclude_nodes=("n1", "n2"))
    argv = backend.qsub_argv(request(changes), LOGS)
    assert l_options(argv) == ["h_rt=60", "h_vmem=4096M", "h=!n1&!n2"]
    assert argv[-2:] == ["-p", "0"]
    assert argv[argv.index("-q") + 1] == "all.q"


def test_qsub_argv_of_the_pools_own_resources_is_unchanged():
    backend = SgeBackend(resources=["h_rt=30", "h_vmem=2G"])
    assert l_options(backend.qsub_argv(request(), LOGS)) == ["h_rt=30", "h_vmem=2G"]


def test_submit_passes_a_retrys_resources_and_tier_on(tmp_path):
    qsub = FakeProgram(tmp_path, "qsub", ("42\n", "", 0))
    backend = SgeBackend(resources=["h_vmem=1G"], qsub_path=str(qsub.path), command_policy=FAST)
    (submitted,) = backend.submit(request(Resources(mem_mb=2048), log_dir=tmp_path))
    (call,) = qsub.calls
    assert l_options(call["argv"]) == ["h_vmem=2048M"]
    assert "--tier 1" in call["stdin"]
    assert submitted.job_id == "42"
