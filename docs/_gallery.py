"""Command lines the example gallery runs the examples with (named in conf.py by string)."""

from __future__ import annotations


def quick_argv(gallery_conf: dict, script_vars: dict) -> list[str]:
    """Every example's quick mode: the default documentation build takes a few minutes."""
    return ["--quick"]


def full_argv(gallery_conf: dict, script_vars: dict) -> list[str]:
    """The examples' own defaults (``SKHYPERLEARN_DOCS_FULL=1``): tens of minutes."""
    return []
