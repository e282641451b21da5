"""The exact per-mode update: block coordinate descent with an exact solve per mode.

Each mode's factors (and bias) become the exact minimiser of J with the other modes fixed; how
the system is assembled and solved belongs to the loss (see :mod:`.losses`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ._problem import Problem, State
from .losses import ModeQuadratic

__all__ = ["ExactUpdate", "solve_mode"]


def solve_mode(
    problem: Problem,
    state: State,
    mode: int,
    *,
    warm: bool = True,
    cg_tol: float = 1e-8,
    cg_maxiter: int = 500,
    laplacian: torch.Tensor | str | None = "problem",
    shift: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None, ModeQuadratic]:
    """The exact minimiser of J over mode ``mode``'s factors (and bias), others fixed.

    Returns the new factor matrix, the new bias (or None) and the mode's quadratic, which lets
    the caller evaluate J without another pass. ``laplacian`` overrides the mode's graph and
    ``shift`` adds ``tr(Aᵀ shift)`` to it (both used to fold in new entities).
    """
    quad = problem.quadratic(state, mode)
    lap = problem.laplacians[mode] if isinstance(laplacian, str) else laplacian
    start = None
    if warm:
        dev = problem.devices[mode]
        b = None if not problem.bias else state.biases[mode].to(dev)
        start = (state.factors[mode].to(dev), b)
    a, b = quad.solve(lap, problem.lam, problem.alpha, start, cg_tol, cg_maxiter, shift=shift)
    return a, b, quad


@dataclass
class ExactUpdate:
    """Per-mode update of the exact solver (stateless: any schedule can run it)."""

    cg_tol: float = 1e-8
    cg_maxiter: int = 500
    kind = "sweep"

    def __call__(
        self, problem: Problem, state: State, mode: int
    ) -> tuple[torch.Tensor, torch.Tensor | None, ModeQuadratic]:
        return solve_mode(problem, state, mode, cg_tol=self.cg_tol, cg_maxiter=self.cg_maxiter)
