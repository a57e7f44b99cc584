"""Sphinx configuration: Markdown pages (MyST), Furo theme, and generated references."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))

from skao_staging import __version__  # noqa: E402

logging.getLogger("alembic").setLevel(logging.WARNING)  # imported by autodoc; its start-up chatter is noise

project = "skao-staging"
author = "SKA Regional Centres staging team"
copyright = "2026, SKA Regional Centres"
version = release = __version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.graphviz",
    "skao_docs",
]
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
exclude_patterns = ["_build"]
nitpicky = False

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "undoc-members": False}

graphviz_output_format = "svg"

html_theme = "furo"
html_title = f"skao-staging {release}"
