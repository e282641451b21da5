"""What a data loss provides, and the registry that maps ``loss=`` names to losses.

A loss owns everything of J that depends on the data: its value at given factors (``error``),
its quadratic in one mode's factors and bias with the others fixed (``quadratic``, one pass over
the stored entries), the exact minimiser of that quadratic plus the graph and ridge terms
(``ModeQuadratic.solve``), the exact bias given the factors (``ModeQuadratic.exact_bias``, used by
the diffusion blocks), the global mean's update, and its share of a fit's memory. The graph and
ridge terms, and how they are weighed against the data term, are the same for every loss and
live in :class:`~skhyperlearn.solvers._problem.Problem`.

A loss reads arrays only: the stored entries of its tensor (a ``SparseTensorData``), one factor
matrix per axis of that tensor and optionally the biases and the global mean, every one already
on the device it computes on. Which tensor, which modes and which device are the
:class:`~skhyperlearn.solvers._problem.Problem`'s business, so a loss can be tested on arrays.

Adding a loss is one new module defining a :class:`Loss` subclass decorated with
:func:`register_loss`, plus its import in ``losses/__init__.py``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import torch

if TYPE_CHECKING:
    from ..._numerics._layout import SparseTensorData

# The public names are listed once, in losses/__init__.py.

#: Registered losses by name (``loss=`` of the estimators).
LOSSES: dict[str, type[Loss]] = {}
#: Their names, a live set: the estimators' parameter constraints accept every registered loss.
LOSS_NAMES: set[str] = set()
#: What ``HyperLearnDecomposition(loss=)`` accepts: the registered names and "auto" (live too).
LOSS_CHOICES: set[str] = {"auto"}


class ModeQuadratic:
    """The data term of J in one mode's factors (and bias), the other modes fixed."""

    mode: int

    def value(self, a: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
        """The data term at factors ``a`` (and bias ``b``); differentiable in both."""
        raise NotImplementedError

    def solve(
        self,
        lap: torch.Tensor | None,
        lam: float,
        alpha: float,
        warm: tuple[torch.Tensor, torch.Tensor | None] | None,
        cg_tol: float,
        cg_maxiter: int,
        *,
        shift: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Minimiser of ``λ·value + ½tr(AᵀLA) + tr(Aᵀ shift) + α(‖A‖² + ‖b‖²)``: new factors
        and bias. ``shift`` (``N × R``, or None for 0) is the graph term's pull from fixed
        neighbours outside the mode's rows (a fold-in's fitted entities)."""
        raise NotImplementedError

    def exact_bias(self, a: torch.Tensor, lam: float, alpha: float) -> torch.Tensor | None:
        """The bias minimising the mode's part of J given its factors ``a`` (None: no bias)."""
        return None


class Loss:
    """One kind of data term of J; subclasses are registered by name with :func:`register_loss`."""

    #: Name given as ``loss=``.
    name: ClassVar[str]
    #: What ``lam="auto"`` and ``alpha="auto"`` mean for this loss.
    default_lam: ClassVar[float] = 1.0
    default_alpha: ClassVar[float] = 0.0
    #: Whether ``bias=True`` fits a global mean and per-mode biases.
    fits_bias: ClassVar[bool] = False
    #: Whether only the stored entries count, so that some can be held out for validation.
    entrywise: ClassVar[bool] = False
    #: Estimator parameters the loss is built with (``get_loss(name, **options)``).
    options: ClassVar[tuple[str, ...]] = ()
    #: Whether the stored values must be non-negative (checked before any work).
    nonnegative: ClassVar[bool] = False
    #: Whether ``factor_scale="auto"`` solves each mode against the others' unit-norm columns.
    normalize_by_default: ClassVar[bool] = False
    #: The weight of a stored entry above an absent cell, for a loss that has one (the fitted
    #: ``confidence_``); None otherwise.
    confidence: float | str | None = None

    @property
    def inexact_solve(self) -> bool:
        """Whether a warm mode solve stops short of the minimiser (a few CG steps): the scale
        rule then moves the scale onto the solved mode (``Problem.keeps_model``)."""
        return False

    def auto_lam(self, normalize: bool) -> float:
        """``lam="auto"``; ``normalize``: the fit solves each mode against unit-norm others."""
        return self.default_lam

    def lam_unit(self, normalize: bool) -> float:
        """The data term's weight in J at ``lam=1``: J weighs it by ``lam · lam_unit``.

        A loss whose model changes how strongly the data pull against the graphs (the factor
        scale, the projection terms) gives each model its own unit, so that one ``lam`` means
        the same balance under each; 1 here (``lam`` is the weight itself).
        """
        return 1.0

    def target_norm(self, values: np.ndarray) -> float:
        """The norm of what the model fits at the stored entries (their values, here).

        The scale a fitted model is compared with (the collapse warning): computed in
        float64, in pieces, scaled by the largest value so that no square under- or
        overflows whatever the dtype of X.
        """
        if values.size == 0:
            return 0.0
        big = float(np.max(np.abs(values)))
        if big == 0.0 or not math.isfinite(big):
            return big
        total = 0.0
        for start in range(0, values.shape[0], _CHUNK):
            part = values[start : start + _CHUNK].astype(np.float64) / big
            total += float(part @ part)
        return big * math.sqrt(total)

    def quadratic(
        self,
        tensor: SparseTensorData,
        factors: Sequence[torch.Tensor],
        mode: int,
        biases: Sequence[torch.Tensor] | None = None,
        mean: float = 0.0,
        with_bias: bool = False,
    ) -> ModeQuadratic:
        """Axis ``mode``'s quadratic at ``factors`` (and ``biases``, ``mean``), in one pass over
        ``tensor``; ``with_bias``: in the axis's bias too (a loss that ``fits_bias``)."""
        raise NotImplementedError

    def error(
        self,
        tensor: SparseTensorData,
        factors: Sequence[torch.Tensor],
        biases: Sequence[torch.Tensor] | None = None,
        mean: float = 0.0,
    ) -> float:
        """The data term at ``factors`` (and ``biases``, ``mean``), before weighting by λ."""
        raise NotImplementedError

    def n_counted(self, shape: tuple[int, ...], nnz: int) -> int:
        """How many squared errors ``error`` sums (the mean squared error of ``score``)."""
        return nnz if self.entrywise else math.prod(shape)

    def update_mean(
        self,
        tensor: SparseTensorData,
        factors: Sequence[torch.Tensor],
        biases: Sequence[torch.Tensor] | None,
        mean: float,
    ) -> float:
        """The exact minimiser of the data term over the global mean (called when biases are
        fitted)."""
        return mean

    def start_values(self, values: np.ndarray) -> np.ndarray:
        """The stored values the initial factors are computed from (X's own, here)."""
        return values

    def buffer_bytes(self, shape: tuple[int, ...], rank: int, itemsize: int) -> int:
        """Peak bytes of the loss's own per-mode buffers (the memory guard adds them)."""
        return 0

    def for_data(
        self, shape: tuple[int, ...], nnz: int, values: object = None, coords: object = None
    ) -> Loss:
        """This loss with the options that depend on X (``"auto"`` ones) resolved; ``values``
        are X's stored values (non-zero for the losses where every cell counts), ``coords``
        their ``(nnz, K)`` coordinates."""
        return self


def register_loss(cls: type[Loss]) -> type[Loss]:
    """Class decorator: make ``cls`` available as ``loss=cls.name``."""
    LOSSES[cls.name] = cls
    LOSS_NAMES.add(cls.name)
    LOSS_CHOICES.add(cls.name)
    return cls


#: Above this share of the cells stored, ``loss="auto"`` reads X as values, not presence: with
#: most cells present there is little absence for the presence model to learn from.
PRESENCE_MAX_DENSITY = 0.5
_CHUNK = 1 << 20


def _whole_non_negative(values: np.ndarray) -> bool:
    """Whether every value is a non-negative whole number (in pieces: no copy of X)."""
    if values.dtype.kind in "bu":
        return True
    for start in range(0, values.shape[0], _CHUNK):
        part = values[start : start + _CHUNK]
        if values.dtype.kind == "i":
            if np.any(part < 0):
                return False
        elif not (np.all(part >= 0) and np.all(np.floor(part) == part)):
            return False
    return True


def auto_loss(values: np.ndarray, shape: Sequence[int]) -> str:
    """The loss ``loss="auto"`` fits to stored ``values`` of a tensor of ``shape``.

    ``"implicit"`` (presence, the values weighing each stored entry) when X is presence or
    counts on a sparse support: every stored value a non-negative whole number, and at most
    :data:`PRESENCE_MAX_DENSITY` of the cells stored. Otherwise (real values: negative or
    fractional ones, or a mostly filled tensor such as a dense array) ``"hypergraph"``: least
    squares on the values themselves.
    """
    cells = math.prod(int(n) for n in shape)
    dense = cells > 0 and values.shape[0] > PRESENCE_MAX_DENSITY * cells
    return "implicit" if not dense and _whole_non_negative(values) else "hypergraph"


def get_loss(loss: str | Loss, **options: object) -> Loss:
    """The loss named ``loss``, built with those ``options`` it takes (see ``Loss.options``).

    A :class:`Loss` instance is returned as is.
    """
    if isinstance(loss, Loss):
        return loss
    try:
        cls = LOSSES[loss]
    except KeyError:
        raise ValueError(f"loss={loss!r} is not one of {sorted(LOSSES)}.") from None
    return cls(**{name: options[name] for name in cls.options if name in options})
