"""Every error batchpool raises to its user is in ``errors.py`` and drawn in its tree."""

from __future__ import annotations

import ast
import builtins
import re
from pathlib import Path

import batchpool
from batchpool import errors

SOURCE = Path(batchpool.__file__).parent
INTERNAL = {("commands.py", "Cancelled")}
"""Exceptions that never leave batchpool: the dispatcher catches a cancelled command."""


def drawn_tree() -> dict[str, str]:
    """Each error of the docstring's drawing, with the error drawn above it."""
    parents: dict[str, str] = {}
    stack: list[tuple[int, str]] = []
    for line in errors.__doc__.splitlines():
        found = re.match(r"([\s│]*(?:[├└]── )?)((?=[A-Z])\w*(?:Error|Exception))(\s|$)", line)
        if not found:
            continue
        column = len(found.group(1))
        while stack and stack[-1][0] >= column:
            stack.pop()
        if stack:
            parents[found.group(2)] = stack[-1][1]
        stack.append((column, found.group(2)))
    return parents


def test_the_drawing_matches_the_classes():
    parents = drawn_tree()
    defined = {
        name
        for name, value in vars(errors).items()
        if isinstance(value, type)
        and issubclass(value, Exception)
        and value.__module__ == errors.__name__
    }
    assert set(parents) == defined
    for child, parent in parents.items():
        parent_class = getattr(errors, parent, None) or getattr(builtins, parent)
        assert issubclass(getattr(errors, child), parent_class), (child, parent)


def test_no_other_module_defines_an_error():
    elsewhere = []
    for path in sorted(SOURCE.rglob("*.py")):
        relative = path.relative_to(SOURCE)
        if relative.parts[0] == "testing" or relative.name == "errors.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ClassDef) or (str(relative), node.name) in INTERNAL:
                continue
            if any(re.search(r"(Error|Exception)$", ast.unparse(b)) for b in node.bases):
                elsewhere.append(f"{relative}: {node.name}")
    assert elsewhere == []


def test_every_error_is_exported_from_the_package():
    for name in drawn_tree():
        assert name in batchpool.__all__ and getattr(batchpool, name) is getattr(errors, name)
