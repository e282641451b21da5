"""The parameters HyperLearnDecomposition and HyperLearnRegressor share, checked in one place.

As scikit-learn's ``_BaseNMF`` does for NMF and MiniBatchNMF, the base class holds the shared
parameters and their constraints; each estimator adds its own (``loss``, ``sample_mode`` and
``warm_start`` for the decomposition, ``shape`` for the regressor).
"""

from __future__ import annotations

from numbers import Integral, Real

import torch
from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import Interval, StrOptions

__all__ = ["BaseHyperLearn"]


class BaseHyperLearn(BaseEstimator):
    """Shared parameters of the HyperLearn estimators (see HyperLearnDecomposition)."""

    _parameter_constraints: dict = {
        # the model
        "rank": [Interval(Integral, 1, None, closed="left")],
        "lam": [Interval(Real, 0, None, closed="neither"), StrOptions({"auto"})],
        "laplacians": ["array-like", "sparse matrix", None],
        "alpha": [Interval(Real, 0, None, closed="left"), StrOptions({"auto"})],
        "bias": ["boolean"],
        # training, both solvers
        "solver": [StrOptions({"als", "hyperlearn"})],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "init": [
            StrOptions({"auto", "random", "svd", "exact_sweeps", "als"}, deprecated={"als"}),
            list,
            tuple,
        ],
        "init_iter": [Interval(Integral, 1, None, closed="left")],
        "devices": [None, str, list, tuple, torch.device],
        "cg_tol": [Interval(Real, 0, 1, closed="neither")],
        "schedule": [StrOptions({"sequential", "parallel"})],
        # the HyperLearn solver only
        "n_terms": [Interval(Integral, 1, None, closed="left")],
        "hidden": [Interval(Integral, 1, None, closed="left")],
        "n_steps": [Interval(Integral, 0, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "inner_steps": [Interval(Integral, 1, None, closed="left")],
        # stopping, faults and reporting
        "early_stopping": [StrOptions({"auto"}), "boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "callback": [callable, None],
        "max_memory": [None, Interval(Real, 0, None, closed="neither"), str],
        "on_nonfinite": [StrOptions({"raise", "warn"})],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    # fmt: off
    def __init__(
        self, rank=10, lam="auto", laplacians=None, *, alpha="auto", bias=True,
        solver="als", max_iter=100, tol=1e-6, init="auto", init_iter=20, devices=None,
        cg_tol=1e-8, schedule="sequential",
        n_terms=5, hidden=32, n_steps=10, learning_rate=1e-3, inner_steps=1,
        early_stopping="auto", validation_fraction=0.1, n_iter_no_change=10, callback=None,
        max_memory=None, on_nonfinite="raise", random_state=None, verbose=0,
    ):
        self.rank, self.lam, self.laplacians, self.alpha, self.bias = (
            rank, lam, laplacians, alpha, bias)
        self.solver, self.max_iter, self.tol, self.init, self.init_iter = (
            solver, max_iter, tol, init, init_iter)
        self.devices, self.cg_tol, self.schedule = devices, cg_tol, schedule
        self.n_terms, self.hidden, self.n_steps = n_terms, hidden, n_steps
        self.learning_rate, self.inner_steps = learning_rate, inner_steps
        self.early_stopping, self.validation_fraction = early_stopping, validation_fraction
        self.n_iter_no_change, self.callback = n_iter_no_change, callback
        self.max_memory, self.on_nonfinite = max_memory, on_nonfinite
        self.random_state, self.verbose = random_state, verbose
    # fmt: on

    def _shared_params(self) -> dict:
        """The values of the shared parameters (what the regressor hands its decomposition)."""
        return {name: getattr(self, name) for name in BaseHyperLearn._get_param_names()}
