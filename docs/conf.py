"""Sphinx configuration for batchpool's documentation."""

import os
import sys

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "src")))

project = "batchpool"
author = "batchpool developers"
copyright = "2026, batchpool developers"
extensions = ["sphinx.ext.autodoc", "sphinx.ext.napoleon", "sphinx.ext.viewcode"]
autodoc_member_order = "bysource"
autodoc_typehints = "description"
napoleon_numpy_docstring = True
nitpicky = True
# Without network access there is no intersphinx: the standard library's names in
# signatures are not links. And the docstrings of the public API mention a few internal
# modules and names that the API reference leaves out on purpose (docs/api.rst: public
# names only).
nitpick_ignore = [
    ("py:class", name)
    for name in [
        "os.PathLike", "Path", "pathlib.Path", "collections.abc.Iterable",
        "collections.abc.Sequence", "collections.abc.Mapping", "collections.abc.Iterator",
        "concurrent.futures.Future", "concurrent.futures._base.Future",
    ]
]
nitpick_ignore_regex = [
    (r"py:(mod|class|func|meth|data)",
     r"batchpool\.(backend|options|worker|chunking|testing\.pbs|testing\.queue|pbs\.|proto_pool\._)"
     r".*"),
    (r"py:(class|meth|func)", r"(_Feeder|Dialect|ProtoPool|proto_pool\.Pool|ResultsError)"),
    (r"py:(class|meth|func)", r"Unresolved"),
    (r"py:(class|meth|func)", r"batchpool\.policy\.(Loss|Decision|WorkerExit|classify).*"),
]
exclude_patterns = ["_build"]

# furo: a layout that adapts from a phone's width to a wide screen; its code blocks
# scroll sideways instead of being cut off.
html_theme = "furo"
html_title = "batchpool"
html_static_path = ["_static"]
html_css_files = ["custom.css"]
