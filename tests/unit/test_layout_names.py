"""One owner for the names of the work_dir: only :mod:`batchpool._layout` spells them.

Every other module joins them through :class:`~batchpool._layout.PoolPaths` and
:class:`~batchpool._layout.SessionPaths` (or names a ``_layout`` constant). This reads the
source of every module and fails on a string literal that spells one: a name that can
mean nothing else (``session.json``, ``.rec``) anywhere but in a docstring; a short one
(``done``, ``logs``) where it makes a path (``d / "done"``, ``os.path.join(d, "logs")``,
``f"{d}/logs"``); and a ``_layout`` constant joined to a directory (``d / RESULTS_DIR``),
which is the paths objects' to do.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import batchpool
from batchpool import _layout

SOURCE = Path(batchpool.__file__).parent
NAME_KINDS = ("_FILE", "_DIR", "_PREFIX", "_SUFFIX", "_JOURNAL")
CONSTANTS = {
    key: value
    for key, value in vars(_layout).items()
    if key.isupper() and key.endswith(NAME_KINDS) and isinstance(value, str)
}
NAMES = frozenset(CONSTANTS.values())
"""The names of the work_dir: ``_layout``'s constants of these kinds."""
DISTINCT = re.compile(
    "|".join(rf"(?<![\w.]){re.escape(name)}(?!\w)" for name in sorted(NAMES) if "." in name)
)
"""Names with a dot: spelled by no string but a docstring."""

def offences(source: str) -> list[tuple[int, str]]:
    """``(line, literal)`` of each string in ``source`` that spells a name of the work_dir."""
    tree = ast.parse(source)
    docstrings = {
        id(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
    }
    in_path = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            in_path.add(id(node.right))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr == "join":  # os.path.join(directory, NAME, ...)
                in_path.update(id(arg) for arg in node.args[1:])
            elif node.func.attr in ("joinpath", "with_name"):
                in_path.update(id(arg) for arg in node.args)
    found = []
    for node in ast.walk(tree):
        constant = getattr(node, "id", getattr(node, "attr", None))
        if constant in CONSTANTS and id(node) in in_path:  # joined here, not by a paths object
            found.append((node.lineno, constant))
        if not isinstance(node, ast.Constant) or not isinstance(node.value, str):
            continue
        text = node.value
        if id(node) in docstrings:
            continue
        segments = set(re.findall(r"(?<=/)[\w.]+|[\w.]+(?=/)", text))
        if (
            DISTINCT.search(text)
            or (id(node) in in_path and text.strip("/") in NAMES)
            or segments & NAMES
        ):
            found.append((node.lineno, text))
    return sorted(found)


def test_no_module_but_layout_spells_a_name_of_the_work_dir():
    found = {}
    for path in sorted(SOURCE.rglob("*.py")):
        module = path.relative_to(SOURCE).as_posix()
        if module == "_layout.py":
            continue
        for line, text in offences(path.read_text(encoding="utf-8")):
            found[(module, text)] = line
    unexpected = {f"{module}:{line}: {text!r}" for (module, text), line in found.items()}
    assert not unexpected, "spelled outside _layout (use PoolPaths or SessionPaths)"


def test_the_check_finds_each_way_of_spelling_a_name():
    source = '''
"""A docstring may name session.json and POOL/logs/."""
import os
a = directory / "done"
b = os.path.join(pool_dir, "workers", job_id)
c = f"{pool_dir}/logs"
d = "driver.lock"
e = Path(session_dir).joinpath("results", name)
f = f"{chunk}.{tries}.rec"
g = f"logs in {pool_dir}/logs)"
h = os.path.join(session_dir, _layout.RESULTS_DIR)
ok = ("done", "logs", "config", directory / "jobs", "a.record", "/proc/self/mounts")
'''
    assert [line for line, _ in offences(source)] == [4, 5, 6, 7, 8, 9, 10, 11]
    assert {"session.json", "driver.lock", "results", "done", "logs", ".rec"} <= NAMES
