"""Fold-in: new entities of one mode solved exactly against the fitted factors of the others."""

from __future__ import annotations

import torch

from ._als import solve_mode
from ._problem import Problem, State

__all__ = ["fold_in_mode"]


def fold_in_mode(
    problem: Problem,
    state: State,
    mode: int,
    *,
    carries_scale: bool,
    cg_tol: float,
    laplacian: torch.Tensor | None,
) -> None:
    """Cold exact solve of ``mode``'s factors (and bias) with the other modes fixed, in place.

    ``carries_scale``: the mode that holds the model's scale in the fitted factors (the sample
    mode, solved last) is solved against them as they are. Any other mode, when the problem
    normalizes (``factor_scale="solved"``), is solved as the fit solved it, against the others'
    unit-norm columns, and its solution is then divided by those column norms, so that with the
    fitted factors it gives the same model values (and the same scores) as in that solve.
    """
    view = state
    if problem.normalize and not carries_scale:
        view = state.normalized_except(mode)
    a, b, _ = solve_mode(problem, view, mode, warm=False, cg_tol=cg_tol, laplacian=laplacian)
    if view is not state:
        scale = torch.ones_like(a[0])
        for j, f in enumerate(state.factors):
            if j != mode:
                scale = scale * torch.linalg.vector_norm(f, dim=0).to(a.device)
        # A zero column contributes nothing to the model, so its row entries may stay as solved.
        a = a / torch.where(scale > 0, scale, torch.ones_like(scale))
    state.assign(mode, a, b)
