"""``loss="hypergraph"``: ``‖X − [[A]]‖²`` over every cell, absent hyperedges being zeros.

With every factor but ``A_k`` fixed the data term is ``‖X‖² − 2⟨A, MTTKRP_k⟩ + ⟨G_k, AᵀA⟩``
(``G_k`` the Hadamard product of the other modes' Grams), computed over the stored entries only.
Its minimiser with the graph and ridge terms solves the Sylvester equation
``Lₖ A + A (2λGₖ + 2αI) = 2λ MTTKRPₖ``; diagonalising ``Gₖ = V diag(g) Vᵀ`` splits it into R
shifted sparse systems ``(Lₖ + (2λg_r + 2α) I) y_r = (2λ MTTKRPₖ V)_r``, solved together by a
column-batched conjugate gradient warm-started at the current factors.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..._numerics._cg import pcg, relative_floor
from ..._numerics._kernels import gram_hadamard, hypergraph_sq_error, mttkrp, small_matmul
from ..._numerics._rows import ALL_ROWS, AllRows, laplacian_diagonal, laplacian_scale
from ._base import Loss, ModeQuadratic, register_loss

__all__ = ["HypergraphLoss", "HypergraphQuadratic"]


@dataclass
class HypergraphQuadratic(ModeQuadratic):
    """``const − 2⟨A, linear⟩ + ⟨gram, AᵀA⟩``: ``linear`` (N, R) and ``gram`` (R, R).

    With ``rows`` a block of the mode's rows (the sharded schedule), ``linear`` holds that
    block only, and the solve and the value share their row sums with the other blocks.
    """

    mode: int
    const: float
    linear: torch.Tensor
    gram: torch.Tensor
    rows: AllRows = ALL_ROWS

    def value(self, a: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
        a = self.rows.local(a)
        quad = (self.gram * small_matmul(a.T, a)).sum()
        cross, quad = self.rows.sum(torch.stack([(a * self.linear).sum(), quad])).unbind()
        return self.const - 2.0 * cross + quad

    def solve(self, lap, lam, alpha, warm, cg_tol, cg_maxiter, *, shift=None):
        g, v = torch.linalg.eigh(self.gram)
        rows = self.rows
        # The shift enters as the data's linear term does: −2λ⟨A, linear⟩ + ⟨A, shift⟩.
        shift = rows.local(shift)
        linear = self.linear if shift is None else self.linear - shift / (2.0 * lam)
        if lap is None:
            return rows.gather(self._solve_without_graph(linear, g, v, lam, alpha)), None
        lap = rows.laplacian(lap)
        shifts = 2.0 * lam * g.clamp_min(0) + 2.0 * alpha
        # In place from here: each (N, R) temporary costs as much as the factors themselves.
        rhs = (linear @ v).mul_(2.0 * lam)
        lap_diag = laplacian_diagonal(lap)
        scale = max(float(shifts.max()), laplacian_scale(lap, lap_diag))
        floor = relative_floor(self.gram.dtype, scale)
        shifts = shifts + floor
        diag = lap_diag[:, None] + shifts

        def op(y: torch.Tensor) -> torch.Tensor:
            return lap @ rows.gather(y) + y * shifts

        y0 = torch.zeros_like(rhs) if warm is None else rows.local(warm[0]) @ v
        y = pcg(
            op, rhs, y0, lambda r: r / diag, tol=cg_tol, maxiter=cg_maxiter, per_column=True,
            allsum=None if rows.whole else rows.sum,
        )  # fmt: skip
        return rows.gather(y @ v.T), None

    def _solve_without_graph(self, linear, g, v, lam, alpha) -> torch.Tensor:
        """``2λ · linear · (2λG + 2αI)⁺``, the pseudo-inverse on the null space of the shifted
        ``G`` (directions that carry no data stay zero)."""
        # The R×R algebra in numpy, then one product: as a dozen torch calls on R-vectors it
        # was a tenth of a 10^5-entry sweep.
        g, v = g.cpu().numpy(), v.cpu().numpy()
        shifts = 2.0 * lam * np.maximum(g, 0) + 2.0 * alpha
        floor = relative_floor(self.gram.dtype, float(shifts.max()))
        keep = shifts > floor
        inverse = np.where(keep, 2.0 * lam / np.where(keep, shifts, 1), 0).astype(v.dtype)
        m = torch.from_numpy((v * inverse) @ v.T).to(linear.device)
        return small_matmul(linear, m)


@register_loss
class HypergraphLoss(Loss):
    """Every cell counts; values found to work for binary hyperedges as defaults."""

    name = "hypergraph"
    default_lam = 1.0
    default_alpha = 0.0

    def quadratic(self, tensor, factors, mode, biases=None, mean=0.0, with_bias=False):
        m = mttkrp(tensor, factors, mode)
        return HypergraphQuadratic(mode, tensor.norm_sq, m, gram_hadamard(factors, mode))

    def error(self, tensor, factors, biases=None, mean=0.0):
        return hypergraph_sq_error(tensor, factors)
