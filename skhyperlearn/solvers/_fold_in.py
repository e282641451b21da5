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
    unit_others: bool,
    cg_tol: float,
    laplacian: torch.Tensor | None,
) -> None:
    """Cold exact solve of ``mode``'s factors (and bias) with the other modes fixed, in place.

    ``unit_others``: solve as a fit with ``factor_scale="solved"`` solves a mode that does not
    carry the model's scale, against the others' unit-norm columns, and divide the solution by
    those column norms, so that with the fitted factors it gives the model values (and the
    scores) of that solve. Without it (the scale-carrying sample mode, or ``"free"``), the
    solve is against the fitted factors as they are.
    """
    view = state
    if unit_others:
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
