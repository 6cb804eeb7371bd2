"""Configuration files of profiles, for the tests of :mod:`batchpool.config`
(``tests/unit/test_config.py``, and ``tests/integration/test_config_on_a_dummy.py``
where a profile's pool runs a map on the dummy Slurm)."""

from __future__ import annotations

import textwrap
from pathlib import Path

from batchpool.testing.plugin import program_paths


def write_config(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def logging_sbatch(tmp_path: Path, real: Path) -> tuple[Path, Path]:
    """A wrapper of the dummy ``sbatch`` that logs its arguments, one call a line."""
    log = tmp_path / "sbatch.calls"
    wrapper = tmp_path / "sbatch-wrapper"
    wrapper.write_text(f"#!/bin/sh\necho \"$*\" >> '{log}'\nexec '{real}' \"$@\"\n")
    wrapper.chmod(0o700)
    return wrapper, log


def dummy_profile(tmp_path: Path, cluster, sbatch: Path, **extra: str) -> str:
    paths = program_paths(cluster, "slurm.array")
    paths["sbatch_path"] = str(sbatch)
    lines = [f'{k} = "{v}"' for k, v in {**paths, **extra}.items()]
    return "\n".join(lines)
