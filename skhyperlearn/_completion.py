"""HyperLearnRegressor: entry-wise tensor completion as a scikit-learn regressor."""

from __future__ import annotations

import numpy as np
import sparse
from numpy.typing import ArrayLike
from sklearn.base import RegressorMixin, _fit_context
from sklearn.utils.validation import check_is_fitted, validate_data

from ._decomposition import HyperLearnDecomposition
from ._params import BaseHyperLearn
from ._validation import (
    check_int,
    check_laplacian_list,
    check_value_range,
    laplacian_size,
    n_cells,
    working_dtype,
)

__all__ = ["HyperLearnRegressor"]


class HyperLearnRegressor(RegressorMixin, BaseHyperLearn):
    """Entry-wise completion of a graph-regularised K-th order tensor, as a regressor.

    Each sample is one entry of a K-th order tensor: ``X`` holds its integer coordinates
    ``(i_1, …, i_K)`` (one column per mode) and ``y`` its value (a rating, a count, …).
    :meth:`fit` stores the entries in a sparse tensor and fits a
    :class:`~skhyperlearn.HyperLearnDecomposition` with ``loss="observed"`` (only the given
    entries count; optional global mean and per-mode biases), regularised by one graph per mode;
    :meth:`predict` returns the model's value at any coordinates. Because the samples are
    entries, ``GridSearchCV`` / ``cross_val_score`` hold out *entries*, which is how completion
    models (rank, ``lam``, ``alpha``) are tuned::

        GridSearchCV(HyperLearnRegressor(laplacians=laps), {"rank": [5, 10], "lam": [0.1, 1]},
                     scoring="neg_root_mean_squared_error").fit(coords, values)

    The model minimises

    ``J = lam · Σ_{e observed} (y_e − μ − Σ_k b_k[e_k] − [[A_1, …, A_K]]_e)²
    + ½ Σ_k tr(A_kᵀ L_k A_k) + alpha Σ_k (‖A_k‖² + ‖b_k‖²)``.

    Parameters
    ----------
    rank : int, default=10
        Number of components R of every factor matrix.
    lam : float or "auto", default="auto"
        Weight λ > 0 of the data term against the graph and ridge terms. ``"auto"``: the
        decomposition's value for ``loss="observed"`` (0.1, found to work for ratings on a 1–5
        scale); tune it with ``GridSearchCV``.
    laplacians : list of (sparse matrix, ndarray or None), default=None
        One Laplacian per mode (shape ``(N_k, N_k)``), ``None`` for a mode without a graph
        (see :func:`skhyperlearn.graphs.normalized_laplacian`). The graphs are over whole modes
        and are never sliced: cross-validation holds out entries, not entities.
    shape : tuple of int, default=None
        Shape ``(N_1, …, N_K)`` of the tensor. When None, ``N_k`` is the size of
        ``laplacians[k]`` where mode k has a graph, else the largest index of column k seen in
        :meth:`fit` plus one. Give it when cross-validating a mode without a graph: a training
        fold may miss the largest indices, and :meth:`predict` refuses coordinates outside the
        fitted shape. Entities without any training entry get the factors the graph (or, without
        a graph, the ridge term: zero) gives them, and zero bias.
    alpha : float or "auto", default="auto"
        Ridge penalty on the factors and the biases. ``"auto"``: the decomposition's value for
        ``loss="observed"`` (0.5). Keep it positive: rows with fewer observed entries than
        ``rank`` make the unregularised completion problem ill-posed.
    bias : bool, default=True
        Also fit a global mean and one bias vector per mode.
    solver : {"als", "hyperlearn"}, default="als"
        Exact block coordinate descent, or the MGCNN-LSTM diffusion blocks; see
        :class:`~skhyperlearn.HyperLearnDecomposition`.
    max_iter : int, default=100
        Maximum number of sweeps (or rounds) over the modes.
    tol : float, default=1e-6
        Stop when J decreases by less than ``tol`` relative to its previous value.
    init : {"auto", "random", "svd", "exact_sweeps"} or list of ndarray, default="auto"
        Initial factors, see :class:`~skhyperlearn.HyperLearnDecomposition`.
    devices : None, str or list of str, default=None
        ``None`` (CPU), one device for all modes or one per mode.
    cg_tol : float, default=1e-8
        Relative residual at which the conjugate-gradient solves of graph modes stop.
    mode_solve : {"cg", "exact"}, default="cg"
        How ``loss="implicit"`` solves a mode, see
        :class:`~skhyperlearn.HyperLearnDecomposition`; the regressor's loss (``"observed"``)
        always solves exactly.
    schedule : {"sequential", "parallel"}, default="sequential"
        Order of the mode updates (both solvers), see
        :class:`~skhyperlearn.HyperLearnDecomposition`.
    n_terms : int, default=5
        HyperLearn solver: Chebyshev terms of each block's graph convolution.
    hidden : int, default=32
        HyperLearn solver: width of the convolution output and of the LSTM state.
    n_steps : int, default=10
        HyperLearn solver: diffusion steps.
    learning_rate : float, default=1e-3
        HyperLearn solver: Adam's learning rate.
    inner_steps : int, default=1
        HyperLearn solver: optimizer steps per mode per round.
    init_iter : int, default=20
        Exact sweeps run by ``init="exact_sweeps"``.
    early_stopping : "auto" or bool, default="auto"
        Hold out ``validation_fraction`` of the training entries and keep the factors with the
        lowest validation RMSE. ``"auto"``: on from 10,000 entries (the decomposition's rule).
    validation_fraction : float, default=0.1
        Share of the training entries held out by ``early_stopping``.
    n_iter_no_change : int, default=10
        Rounds without improvement before training stops.
    callback : callable, default=None
        Called after each sweep or round, see :class:`~skhyperlearn.HyperLearnDecomposition`.
    max_memory : int, str or None, default=None
        Refuse to fit when the estimated peak memory exceeds this.
    on_nonfinite : {"raise", "warn"}, default="raise"
        What to do when J or the factors stop being finite.
    random_state : int, RandomState instance or None, default=None
        Seed of the initial factors (and of the early-stopping split).
    verbose : int, default=0
        Print J and the time of each sweep when positive.

    Attributes
    ----------
    decomposition_ : HyperLearnDecomposition
        The fitted decomposition (``loss="observed"``): ``factors_``, ``biases_``, ``mean_``,
        ``loss_history_``, ``n_iter_``, …
    shape_ : tuple of int
        Shape of the tensor the model was fitted on.
    n_iter_ : int
        Number of sweeps (or rounds) run.
    factors_ : list of ndarray of shape (N_k, rank)
        The learned representation of every mode (``decomposition_.factors_``).
    n_features_in_ : int
        Number of columns of ``X``, the order K of the tensor.
    feature_names_in_ : ndarray of str
        Column names of ``X`` when it is a DataFrame with string column names.

    See Also
    --------
    HyperLearnDecomposition : the engine; representations of every mode of a hypergraph.

    Notes
    -----
    Repeated coordinates in ``X`` are averaged into one observed entry (their least-squares
    value); each counts once in the loss.

    ``X`` must hold non-negative integers (integer-valued floats are accepted); continuous
    features are refused. The estimator's tags say so (``input_tags.categorical`` and
    ``positive_only``), so scikit-learn's estimator checks send it integer codes, and it passes
    them all (``tests/examples/test_workflows.py``).

    Examples
    --------
    >>> import numpy as np
    >>> from skhyperlearn import HyperLearnRegressor
    >>> rng = np.random.default_rng(0)
    >>> a, b, c = rng.random((20, 2)), rng.random((15, 2)), rng.random((10, 2))
    >>> coords = np.argwhere(rng.random((20, 15, 10)) < 0.3)
    >>> values = np.einsum("nr,nr,nr->n", a[coords[:, 0]], b[coords[:, 1]], c[coords[:, 2]])
    >>> model = HyperLearnRegressor(rank=2, alpha=1e-3, random_state=0).fit(coords, values)
    >>> model.predict(coords[:3]).shape
    (3,)
    """

    _parameter_constraints: dict = {
        **BaseHyperLearn._parameter_constraints,
        "shape": ["array-like", None],
    }

    # fmt: off
    def __init__(
        self, rank=10, lam="auto", laplacians=None, *, shape=None, alpha="auto", bias=True,
        solver="als", max_iter=100, tol=1e-6, init="auto", init_iter=20, devices=None,
        cg_tol=1e-8, mode_solve="cg", schedule="sequential",
        n_terms=5, hidden=32, n_steps=10, learning_rate=1e-3, inner_steps=1,
        early_stopping="auto", validation_fraction=0.1, n_iter_no_change=10, callback=None,
        max_memory=None, on_nonfinite="raise", random_state=None, verbose=0,
    ):
        self._set_shared(locals())
        self.shape = shape
    # fmt: on

    # ------------------------------------------------------------------ validation
    @staticmethod
    def _as_coords(X) -> np.ndarray:
        """Integer coordinates from a validated 2-D array (integer-valued floats accepted)."""
        if X.dtype.kind == "u" and X.size and int(X.max()) > np.iinfo(np.int64).max:
            raise ValueError(
                f"X holds coordinate {int(X.max())}, beyond the largest index (2^63 - 1)."
            )
        if X.dtype.kind in "iu":
            return X.astype(np.int64, copy=False)
        if X.dtype.kind == "b" or not np.all(np.equal(np.mod(X, 1), 0)):
            raise ValueError(
                "X must hold integer coordinates (one column per mode of the tensor), got "
                f"non-integer values of dtype {X.dtype}."
            )
        return X.astype(np.int64)

    def _validate_coords(self, X, y="no_validation", *, reset: bool):
        # At fit, a tensor needs K ≥ 2 modes; afterwards validate_data checks K against
        # n_features_in_ (and says so in scikit-learn's words).
        kwargs = {"dtype": "numeric", "ensure_min_features": 2 if reset else 1, "reset": reset}
        if isinstance(y, str) and y == "no_validation":
            X = validate_data(self, X, **kwargs)
        else:
            X, y = validate_data(self, X, y, y_numeric=True, **kwargs)
        coords = self._as_coords(X)
        if coords.size and coords.min() < 0:
            raise ValueError(
                f"Negative values in data passed to {type(self).__name__}: X holds coordinates, "
                "which start at 0."
            )
        return coords, y

    def _infer_shape(self, coords: np.ndarray) -> tuple[int, ...]:
        order = coords.shape[1]
        seen = coords.max(axis=0) + 1
        if self.shape is not None:
            shape = tuple(
                check_int(n, f"shape[{k}]", low=1)
                for k, n in enumerate(np.asarray(self.shape, dtype=object).ravel())
            )
            if len(shape) != order:
                raise ValueError(
                    f"shape has {len(shape)} entries but X has {order} columns (one per mode)."
                )
            if any(n < 1 for n in shape):
                raise ValueError(f"shape must hold positive sizes, got {shape}.")
        else:
            laps = self.laplacians
            if laps is not None:
                check_laplacian_list(laps, order, what=f"X has {order} columns")
            shape = tuple(
                laplacian_size(lap, k) if laps is not None and lap is not None else int(seen[k])
                for k, lap in enumerate(laps if laps is not None else [None] * order)
            )
        if n_cells(shape) > np.iinfo(np.int64).max:
            raise ValueError(
                f"shape {shape} has {n_cells(shape):.3g} cells, more than 2^63: no sparse "
                "tensor can index them."
            )
        over = [k for k in range(order) if seen[k] > shape[k]]
        if over:
            k = over[0]
            raise ValueError(
                f"column {k} of X holds index {seen[k] - 1}, outside mode {k} of size {shape[k]} "
                f"(shape {shape}); give a larger shape."
            )
        return shape

    # ------------------------------------------------------------------ fitting
    def _make_decomposition(self) -> HyperLearnDecomposition:
        return HyperLearnDecomposition(loss="observed", sample_mode=0, **self._shared_params())

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: ArrayLike, y: ArrayLike) -> HyperLearnRegressor:
        """Fit the factors to the observed entries ``(X[i], y[i])``.

        Parameters
        ----------
        X : array-like of int, shape (n_entries, K)
            Coordinates of the observed entries, one column per mode (K ≥ 2).
        y : array-like of shape (n_entries,)
            Their values.

        Returns
        -------
        self : HyperLearnRegressor
        """
        coords, y = self._validate_coords(X, y, reset=True)
        shape = self._infer_shape(coords)
        dtype = working_dtype(y.dtype)
        values = np.asarray(y, dtype=dtype)
        check_value_range(values, "y")
        # Average repeated coordinates: one observed entry holding their least-squares value.
        linear = np.ravel_multi_index(tuple(coords.T), shape)
        cells, inverse, counts = np.unique(linear, return_inverse=True, return_counts=True)
        if cells.shape[0] < linear.shape[0]:
            values = (np.bincount(inverse, weights=values) / counts).astype(dtype)
            coords = np.stack(np.unravel_index(cells, shape), axis=1)
        tensor = sparse.COO(coords.T, values, shape=shape, has_duplicates=False, sorted=False)
        decomposition = self._make_decomposition()
        decomposition.fit(tensor)
        self.decomposition_ = decomposition
        self.shape_ = shape
        self.n_iter_ = decomposition.n_iter_
        return self

    @property
    def factors_(self) -> list[np.ndarray]:
        """The learned factor matrices, one ``(N_k, rank)`` array per mode."""
        check_is_fitted(self)
        return self.decomposition_.factors_

    # ------------------------------------------------------------------ inference
    def predict(self, X: ArrayLike) -> np.ndarray:
        """The model's values at the coordinates X.

        Parameters
        ----------
        X : array-like of int, shape (n_entries, K)
            Coordinates inside the fitted shape ``shape_``.

        Returns
        -------
        ndarray of shape (n_entries,)

        Raises
        ------
        ValueError
            If a coordinate lies outside ``shape_`` (set ``shape`` at fit time to cover
            entities that a training fold may lack).
        """
        check_is_fitted(self)
        coords, _ = self._validate_coords(X, reset=False)
        if coords.size:
            beyond = coords.max(axis=0) >= np.asarray(self.shape_)
            if beyond.any():
                k = int(np.flatnonzero(beyond)[0])
                raise ValueError(
                    f"column {k} of X holds index {int(coords[:, k].max())}, outside mode {k} "
                    f"of the fitted shape {self.shape_}. Give the full shape= (or a Laplacian "
                    "for that mode) when fitting, so that every entity has a factor."
                )
        return self.decomposition_.reconstruct(coords)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # Coordinates are non-negative integers naming entities: categorical, never negative.
        tags.input_tags.positive_only = True
        tags.input_tags.categorical = True
        tags.target_tags.required = True
        return tags
