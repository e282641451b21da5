"""HyperLearnDecomposition: the scikit-learn estimator."""

from __future__ import annotations

import sys
import time
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ._devices import resolve_devices
from ._kernels import DEFAULT_CHUNK_BYTES, cp_values
from ._validation import TensorInput, check_laplacians, check_tensor
from .solvers._als import run_als, solve_mode
from .solvers._init import initial_state
from .solvers._problem import Problem, State

__all__ = ["HyperLearnDecomposition"]


class HyperLearnDecomposition(TransformerMixin, BaseEstimator):
    """Representations of every modality of a hypergraph, regularised by per-modality graphs.

    Learns one factor matrix ``A_k`` (``N_k × rank``) per mode of a sparse K-th order tensor X
    (the hyperedges between modalities) by minimising

    ``J = lam · data(X, [[A_1, …, A_K]]) + ½ Σ_k tr(A_kᵀ L_k A_k) + alpha Σ_k ‖A_k‖²``

    where ``[[·]]`` is the CP model and ``L_k`` the normalized Laplacian of mode k's graph.

    Parameters
    ----------
    rank : int, default=10
        Number of components R of every factor matrix.
    lam : float, default=1.0
        Weight λ > 0 of the data term against the graph terms.
    laplacians : list of (sparse matrix, ndarray or None), default=None
        One Laplacian per mode (shape ``(N_k, N_k)``), ``None`` for a mode without a graph. Use
        :func:`skhyperlearn.graphs.normalized_laplacian` to build one from an adjacency.
    loss : {"hypergraph", "observed"}, default="hypergraph"
        ``"hypergraph"``: every cell counts and absent hyperedges are zeros (computed over the
        stored entries only). ``"observed"``: only the stored entries count (completion).
    solver : {"als"}, default="als"
        ``"als"``: exact block coordinate descent, one exact solve per mode per sweep.
    alpha : float, default=0.0
        Ridge penalty on the factors (and on the biases).
    bias : bool, default=True
        With ``loss="observed"``, also fit a global mean and one bias vector per mode.
        Ignored for ``loss="hypergraph"``.
    max_iter : int, default=100
        Maximum number of sweeps over the modes.
    tol : float, default=1e-6
        Stop when J decreases by less than ``tol`` relative to its previous value.
    init : {"random", "svd"} or list of ndarray, default="random"
        Initial factors: uniform random, truncated SVD of each sparse unfolding, or K arrays of
        shape ``(N_k, rank)``.
    sample_mode : int, default=0
        The mode whose entities are the samples: :meth:`transform` returns their factors.
    devices : None, str or list of str, default=None
        ``None`` (CPU), one device for all modes, or one device per mode
        (e.g. ``["cuda:0", "cuda:1", "cuda:2"]``). Each mode's data and Laplacian live there.
    cg_tol : float, default=1e-8
        Relative residual at which the conjugate-gradient solves of graph modes stop.
    random_state : int, RandomState instance or None, default=None
        Seed of the initial factors.
    verbose : int, default=0
        Print J and the time of each sweep when positive.

    Attributes
    ----------
    factors_ : list of ndarray of shape (N_k, rank)
        The learned representation of every modality.
    biases_ : list of ndarray of shape (N_k,) or None
        Per-mode biases (``loss="observed"`` with ``bias=True``), else None.
    mean_ : float
        Global mean (``loss="observed"`` with ``bias=True``), else 0.
    loss_history_ : list of float
        J after each sweep.
    n_iter_ : int
        Number of sweeps run.
    tensor_shape_ : tuple of int
        Shape of the tensor seen in fit.
    n_features_in_ : int
        Number of entities of the mode after the sample mode for order-2 input (the columns).

    Notes
    -----
    Repeated coordinates of a COO tensor are summed, as pydata ``sparse`` does. For ndarray
    input, the stored entries are its non-zero cells.

    :meth:`transform` folds new entities in by the exact solve of the sample mode with the other
    factors fixed; the sample mode's graph is taken from X when X is a ``Hypergraph``, else from
    ``laplacians[sample_mode]`` when its size matches, else the entities are solved without a
    graph. ``fit`` ends with that same solve, so ``fit_transform(X)`` equals
    ``fit(X).transform(X)``.

    Examples
    --------
    >>> from skhyperlearn import HyperLearnDecomposition
    >>> from skhyperlearn.datasets import make_hypergraph
    >>> data = make_hypergraph(shape=(30, 20, 10), rank=3, random_state=0)
    >>> model = HyperLearnDecomposition(rank=3, laplacians=data.laplacians, random_state=0)
    >>> model.fit_transform(data.tensor).shape
    (30, 3)
    """

    _parameter_constraints: dict = {
        "rank": [Interval(Integral, 1, None, closed="left")],
        "lam": [Interval(Real, 0, None, closed="neither")],
        "laplacians": ["array-like", None],
        "loss": [StrOptions({"hypergraph", "observed"})],
        "solver": [StrOptions({"als"})],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "bias": ["boolean"],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "init": [StrOptions({"random", "svd"}), list, tuple],
        "sample_mode": [Interval(Integral, 0, None, closed="left")],
        "devices": [None, str, list, tuple, torch.device],
        "cg_tol": [Interval(Real, 0, 1, closed="neither")],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        rank=10,
        lam=1.0,
        laplacians=None,
        *,
        loss="hypergraph",
        solver="als",
        alpha=0.0,
        bias=True,
        max_iter=100,
        tol=1e-6,
        init="random",
        sample_mode=0,
        devices=None,
        cg_tol=1e-8,
        random_state=None,
        verbose=0,
    ):
        self.rank = rank
        self.lam = lam
        self.laplacians = laplacians
        self.loss = loss
        self.solver = solver
        self.alpha = alpha
        self.bias = bias
        self.max_iter = max_iter
        self.tol = tol
        self.init = init
        self.sample_mode = sample_mode
        self.devices = devices
        self.cg_tol = cg_tol
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ validation
    def _check_input(self, X) -> tuple[TensorInput, list]:
        data = check_tensor(X, "X")
        if self.sample_mode >= data.order:
            raise ValueError(
                f"sample_mode={self.sample_mode} is out of range for X of order {data.order}."
            )
        graphs = data.laplacians if data.laplacians is not None else self.laplacians
        name = "X.laplacians" if data.laplacians is not None else "laplacians"
        return data, check_laplacians(graphs, data.shape, name)

    def _check_init(self, shape) -> None:
        if isinstance(self.init, str):
            return
        if len(self.init) != len(shape):
            raise ValueError(
                f"init has {len(self.init)} arrays but X has {len(shape)} modes; give one "
                "(N_k, rank) array per mode."
            )
        for k, (a, n) in enumerate(zip(self.init, shape, strict=True)):
            a = np.asarray(a)
            if a.shape != (n, self.rank):
                raise ValueError(f"init[{k}] has shape {a.shape}, expected ({n}, {self.rank}).")
            if not np.all(np.isfinite(a)):
                raise ValueError(f"init[{k}] contains NaN or infinity.")

    def _log(self, message: str) -> None:
        print(f"[{type(self).__name__}] {message}", file=sys.stdout, flush=True)

    # ------------------------------------------------------------------ fitting
    def _build_problem(self, data: TensorInput, laplacians, devices) -> Problem:
        return Problem.build(
            data.coords,
            data.values,
            data.shape,
            laplacians,
            loss=self.loss,
            lam=self.lam,
            alpha=self.alpha,
            bias=self.bias,
            devices=devices,
            chunk_bytes=DEFAULT_CHUNK_BYTES,
        )

    def _mode_order(self, order: int) -> list[int]:
        # The sample mode goes last: fit then ends on the same solve that transform performs.
        return [k for k in range(order) if k != self.sample_mode] + [self.sample_mode]

    def _fit(self, X) -> State:
        data, laplacians = self._check_input(X)
        self._check_init(data.shape)
        devices = resolve_devices(self.devices, data.order)
        rng = check_random_state(self.random_state)
        tic = time.perf_counter()
        problem = self._build_problem(data, laplacians, devices)
        state = initial_state(problem, self.init, self.rank, rng, data.coords, data.values)
        log = self._log if self.verbose else None
        state, history, n_iter = run_als(
            problem,
            state,
            mode_order=self._mode_order(data.order),
            max_iter=self.max_iter,
            tol=self.tol,
            cg_tol=self.cg_tol,
            log=log,
        )
        self._fold_in_sample_mode(problem, state, problem.laplacians[self.sample_mode])
        if not state.is_finite():
            raise FloatingPointError(
                "The fit produced non-finite factors; try a larger alpha or a smaller lam."
            )
        if self.verbose:
            self._log(f"fitted in {time.perf_counter() - tic:.2f} s, {n_iter} sweeps")
        # Attributes are set only once everything succeeded: a failed fit leaves none behind.
        factors, biases, mean = state.numpy()
        self.factors_ = factors
        self.biases_ = biases
        self.mean_ = mean
        self.loss_history_ = history
        self.n_iter_ = n_iter
        self.tensor_shape_ = data.shape
        self.n_features_in_ = int(data.shape[1 - self.sample_mode] if data.order == 2 else
                                  np.prod([s for k, s in enumerate(data.shape) if k != self.sample_mode]))
        self.devices_ = [str(d) for d in devices]
        self._laplacians_fit = laplacians
        return state

    def _fold_in_sample_mode(self, problem: Problem, state: State, lap) -> None:
        """Cold exact solve of the sample mode: the one computation fit and transform share."""
        s = self.sample_mode
        a, b, _ = solve_mode(problem, state, s, warm=False, cg_tol=self.cg_tol, laplacian=lap)
        state.factors[s] = a
        if b is not None:
            state.biases[s] = b

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Learn the factor matrices of every mode of X.

        Parameters
        ----------
        X : sparse.COO, ndarray, scipy sparse matrix or Hypergraph
            Tensor of order K ≥ 2.
        y : Ignored
            Not used, present for API consistency.

        Returns
        -------
        self : HyperLearnDecomposition
        """
        self._fit(X)
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def fit_transform(self, X, y=None):
        """Fit and return the sample-mode factors, shape ``(X.shape[sample_mode], rank)``."""
        self._fit(X)
        return self.factors_[self.sample_mode].copy()

    # ------------------------------------------------------------------ inference
    def _check_compatible(self, data: TensorInput) -> None:
        expected = list(self.tensor_shape_)
        got = list(data.shape)
        s = self.sample_mode
        if len(got) != len(expected):
            raise ValueError(
                f"X has order {len(got)} but the estimator was fitted on order {len(expected)}."
            )
        if len(got) == 2 and got[1 - s] != expected[1 - s]:
            raise ValueError(
                f"X has {got[1 - s]} features, but {type(self).__name__} is expecting "
                f"{expected[1 - s]} features as input."
            )
        if any(g != e for k, (g, e) in enumerate(zip(got, expected)) if k != s):
            raise ValueError(
                f"X has shape {tuple(got)} but the estimator was fitted on shape "
                f"{tuple(expected)}; all modes but sample_mode={s} must match."
            )

    def _folded_state(self, X) -> tuple[TensorInput, Problem, State]:
        """Validate X and fold its sample-mode entities in (shared by transform and score)."""
        check_is_fitted(self)
        data = check_tensor(X, "X")
        self._check_compatible(data)
        s = self.sample_mode
        lap = None
        if data.laplacians is not None:
            lap = check_laplacians(data.laplacians, data.shape, "X.laplacians")[s]
        else:
            fitted = self._laplacians_fit[s]
            if fitted is not None and fitted.shape[0] == data.shape[s]:
                lap = fitted
        graphs = [lap if k == s else None for k in range(data.order)]
        devices = [torch.device(d) for d in self.devices_]
        problem = self._build_problem(data, graphs, devices)
        state = self._fitted_state(problem, data.shape[s])
        self._fold_in_sample_mode(problem, state, problem.laplacians[s])
        return data, problem, state

    def transform(self, X):
        """Fold the sample-mode entities of X in, with the other modes' factors fixed.

        Parameters
        ----------
        X : sparse.COO, ndarray, scipy sparse matrix or Hypergraph
            Tensor with the fitted shape on every mode but ``sample_mode``.

        Returns
        -------
        ndarray of shape (X.shape[sample_mode], rank)
        """
        _, _, state = self._folded_state(X)
        return state.factors[self.sample_mode].detach().cpu().numpy()

    def _fitted_state(self, problem: Problem, n_samples: int) -> State:
        """The fitted factors on ``problem``'s devices, with a zero sample-mode block."""
        s = self.sample_mode
        factors = []
        for k, (a, dev) in enumerate(zip(self.factors_, problem.devices, strict=True)):
            if k == s:
                a = np.zeros((n_samples, self.rank))
            factors.append(torch.as_tensor(a, dtype=problem.dtype).to(dev))
        biases = None
        if problem.bias:
            biases = []
            for k, (b, dev) in enumerate(zip(self.biases_, problem.devices, strict=True)):
                if k == s:
                    b = np.zeros(n_samples)
                biases.append(torch.as_tensor(b, dtype=problem.dtype).to(dev))
        return State(factors, biases, self.mean_)

    def reconstruct(self, coords):
        """The model's values at the given coordinates.

        Parameters
        ----------
        coords : array-like of int, shape (n, K)
            Coordinates into the fitted tensor.

        Returns
        -------
        ndarray of shape (n,)
            ``[[A]]`` at coords, plus the mean and biases where the loss has them.
        """
        check_is_fitted(self)
        coords = np.asarray(coords)
        order = len(self.tensor_shape_)
        if coords.ndim != 2 or coords.shape[1] != order:
            raise ValueError(f"coords must have shape (n, {order}), got {coords.shape}.")
        if coords.dtype.kind not in "iu":
            if coords.size and not np.all(np.equal(np.mod(coords, 1), 0)):
                raise TypeError(f"coords must hold integers, got dtype {coords.dtype}.")
            coords = coords.astype(np.int64)
        if coords.size and (np.any(coords < 0) or np.any(coords >= np.array(self.tensor_shape_))):
            raise ValueError(
                f"coords has indices outside the fitted shape {tuple(self.tensor_shape_)}."
            )
        dtype = torch.float32 if self.factors_[0].dtype == np.float32 else torch.float64
        factors = [torch.as_tensor(a, dtype=dtype) for a in self.factors_]
        c = torch.as_tensor(coords.astype(np.int64))
        out = cp_values(c, factors).numpy()
        if self.biases_ is not None:
            out = out + self.mean_
            for k, b in enumerate(self.biases_):
                out = out + b[coords[:, k]]
        return out

    def score(self, X, y=None) -> float:
        """Negative mean squared error of the folded-in model on X (higher is better).

        The error runs over every cell for ``loss="hypergraph"`` and over the stored entries
        for ``loss="observed"``.
        """
        data, problem, state = self._folded_state(X)
        error = problem.data_error(state)
        count = np.prod(data.shape) if self.loss == "hypergraph" else data.values.shape[0]
        return -float(error) / float(count)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags
