"""The cluster simulator itself (``ci/cluster-sim/``, helper ``helpers.cluster_sim``), not
batchpool: its Slurm nodes and python_path wrappers are separate hosts with their own
pid namespaces, their views of a shared directory cache like NFS (or not, ``coherent``),
``notshared`` is not shared, and a skew wrapper's clock is off. Skipped where the
simulator is not running (``bash ci/cluster-sim/start.sh``)."""

from __future__ import annotations

import os
import socket
import subprocess
import textwrap
import time
from pathlib import Path

import pytest

from helpers import cluster_sim
from helpers.pools import require_real

DEADLINE_S = 40.0


def sbatch(node: str, script: str, out: Path) -> None:
    result = subprocess.run(
        [
            "sbatch",
            "-p",
            cluster_sim.SLURM_PARTITION,
            "-w",
            node,
            "-J",
            "sim-test",
            "-o",
            str(out),
            "-e",
            f"{out}.err",
        ],
        input="#!/bin/sh\n" + textwrap.dedent(script),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr


def wait_file(path: Path, deadline_s: float = DEADLINE_S) -> str:
    """The content of ``path`` once a job has written it (renamed into place)."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if path.exists():
            return path.read_text()
        time.sleep(0.1)
    err = Path(f"{path}.err")
    raise AssertionError(
        f"{path} not written in {deadline_s}s; stderr: {err.read_text() if err.exists() else '-'}"
    )


@pytest.fixture
def slurm():
    require_real("slurm")
    cluster_sim.require_slurm()


@pytest.mark.slurm
def test_slurm_sim_nodes_are_hosts_of_their_own(slurm):
    coord = cluster_sim.work_dir("coherent")
    nodes = cluster_sim.slurm_nodes()
    for node in nodes:
        sbatch(
            node,
            f"""\
            echo "$(hostname) $(readlink /proc/self/ns/pid) $$" > {coord}/{node}.tmp
            mv {coord}/{node}.tmp {coord}/{node}""",
            coord / f"{node}.out",
        )
    mine = os.readlink("/proc/self/ns/pid")
    namespaces = set()
    for node in nodes:
        hostname, namespace, pid = wait_file(coord / node).split()
        assert hostname == node
        assert namespace != mine
        namespaces.add(namespace)
        slurmd = cluster_sim.slurmd_pid(node)
        assert Path(f"/proc/{slurmd}/comm").read_text().strip() == "slurmd"
        assert os.readlink(f"/proc/{slurmd}/ns/pid") == namespace
    assert len(namespaces) == len(nodes)


@pytest.mark.slurm
@pytest.mark.parametrize("profile", ["nfs", "coherent"])
def test_a_name_the_node_found_missing_stays_missing_on_nfs_only(slurm, profile):
    """The node looks a name up (missing); the driver then creates it through its own
    view: on ``nfs`` the node's lookups miss it for the 3 s watched (negative entry
    cache) though a listing shows it; on ``coherent`` the node sees it at once."""
    coord = cluster_sim.work_dir("coherent")  # coordination: no caching
    subject = cluster_sim.work_dir(profile)
    sbatch(
        "sim1",
        f"""\
        test -e {subject}/name && echo early > {coord}/early
        touch {coord}/looked
        i=0; while [ ! -e {coord}/created ] && [ $i -lt 300 ]; do sleep 0.05; i=$((i+1)); done
        seen=never; i=0
        while [ $i -lt 15 ]; do
          if test -e {subject}/name; then seen=$i; break; fi
          sleep 0.2; i=$((i+1))
        done
        listed=no; ls {subject} | grep -qx name && listed=yes
        echo "$seen $listed" > {coord}/result.tmp; mv {coord}/result.tmp {coord}/result
        """,
        coord / "job.out",
    )
    wait_file(coord / "looked")
    (subject / "name").write_text("x")
    (coord / "created").touch()
    seen, listed = wait_file(coord / "result").split()
    assert not (coord / "early").exists()
    assert listed == "yes"
    if profile == "nfs":
        assert seen == "never"  # invisible to lookups for all 3 s
    else:
        assert seen == "0"  # visible at the first lookup


@pytest.mark.slurm
def test_a_notshared_work_dir_is_empty_on_the_node(slurm):
    work = cluster_sim.work_dir("notshared")
    (work / "driver-file").write_text("x")
    coord = cluster_sim.work_dir("coherent")
    sbatch(
        "sim2",
        f"""\
        n=$(ls -A {cluster_sim.shared_path("notshared")} | wc -l)
        test -d {work} && d=yes || d=no
        echo "$n $d" > {coord}/r.tmp; mv {coord}/r.tmp {coord}/r""",
        coord / "job.out",
    )
    assert wait_file(coord / "r").split() == ["0", "no"]


@pytest.mark.sge
def test_an_sge_job_through_the_wrapper_runs_on_another_host():
    require_real("sge")
    cluster_sim.require()
    coord = cluster_sim.work_dir("coherent")
    python = cluster_sim.python_path("nfs")
    script = coord / "job.sh"
    script.write_text(
        "#!/bin/sh\n"
        f"exec {python} -c 'import os, socket; print(socket.gethostname(), os.getpid())'\n"
    )
    result = subprocess.run(
        [
            "qsub",
            "-sync",
            "y",
            "-S",
            "/bin/sh",
            "-N",
            "sim-test",
            "-o",
            str(coord / "out"),
            "-e",
            str(coord / "err"),
            str(script),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, (result.stdout, result.stderr)
    hostname, pid = (coord / "out").read_text().split()
    assert hostname.startswith("node-") and hostname != socket.gethostname()
    assert int(pid) < 100


def test_the_wrapper_passes_arguments_stdin_and_exit_status():
    cluster_sim.require()
    result = subprocess.run(
        [
            cluster_sim.python_path("coherent"),
            "-c",
            "import sys; print(sys.argv[1:], sys.stdin.read()); sys.exit(7)",
            "a b",
            "'c'",
        ],
        input="in",
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert (result.returncode, result.stdout) == (7, "['a b', \"'c'\"] in\n"), result.stderr


@pytest.mark.parametrize("skew_s", [60, -60])
def test_a_skew_wrapper_shifts_the_clock_but_not_monotonic(skew_s):
    cluster_sim.require()
    before = time.time(), time.monotonic()
    result = subprocess.run(
        [
            cluster_sim.python_path("nfs", skew_s=skew_s),
            "-c",
            "import time; print(time.time(), time.monotonic())",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    after = time.time(), time.monotonic()
    assert result.returncode == 0, result.stderr
    wall, monotonic = map(float, result.stdout.split())
    assert before[0] + skew_s - 1 <= wall <= after[0] + skew_s + 1
    assert before[1] <= monotonic <= after[1]
