"""HyperLearnDecomposition: the scikit-learn estimator."""

from __future__ import annotations

import os
import warnings
from numbers import Integral, Real
from typing import Any

import numpy as np
import torch
from numpy.typing import ArrayLike
from sklearn.base import ClassNamePrefixFeaturesOutMixin, TransformerMixin, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from . import _ranking
from ._devices import available_or_cpu, resolve_devices
from ._graph_origin import fold_in_blocks
from ._memory import UNLIMITED, parse_bytes
from ._numerics._kernels import DEFAULT_CHUNK_BYTES, cp_values
from ._params import BaseHyperLearn
from ._typing import TensorLike
from ._validation import (
    TensorInput,
    _index_dtype,
    check_laplacians,
    check_tensor,
    drop_zeros,
    n_cells,
    refuse_complex,
)
from .solvers import _sharded
from .solvers._checkpoint import Checkpoint, fit_key
from .solvers._fit import FitPlan, FitResult, ModelSpec, train
from .solvers._fold_in import fold_in_mode
from .solvers._hyperlearn import BlockConfig
from .solvers._problem import Problem, State, torch_dtype
from .solvers._schedules import get_schedule
from .solvers.losses import LOSS_CHOICES, Loss, auto_loss, get_loss

__all__ = ["HyperLearnDecomposition"]


# Stored entries from which early_stopping="auto" holds some out for validation.
_AUTO_EARLY_STOPPING = 10_000


def _check_checkpoint(checkpoint, every) -> Checkpoint | None:
    if checkpoint is None:
        return None
    if not isinstance(checkpoint, str | os.PathLike):
        raise TypeError(f"checkpoint must be None or a path, got {type(checkpoint).__name__}.")
    if isinstance(every, bool) or not isinstance(every, Integral) or every < 1:
        raise ValueError(f"checkpoint_every must be an integer >= 1, got {every!r}.")
    return Checkpoint(checkpoint, int(every))


class HyperLearnDecomposition(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseHyperLearn):
    """Representations of every modality of a hypergraph, regularised by per-modality graphs.

    Learns one factor matrix ``A_k`` (``N_k × rank``) per mode of a sparse K-th order tensor X
    (the hyperedges between modalities) by minimising

    ``J = lam · data(X, [[A_1, …, A_K]]) + ½ Σ_k tr(A_kᵀ L_k A_k) + alpha Σ_k ‖A_k‖²``

    where ``[[·]]`` is the CP model and ``L_k`` the normalized Laplacian of mode k's graph.
    The graph terms have a fixed weight: ``lam`` sets how much the data count against them
    (larger ``lam``: closer fit to X, smoother factors with smaller ``lam``), and ``alpha``
    shrinks every factor (and bias) towards zero, which matters for rows with few entries.

    Parameters that only the HyperLearn solver uses (``n_terms``, ``hidden``, ``n_steps``,
    ``learning_rate``, ``inner_steps``) say so first; ``cg_tol`` applies to every exact solve
    (the exact solver, the exact sweeps of ``init`` and the final fold-in of the sample mode).

    Parameters
    ----------
    rank : int, default=10
        Number of components R of every factor matrix.
    lam : float or "auto", default="auto"
        Weight λ > 0 of the data term against the graph terms (whose weight is ½), in the
        loss's unit: J weighs the data term by ``lam · u``. ``loss="implicit"`` has one unit
        per model, so that ``lam=1`` is the same balance under each: u = 0.1 with the
        projection terms (``projection_weight > 0``, order ≥ 3: the default), 30 with
        ``factor_scale="solved"`` (order 2, or ``projection_weight=0``), 1 with ``"free"`` and
        no projections; the other losses have u = 1. ``"auto"``: 1.0, except 0.1 for
        ``loss="observed"`` (ratings on a 1–5 scale). Under the defaults the best λ of every
        representation task measured lay in {0.1, 1, 10}: tune it with ``GridSearchCV`` over
        that grid.

        Scale of X: with ``A_k = c^(1/K)·A'_k`` the data term of ``c·X`` is c² times that of X
        while every graph and ridge term is ``c^(2/K)`` times its own, so fitting ``c·X`` with
        ``lam`` is the same problem as fitting X with ``lam·c^(2 − 2/K)`` (not ``lam·c²``): the
        factors are ``c^(1/K)`` times those and the reconstruction c times (from the
        correspondingly scaled start; biases of ``loss="observed"`` excepted when ``alpha > 0``).
        Without graphs and ridge, the fit does not depend on the scale of X at all.
    laplacians : list of (sparse matrix, ndarray or None), default=None
        One Laplacian per mode (shape ``(N_k, N_k)``), ``None`` for a mode without a graph. Use
        :func:`skhyperlearn.graphs.normalized_laplacian` to build one from an adjacency. Each
        must be symmetric positive semidefinite (checked). A Laplacian times c > 0 strengthens
        that mode's graph alone against λ (for example, a large c ties the levels of a small
        mode: see the user guide's graphs page). When X is a ``Hypergraph`` that
        carries graphs, its graphs win for their modes (with a warning where both give one)
        and ``laplacians`` fills the others.
    loss : {"auto", "implicit", "hypergraph", "observed"}, default="auto"
        ``"implicit"``: every cell counts, the target is presence (1 where stored) and a stored
        entry of value x weighs ``1 + confidence·x`` against 1 for an absent cell
        (implicit-feedback least squares, computed over the stored entries only; its
        representations of binary, very sparse hyperedges score well above the paper's loss's
        downstream, see ``benchmarks/README.md``). ``"hypergraph"``: every cell counts and
        absent hyperedges are zeros (computed over the stored entries only) — the paper's
        objective, which fits the stored values themselves. ``"observed"``: only the stored
        entries count (completion). ``"auto"``: decided by what X is: ``"implicit"`` for
        presence or counts on a sparse support (every stored value a non-negative whole
        number, and at most half of the cells stored: hyperedges, co-occurrence counts), else
        ``"hypergraph"`` (real values: negative or fractional ones, or a mostly filled tensor
        such as a dense array, whose values are then fitted by least squares); ``loss_`` says
        which; pass ``"hypergraph"`` for the paper's objective on any X.
    confidence : float or "auto", default="auto"
        With ``loss="implicit"``, how much more a stored entry of value 1 weighs than an absent
        cell, minus one. ``"auto"``: ``3·sqrt(cells / stored entries)`` of the training X
        over its median stored value, so that X and c·X give the same fit
        (about 27 on ML-100K's movie × user × rating tensor, 2·10³ on Last.fm's artist × tag ×
        user tensor): the sparser X, the more each stored entry must weigh. ``confidence_``
        holds the value used. Ignored by the other losses.
    factor_scale : {"auto", "solved", "free"}, default="auto"
        Where the model's scale sits while a mode is solved. CP leaves it free to move between
        modes, so a graph (or ridge) term on one mode can be escaped by shrinking that mode and
        growing the others: the graphs then barely act. ``"solved"``: every mode is solved with
        the other modes' columns scaled to unit norm, so the mode being solved carries the
        whole model's scale and its graph acts on it at that scale (the sample mode, solved
        last, carries it in ``factors_``); λ then sets how far the graph smooths against the
        data (larger λ: less smoothing). ``"free"``: the paper's formulation, the scale goes
        where the solves put it. ``"auto"``: ``"solved"`` for ``loss_="implicit"``, else
        ``"free"``; ``factor_scale_`` says which.
    solver : {"als", "hyperlearn"}, default="als"
        ``"als"``: exact block coordinate descent, one exact solve per mode per sweep.
        ``"hyperlearn"``: one MGCNN-LSTM diffusion block per mode (Chebyshev graph convolution
        then an LSTM predicting factor increments), trained by alternating over the modes.
    alpha : float or "auto", default="auto"
        Ridge penalty on the factors (and on the biases). ``"auto"``: 0.0 for
        ``loss="hypergraph"``, 0.03 for ``loss="implicit"`` (it fixes the scale CP leaves free)
        and 0.5 for ``loss="observed"``, where rows with few stored entries would otherwise
        overfit.
    bias : bool, default=True
        With ``loss="observed"``, also fit a global mean and one bias vector per mode.
        Ignored by the other losses.
    max_iter : int, default=100
        Maximum number of sweeps over the modes; reaching it with ``tol > 0`` warns
        (``ConvergenceWarning``).
    tol : float, default=1e-6
        Stop when J decreases by less than ``tol`` relative to its previous value.
    init : {"auto", "random", "svd", "exact_sweeps"} or list of ndarray, default="auto"
        Initial factors: uniform random, truncated SVD of each sparse unfolding, ``init_iter``
        exact sweeps from the SVD (``"exact_sweeps"``; ``"als"`` is deprecated), or K arrays
        of shape ``(N_k, rank)``. ``"auto"`` is ``"svd"`` for the exact solver and
        ``"exact_sweeps"`` for the HyperLearn solver; ``"random"`` replaces the SVD where svds
        cannot produce the rank or would cost more than the fit (above 2·10⁶ stored entries or
        order 4).
    sample_mode : int, default=0
        The mode whose entities are the samples: :meth:`transform` returns their factors.
    devices : None, str or list of str, default=None
        ``None`` (CPU), one device for all modes, or one device per mode
        (e.g. ``["cuda:0", "cuda:1", "cuda:2"]``). Each mode's data and Laplacian live there.
    cg_tol : float, default=1e-8
        Relative residual at which the conjugate-gradient solves of graph modes stop.
    mode_solve : {"cg", "exact"}, default="cg"
        How ``loss="implicit"`` solves one mode's factors with the others fixed. ``"cg"``:
        warm-started conjugate gradient on each row's system, a few steps per sweep, each step
        applying the row's matrix entry by entry (``O(R)`` work per stored entry, no per-row
        Gram: memory ``O(N·R)``), the graph term in the same CG; ``transform``'s fold-in runs
        it to ``cg_tol``. ``"exact"``: one R×R Gram per row, solved exactly (memory ``N·R²``).
        Ignored by the other losses, which solve exactly.
    projection_weight : float in [0, 1], default=1.0
        With ``loss="implicit"`` on order K ≥ 3, the share of the data term given to the
        hypergraph's pairwise projections: the sample mode × mode k matrices (every other mode
        summed out, one per k ≠ ``sample_mode``), each fitted by the same implicit loss with
        the bilinear model ``A_s A_kᵀ`` on the same factors as the tensor's CP term. ``0``: the
        tensor alone (CP); ``1``: the projections alone (the coupled 2-way factorizations of
        the sample mode's relations, one shared sample factor, with every mode's graph); in
        between, both. The projections of ``transform``'s X are computed from its own entries.
        The model then fixes every factor's scale, so ``factor_scale="auto"`` is ``"free"``
        (``"solved"`` is refused). Ignored by the other losses and for order 2 (the projection
        is X itself).

        The default is 1 because on every real hypergraph measured (ML-100K genres and users,
        Last.fm 3rd and 4th order) the sample mode's classes lived in its pairwise relations,
        where the tensor term spent rank on the context modes (benchmarks/README.md). Set
        ``projection_weight=0`` when the signal is in the combination of modes and in no pair
        of them (the quickstart's crossed hypergraph, where the tensor alone scores 0.9 and
        the projections near chance): no weight in between kept both (a weight of 0.1 already
        costs the crossed task half its margin), so choose the end, or tune it in the grid.
        ``schedule="sharded"`` needs ``projection_weight=0``.
    schedule : {"sequential", "parallel", "distributed", "sharded"}, default="sequential"
        Both solvers: modes take turns seeing the freshest factors (``"sequential"``,
        Gauss–Seidel), or every mode is updated at once from the previous round's factors,
        concurrently, one worker per device (``"parallel"``, Jacobi). ``"distributed"``: the
        parallel round over the ranks of a torch.distributed process group (launch with
        ``torchrun -m skhyperlearn.distributed``), each rank updating the modes it owns
        (mode k on rank k mod world size) and broadcasting their factors; every rank ends
        with the same fitted estimator. ``"sharded"``: each rank of the process group passes
        its share of the stored entries as X (the whole tensor's shape, the graphs on every
        rank); the sequential round, every pass over the entries summed over the ranks
        (``solver="als"``; ``loss`` "hypergraph" or "implicit"; ``init`` "auto" means
        "random" there).
    n_terms : int, default=5
        HyperLearn solver: Chebyshev terms ``p + 1`` of each block's graph convolution.
    hidden : int, default=32
        HyperLearn solver: width q of the convolution output and of the LSTM state.
    n_steps : int, default=10
        HyperLearn solver: diffusion steps T with shared weights (at least 1 with that solver).
    learning_rate : float, default=1e-3
        HyperLearn solver: Adam's learning rate.
    inner_steps : int, default=1
        HyperLearn solver: optimizer steps per mode per round; the stored entries are visited
        once per mode per round whatever this is.
    init_iter : int, default=20
        Exact sweeps run by ``init="exact_sweeps"``.
    early_stopping : "auto" or bool, default="auto"
        With ``loss="observed"``: hold out ``validation_fraction`` of the stored entries, keep
        the factors with the lowest validation RMSE and stop after ``n_iter_no_change`` rounds
        without improvement; the final solve of the sample mode then uses every stored entry.
        ``"auto"`` turns it on for ``loss="observed"`` with at least 10,000 stored entries (as
        scikit-learn's histogram gradient boosting does).
    validation_fraction : float, default=0.1
        Share of the stored entries held out by ``early_stopping``.
    n_iter_no_change : int, default=10
        Rounds without improvement (validation RMSE, else J) before training stops.
    callback : callable, default=None
        Called after each sweep or round with a dict holding ``iteration``, ``loss`` (J), its
        parts (``data``, ``graph``, ``ridge``), ``time`` (seconds of that iteration), the current
        ``factors``, ``biases`` and ``mean`` (torch tensors, on each mode's device) and, with
        early stopping, ``validation_rmse``; returning True stops training cleanly.
    warm_start : bool, default=False
        Start from the fitted factors of a previous call to fit (same X shape and rank; a
        changed rank is refused) instead of ``init``.
    max_memory : int, str or None, default=None
        Refuse to fit, before any work, when the estimated peak memory exceeds this (bytes, or
        a string such as ``"4GB"``); chunks of stored entries are then sized to stay within it.
        ``None``: refuse, before any work, a fit on the CPU whose estimate exceeds the memory
        available on the machine (``MemAvailable`` of ``/proc/meminfo``, bounded by the
        process's cgroup limit; no check where neither can be read). ``"unlimited"``: no
        check at all.
    on_nonfinite : {"raise", "warn"}, default="raise"
        When J or the factors stop being finite during training: raise ``FloatingPointError``
        (the estimator stays unfitted), or warn and keep the best factors seen before.
    random_state : int, RandomState instance or None, default=None
        Seed of the initial factors.
    verbose : int, default=0
        1: print a line per sweep or round (J as ``lam·data + graph + ridge``, the
        validation RMSE with early stopping, the time), a line when exact sweeps start the
        fit and when the refit on every entry starts, and a last line saying why training
        stopped (tol, early stopping, max_iter, callback, fault or interruption). 2 and above:
        the same phase and stop lines, with a tqdm progress bar per phase (init sweeps,
        training, refit; J and the validation RMSE beside it) instead of the per-round lines.

    Attributes
    ----------
    factors_ : list of ndarray of shape (N_k, rank)
        The learned representation of every modality.
    biases_ : list of ndarray of shape (N_k,) or None
        Per-mode biases (``loss="observed"`` with ``bias=True``), else None.
    mean_ : float
        Global mean (``loss="observed"`` with ``bias=True``), else 0.
    loss_history_ : list of float
        J after each sweep (exact solver) or round (HyperLearn solver).
    validation_history_ : list of float or None
        Validation RMSE after each round when ``early_stopping``.
    n_iter_ : int
        Number of sweeps or rounds run.
    best_iter_ : int
        The sweep or round whose factors were kept.
    blocks_ : list of torch.nn.Module or None
        HyperLearn solver: each mode's trained diffusion block (on the CPU).
    tensor_shape_ : tuple of int
        Shape of the tensor seen in fit.
    memory_estimate_ : int
        The estimated peak bytes of the fit (see ``max_memory``).
    n_features_in_ : int
        Number of entities of the mode after the sample mode for order-2 input (the columns).
    loss_ : str
        The loss fitted (``loss="auto"`` resolved).
    confidence_ : float or None
        The confidence of ``loss_="implicit"`` (``confidence="auto"`` resolved), else None;
        ``transform`` uses it too.
    factor_scale_ : str
        ``"solved"`` or ``"free"`` (``factor_scale="auto"`` resolved).

    Notes
    -----
    Repeated coordinates of a COO tensor are summed, as pydata ``sparse`` does. For ndarray
    input, the stored entries are its non-zero cells. Explicit zeros follow one rule in every
    sparse format (pydata ``sparse`` and scipy alike): with ``loss="observed"`` a stored zero
    is an observed 0; with ``loss="hypergraph"`` it is the same as an absent cell (J does not
    change) and is dropped.

    :meth:`transform` folds new entities in by the exact solve of the sample mode with the other
    factors fixed; the sample mode's graph is taken from X when X is a ``Hypergraph``, else from
    ``laplacians[sample_mode]`` when its size matches, else the entities are solved without a
    graph. When X and the training X are slices of one ``Hypergraph`` (``H[test]`` after
    ``fit(H[train])``, as in cross-validation), the graph also holds the new entities' edges
    to the fitted ones, whose factors stay fixed (the user guide's graphs page). ``fit`` ends
    with that same solve, so ``fit_transform(X)`` equals ``fit(X).transform(X)``.

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
        **BaseHyperLearn._parameter_constraints,
        # A live set: every registered loss is accepted.
        "loss": [StrOptions(LOSS_CHOICES)],
        "confidence": [Interval(Real, 0, None, closed="left"), StrOptions({"auto"})],
        "projection_weight": [Interval(Real, 0, 1, closed="both")],
        "factor_scale": [StrOptions({"auto", "solved", "free"})],
        "sample_mode": [Interval(Integral, 0, None, closed="left")],
        "warm_start": ["boolean"],
    }

    # fmt: off
    def __init__(
        self, rank=10, lam="auto", laplacians=None, *, loss="auto", confidence="auto",
        factor_scale="auto", alpha="auto", bias=True, solver="als", max_iter=100, tol=1e-6,
        init="auto", init_iter=20, sample_mode=0, devices=None, cg_tol=1e-8, schedule="sequential",
        n_terms=5, hidden=32, n_steps=10, learning_rate=1e-3, inner_steps=1,
        early_stopping="auto", validation_fraction=0.1, n_iter_no_change=10, callback=None,
        warm_start=False, max_memory=None, on_nonfinite="raise", random_state=None, verbose=0,
        mode_solve="cg", projection_weight=1.0,
    ):
        self._set_shared(locals())
        self.loss, self.confidence, self.factor_scale = loss, confidence, factor_scale
        self.projection_weight = projection_weight
        self.sample_mode, self.warm_start = sample_mode, warm_start
    # fmt: on

    # ------------------------------------------------------------------ parameters
    def _check_params(self, X, checkpoint: Checkpoint | None = None) -> FitPlan:
        """Validate X against the parameters: every cross-parameter rule lives here."""
        data = check_tensor(X, "X")
        if self.sample_mode >= data.order:
            raise ValueError(
                f"sample_mode={self.sample_mode} is out of range for X of order {data.order}."
            )
        laplacians = self._resolve_graphs(data)
        self._check_init(data.shape)
        self._check_warm_start(data)
        if self.solver == "hyperlearn" and self.n_steps < 1:
            raise ValueError(
                f"n_steps={self.n_steps}: the HyperLearn solver's blocks need at least one "
                "diffusion step (n_steps=0 is only meaningful with solver='als', which ignores it)."
            )
        data, loss = self._resolve_loss(data)
        early = self._resolve_early_stopping(loss, data.values.shape[0])
        devices = resolve_devices(self.devices, data.order)
        if self.factor_scale == "auto":
            normalize = loss.normalize_by_default
        else:
            normalize = self.factor_scale == "solved"
        if normalize and getattr(loss, "coupled", False):
            # The projection terms fix every factor's scale, and normalizing would change them.
            raise ValueError(
                f"factor_scale='solved' with projection_weight={self.projection_weight}: the "
                "projection terms fix every factor's scale, and solving against unit-norm "
                "modes would change their model; use factor_scale='auto' or 'free'."
            )
        lam, alpha = self._weights(loss, normalize)
        model = ModelSpec(loss, lam, alpha, self.bias, devices, normalize, self._chunk_bytes())
        plan = FitPlan(
            data, laplacians, model, int(self.rank), solver=self.solver,
            schedule=self.schedule, mode_order=self._mode_order(data.order), cg_tol=self.cg_tol,
            blocks=BlockConfig(
                self.n_terms, self.hidden, self.n_steps, self.learning_rate, self.inner_steps
            ),
            init=self._init(),
            init_iter=self.init_iter, random_state=self.random_state,
            warm=(self.factors_, self.biases_, self.mean_) if self._warm() else None,
            max_iter=self.max_iter, tol=self.tol, early_stopping=early,
            validation_fraction=self.validation_fraction, n_iter_no_change=self.n_iter_no_change,
            callback=self.callback, on_nonfinite=self.on_nonfinite, max_memory=self.max_memory,
            memory_limit=self._max_memory_bytes(), verbose=self.verbose,
            name=type(self).__name__, checkpoint=checkpoint,
        )  # fmt: skip
        if checkpoint is not None:
            plan.checkpoint_key = self._checkpoint_key(plan)
        return plan

    def _init(self):
        """``init`` as the training reads it (``"als"`` renamed; under ``schedule="sharded"``
        ``"auto"`` is ``"random"``)."""
        init = "exact_sweeps" if isinstance(self.init, str) and self.init == "als" else self.init
        return _sharded.sharded_init(init) if self._sharded else init

    def _warm(self) -> bool:
        """Whether this fit starts from the previous fit's factors."""
        return bool(self.warm_start and hasattr(self, "factors_"))

    def _check_warm_start(self, data: TensorInput) -> None:
        if not self._warm():
            return
        if self.tensor_shape_ != data.shape:
            raise ValueError(
                f"warm_start=True needs X of the fitted shape {tuple(self.tensor_shape_)}, "
                f"got {data.shape}."
            )
        fitted_rank = self.factors_[0].shape[1]
        if fitted_rank != self.rank:
            raise ValueError(
                f"warm_start=True starts from the fitted factors of rank {fitted_rank}, but "
                f"rank={self.rank}; set warm_start=False to fit the new rank from init."
            )

    def _resolve_loss(self, data: TensorInput) -> tuple[TensorInput, Loss]:
        """The loss (``"auto"`` decided by X, its options resolved on X) and X as it counts."""
        # Sharded: X is this rank's share, and what is decided on X is decided on every share.
        shards = _sharded.global_summary(data.values, data.shape) if self._sharded else None
        smallest = data.values.min() if data.values.size else 0
        smallest = shards.smallest if shards else smallest
        name = self.loss
        if name == "auto":
            # Presence and counts on a sparse support are confidences; real values are values.
            name = shards.auto_loss(data.shape) if shards else auto_loss(data.values, data.shape)
        loss = get_loss(
            name, confidence=self.confidence, mode_solve=self.mode_solve,
            projection_weight=self.projection_weight, sample_mode=self.sample_mode,
        )  # fmt: skip
        if shards:
            _sharded.check_sharded(self.solver, loss, self.init, self.early_stopping)
            if self.projection_weight > 0 and data.order > 2 and loss.name == "implicit":
                raise ValueError(
                    f"schedule='sharded' with projection_weight={self.projection_weight}: the "
                    "projection terms (the default at order 3 and above) need every entry of "
                    "a pair on one rank; set projection_weight=0 (the tensor's own term) or "
                    "use another schedule."
                )
        if loss.nonnegative and smallest < 0:
            raise ValueError(
                f"loss={self.loss!r} reads the stored values of X as confidences (counts), so "
                f"they must be non-negative; the smallest is {smallest!r}."
            )
        if not loss.entrywise:
            # Every cell counts: a stored zero is an absent cell (same J), whatever the format.
            data = drop_zeros(data)
        if shards:
            loss = _sharded.for_data(loss, data.values, data.shape)
        nnz = data.values.shape[0]
        return data, loss.for_data(data.shape, nnz, data.values, coords=data.coords)

    @property
    def _sharded(self) -> bool:
        return get_schedule(self.schedule).shares_entries

    def _resolve_early_stopping(self, loss: Loss, nnz: int) -> bool:
        early = self.early_stopping
        if early == "auto":
            early = loss.entrywise and nnz >= _AUTO_EARLY_STOPPING
        if early and not loss.entrywise:
            raise ValueError(
                f"early_stopping=True needs loss='observed': with loss={self.loss!r} every cell "
                "counts, so no stored entry can be held out."
            )
        if early:
            n_val = round(self.validation_fraction * nnz)
            if n_val < 1 or n_val >= nnz:
                raise ValueError(
                    f"validation_fraction={self.validation_fraction} leaves {n_val} of {nnz} "
                    "stored entries for validation; need at least 1 and fewer than all."
                )
        return bool(early)

    def _weights(self, loss: Loss, normalize: bool = False) -> tuple[float, float]:
        """``lam`` and ``alpha``, with "auto" resolved by the loss (and the factor scale)."""
        lam = self._given_lam(loss, normalize) * loss.lam_unit(normalize)
        alpha = loss.default_alpha if self.alpha == "auto" else float(self.alpha)
        return lam, alpha

    def _given_lam(self, loss: Loss, normalize: bool) -> float:
        """``lam`` as the user gave it ("auto" resolved), before the model's unit."""
        return loss.auto_lam(normalize) if self.lam == "auto" else float(self.lam)

    def _resolve_graphs(self, data: TensorInput) -> list:
        """One Laplacian per mode from X (a Hypergraph) and ``laplacians=``, checked.

        Where both give a graph for a mode, the Hypergraph's wins (it was built with X's
        entities) and a warning names those modes; ``laplacians=`` fills the modes the
        Hypergraph has no graph for.
        """
        own = check_laplacians(data.laplacians, data.shape, "X.laplacians")
        given = check_laplacians(self.laplacians, data.shape, "laplacians")
        if data.laplacians is None:
            return given
        both = [k for k in range(data.order) if own[k] is not None and given[k] is not None]
        if both:
            warnings.warn(
                f"X (a Hypergraph) carries graphs for modes {both} and laplacians= gives some "
                "too: X's graphs are used there, laplacians= only for modes X has none for.",
                UserWarning,
                stacklevel=5,
            )
        return [o if o is not None else g for o, g in zip(own, given, strict=True)]

    def _check_init(self, shape) -> None:
        if isinstance(self.init, str):
            if self.init == "als":
                warnings.warn(
                    'init="als" was renamed init="exact_sweeps" (exact sweeps before the '
                    'solver; "als" stays the name of the exact solver) and will be removed.',
                    FutureWarning,
                    stacklevel=5,
                )
            return
        if len(self.init) != len(shape):
            raise ValueError(
                f"init has {len(self.init)} arrays but X has {len(shape)} modes; give one "
                "(N_k, rank) array per mode."
            )
        for k, (a, n) in enumerate(zip(self.init, shape, strict=True)):
            a = np.asarray(a)
            refuse_complex(a.dtype, f"init[{k}]")
            if a.dtype.kind not in "biuf":
                raise TypeError(f"init[{k}] must hold real numbers, got dtype {a.dtype}.")
            if a.shape != (n, self.rank):
                raise ValueError(f"init[{k}] has shape {a.shape}, expected ({n}, {self.rank}).")
            if not np.all(np.isfinite(a)):
                raise ValueError(f"init[{k}] contains NaN or infinity.")

    def _max_memory_bytes(self) -> int | None:
        """``max_memory`` in bytes; None for no limit of the caller's (None or "unlimited")."""
        # numpy scalars (np.int64 from arithmetic) are as good as int; np.True_ is no size.
        value = self.max_memory
        if value is None or (isinstance(value, str) and value.strip().lower() == UNLIMITED):
            return None
        if isinstance(value, np.generic) and not isinstance(value, np.bool_):
            value = value.item()
        return parse_bytes(value)

    def _chunk_bytes(self) -> int:
        limit = self._max_memory_bytes()
        if limit is None:
            return DEFAULT_CHUNK_BYTES
        # A few chunk temporaries are alive at once; keep them a small share of the budget.
        return int(min(DEFAULT_CHUNK_BYTES, max(limit // 32, 2**20)))

    def _mode_order(self, order: int) -> list[int]:
        # The sample mode goes last: fit then ends on the same solve that transform performs.
        return [k for k in range(order) if k != self.sample_mode] + [self.sample_mode]

    # ------------------------------------------------------------------ fitting
    def _fit(self, X, checkpoint=None, checkpoint_every=1) -> None:
        checkpoint = _check_checkpoint(checkpoint, checkpoint_every)
        get_schedule(self.schedule).check_ready()  # before any work, not after the init sweeps
        plan = self._check_params(X, checkpoint)
        self._set_fitted(plan, train(plan))

    def _checkpoint_key(self, plan: FitPlan) -> dict:
        """What a checkpoint of this fit must match: the parameters, "auto" ones resolved."""
        model = plan.model
        resolved = dict(
            # The user's λ and its unit: the error names the value passed.
            lam=self._given_lam(model.loss, model.normalize),
            lam_unit=model.loss.lam_unit(model.normalize),
            alpha=model.alpha,
            loss=model.loss.name,
            confidence=model.loss.confidence,
            factor_scale="solved" if model.normalize else "free",
            early_stopping=plan.early_stopping,
            bias=bool(self.bias and model.loss.fits_bias),
        )
        return fit_key({**self.get_params(deep=False), **resolved}, plan.data, plan.laplacians)

    def _set_fitted(self, plan: FitPlan, result: FitResult) -> None:
        # Attributes are set only once everything succeeded: a failed fit leaves none behind.
        factors, biases, mean = result.state.numpy()
        history = list(result.losses)
        if self.warm_start and hasattr(self, "loss_history_"):
            history = list(self.loss_history_) + history
        self.factors_ = factors
        self.biases_ = biases
        self.mean_ = mean
        self.loss_history_ = history
        self.validation_history_ = result.scores
        self.n_iter_ = max(len(result.losses), 1)
        self.best_iter_ = result.best_iter
        self.memory_estimate_ = result.memory_estimate
        self.blocks_ = result.blocks
        self.tensor_shape_ = plan.data.shape
        others = [s for k, s in enumerate(plan.data.shape) if k != self.sample_mode]
        self.n_features_in_ = n_cells(others)
        self.devices_ = [str(d) for d in plan.model.devices]
        self._laplacians_fit = plan.laplacians
        # Where the training entities sit in X's graphs, for a fold-in's edges to them.
        self._origins_fit = plan.data.origins
        self._loss_fit = plan.model.loss
        # The known hyperedges, for recommend(exclude="train"): a copy, never the caller's array.
        # A sharded rank holds only its share of them: it keeps none rather than a wrong set.
        self._fit_hyperedges = None
        if not self._sharded:
            self._fit_hyperedges = np.array(plan.data.coords, dtype=_index_dtype(plan.data.shape))
        self._fit_nnz = int(plan.data.coords.shape[0])  # this process's stored entries
        self.loss_ = plan.model.loss.name
        self.confidence_ = plan.model.loss.confidence
        self.factor_scale_ = "solved" if plan.model.normalize else "free"

    def _fold_in_sample_mode(
        self, problem: Problem, state: State, lap, mode=None, shift=None
    ) -> None:
        """Cold exact solve of the sample mode (or ``mode``): the computation fit, transform
        and fold_in share."""
        mode = self.sample_mode if mode is None else mode
        # Only a fitted estimator folds in another mode than the sample mode (fit folds that in).
        unit = mode != self.sample_mode and self.factor_scale_ == "solved"
        fold_in_mode(
            problem, state, mode, unit_others=unit, cg_tol=self.cg_tol, laplacian=lap,
            shift=shift,
        )  # fmt: skip

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(
        self,
        X: TensorLike,
        y: Any = None,
        *,
        checkpoint: str | os.PathLike | None = None,
        checkpoint_every: int = 1,
    ) -> HyperLearnDecomposition:
        """Learn the factor matrices of every mode of X.

        Parameters
        ----------
        X : sparse.COO, ndarray, scipy sparse matrix or Hypergraph
            Tensor of order K ≥ 2.
        y : Ignored
            Not used, present for API consistency.
        checkpoint : str or path-like, default=None
            File where the training rounds are saved (factors, biases, blocks, optimizer
            states, the early-stopping record, the round). When it exists, fit resumes from it
            and ends where the uninterrupted fit ends. Checkpoints hold tensors and plain
            values only and are read with ``torch.load(weights_only=True)``: a file holding
            anything else is refused, naming it, and nothing of it runs. Refused before any
            work, naming the file and what differs: a checkpoint of another fit (any parameter
            that changes the rounds, "auto" ones resolved; X's shape, entries, dtype or
            values; the graphs; the number of ranks), a folder, an unreadable or foreign file,
            an unwritable place. ``max_iter``, ``tol``, ``callback``, ``verbose``,
            ``devices``, ``max_memory`` and ``on_nonfinite`` may change: a saved run goes on
            under a larger ``max_iter`` or a stricter ``tol``, and one that the new settings
            would have stopped before its saved round is refused (it cannot be taken back).
            Under ``schedule="distributed"`` each rank writes ``PATH.rank{r}of{w}``. The refit
            after early stopping on held-out entries is not checkpointed.
        checkpoint_every : int, default=1
            Save after every ``checkpoint_every``-th round (and when training stops).

        Returns
        -------
        self : HyperLearnDecomposition
        """
        self._fit(X, checkpoint, checkpoint_every)
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def fit_transform(
        self,
        X: TensorLike,
        y: Any = None,
        *,
        checkpoint: str | os.PathLike | None = None,
        checkpoint_every: int = 1,
    ) -> np.ndarray:
        """Fit and return the sample-mode factors, shape ``(X.shape[sample_mode], rank)``.

        ``checkpoint`` and ``checkpoint_every`` as in :meth:`fit`.
        """
        self._fit(X, checkpoint, checkpoint_every)
        return self.factors_[self.sample_mode].copy()

    # ------------------------------------------------------------------ inference
    def _check_compatible(self, data: TensorInput, mode: int | None = None) -> None:
        expected = list(self.tensor_shape_)
        got = list(data.shape)
        s = self.sample_mode if mode is None else mode
        if len(got) != len(expected):
            raise ValueError(
                f"X has order {len(got)} but the estimator was fitted on order {len(expected)}."
            )
        if len(got) == 2 and got[1 - s] != expected[1 - s]:
            raise ValueError(
                f"X has {got[1 - s]} features, but {type(self).__name__} is expecting "
                f"{expected[1 - s]} features as input."
            )
        if any(g != e for k, (g, e) in enumerate(zip(got, expected, strict=False)) if k != s):
            raise ValueError(
                f"X has shape {tuple(got)} but the estimator was fitted on shape "
                f"{tuple(expected)}; all modes but "
                f"{'sample_mode' if mode is None else 'mode'}={s} must match."
            )

    def _folded_state(self, X, mode: int | None = None) -> tuple[TensorInput, Problem, State]:
        """Validate X and fold its sample-mode (or ``mode``) entities in (shared by transform,
        fold_in and score)."""
        check_is_fitted(self)
        data = check_tensor(X, "X")
        self._check_compatible(data, mode)
        s = self.sample_mode if mode is None else mode
        lap, shift = self._fold_in_graph(data, s)
        graphs = [lap if k == s else None for k in range(data.order)]
        loss = self._loss_fit  # the fitted loss, its "auto" options resolved on the training X
        normalize = self.factor_scale_ == "solved"  # the fitted λ="auto" depends on it
        lam, alpha = self._weights(loss, normalize)
        devices = available_or_cpu(self.devices_)
        model = ModelSpec(loss, lam, alpha, self.bias, devices, normalize, self._chunk_bytes())
        problem = model.problem(data, graphs)
        state = self._fitted_state(problem, data.shape[s], s)
        if shift is not None:
            shift = torch.as_tensor(shift, dtype=state.factors[s].dtype).to(problem.devices[s])
        self._fold_in_sample_mode(problem, state, problem.laplacians[s], s, shift)
        return data, problem, state

    def _fold_in_graph(self, data: TensorInput, mode: int) -> tuple[Any, np.ndarray | None]:
        """The graph ``mode``'s new entities are folded in with, and the pull of their fitted
        neighbours (``L_xt A_t``, or None).

        X sliced from the Hypergraph the training X was sliced from: the graph over the new
        entities and the fitted ones outside them (``_graph_origin.fold_in_blocks``). Else X's
        own graph (a Hypergraph), else the fitted one when its size matches, else none.
        """
        fitted = getattr(self, "_origins_fit", None)  # None: fitted before slices had origins
        if fitted is not None and data.origins is not None:
            blocks = fold_in_blocks(fitted[mode], data.origins[mode])
            if blocks is not None:
                shift = blocks.cross @ self.factors_[mode][blocks.rows]
                return check_laplacians([blocks.own], (data.shape[mode],), "X.laplacians")[0], shift
        if data.laplacians is not None:
            return check_laplacians(data.laplacians, data.shape, "X.laplacians")[mode], None
        fitted_lap = self._laplacians_fit[mode]
        if fitted_lap is not None and fitted_lap.shape[0] == data.shape[mode]:
            return fitted_lap, None
        return None, None

    def transform(self, X: TensorLike) -> np.ndarray:
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

    def _fitted_state(self, problem: Problem, n_samples: int, mode: int | None = None) -> State:
        """The fitted factors on ``problem``'s devices, with a zero sample-mode (or ``mode``)
        block."""
        s = self.sample_mode if mode is None else mode
        factors = list(self.factors_)
        factors[s] = np.zeros((n_samples, self.rank))
        biases = None
        if problem.bias:
            biases = list(self.biases_)
            biases[s] = np.zeros(n_samples)
            biases = problem.place(biases)
        return State(problem.place(factors), biases, self.mean_)

    def reconstruct(self, coords: ArrayLike) -> np.ndarray:
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
        if coords.dtype.kind not in "biuf":
            raise TypeError(f"coords must hold integers, got dtype {coords.dtype}.")
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
        dtype = torch_dtype(self.factors_[0].dtype)
        factors = [torch.as_tensor(a, dtype=dtype) for a in self.factors_]
        c = torch.as_tensor(coords.astype(np.int64))
        out = cp_values(c, factors).numpy()
        if self.biases_ is not None:
            out = out + self.mean_
            for k, b in enumerate(self.biases_):
                out = out + b[coords[:, k]]
        return out

    def score(self, X: TensorLike, y: Any = None) -> float:
        """Negative mean squared error of the folded-in model on X (higher is better).

        The error runs over every cell for ``loss="hypergraph"`` and over the stored entries
        for ``loss="observed"``.
        """
        data, problem, state = self._folded_state(X)
        error = problem.data_error(state)
        count = problem.loss.n_counted(data.shape, data.values.shape[0])
        return -float(error) / float(count)

    # ------------------------------------------------------------------ completion
    def fold_in(
        self, X: TensorLike, mode: int | None = None, *, return_bias: bool = False
    ) -> np.ndarray | tuple[np.ndarray, np.ndarray | None]:
        """Fold in new entities of any mode, with the other modes' fitted factors fixed.

        The exact solve that :meth:`transform` performs for the sample mode, for ``mode``: a
        new artwork, user or tag can then be ranked for (or ranked) without refitting, by
        passing the result to :meth:`score_mode` or :meth:`recommend` as ``rows={mode: ...}``.

        Parameters
        ----------
        X : sparse.COO, ndarray, scipy sparse matrix or Hypergraph
            The new entities' hyperedges: the fitted shape on every mode but ``mode``. The
            graph of ``mode`` is X's (a Hypergraph, with its edges to the fitted entities when
            both are slices of one Hypergraph), else the fitted one when its size matches,
            else none.
        mode : int, default=None
            The mode of the new entities; None: ``sample_mode`` (then ``fold_in(X)`` equals
            ``transform(X)``).
        return_bias : bool, default=False
            Also return the new entities' biases (None without biases).

        Returns
        -------
        factors : ndarray of shape (X.shape[mode], rank)
        biases : ndarray of shape (X.shape[mode],) or None
            Only with ``return_bias=True``.

        Notes
        -----
        With ``factor_scale_="solved"`` the fitted model's scale sits on the sample mode; any
        other mode is solved as the fit solves it (against the other modes' unit-norm
        columns) and returned divided by those column norms, so that its scores with the
        fitted factors are those of that solve.
        """
        check_is_fitted(self)
        if mode is not None:
            mode = _ranking.check_mode(mode, len(self.tensor_shape_))
        _, _, state = self._folded_state(X, mode)
        mode = self.sample_mode if mode is None else mode
        a = state.factors[mode].detach().cpu().numpy()
        if not return_bias:
            return a
        return a, None if state.biases is None else state.biases[mode].detach().cpu().numpy()

    def score_mode(
        self, queries: ArrayLike, mode: int, *, rows: dict | None = None, chunk_size=None
    ) -> np.ndarray:
        """Scores of every entity of ``mode`` completing each partial hyperedge.

        The model's value at each completed cell: the CP term, plus the mean and biases where
        the loss fits them (:meth:`reconstruct` at every completion). Queries are scored in
        chunks, so beyond the result memory stays O(chunk_size × N_mode).

        Parameters
        ----------
        queries : array-like of int, shape (n_queries, K)
            Coordinates of the partial hyperedges; column ``mode`` is ignored.
        mode : int
            The mode whose entities complete the queries (negative counts from the end).
        rows : dict, default=None
            ``{j: factors}`` or ``{j: (factors, biases)}`` (from :meth:`fold_in`): mode j's
            entities replaced by these rows, which ``queries[:, j]`` then indexes.
        chunk_size : int, default=None
            Queries scored at once; None: as many as keep a chunk's scores near 64 MiB.

        Returns
        -------
        ndarray of shape (n_queries, N_mode)
        """
        model, q, mode, chunk = _ranking.prepare(self, queries, mode, rows, chunk_size)
        return _ranking.score_mode(model, q, mode, chunk)

    def recommend(
        self,
        queries: ArrayLike,
        mode: int,
        k: int = 10,
        *,
        exclude: Any = "train",
        rows: dict | None = None,
        chunk_size=None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The k best entities of ``mode`` for each partial hyperedge, known ones excluded.

        Parameters
        ----------
        queries, mode, rows, chunk_size
            As in :meth:`score_mode`.
        k : int, default=10
            Entities returned per query.
        exclude : "train", None, array-like of shape (m, K) or sparse.COO, default="train"
            Completions never returned: ``"train"``, the hyperedges the estimator was fitted
            on; coordinates (or a tensor) of known hyperedges; None, none. Exact: a query
            loses exactly the entities that complete it into one of them.

        Returns
        -------
        ids : ndarray of int64, shape (n_queries, k)
            Best first; -1 where fewer than k entities are left after exclusion.
        scores : ndarray of shape (n_queries, k)
            Their scores (-inf with id -1).
        """
        return _ranking.estimator_recommend(self, queries, mode, k, exclude, rows, chunk_size)

    def similar(
        self, mode: int, ids: ArrayLike, k: int = 10, *, chunk_size=None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The k entities of ``mode`` most similar to each of ``ids`` (cosine of factor rows).

        Parameters
        ----------
        mode : int
            The mode of the entities.
        ids : int or array-like of int
            Entities of ``mode`` to search from; each is left out of its own result.
        k : int, default=10
            Neighbours returned per entity (at most N_mode − 1).
        chunk_size : int, default=None
            Entities compared at once, as in :meth:`score_mode`.

        Returns
        -------
        ids : ndarray of int64, shape (n_ids, k) (or (k,) for one id)
        scores : ndarray, cosine similarities, same shape
        """
        return _ranking.estimator_similar(self, mode, ids, k, chunk_size)

    @property
    def _n_features_out(self) -> int:
        # The fitted rank: set_params(rank=...) before a refit does not rename the features.
        return self.factors_[0].shape[1] if hasattr(self, "factors_") else self.rank

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags
