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
    shift: torch.Tensor | None = None,
) -> None:
    """Cold exact solve of ``mode``'s factors (and bias) with the other modes fixed, in place.

    ``unit_others``: solve as a fit with ``factor_scale="solved"`` solves a mode that does not
    carry the model's scale, against the others' unit-norm columns, and divide the solution by
    those column norms, so that with the fitted factors it gives the model values (and the
    scores) of that solve. Without it (the scale-carrying sample mode, or ``"free"``), the
    solve is against the fitted factors as they are.

    ``shift``: the graph term's part from fitted neighbours, ``L_xt A_t`` (the new rows'
    block of the union's Laplacian times the fitted rows), so that the graph term is
    ``½tr(AᵀLA) + tr(Aᵀ shift)`` in the new rows ``A``; given in the fitted factors' units.
    """
    view, scale = state, None
    if unit_others:
        view = state.normalized_except(mode)
        f = state.factors[mode]
        scale = f.new_ones(f.shape[1])
        for j, other in enumerate(state.factors):
            if j != mode:
                scale = scale * torch.linalg.vector_norm(other, dim=0).to(scale.device)
        # A zero column contributes nothing to the model, so its row entries may stay as solved.
        scale = torch.where(scale > 0, scale, torch.ones_like(scale))
        if shift is not None:
            # The solve's rows carry the others' scale, so do the fitted neighbours' there.
            shift = shift * scale.to(shift.device)
    a, b, _ = solve_mode(
        problem, view, mode, warm=False, cg_tol=cg_tol, laplacian=laplacian, shift=shift
    )
    if scale is not None:
        a = a / scale.to(a.device)
    state.assign(mode, a, b)
