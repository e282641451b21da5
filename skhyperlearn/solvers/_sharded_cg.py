"""The implicit loss's matrix-free mode solve (``mode_solve="cg"``) over sharded entries.

The operator of :class:`~.losses._matrix_free.ImplicitOperatorQuadratic` is a sum over the
stored entries plus terms every rank holds (``G v``, the ridge, ``L v``). Over shards, each
application is this rank's stored-entry share summed over the ranks with one ``all_reduce`` of
an N_k × R block, so every CG step costs one all_reduce; the right-hand side and the Jacobi
diagonal are one more. The CG then runs in torch on every rank on the same sums (the
single-process fit's compiled per-row CG, used without a graph, is the same iteration up to
rounding), and every rank ends with the same factors.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .._numerics._cg import ridge_floor
from .._numerics._kernels import implicit_stored_value
from .losses._matrix_free import ImplicitOperatorQuadratic, cpu_gram, cpu_gram_hadamard

__all__ = ["ShardedOperatorQuadratic", "sharded_operator_quadratic"]


@dataclass
class ShardedOperatorQuadratic(ImplicitOperatorQuadratic):
    """The matrix-free quadratic whose stored-entry sums are all-reduced (``comm.sum``)."""

    comm: object = None

    def _sum(self, t: torch.Tensor, what: str) -> torch.Tensor:
        (out,), _ = self.comm.sum([t], [], f"mode {self.mode}'s {what}")
        return out

    def value(self, a: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
        local = implicit_stored_value(self.tensor, self.factors, self.mode, self.confidence, a)
        _, (stored,) = self.comm.sum([], [float(local)], f"mode {self.mode}'s data term")
        quad = (self.gram * cpu_gram(a)).sum()
        return self.scale * (self.const + quad + stored)

    def solve(self, lap, lam, alpha, warm, cg_tol, cg_maxiter, *, shift=None):
        # Never the compiled per-row CG: its steps would see this rank's entries only.
        dense, ws = self._dense(lap, lam, alpha)
        n, rank = self.tensor.shape[self.mode], self.gram.shape[0]
        x0 = warm[0] if warm is not None else self.gram.new_zeros(n, rank)
        steps = self.steps if warm is not None else cg_maxiter
        cg_tol = max(cg_tol, ridge_floor(self.gram.dtype))
        return self._block_cg(lap, dense, ws, x0, cg_tol, steps, warm is None, shift), None

    def _rhs_diag(self):
        # One all_reduce for both: they are stacked into one buffer.
        linear, dsum = super()._rhs_diag()
        summed = self._sum(torch.stack([linear, dsum]), "right-hand side").unbind()
        return tuple(t.view(linear.shape) for t in summed)

    def _stored_apply(self, y):
        return self._sum(super()._stored_apply(y), "operator product")


def sharded_operator_quadratic(problem, state, mode: int) -> ShardedOperatorQuadratic:
    """Mode ``mode``'s matrix-free implicit quadratic over ``problem``'s shards (a collective)."""
    data = problem.data(mode)
    factors = problem.gather(mode, state.factors)
    loss = problem.loss
    _, (const,) = problem.comm.sum(
        [], [data.nnz + loss.confidence * data.value_sum], f"mode {mode}'s data constant"
    )
    scale = 1.0 / (1.0 + loss.confidence * loss.typical)
    gram = cpu_gram_hadamard(factors, mode)
    return ShardedOperatorQuadratic(
        mode, const, scale, loss.confidence, data, factors, gram, comm=problem.comm
    )
