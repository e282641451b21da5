"""HyperedgeRanker: a decomposition fitted on hyperedge coordinates, scored by completion."""

from __future__ import annotations

from typing import Any

import numpy as np
import sparse
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator, clone
from sklearn.utils.validation import check_is_fitted

from . import _ranking
from ._decomposition import HyperLearnDecomposition

__all__ = ["HyperedgeRanker"]


class HyperedgeRanker(BaseEstimator):
    """Hyperedges as samples: fit a decomposition on them, score it by filtered completion.

    ``GridSearchCV`` splits samples, and a decomposition is fitted on one tensor; this wrapper
    makes each hyperedge a sample (a row of integer coordinates, optionally weighted by ``y``),
    so that a hyperedge splitter (:class:`~skhyperlearn.model_selection.HyperedgeSplit`) holds
    some out and :meth:`score` ranks them. Parameters of the inner estimator are tuned as
    ``estimator__rank``, ``estimator__lam``::

        GridSearchCV(HyperedgeRanker(HyperLearnDecomposition(), shape=shape, mode=2),
                     {"estimator__rank": [16, 32], "estimator__lam": [3, 30]},
                     cv=HyperedgeSplit(mode=2, n_splits=3)).fit(coords)

    Parameters
    ----------
    estimator : HyperLearnDecomposition, default=None
        The model (cloned at fit); None: ``HyperLearnDecomposition(projection_weight=0.0)``,
        the tensor's CP term. Ranking a hyperedge's missing member needs the members'
        joint relation (which tail a head has under a relation), which the pairwise
        projection terms (the decomposition's default at order ≥ 3, made for the sample
        mode's representation) do not model: on UMLS at rank 64 the projection terms reach
        a filtered MRR of 0.42 and the CP term 0.85 (benchmarks/README.md).
    shape : tuple of int, default=None
        Shape of the tensor; None: the largest index of each column seen in fit plus one. Give
        it when cross-validating, so that a fold missing the last entities keeps the shape.
    mode : int, default=-1
        The mode completed by :meth:`score` and :meth:`recommend`.

    Attributes
    ----------
    estimator_ : HyperLearnDecomposition
        The fitted model.
    shape_ : tuple of int
        The fitted tensor's shape.
    """

    def __init__(self, estimator=None, *, shape=None, mode: int = -1):
        self.estimator = estimator
        self.shape = shape
        self.mode = mode

    def _tensor(self, X, y) -> tuple[sparse.COO, tuple[int, ...]]:
        coords = np.asarray(X)
        if coords.ndim != 2 or coords.shape[1] < 2 or coords.shape[0] == 0:
            raise ValueError(
                f"X must be hyperedge coordinates of shape (n, K), got {coords.shape}."
            )
        if self.shape is None:
            coords = _ranking.check_queries(
                coords, [np.iinfo(np.int64).max] * coords.shape[1], None, "X"
            )
            shape = tuple(int(m) + 1 for m in coords.max(0))
        else:
            shape = tuple(int(s) for s in self.shape)
            if len(shape) != coords.shape[1]:
                raise ValueError(
                    f"shape={self.shape} has {len(shape)} modes but X has "
                    f"{coords.shape[1]} columns."
                )
            coords = _ranking.check_queries(coords, shape, None, "X")
        values = np.ones(coords.shape[0]) if y is None else np.asarray(y, dtype=float)
        if values.shape != (coords.shape[0],):
            raise ValueError(f"y must have shape ({coords.shape[0]},), got {values.shape}.")
        return sparse.COO(coords.T, values, shape=shape), shape

    def fit(self, X: ArrayLike, y: ArrayLike | None = None) -> HyperedgeRanker:
        """Fit the inner estimator on the tensor of the hyperedges X (values y, else 1).

        Parameters
        ----------
        X : array-like of int, shape (n_hyperedges, K)
            Coordinates; repeated rows are summed.
        y : array-like of shape (n_hyperedges,), default=None
            Their values (counts, weights); None: 1.
        """
        _ranking.check_mode(self.mode, np.shape(X)[1] if np.ndim(X) == 2 else 2)
        tensor, shape = self._tensor(X, y)
        model = (
            HyperLearnDecomposition(projection_weight=0.0)
            if self.estimator is None
            else clone(self.estimator)
        )
        model.fit(tensor)
        self.estimator_ = model
        self.shape_ = shape
        return self

    def score(self, X: ArrayLike, y: Any = None) -> float:
        """Filtered MRR of completing X's hyperedges on ``mode`` (training and X filtered)."""
        from .metrics import filtered_ranks, mean_reciprocal_rank

        check_is_fitted(self)
        return mean_reciprocal_rank(filtered_ranks(self.estimator_, X, self.mode))

    def score_mode(self, queries: ArrayLike, **kwargs) -> np.ndarray:
        """``estimator_.score_mode(queries, mode)``."""
        check_is_fitted(self)
        return self.estimator_.score_mode(queries, self.mode, **kwargs)

    def recommend(self, queries: ArrayLike, k: int = 10, **kwargs) -> tuple[np.ndarray, np.ndarray]:
        """``estimator_.recommend(queries, mode, k)``; training hyperedges excluded."""
        check_is_fitted(self)
        return self.estimator_.recommend(queries, self.mode, k, **kwargs)
