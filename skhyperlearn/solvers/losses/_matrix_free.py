"""The implicit loss's mode solve without per-row Grams (``mode_solve="cg"``).

Row i of mode k solves ``(2λs(G + Σ_{e_k=i} w_e h_e h_eᵀ) + 2αI) a_i = 2λs Σ_{e_k=i} (1 + w_e) h_e``
(``s = 1/(1 + c)``, ``G`` the absent cells' Gram, shared by every row). Building each row's Gram
costs ``N·R²`` memory and ``O(nnz·R²)`` work per sweep; conjugate gradient needs only products
with it, ``G v + Σ w_e (h_eᵀ v) h_e``: ``O(nnz·R)`` per step and ``O(N·R)`` memory. Warm-started
from the current factors, a few steps per sweep lower the mode's part of J about as much as the
exact solve (Takács, Pilászy & Tikk 2011, the solver of ``implicit``'s ALS), for a fraction of
its work. Without a graph the rows are independent: each row runs its own CG, all its steps
while its entries are in cache (one compiled pass on the CPU). With a graph ``L`` the rows are
coupled: one Jacobi-preconditioned CG over the whole block, ``L V`` added to the operator.

A cold solve (``transform``'s fold-in) runs CG to ``cg_tol`` instead (Jacobi-preconditioned):
the exact solution to that tolerance.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import torch

from ..._numerics._cg import pcg, relative_floor, ridge_floor
from ..._numerics._cpu._fused import fused_implicit_cg
from ..._numerics._kernels import (
    implicit_rhs_diag,
    implicit_stored_apply,
    implicit_stored_value,
    numpy_ready,
    small_matmul,
)
from ..._numerics._rows import ALL_ROWS, AllRows, laplacian_diagonal, laplacian_scale
from ._base import ModeQuadratic

__all__ = [
    "SWEEP_STEPS",
    "ImplicitOperatorQuadratic",
    "cpu_gram",
    "cpu_gram_hadamard",
    "data_term_from_cg",
]

#: CG steps per mode per sweep when warm-started, ``implicit``'s default (not tuned further):
#: per second of fitting, J fell several times faster than with the exact solve on the
#: matrices of ``benchmarks/bench_implicit.py`` (see benchmarks/README.md).
SWEEP_STEPS = 3


def cpu_gram(a: torch.Tensor) -> torch.Tensor:
    """``aᵀa``; in numpy, on the calling thread, for a CPU tensor without autograd.

    A torch product is a parallel region whose other threads slept through the compiled pass
    and must be woken, which can take longer than a Gram this small costs on one thread.
    numpy's BLAS goes parallel on a tall factor, with the same trouble: a 100000 × 32 Gram took
    0.2–9 s with OpenBLAS's threads against 20–25 ms on one, the same numbers bit for bit.
    """
    if numpy_ready(a) and not (torch.is_grad_enabled() and a.requires_grad):
        m = a.detach().numpy()
        with _blas_controller().limit(limits=1, user_api="blas"):
            return torch.from_numpy(m.T @ m)
    return a.T @ a


@functools.cache
def _blas_controller():
    # Made once: finding the loaded BLAS libraries costs milliseconds, a limit then ~10 µs.
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def cpu_gram_hadamard(factors, mode: int) -> torch.Tensor:
    """``⊛_{j≠mode} A_jᵀA_j`` with :func:`cpu_gram`."""
    out = None
    for j, a in enumerate(factors):
        if j != mode:
            g = cpu_gram(a)
            out = g if out is None else out * g.to(out.device)
    return out


def data_term_from_cg(x: torch.Tensor, f: torch.Tensor, ridge: float, ws: float) -> float:
    """``Σ_rows (xᵀ(G + S)x − 2 linearᵀx)`` at CG's solution, from its per-row objectives.

    Row i's system is ``(ws·(G + S_i) + ridge·I) x_i = ws·linear_i``, and the compiled CG
    returns ``f_i = ½x_iᵀA_i x_i − b_iᵀx_i``, so the data term is ``(2Σf − ridge‖x‖²)/ws``:
    J comes out of the solve without another pass over the entries.
    """
    sq = float(np.square(x.numpy(), dtype=np.float64).sum())
    return (2.0 * float(f.sum()) - ridge * sq) / ws


@dataclass
class ImplicitOperatorQuadratic(ModeQuadratic):
    """``scale · (const + ⟨gram, AᵀA⟩ + Σ_e (w_e t_e² − 2(1 + w_e) t_e))``, ``t_e = h_eᵀ a_{e_k}``.

    Holds what the operator needs (the entries, the other modes' factors, ``gram``), never the
    per-row Grams.
    """

    mode: int
    const: float
    scale: float
    confidence: float
    tensor: object  # the mode's SparseTensorData
    factors: list[torch.Tensor]
    gram: torch.Tensor  # (R, R), the absent cells' share
    steps: int = SWEEP_STEPS
    #: The rows of the mode this process solves (a block under the sharded schedule).
    rows: AllRows = ALL_ROWS
    #: Whether the compiled per-row CG may solve it: it sees this process's entries only, so
    #: not when other processes hold some (the sharded schedule's subclass).
    compiled: ClassVar[bool] = True
    #: ``(solution, value there)`` of the last compiled solve: the schedule asks for that value.
    _solved: tuple | None = field(default=None, repr=False)

    def value(self, a: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
        if self._solved is not None and a is self._solved[0]:
            return torch.tensor(self._solved[1], dtype=a.dtype, device=a.device)
        stored = implicit_stored_value(self.tensor, self.factors, self.mode, self.confidence, a)
        quad = (self.gram * cpu_gram(a)).sum()
        return self.scale * (self.const + quad + stored)

    def _dense(self, lap, lam: float, alpha: float) -> tuple[torch.Tensor, float]:
        """The rows' shared part ``2λs G + 2αI`` plus the relative floor, and ``2λs``."""
        ws = 2.0 * lam * self.scale
        dense = ws * self.gram
        dense.diagonal().add_(2.0 * alpha)
        scale = float(dense.diagonal().abs().max())
        if lap is not None:
            scale = max(scale, laplacian_scale(lap))
        dense.diagonal().add_(relative_floor(self.gram.dtype, scale))
        return dense, ws

    def solve(self, lap, lam, alpha, warm, cg_tol, cg_maxiter, *, shift=None):
        rows = self.rows
        lap = rows.laplacian(lap)
        dense, ws = self._dense(lap, lam, alpha)
        if warm is not None:
            x0 = rows.local(warm[0])
        else:
            n = rows.count(self.tensor.shape[self.mode])
            x0 = self.gram.new_zeros(n, self.gram.shape[0])
        steps = self.steps if warm is not None else cg_maxiter
        # A float32 residual stalls near rounding: a tolerance below it would run every step.
        cg_tol = max(cg_tol, ridge_floor(self.gram.dtype))
        if lap is None and shift is None and self.compiled:
            system = (dense, ws, cg_tol)
            # Jacobi for a cold solve only: from a warm start, the few plain CG steps ended
            # lower (the preconditioned ones 0.3 % higher on Last.fm after ten sweeps).
            fused = fused_implicit_cg(
                self.tensor, self.factors, self.mode, self.confidence, system, x0, steps,
                warm is None,
            )  # fmt: skip
            if fused is not None:
                x, f = fused
                ridge = float(dense.diagonal()[0] - ws * self.gram[0, 0])
                self._solved = (x, self.scale * (self.const + data_term_from_cg(x, f, ridge, ws)))
                return x, None
        x = self._block_cg(lap, dense, ws, x0, cg_tol, steps, warm is None, rows.local(shift))
        return rows.gather(x), None

    def _rhs_diag(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The stored entries' right-hand side and Jacobi diagonal, on this process's rows
        (the sharded schedule's subclass sums them over the ranks)."""
        return implicit_rhs_diag(self.tensor, self.factors, self.mode, self.confidence)

    def _stored_apply(self, y: torch.Tensor) -> torch.Tensor:
        """The stored entries' share of the operator applied to ``y`` (every row of the mode),
        on this process's rows."""
        return implicit_stored_apply(self.tensor, self.factors, self.mode, self.confidence, y)

    def _block_cg(self, lap, dense, ws, x0, cg_tol, steps, cold, shift=None) -> torch.Tensor:
        """CG in torch: one per row without a graph (Jacobi when ``cold``, as the compiled
        one), one over the block with it (always Jacobi: the graph's diagonal varies)."""
        linear, dsum = self._rhs_diag()
        b = linear.mul_(ws)
        if shift is not None:
            b.sub_(shift)
        diag = dsum.mul_(ws).add_(dense.diagonal())

        def op(y: torch.Tensor) -> torch.Tensor:
            whole = self.rows.gather(y)
            out = self._stored_apply(whole).mul_(ws).add_(small_matmul(y, dense))
            return out if lap is None else out.add_(lap @ whole)

        if lap is None:
            # Independent rows: columns of the transposed block, one CG each.
            diag_t = diag.T if cold else torch.ones_like(diag.T)
            x = pcg(
                lambda yt: op(yt.T.contiguous()).T, b.T, x0.T, lambda r: r / diag_t,
                tol=cg_tol, maxiter=steps, per_column=True,
                allany=None if self.rows.whole else self.rows.any,
            )  # fmt: skip
            return x.T.contiguous()
        diag += laplacian_diagonal(lap)[:, None]
        return pcg(
            op, b, x0, lambda r: r / diag, tol=cg_tol, maxiter=steps, per_column=False,
            allsum=None if self.rows.whole else self.rows.sum,
        )  # fmt: skip
