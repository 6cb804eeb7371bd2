"""One vocabulary of resources on every backend (issue 23): the same script with ``queue``,
``time``, ``mem``, ``cpus``, ``gpus`` and ``setup`` runs unchanged on the local pool and
the dummy Slurm, SGE and PBS, whose submissions carry each scheduler's directives; a
failing ``setup`` line is a :class:`~batchpool.BrokenEnvironmentError` that quotes it.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import pytest

import batchpool
from batchpool import BrokenEnvironmentError
from batchpool.testing import DummyCluster

DUMMIES = ["slurm", "slurm.array", "sge", "pbs"]
ONE_SCRIPT = dict(
    queue="short",
    time="90",
    mem="1.5G",
    cpus=2,
    gpus=1,
    setup=["export BATCHPOOL_TEST_SETUP=ran", "unset BATCHPOOL_TEST_GONE"],
)
"""What the script asks for, the same on every backend."""
OWN = {"sge": dict(pe_name="smp")}
"""The one extra SGE needs: it has no standard parallel environment for ``cpus``."""
EXPORTED = {"sge": dict(qsub_args=["-V"]), "pbs": dict(qsub_args=["-V"])}
"""The dummy SGE and PBS start jobs in a login environment, where ``python -m
batchpool.worker`` would import the installed batchpool, not the one under test (the
worker re-executes itself with the driver's ``PYTHONPATH`` only after reading the
environment): ``-V`` gives the job this one from its start."""


def setup_variables(_: object) -> tuple:
    """What the job's environment says of the setup lines (a task, run in the job)."""
    return os.environ.get("BATCHPOOL_TEST_SETUP"), os.environ.get("BATCHPOOL_TEST_GONE")


def make_pool(backend: str, request, tmp_path: Path, **options):
    if backend == "local":
        return batchpool.local.Pool(2, work_dir=tmp_path / "work", **options)
    cluster: DummyCluster = request.getfixturevalue("dummy_cluster")
    cluster.set_config(partitions=("short",))
    factory = request.getfixturevalue(f"dummy_{backend.replace('.', '_')}_pool")
    own = {**OWN.get(backend, {}), **EXPORTED.get(backend, {})}
    return factory(2, polling_interval=0.5, **own, **options)


def submissions(cluster: DummyCluster, backend: str) -> list[list[str]]:
    program = "sbatch" if backend.startswith("slurm") else "qsub"
    return [call["argv"] for call in cluster.calls(program)]


def job_scripts(cluster: DummyCluster) -> list[str]:
    return [Path(job.command[-1]).read_text() for job in cluster.jobs() if job.command]


EXPECTED = {
    "slurm": [
        "--partition short",
        "--time 01:30:00",
        "--mem 1536M",
        "--cpus-per-task 2",
        "--gres gpu:1",
    ],
    "sge": ["-q short", "-pe smp 2", "-l h_rt=5400,h_vmem=768M,gpu=1"],
    "pbs": ["-q short", "-l walltime=01:30:00,mem=1536mb,nodes=1:ppn=2:gpus=1"],
}
"""The directives of each scheduler, as they appear in its submission command (SGE's
``h_vmem`` is per slot: 1.5G over 2 CPUs)."""


@pytest.mark.parametrize("backend", ["local", *DUMMIES])
def test_one_script_runs_unchanged_on_every_backend(
    backend, request, tmp_path, monkeypatch, caplog
):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    monkeypatch.setenv("BATCHPOOL_TEST_GONE", "driver's")
    caplog.set_level(logging.INFO, logger="batchpool")
    with make_pool(backend, request, tmp_path, **ONE_SCRIPT) as pool:
        assert pool.map(setup_variables, range(3)) == [("ran", None)] * 3
    if backend == "local":
        ignored = [r.getMessage() for r in caplog.records if "ignores" in r.getMessage()]
        assert ignored == [
            "batchpool: the local backend ignores queue='short', time='5400s', "
            "mem='1536M', cpus=2 (they mean nothing here)"
        ]
        return
    cluster = request.getfixturevalue("dummy_cluster")
    for argv in submissions(cluster, backend):
        line = " ".join(argv)
        for directive in EXPECTED[backend.partition(".")[0]]:
            assert directive in line, (directive, argv)
    for script in job_scripts(cluster):
        assert "export BATCHPOOL_TEST_SETUP=ran" in script
        assert "batchpool: setup line failed" in script


def cuda_devices(_: object) -> str:
    time.sleep(0.3)
    return os.environ["CUDA_VISIBLE_DEVICES"]


def test_local_workers_share_out_the_visible_gpus(tmp_path, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5,7,9")
    with batchpool.local.Pool(2, gpus=2, work_dir=tmp_path / "work") as pool:
        seen = set(pool.map(cuda_devices, range(4), chunksize=1))
    assert seen <= {"3,5", "7,9"} and seen
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    with pytest.raises(ValueError, match=r"gpus=2: .* CUDA_VISIBLE_DEVICES, which lists 1"):
        batchpool.local.Pool(1, gpus=2, work_dir=tmp_path / "work")


@pytest.mark.parametrize("backend", ["local", *DUMMIES])
def test_a_failing_setup_line_is_a_broken_environment_quoting_it(backend, request, tmp_path):
    setup = ["export FINE=1", "batchpool-no-such-command --version"]
    with make_pool(backend, request, tmp_path, setup=setup, max_num_resubmissions=5) as pool:
        started = time.monotonic()
        with pytest.raises(BrokenEnvironmentError) as caught:
            pool.map(abs, range(4))
    message = str(caught.value)
    assert "A setup line failed (exit 127)" in message
    assert "batchpool-no-such-command --version" in message
    if backend != "local":  # within one job's lifetime: the first job that failed
        cluster = request.getfixturevalue("dummy_cluster")
        assert len(submissions(cluster, backend)) <= 2
    assert time.monotonic() - started < 30


@pytest.mark.parametrize(
    ("pool_class", "alias", "name"),
    [
        (batchpool.slurm.Pool, "partition", "queue"),
        (batchpool.slurm.Pool, "cpus_per_task", "cpus"),
        (batchpool.pbs.Pool, "walltime", "time"),
        (batchpool.pbs.Pool, "ncpus", "cpus"),
        (batchpool.sge.Pool, "queue_name", "queue"),
    ],
)
def test_an_alias_and_its_name_together_is_an_error(pool_class, alias, name, tmp_path):
    value = {"queue": "a", "cpus": 2, "time": "10"}[name]
    with pytest.raises(TypeError, match=f"{alias}=.* and {name}=.* both given"):
        pool_class(work_dir=tmp_path, **{alias: value, name: value})


@pytest.mark.parametrize(
    ("option", "value", "says"),
    [
        ("time", "soon", "time='soon': must be a time limit"),
        ("mem", "lots", "mem='lots': must be an amount of memory"),
        ("cpus", 0, "cpus=0: must be an integer >= 1"),
        ("gpus", "1", "gpus='1': must be an integer >= 0"),
        ("setup", 3, "setup=3: must be shell lines"),
    ],
)
def test_a_bad_resource_names_the_option_and_a_good_value(option, value, says, tmp_path):
    with pytest.raises((TypeError, ValueError), match=r"like ") as caught:
        batchpool.local.Pool(1, work_dir=tmp_path, **{option: value})
    assert says in str(caught.value)


def test_sge_cpus_need_a_parallel_environment(tmp_path):
    with pytest.raises(ValueError, match="cpus=4 on SGE needs a parallel environment.*pe_name="):
        batchpool.sge.Pool(cpus=4, work_dir=tmp_path)


def test_the_readme_executor_runs_off_cluster(tmp_path, monkeypatch):
    monkeypatch.setenv("BATCHPOOL_BACKEND", "local")
    monkeypatch.chdir(tmp_path)
    with batchpool.Executor(max_workers=2, queue="short") as executor:
        assert list(executor.map(abs, [-1, -2])) == [1, 2]
