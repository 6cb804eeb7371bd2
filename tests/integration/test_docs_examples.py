"""Every ``.. code-block:: python`` of ``docs/*.rst`` runs, and does not raise.

Each block is written to a file of its own and run with ``python`` in a fresh
directory, with a time limit. An rst comment on the line before a block says how
(several words may be combined)::

    .. example: dummies       run with the dummy Slurm/SGE/PBS first on PATH
                              (batchpool.Pool() then picks the dummy Slurm array)
    .. example: needs NAME    skipped if the module NAME is not installed
    .. example: pytest        a test module: run with pytest and the shipped plugin

Without a comment, a block runs on the local backend (``BATCHPOOL_BACKEND=local``).
``.. code-block:: toml`` blocks are parsed as TOML.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

import batchpool.slurm
from batchpool.testing import DummyConfig, install_dummies

DOCS = Path(__file__).resolve().parents[2] / "docs"
SRC = Path(batchpool.__file__).resolve().parent.parent
TIME_LIMIT_S = 120
KNOWN_WORDS = {"dummies", "needs", "pytest"}

_BLOCK = re.compile(r"^\.\. code-block:: (\w+)[^\n]*\n((?:[ \t]*:[^\n]*\n)*)\n", re.M)
_MARK = re.compile(r"^\.\. example: ([^\n]*)\n\s*\n\Z", re.M)


@dataclass(frozen=True)
class Example:
    page: str
    line: int
    language: str
    code: str
    words: tuple[str, ...]

    @property
    def name(self) -> str:
        return f"{self.page}:{self.line}"


def _indented_block(text: str, start: int) -> str:
    """The indented lines of ``text`` from ``start``, dedented."""
    lines = []
    for line in text[start:].split("\n"):
        if line.strip() and not line.startswith((" ", "\t")):
            break
        lines.append(line)
    while lines and not lines[-1].strip():
        lines.pop()
    indent = min(len(x) - len(x.lstrip()) for x in lines if x.strip())
    return "\n".join(x[indent:] for x in lines) + "\n"


def examples() -> list[Example]:
    found = []
    for page in sorted(DOCS.glob("*.rst")):
        text = page.read_text()
        for match in _BLOCK.finditer(text):
            before = text[max(0, match.start() - 200) : match.start()]
            mark = _MARK.search(before)
            words = tuple(mark.group(1).split()) if mark else ()
            found.append(
                Example(
                    page.name,
                    text.count("\n", 0, match.start()) + 1,
                    match.group(1),
                    _indented_block(text, match.end()),
                    words,
                )
            )
    return found


PYTHON_EXAMPLES = [e for e in examples() if e.language == "python"]
TOML_EXAMPLES = [e for e in examples() if e.language == "toml"]


def test_the_docs_have_examples_and_known_marks():
    assert len(PYTHON_EXAMPLES) >= 15, [e.name for e in PYTHON_EXAMPLES]
    for example in examples():
        unknown = set(example.words) - KNOWN_WORDS
        if "needs" in example.words:
            unknown -= {example.words[example.words.index("needs") + 1]}
        assert not unknown, f"{example.name}: unknown marks {unknown}"


@pytest.mark.parametrize("example", TOML_EXAMPLES, ids=lambda e: e.name)
def test_toml_example_parses(example):
    if sys.version_info >= (3, 11):
        import tomllib
    else:
        import tomli as tomllib
    assert tomllib.loads(example.code)


@pytest.mark.timeout(TIME_LIMIT_S + 60)
@pytest.mark.parametrize("example", PYTHON_EXAMPLES, ids=lambda e: e.name)
def test_python_example_runs(example, tmp_path):
    words = example.words
    if "needs" in words:
        module = words[words.index("needs") + 1]
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), env.get("PYTHONPATH")]))
    for name in [n for n in env if n.startswith("BATCHPOOL_")]:
        del env[name]
    work = tmp_path / "run"
    work.mkdir()
    cluster = None
    if "dummies" in words:
        queues = DummyConfig(partitions=("local", "short"))  # the docs' queue="short"
        cluster = install_dummies(tmp_path / "cluster", config=queues)
        pythonpath = env["PYTHONPATH"]
        env.update(cluster.environment())
        env["PYTHONPATH"] = pythonpath
    elif "pytest" not in words:  # a test module's fixtures make dummy clusters of their own
        env["BATCHPOOL_BACKEND"] = "local"
    if "pytest" in words:
        script = work / "test_example.py"
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(script)]
        if not _plugin_registered():
            command[3:3] = ["-p", "batchpool.testing.plugin"]
    else:
        script = work / "example.py"
        command = [sys.executable, str(script)]
    script.write_text(example.code)
    try:
        run = subprocess.run(
            command, cwd=work, env=env, capture_output=True, text=True, timeout=TIME_LIMIT_S
        )
    finally:
        if cluster is not None:
            cluster.kill_all()
    assert run.returncode == 0, (
        f"{example.name} failed (exit {run.returncode}):\n{example.code}\n"
        f"--- stdout:\n{run.stdout}\n--- stderr:\n{run.stderr}"
    )


def _plugin_registered() -> bool:
    from importlib.metadata import entry_points

    try:
        found = entry_points(group="pytest11")
    except TypeError:  # Python 3.9
        found = entry_points().get("pytest11", [])  # type: ignore[attr-defined]
    return any(e.value == "batchpool.testing.plugin" for e in found)
