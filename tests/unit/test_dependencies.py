"""Dependencies earn their place: every requirement batchpool declares is imported by
its code (``pip show batchpool``'s Requires, read from the installed metadata)."""

from __future__ import annotations

import ast
import importlib.metadata
import re
from pathlib import Path

import batchpool

SOURCE = Path(batchpool.__file__).parent
MODULE_OF = {"cloudpickle": "cloudpickle", "tqdm": "tqdm", "tomli": "tomli"}
"""Distribution name -> the module it installs, where they differ or to be sure."""


def imported_modules() -> set[str]:
    names = set()
    for path in SOURCE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names


def runtime_requirements() -> list[str]:
    """The distributions of ``Requires-Dist`` without an ``extra ==`` marker."""
    requires = importlib.metadata.requires("batchpool") or []
    runtime = [r for r in requires if "extra ==" not in r]
    return [re.split(r"[\s;<>=!~\[]", r, maxsplit=1)[0].lower() for r in runtime]


def test_every_declared_requirement_is_imported_by_the_code():
    declared = runtime_requirements()
    assert "cloudpickle" in declared  # the metadata was read
    imported = imported_modules()
    unused = [d for d in declared if MODULE_OF.get(d, d.replace("-", "_")) not in imported]
    assert unused == []
