"""``batchpool demo`` runs on this machine unless ``--backend`` is given, and then says
where its jobs go and submits a few with small limits (the dummy Slurm here)."""

from __future__ import annotations

import os

import pytest

from batchpool.testing import install_dummies
from batchpool.testing.plugin import program_paths
from helpers.command import run
from helpers.fake_programs import FakeProgram
from helpers.profiles import logging_sbatch


@pytest.fixture
def no_variables(monkeypatch):
    for name in [n for n in os.environ if n.startswith("BATCHPOOL_")]:
        monkeypatch.delenv(name)


def test_on_a_host_with_sbatch_and_qsub_the_demo_runs_here(
    tmp_path, capsys, monkeypatch, no_variables
):
    fakes = tmp_path / "bin"
    fakes.mkdir()
    programs = [FakeProgram(fakes, name, ("", "a fake\n", 1)) for name in ("sbatch", "qsub")]
    monkeypatch.setenv("PATH", f"{fakes}{os.pathsep}{os.environ['PATH']}")
    code, out, _ = run(capsys, "demo", "--tasks", "3", "--work-dir", tmp_path / "work")
    assert code == 0
    first, second = out.splitlines()[:2]
    assert first.endswith("a map of 3 tasks on the 'local' backend")
    assert second.startswith("(on this machine; --backend slurm")
    assert "3 results in" in out
    assert [p.calls for p in programs] == [[], []]


@pytest.mark.parametrize(
    ("partition", "where"),
    [
        (None, "jobs go to the scheduler's default queue"),
        ("local", "jobs go to queue 'local' (environment BATCHPOOL_QUEUE)"),
    ],
)
def test_with_a_backend_it_says_where_and_submits_small_jobs(
    tmp_path, capsys, monkeypatch, no_variables, partition, where
):
    cluster = install_dummies(tmp_path / "dummy")
    sbatch, log = logging_sbatch(tmp_path, cluster.sbatch_path)
    for name, path in {**program_paths(cluster, "slurm"), "sbatch_path": sbatch}.items():
        monkeypatch.setenv(f"BATCHPOOL_{name.upper()}", str(path))
    if partition:
        monkeypatch.setenv("BATCHPOOL_QUEUE", partition)
    argv = ["demo", "--backend", "slurm", "--tasks", "3", "--polling-interval", "0.2"]
    code, out, _ = run(capsys, *argv, "--work-dir", tmp_path / "work")
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0].endswith("a map of 3 tasks on the 'slurm' backend")
    assert lines[1] == f"{where}; at most 2 at once, each at most 0:01:00 and 256M"
    assert "3 results in" in out
    submissions = log.read_text().splitlines()
    assert 1 <= len(submissions) <= 2
    for submission in submissions:
        assert "--time 00:01:00" in submission and "--mem 256M" in submission
        assert (f"--partition {partition}" in submission) == bool(partition)
