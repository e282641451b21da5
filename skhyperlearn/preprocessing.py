"""Preprocessing of hypergraph tensors: context modes summed out, count transforms.

A mode that only gives the *context* of a relation (the rating level of a movie–user rating,
the user who put a tag on an artist) can cost a CP representation of the sample mode dearly:
every component must then also be rank one in that mode. Summing it out is the same model as
fixing that mode's factor to a constant vector: the least-squares fit of ``X ≈ [[A]] ∘ 1`` over
every cell is the fit of the summed tensor ``Σ_j X[..., j, ...]`` up to the scale ``N_j``.
Counts that result (how many users put a tag on an artist) are heavy-tailed; ``log1p`` keeps
the many small counts from being drowned by a few large ones.

Nothing here densifies: sums run over the stored entries only.
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral

import numpy as np
import scipy.sparse as sp
import sparse
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils._param_validation import StrOptions, validate_params

from .hypergraph import Hypergraph

__all__ = ["MarginalizeModes", "marginalize_modes"]

_COUNTS = ("raw", "log1p", "binary")


def _as_coo(X) -> sparse.COO:
    if isinstance(X, sparse.COO):
        return X
    if isinstance(X, sparse.SparseArray):
        return X.asformat("coo")
    if sp.issparse(X):
        return sparse.COO.from_scipy_sparse(X)
    if isinstance(X, np.ndarray):
        # Object arrays of numbers are numbers; anything else fails here, naming the value.
        return sparse.COO.from_numpy(X.astype(np.float64) if X.dtype.kind == "O" else X)
    raise TypeError(
        "X must be a Hypergraph, a sparse.COO tensor, a scipy sparse matrix or an ndarray, "
        f"got {type(X).__name__}."
    )


def _n_features(X) -> int:
    """The product of the non-sample mode sizes, as HyperLearnDecomposition counts features."""
    shape = X.shape
    sample = X.sample_mode if isinstance(X, Hypergraph) else 0
    return int(np.prod([n for k, n in enumerate(shape) if k != sample], dtype=object))


def _check_modes(modes, order: int, sample_mode: int) -> list[int]:
    if isinstance(modes, (Integral, np.integer)) and not isinstance(modes, bool):
        modes = [modes]
    if isinstance(modes, (str, bytes)) or not isinstance(modes, (Sequence, np.ndarray)):
        raise TypeError(f"modes must be an int or a sequence of ints, got {modes!r}.")
    out = []
    for m in modes:
        if isinstance(m, bool) or not isinstance(m, (Integral, np.integer)):
            raise TypeError(f"modes must hold ints, got {m!r}.")
        k = int(m) + order if int(m) < 0 else int(m)
        if not 0 <= k < order:
            raise ValueError(f"modes: mode {int(m)} is out of range for a tensor of order {order}.")
        out.append(k)
    if len(set(out)) != len(out):
        raise ValueError(f"modes has repeated modes: {list(modes)}.")
    if sample_mode in out:
        raise ValueError(f"modes must not contain the sample mode ({sample_mode}).")
    if order - len(out) < 2:
        raise ValueError(
            f"modes: summing out {len(out)} of {order} modes would leave fewer than 2 modes."
        )
    return sorted(out)


def _transform_counts(values: np.ndarray, counts: str) -> np.ndarray:
    if counts == "raw":
        return values
    if np.any(values < 0):
        raise ValueError(f"counts={counts!r} needs non-negative values; X has negative entries.")
    if counts == "log1p":
        return np.log1p(values)
    return (values > 0).astype(values.dtype)


@validate_params(
    {
        # X's kinds and checks (dtype, finiteness) are the body's, with messages naming them
        "X": "no_validation",
        # the elements (ints, in range, not repeated, not the sample mode) are checked in the body
        "modes": [Integral, Sequence, np.ndarray],
        "counts": [StrOptions(set(_COUNTS))],
    },
    prefer_skip_nested_validation=True,
)
def marginalize_modes(X, modes, *, counts: str = "raw"):
    """Sum a hypergraph tensor over its context modes, then transform the counts.

    Parameters
    ----------
    X : Hypergraph, sparse.COO, scipy sparse matrix or ndarray
        The tensor (mode 0 is the sample mode unless ``X`` is a :class:`Hypergraph` that says
        otherwise).
    modes : int or sequence of int
        The modes to sum out (negative values count from the end); never the sample mode, and
        at least two modes must remain.
    counts : {"raw", "log1p", "binary"}, default="raw"
        Transform of the summed values: none, ``log(1 + x)``, or ``1`` where non-zero.

    Returns
    -------
    Hypergraph or sparse.COO
        Of the same kind as ``X`` (a ``sparse.COO`` for array input), with the remaining modes in
        their original order. A :class:`Hypergraph` keeps the graphs and ids of the remaining
        modes and its sample mode.
    """
    if counts not in _COUNTS:
        raise ValueError(f"counts must be one of {_COUNTS}, got {counts!r}.")
    hypergraph = X if isinstance(X, Hypergraph) else None
    tensor = hypergraph.tensor if hypergraph is not None else _as_coo(X)
    sample = hypergraph.sample_mode if hypergraph is not None else 0
    if tensor.dtype.kind not in "biuf":
        raise ValueError(
            f"Complex data not supported: X must hold real numbers, got dtype {tensor.dtype}."
        )
    if not np.all(np.isfinite(tensor.data)):
        raise ValueError("X contains NaN or infinity.")
    drop = _check_modes(modes, tensor.ndim, sample)
    keep = [k for k in range(tensor.ndim) if k not in drop]
    shape = tuple(tensor.shape[k] for k in keep)
    # pydata sparse sums the duplicates that dropping the modes creates.
    summed = sparse.COO(
        tensor.coords[keep], tensor.data, shape=shape, has_duplicates=True, fill_value=0
    )
    values = _transform_counts(summed.data, counts)
    out = sparse.COO(summed.coords, values, shape=shape, has_duplicates=False, sorted=True)
    if hypergraph is None:
        return out
    result = Hypergraph(
        out,
        [hypergraph.graphs[k] for k in keep],
        graph_kind=hypergraph.graph_kind,
        sample_mode=keep.index(sample),
        ids=[hypergraph.ids[k] for k in keep],
    )
    # The kept modes hold the same entities: a fold-in of a slice still finds its neighbours.
    origins = getattr(hypergraph, "_origins", None) or [None] * tensor.ndim
    result._origins = [origins[k] for k in keep]
    return result


class MarginalizeModes(TransformerMixin, BaseEstimator):
    """Sum context modes out of a hypergraph tensor (a pipeline step before the decomposition).

    Stateless: ``fit`` only checks the parameters against X. See :func:`marginalize_modes`.

    Parameters
    ----------
    modes : int or sequence of int, default=()
        The modes to sum out; ``()`` leaves the tensor as it is (only ``counts`` applies).
    counts : {"raw", "log1p", "binary"}, default="raw"
        Transform of the (summed) values.

    Examples
    --------
    >>> from sklearn.pipeline import make_pipeline
    >>> from skhyperlearn import HyperLearnDecomposition
    >>> from skhyperlearn.datasets import make_hypergraph
    >>> from skhyperlearn.preprocessing import MarginalizeModes
    >>> data = make_hypergraph(shape=(30, 20, 10), rank=3, random_state=0)
    >>> pipe = make_pipeline(MarginalizeModes(2, counts="log1p"),
    ...                      HyperLearnDecomposition(rank=3, random_state=0))
    >>> pipe.fit_transform(data.tensor).shape
    (30, 3)
    """

    _parameter_constraints: dict = {
        "modes": [Integral, list, tuple, np.ndarray],
        "counts": [StrOptions(set(_COUNTS))],
    }

    def __init__(self, modes=(), counts="raw"):
        self.modes = modes
        self.counts = counts

    def fit(self, X, y=None):
        """Check the parameters against X; remember its non-sample sizes (nothing is learned)."""
        self._validate_params()
        self._apply(X)
        self.n_features_in_ = _n_features(X)
        return self

    def _apply(self, X):
        out = marginalize_modes(X, self.modes, counts=self.counts)
        no_change = self.counts == "raw" and np.size(self.modes) == 0
        return X if no_change else out

    def transform(self, X):
        """``X`` with ``modes`` summed out and ``counts`` applied."""
        self._validate_params()
        expected = getattr(self, "n_features_in_", None)
        if expected is not None and _n_features(X) != expected:
            raise ValueError(
                f"X has {_n_features(X)} features, but {type(self).__name__} is expecting "
                f"{expected} features as input (the product of the non-sample mode sizes)."
            )
        return self._apply(X)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        tags.input_tags.sparse = True
        return tags
