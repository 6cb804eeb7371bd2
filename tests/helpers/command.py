"""The ``batchpool`` command run in the test's process, for the tests of
:mod:`batchpool.cli` (``tests/unit/test_cli.py`` on scripted sessions,
``tests/integration/test_cli_on_real_maps.py`` on sessions of real maps)."""

from __future__ import annotations

from batchpool import cli


def run(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def without_efficiency(lines):
    """The lines of ``batchpool status`` but those on time and memory (test_efficiency.py)."""
    efficiency = ("time per task ", "peak memory per job ", "suggested for the next run: ")
    return [line for line in lines if not line.startswith(efficiency)]
