"""The row-wise quadratic: one R×R Gram per row, the shape of every loss that weighs stored
entries one by one (``observed``, and ``implicit`` with ``mode_solve="exact"``).

``const − 2⟨Ã, linear⟩ + Σ_i ãᵢᵀ Gᵢ ãᵢ``, where ``Ã`` may carry the mode's bias as an extra
column. With a graph the block operator ``A ↦ Lₖ A + 2λ rowwise(A) + 2αA`` is SPD and CG on it
(block-Jacobi preconditioned by each row's Cholesky factor) solves the mode exactly; without
one the rows are independent and solved directly.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..._numerics._cg import pcg, relative_floor
from ..._numerics._rows import ALL_ROWS, AllRows, laplacian_diagonal, laplacian_scale
from ._base import ModeQuadratic

__all__ = ["RowwiseQuadratic", "solve_rowwise"]


def solve_rowwise(
    lap: torch.Tensor | None,
    rhs: torch.Tensor,
    grams: torch.Tensor,
    rank: int,
    lam: float,
    alpha: float,
    y0: torch.Tensor | None,
    cg_tol: float,
    cg_maxiter: int,
    rows: AllRows = ALL_ROWS,
) -> torch.Tensor:
    """Minimiser of ``λ Σ_i (yᵢᵀGᵢyᵢ − 2yᵢᵀrhsᵢ) + ½tr(YᵀLY) + α‖Y‖²`` (graph on ``rank`` cols).

    ``rhs``, ``grams`` and ``y0`` hold the rows ``rows`` gives this process; so does the result.
    """
    n, width, _ = grams.shape
    eye = torch.eye(width, dtype=grams.dtype, device=grams.device)
    system = 2.0 * lam * grams + 2.0 * alpha * eye
    # The floor is relative to the largest diagonal over every row (a mode without rows: 0).
    scale = rows.max(float(system.diagonal(dim1=1, dim2=2).abs().max()) if n else 0.0)
    lap = rows.laplacian(lap)
    if lap is not None:
        own_diag = laplacian_diagonal(lap)
        scale = max(scale, laplacian_scale(lap, own_diag))
    system = system + relative_floor(grams.dtype, scale) * eye
    b = 2.0 * lam * rhs
    if lap is None:
        return torch.linalg.solve(system, b.unsqueeze(-1)).squeeze(-1)
    lap_diag = torch.zeros(n, width, dtype=grams.dtype, device=grams.device)
    lap_diag[:, :rank] = own_diag[:, None]
    chol = torch.linalg.cholesky(system + torch.diag_embed(lap_diag))

    def op(y: torch.Tensor) -> torch.Tensor:
        out = torch.bmm(system, y.unsqueeze(-1)).squeeze(-1)
        out[:, :rank] += lap @ rows.gather(y[:, :rank])
        return out

    def precond(r: torch.Tensor) -> torch.Tensor:
        return torch.cholesky_solve(r.unsqueeze(-1), chol).squeeze(-1)

    y0 = torch.zeros_like(b) if y0 is None else y0
    return pcg(
        op, b, y0, precond, tol=cg_tol, maxiter=cg_maxiter, per_column=False,
        allsum=None if rows.whole else rows.sum,
    )  # fmt: skip


@dataclass
class RowwiseQuadratic(ModeQuadratic):
    """``const − 2⟨Ã, linear⟩ + Σ_i ãᵢᵀ gram_i ãᵢ``; ``Ã = [A, b]`` when ``with_bias``.

    With ``rows`` a block of the mode's rows (the sharded schedule), ``linear`` and ``gram``
    hold that block only.
    """

    mode: int
    const: float
    linear: torch.Tensor  # (N, R')
    gram: torch.Tensor  # (N, R', R')
    with_bias: bool = False
    rows: AllRows = ALL_ROWS

    def value(self, a: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
        a, b = self.rows.local(a), self.rows.local(b)
        if self.with_bias:
            a = torch.cat([a, b[:, None]], 1)
        quad = torch.einsum("ni,nij,nj->", a, self.gram, a)
        cross, quad = self.rows.sum(torch.stack([(a * self.linear).sum(), quad])).unbind()
        return self.const - 2.0 * cross + quad

    def solve(self, lap, lam, alpha, warm, cg_tol, cg_maxiter, *, shift=None):
        rows = self.rows
        rank = self.linear.shape[1] - int(self.with_bias)
        y0 = None
        if warm is not None:
            a, b = rows.local(warm[0]), rows.local(warm[1])
            y0 = a if not self.with_bias else torch.cat([a, b[:, None]], 1)
        linear = self.linear
        if shift is not None:
            # As the data's linear term, −2λ⟨Ã, linear⟩, on the factor columns only.
            linear = linear.clone()
            linear[:, :rank] -= rows.local(shift) / (2.0 * lam)
        y = solve_rowwise(lap, linear, self.gram, rank, lam, alpha, y0, cg_tol, cg_maxiter, rows)
        if self.with_bias:
            return rows.gather(y[:, :rank].contiguous()), rows.gather(y[:, rank].contiguous())
        return rows.gather(y), None

    def exact_bias(self, a, lam, alpha):
        if not self.with_bias:
            return None
        # One division per row: Adam's per-coordinate steps would shake every bias by the
        # learning rate, while the bias given the factors has a closed form.
        rank = a.shape[1]
        cross = (self.gram[:, rank, :rank] * a).sum(1)
        count = self.gram[:, rank, rank]
        # Rows without entries (count 0) and no ridge have no bias to learn: zero, not 0/0.
        den = lam * count + alpha
        num = lam * (self.linear[:, rank] - cross)
        return torch.where(den > 0, num / torch.where(den > 0, den, 1), 0)
