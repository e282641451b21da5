"""``loss="observed"``: squared error over the stored entries only (completion).

With biases, the model of an entry is ``μ + Σ_k b_k[e_k] + [[A]]_e``. With every mode but k fixed,
the data term is ``Σ y² − 2⟨Ã, rhs⟩ + Σ_i ã_iᵀ G_i ã_i`` with per-row Grams ``G_i``, where ``Ã``
carries the mode's bias as an extra column. The block operator
``A ↦ Lₖ A + 2λ rowwise(A) + 2αA`` is SPD and CG on it (block-Jacobi preconditioned) solves the
mode exactly — GRALS generalised to K modes; the bias is solved jointly as the extra column
(:mod:`._rowwise`, which the implicit loss's exact mode solve shares).
"""

from __future__ import annotations

from ..._numerics._kernels import mode_normal_equations, observed_residuals, observed_sq_error
from ._base import Loss, register_loss
from ._rowwise import RowwiseQuadratic

__all__ = ["ObservedLoss"]


@register_loss
class ObservedLoss(Loss):
    """Only the stored entries count; defaults found to work for ratings on a 1–5 scale."""

    name = "observed"
    default_lam = 0.1
    default_alpha = 0.5
    fits_bias = True
    entrywise = True

    def quadratic(self, tensor, factors, mode, biases=None, mean=0.0, with_bias=False):
        rhs, grams, target_sq = mode_normal_equations(
            tensor, factors, mode, biases, mean, with_bias=with_bias, return_target_sq=True
        )
        return RowwiseQuadratic(mode, target_sq, rhs, grams, with_bias)

    def error(self, tensor, factors, biases=None, mean=0.0):
        return observed_sq_error(tensor, factors, biases, mean)

    def update_mean(self, tensor, factors, biases, mean):
        res = observed_residuals(tensor, factors, biases, mean)
        return mean + float(res.mean())

    def buffer_bytes(self, shape, rank, itemsize):
        # Per-row Grams and the solve's copies of them (the formula of _memory.py).
        return 4 * max(shape) * (rank + 1) ** 2 * itemsize
