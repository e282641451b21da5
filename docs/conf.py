"""Sphinx configuration of the skhyperlearn documentation.

Build (from the repository root, after ``pip install -e ".[docs]"``)::

    python -m sphinx -W -b html docs docs/_build/html

The example gallery runs every example in ``examples/`` with ``--quick`` (a few minutes in all);
``SKHYPERLEARN_DOCS_FULL=1`` runs them with their full settings instead (tens of minutes), and
``SKHYPERLEARN_DOCS_NO_GALLERY=1`` renders the gallery pages without running anything.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
# The checkout's package first (an installed copy elsewhere must not be documented instead),
# and docs/ itself for the gallery's helper module.
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(DOCS))

import skhyperlearn  # noqa: E402

project = "skhyperlearn"
author = "skhyperlearn developers"
copyright = "2026, skhyperlearn developers"
release = skhyperlearn.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

templates_path = ["_templates"]
exclude_patterns = ["_build", "auto_examples/*.ipynb", "auto_examples/*.py"]
source_suffix = {".rst": "restructuredtext"}
root_doc = "index"

# API reference: one page per public object, types from the numpydoc docstrings (the
# signatures' annotations would repeat them, longer).
autosummary_generate = True
autodoc_typehints = "none"
autodoc_default_options = {"members": True, "inherited-members": False}
# Class pages list their members through autodoc (template _templates/autosummary/class.rst),
# skipping those scikit-learn defines (get_params, set_output, set_fit_request, …): they are
# documented there, and their docstrings point into scikit-learn's own glossary.
numpydoc_show_class_members = False

# Example gallery.
_full = os.environ.get("SKHYPERLEARN_DOCS_FULL", "") not in ("", "0")
_run = os.environ.get("SKHYPERLEARN_DOCS_NO_GALLERY", "") in ("", "0")
sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"\.py$",  # run every example, not only plot_*.py
    "ignore_pattern": r"(^|/)_",  # examples/_out and private helpers
    "plot_gallery": "True" if _run else "False",
    "reset_argv": "_gallery.full_argv" if _full else "_gallery.quick_argv",
    "abort_on_example_error": True,
    "within_subsection_order": "FileNameSortKey",
    "download_all_examples": False,
    "image_scrapers": ("matplotlib",),
    "capture_repr": (),
    "show_memory": False,
    "remove_config_comments": True,
}



def _skip_foreign_members(app, what, name, obj, skip, options):
    """Skip class members defined outside skhyperlearn (inherited or added by scikit-learn)."""
    if what != "class":
        return None
    module = getattr(getattr(obj, "fget", obj), "__module__", None) or ""
    if not module.startswith("skhyperlearn") or (
        name.startswith("set_") and name.endswith("_request")
    ):
        return True
    return None


def setup(app):
    app.connect("autodoc-skip-member", _skip_foreign_members)


html_theme = "pydata_sphinx_theme"
html_title = f"skhyperlearn {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
}
html_static_path: list[str] = []
html_show_sourcelink = False
