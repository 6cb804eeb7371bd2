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
nitpicky = False
html_theme = "alabaster"
exclude_patterns = ["_build"]
