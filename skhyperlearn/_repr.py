"""A compact ``repr`` for estimators whose parameters hold graphs and arrays.

scikit-learn's ``BaseEstimator.__repr__`` prints every changed parameter with ``repr``: a list
of sparse Laplacians or of initial factor matrices then spills dozens of lines. The mixin here
prints such parameters as their shapes, by handing scikit-learn's printer a shallow stand-in
whose array-valued parameters are replaced by short placeholders. ``get_params`` is untouched,
so ``clone``, ``set_params`` and grid searches see the real objects.
"""

from __future__ import annotations

from typing import Any


class _Summary:
    """Placeholder whose ``repr`` is a one-line description of an array-like parameter value."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


def _summarize(value: Any) -> Any:
    """``value`` with every array-like inside it (one level of list/tuple) replaced by a summary.

    Returns ``value`` itself when there is nothing to shorten, so that the printer's
    changed-parameter detection compares the same objects as before.
    """
    if isinstance(value, (list, tuple)):
        items = [_summarize(v) for v in value]
        if all(a is b for a, b in zip(items, value, strict=True)):
            return value
        return type(value)(items) if isinstance(value, list) else tuple(items)
    shape = getattr(value, "shape", None)
    # Scalars (numpy or torch 0-d values) print short already; strings have no shape.
    if not isinstance(shape, tuple) or len(shape) == 0:
        return value
    dims = "×".join(str(n) for n in shape)
    kind = type(value).__name__
    nnz = getattr(value, "nnz", None)
    if isinstance(nnz, int):
        return _Summary(f"<{kind} {dims}, {nnz:,} stored>")
    return _Summary(f"<{kind} {dims}, {getattr(value, 'dtype', '?')}>")


class _CompactReprMixin:
    """Mixin (placed before ``BaseEstimator``) printing array-valued parameters as shapes."""

    def __repr__(self, N_CHAR_MAX: int = 700) -> str:
        params = self.get_params(deep=False)
        shown = {name: _summarize(value) for name, value in params.items()}
        if all(shown[name] is params[name] for name in params):
            return super().__repr__(N_CHAR_MAX)
        # A bare instance carrying the summaries (no __init__, no copy of fitted state), of a
        # same-named subclass that keeps BaseEstimator's own __repr__: scikit-learn's printer
        # recognises that method and wraps long lines at parameter boundaries.
        stand_in = object.__new__(_printable_class(type(self)))
        stand_in.__dict__.update(shown)
        return stand_in.__repr__(N_CHAR_MAX)


_PRINTABLE: dict[type, type] = {}


def _printable_class(cls: type) -> type:
    """A subclass of ``cls`` named like it whose ``__repr__`` is ``BaseEstimator.__repr__``."""
    if cls not in _PRINTABLE:
        from sklearn.base import BaseEstimator

        _PRINTABLE[cls] = type(
            cls.__name__,
            (cls,),
            {"__repr__": BaseEstimator.__repr__, "__module__": cls.__module__},
        )
    return _PRINTABLE[cls]
