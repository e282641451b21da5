"""The parameters HyperLearnDecomposition and HyperLearnRegressor share, checked in one place.

As scikit-learn's ``_BaseNMF`` does for NMF and MiniBatchNMF, the base class holds the shared
parameters and their constraints; each estimator adds its own (``loss``, ``sample_mode`` and
``warm_start`` for the decomposition, ``shape`` for the regressor).
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import Interval, StrOptions

from ._repr import _CompactReprMixin
from .solvers._schedules import SCHEDULE_NAMES

__all__ = ["BaseHyperLearn"]


class BaseHyperLearn(_CompactReprMixin, BaseEstimator):
    """Shared parameters of the HyperLearn estimators (see HyperLearnDecomposition).

    Subclasses spell out every parameter in their ``__init__`` (scikit-learn reads them from
    its signature) and store the shared ones with ``self._set_shared(locals())``.
    """

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
        "mode_solve": [StrOptions({"cg", "exact"})],
        # A live set: every registered schedule is accepted.
        "schedule": [StrOptions(SCHEDULE_NAMES)],
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

    def _validate_params(self) -> None:
        """scikit-learn's checks, after refusing booleans where numbers are expected.

        ``True`` is an ``Integral`` to Python, so ``sample_mode=True`` or ``rank=True`` would
        pass the intervals and mean 1; a boolean is accepted only where the constraints say
        "boolean" (``bias``, ``warm_start``, ``early_stopping``) or "verbose".
        """
        for name, constraints in self._parameter_constraints.items():
            value = getattr(self, name)
            if (
                isinstance(value, (bool, np.bool_))
                and "boolean" not in constraints
                and "verbose" not in constraints
            ):
                raise TypeError(
                    f"The {name!r} parameter of {type(self).__name__} must be a number, not a "
                    f"boolean; got {name}={value!r}."
                )
        super()._validate_params()

    def _set_shared(self, params: dict) -> None:
        """Store the shared parameters from a subclass's ``locals()`` (each under its name)."""
        for name in BaseHyperLearn._parameter_constraints:
            setattr(self, name, params[name])

    def _shared_params(self) -> dict:
        """The values of the shared parameters (what the regressor hands its decomposition)."""
        return {name: getattr(self, name) for name in BaseHyperLearn._parameter_constraints}
