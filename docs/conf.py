"""Sphinx configuration of the metaglasso documentation.

Build with ``python -m sphinx -W -b html docs build/docs-html`` (``pip install ".[docs]"`` first).
The API reference is generated from the docstrings (numpydoc), the examples of ``docs/gallery``
are executed at build time (sphinx-gallery), and the user guide reuses the README's sections.
"""

import os
import re
import sys
from pathlib import Path

import metaglasso

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))

# -- Project -----------------------------------------------------------------------------------

project = "metaglasso"
author = "The metaglasso developers"
copyright = "2026, The metaglasso developers"
version = release = metaglasso.__version__

# -- General -----------------------------------------------------------------------------------

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
    "metaglasso_docs",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
templates_path = ["_templates"]
exclude_patterns = [
    "_build",
    # sphinx-gallery's sources: the header is rendered into auto_examples/index.rst.
    "gallery/GALLERY_HEADER.rst",
]
# Text in single backticks is code, as in the README and the Markdown pages.
default_role = "literal"

# -- Markdown (MyST) ---------------------------------------------------------------------------

myst_heading_anchors = 3

# -- API reference -----------------------------------------------------------------------------

autosummary_generate = True
autodoc_typehints = "none"  # the numpydoc "Parameters" sections give the types
numpydoc_show_class_members = False  # the class template lists the methods
numpydoc_class_members_toctree = False

# -- Executed examples (sphinx-gallery) --------------------------------------------------------

sphinx_gallery_conf = {
    "examples_dirs": "gallery",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "within_subsection_order": "FileNameSortKey",
    "doc_module": ("metaglasso",),
    "reference_url": {"metaglasso": None},
    "backreferences_dir": "api/generated/backreferences",
    "image_scrapers": ("matplotlib",),
    "remove_config_comments": True,
    "download_all_examples": False,
    "show_memory": False,
    "abort_on_example_error": True,
}

# -- HTML --------------------------------------------------------------------------------------

html_theme = "pydata_sphinx_theme"
html_title = f"metaglasso {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
}
html_show_sourcelink = False
