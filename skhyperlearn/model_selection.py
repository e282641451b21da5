"""Cross-validation for hyperedge completion: hold out one member of each partial hyperedge.

:class:`HyperedgeSplit` splits the hyperedges (rows of a coordinate array) so that each test
fold holds out, for every *query group* (the hyperedges that agree on every mode but the
completed one: the tags of one (user, artist) post), one of its members, the rest of the group
staying in training. With :class:`~skhyperlearn.HyperedgeRanker` (which fits on coordinates)
and :func:`~skhyperlearn.metrics.make_completion_scorer`, ``GridSearchCV`` tunes rank and λ
for completion.
"""

from __future__ import annotations

from collections.abc import Iterator
from numbers import Integral

import numpy as np
from numpy.typing import ArrayLike
from sklearn.utils import check_random_state

from . import _ranking

__all__ = ["HyperedgeSplit"]


class HyperedgeSplit:
    """Hold out one hyperedge of every query group per fold.

    Parameters
    ----------
    mode : int
        The completed mode: hyperedges equal on every other mode form a query group.
    n_splits : int, default=5
        Number of folds. Fold f holds out the f-th member of each group in a random order of
        its members (cycling in groups smaller than ``n_splits``), so folds hold out different
        members wherever the groups allow.
    min_group_size : int, default=2
        Groups with fewer members are never held out (by default a query keeps at least one
        member in training).
    random_state : int, RandomState instance or None, default=None
        The order of the members of each group.

    Examples
    --------
    >>> import numpy as np
    >>> from skhyperlearn.model_selection import HyperedgeSplit
    >>> X = np.array([[0, 0, 1], [0, 0, 2], [1, 0, 3]])
    >>> [test.tolist() for _, test in HyperedgeSplit(mode=2, n_splits=2, random_state=0).split(X)]
    [[1], [0]]
    """

    def __init__(self, mode: int, n_splits: int = 5, *, min_group_size: int = 2, random_state=None):
        self.mode = mode
        self.n_splits = n_splits
        self.min_group_size = min_group_size
        self.random_state = random_state

    def _check(self) -> None:
        for name, low in (("n_splits", 1), ("min_group_size", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, Integral) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}.")
        if isinstance(self.mode, bool) or not isinstance(self.mode, Integral):
            raise TypeError(f"mode must be an integer, got {self.mode!r}.")

    def get_n_splits(self, X=None, y=None, groups=None) -> int:
        """The number of folds."""
        return self.n_splits

    def _groups(self, X) -> tuple[np.ndarray, np.ndarray]:
        """Each row's group number and the rows sorted by group (members in random order)."""
        coords = np.asarray(X)
        if coords.ndim != 2 or coords.shape[1] < 2:
            raise ValueError(
                f"X must be hyperedge coordinates of shape (n, K), got {coords.shape}."
            )
        mode = _ranking.check_mode(self.mode, coords.shape[1])
        coords = _ranking.check_queries(coords, coords.max(0) + 1 if coords.size else (), None, "X")
        others = np.delete(coords, mode, axis=1)
        _, group = np.unique(others, axis=0, return_inverse=True)
        group = group.reshape(-1)
        rng = check_random_state(self.random_state)
        order = np.lexsort((rng.permutation(len(group)), group))
        return group, order

    def split(self, X: ArrayLike, y=None, groups=None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Train and test row indices of each fold.

        Parameters
        ----------
        X : array-like of int, shape (n, K)
            Hyperedge coordinates.
        y, groups : Ignored
        """
        self._check()
        group, order = self._groups(X)
        sizes = np.bincount(group)
        first = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        eligible = np.flatnonzero(sizes >= self.min_group_size)
        n = len(group)
        for f in range(self.n_splits):
            held = order[first[eligible] + f % sizes[eligible]]
            test = np.sort(held)
            mask = np.ones(n, dtype=bool)
            mask[test] = False
            yield np.flatnonzero(mask), test

    def __repr__(self) -> str:
        return (
            f"HyperedgeSplit(mode={self.mode!r}, n_splits={self.n_splits!r}, "
            f"min_group_size={self.min_group_size!r}, random_state={self.random_state!r})"
        )
