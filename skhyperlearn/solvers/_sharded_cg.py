"""The implicit loss's matrix-free mode solve (``mode_solve="cg"``) over sharded entries.

The operator of :class:`~.losses._matrix_free.ImplicitOperatorQuadratic` is a sum over the
stored entries plus terms every rank can form for its rows (``G v``, the ridge, ``L v``). Each
rank solves its block of the mode's rows (:mod:`._sharded_rows`): a CG step gathers the
direction (every row: each rank's entries touch every row), applies this rank's stored entries
to it, and sends the partial products to the rows' owners with one ``reduce_scatter``; the
right-hand side and the Jacobi diagonal are one more. Without a graph the rows are independent
and the per-row CG of the single-process torch solve runs on each block (the single-process
fit's compiled per-row CG is the same iteration up to rounding), the ranks stopping together.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from .._numerics._kernels import implicit_stored_value
from ._sharded_rows import split_gram_hadamard
from .losses._matrix_free import ImplicitOperatorQuadratic, cpu_gram

__all__ = ["ShardedOperatorQuadratic", "sharded_operator_quadratic"]


@dataclass
class ShardedOperatorQuadratic(ImplicitOperatorQuadratic):
    """The matrix-free quadratic whose stored-entry sums go to the rows' owners."""

    comm: object = None
    compiled: ClassVar[bool] = False

    def value(self, a: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
        local = implicit_stored_value(self.tensor, self.factors, self.mode, self.confidence, a)
        quad = (self.gram * cpu_gram(self.rows.local(a))).sum()
        if self.rows.whole:  # every row here: only the entries' share is partial
            _, (stored,) = self.comm.sum([], [float(local)], f"mode {self.mode}'s data term")
        else:  # both partial, one message
            parts = torch.stack([torch.as_tensor(float(local), dtype=quad.dtype), quad])
            stored, quad = self.rows.sum(parts).unbind()
        return self.scale * (self.const + quad + stored)

    def _rhs_diag(self):
        # One message for both: they are stacked into one buffer.
        linear, dsum = super()._rhs_diag()
        both = self.rows.scatter_sum(torch.cat([linear, dsum], 1), "right-hand side")
        rank = linear.shape[1]
        return both[:, :rank].contiguous(), both[:, rank:].contiguous()

    def _stored_apply(self, y):
        return self.rows.scatter_sum(super()._stored_apply(y), "operator product")


def sharded_operator_quadratic(problem, state, mode: int) -> ShardedOperatorQuadratic:
    """Mode ``mode``'s matrix-free implicit quadratic over ``problem``'s shards (a collective)."""
    data = problem.data(mode)
    factors = problem.gather(mode, state.factors)
    loss = problem.loss
    const = problem.constant("implicit constant", data.nnz + loss.confidence * data.value_sum)
    scale = 1.0 / (1.0 + loss.confidence * loss.typical)
    gram = split_gram_hadamard(factors, mode, problem.blocks())
    return ShardedOperatorQuadratic(
        mode, const, scale, loss.confidence, data, factors, gram,
        rows=problem.solve_rows(mode, gram.shape[0], coupled=False), comm=problem.comm,
    )  # fmt: skip
