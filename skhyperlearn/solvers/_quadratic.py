"""The per-mode subproblem (Eq. 11) as an explicit quadratic.

With every factor but ``A_k`` fixed, the data term of J is a quadratic in ``A_k`` whose
coefficients cost one pass over the stored entries:

- hypergraph loss: ``‖X‖² − 2⟨A, MTTKRP_k⟩ + ⟨G_k, AᵀA⟩``;
- observed loss: ``Σ y² − 2⟨Ã, rhs⟩ + Σ_i ã_iᵀ G_i ã_i`` with per-row Grams, where ``Ã`` carries
  the mode's bias as an extra column when biases are fitted.

The exact solver minimises this quadratic (plus the graph and ridge terms) in closed form or by
CG; the HyperLearn solver evaluates it, differentiably, at the diffused factors many times per
pass. Both therefore share one pass per mode per round.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .._kernels import gram_hadamard, mode_normal_equations, mttkrp
from ._problem import Problem, State

__all__ = ["ModeQuadratic", "mode_quadratic"]


@dataclass
class ModeQuadratic:
    """Data term of J in one mode's factors (and bias), the others fixed."""

    mode: int
    loss: str
    const: float
    linear: torch.Tensor  # MTTKRP (N, R) or rhs (N, R')
    gram: torch.Tensor  # G (R, R) or per-row Grams (N, R', R')
    with_bias: bool = False

    def value(self, a: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
        """The data error at factors ``a`` (and bias ``b``); differentiable in both."""
        if self.loss == "hypergraph":
            quad = (self.gram * (a.T @ a)).sum()
            return self.const - 2.0 * (a * self.linear).sum() + quad
        if self.with_bias:
            a = torch.cat([a, b[:, None]], 1)
        quad = torch.einsum("ni,nij,nj->", a, self.gram, a)
        return self.const - 2.0 * (a * self.linear).sum() + quad


def mode_quadratic(problem: Problem, state: State, mode: int) -> ModeQuadratic:
    """Build the quadratic of ``mode`` at ``state``, on that mode's device, in one pass."""
    data = problem.data(mode)
    factors = problem.gather(mode, state.factors)
    if problem.loss == "hypergraph":
        m = mttkrp(data, factors, mode)
        return ModeQuadratic(mode, "hypergraph", data.norm_sq, m, gram_hadamard(factors, mode))
    biases = None if state.biases is None else problem.gather(mode, state.biases)
    rhs, grams, target_sq = mode_normal_equations(
        data, factors, mode, biases, state.mean, with_bias=problem.bias, return_target_sq=True
    )
    return ModeQuadratic(mode, "observed", target_sq, rhs, grams, problem.bias)
